//! A custom input kind: frames made on the CPU by your code (here a scrolling gradient), uploaded
//! and converted on the GPU by the engine. `cargo run -p streamlib --example custom_input`
//! writes `custom_input.y4m`.

use streamlib::registry::{BuildContext, BuildError, InputKind};
use streamlib::scene::SceneError;
use streamlib::sources::{FrameProducer, Source, SourceError, ThreadedSource};
use streamlib::{Fps, FrameTime, GpuContext, PixelFormat, Registry, TimestampedFrame, YuvColorSpace};

/// Produces `frames` RGBA frames; the engine shows each at its timestamp.
struct Gradient {
    width: u32,
    height: u32,
    fps: Fps,
    index: u64,
    frames: u64,
}

impl FrameProducer for Gradient {
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError> {
        if self.index == self.frames {
            return Ok(None);
        }
        let mut rgba = Vec::with_capacity((self.width * self.height * 4) as usize);
        for y in 0..self.height {
            for x in 0..self.width {
                let r = ((x as u64 + self.index * 4) % 256) as u8;
                rgba.extend_from_slice(&[r, (y * 255 / self.height) as u8, 128, 255]);
            }
        }
        let time = FrameTime::at(self.fps, self.index);
        self.index += 1;
        let frame = TimestampedFrame::from_packed(PixelFormat::Rgba8, self.width, self.height, &rgba, time)
            .map_err(|e| SourceError::Decode(e.to_string()))?;
        Ok(Some(frame))
    }
}

/// `"kind": "gradient_from_rust"`, with an optional `frames` count.
struct GradientKind;

/// The kind's parameters: the registry parses them, and a bad one fails the scene with its path
/// (`inputs.g.frames: invalid type ...`).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct GradientConfig {
    #[serde(default = "sixty")]
    frames: u64,
}

fn sixty() -> u64 {
    60
}

impl InputKind for GradientKind {
    type Config = GradientConfig;

    fn check(&self, config: &GradientConfig) -> Result<(), SceneError> {
        match config.frames {
            0 => Err(SceneError::new("frames", "must be at least 1")),
            _ => Ok(()),
        }
    }

    fn build(&self, id: &str, config: GradientConfig, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let frames = config.frames;
        let producer =
            Gradient { width: ctx.scene.width, height: ctx.scene.height, fps: ctx.scene.fps, index: 0, frames };
        let source =
            ThreadedSource::spawn(id, producer, YuvColorSpace::default(), 0).map_err(|e| BuildError::new(id, e))?;
        Ok(Box::new(source))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = Registry::default();
    registry.register_input("gradient_from_rust", GradientKind);
    let scene = registry.parse_scene(
        r#"{ "width": 320, "height": 180, "fps": 30,
             "inputs": { "g": { "kind": "gradient_from_rust", "frames": 30 } },
             "layers": [ { "id": "g", "kind": "video", "input": "g" },
                         { "id": "t", "kind": "text", "text": "frame {frame}", "size": 24, "z": 1 } ] }"#,
    )?;
    let path = std::path::Path::new("custom_input.y4m");
    let sinks = registry.open_output(path, &scene)?;
    let sinks = sinks
        .into_iter()
        .map(|n| streamlib::SinkHandle::spawn(&n.name, n.sink, streamlib::Backpressure::Block, 4))
        .collect::<Result<Vec<_>, _>>()?;
    let gpu = GpuContext::new()?;
    let mut engine = streamlib::Engine::new(&gpu, scene, &registry, streamlib::Pacing::Offline)?;
    // No frame count: the run ends when the input does.
    let stats = streamlib::run(&mut engine, sinks, streamlib::Pacing::Offline, &Default::default(), |_| {})?;
    println!("{} frames from a Rust input -> {}", stats.frames, path.display());
    Ok(())
}
