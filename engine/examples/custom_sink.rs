//! A custom output kind: a sink that receives every composited frame on its own thread (here it
//! prints the average luma of each NV12 frame). `cargo run -p streamlib --example custom_sink`.

use streamlib::registry::{PathOnly, SinkKind, SinkTarget};
use streamlib::{GpuContext, OutputFrame, PixelFormat, Registry, Sink, SinkError};

struct LumaMeter;

impl Sink for LumaMeter {
    fn format(&self) -> PixelFormat {
        PixelFormat::Nv12
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        let y = frame.plane(0);
        let mean = y.iter().map(|&v| u64::from(v)).sum::<u64>() / y.len().max(1) as u64;
        // The frame says how its YUV was made, so a sink never guesses.
        println!(
            "frame {} at {} ms: mean Y {mean} ({:?})",
            frame.time.index,
            frame.time.pts_ns / 1_000_000,
            frame.color_space
        );
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// `{ "kind": "luma_meter", "path": "-" }` in a scene's `outputs` (or `--output x.luma`).
struct LumaMeterKind;

impl SinkKind for LumaMeterKind {
    type Config = PathOnly;

    fn extensions(&self) -> &[&str] {
        &["luma"]
    }

    fn build(&self, _target: &SinkTarget<'_>, _: PathOnly) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(vec![Box::new(LumaMeter)])
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = Registry::default();
    registry.register_sink("luma_meter", LumaMeterKind);
    let scene = registry.parse_scene(
        r#"{ "width": 320, "height": 180, "fps": 30,
             "inputs": { "box": { "kind": "test_pattern", "pattern": "moving_box" } },
             "layers": [ { "id": "box", "kind": "video", "input": "box" } ],
             "outputs": [ { "kind": "luma_meter", "path": "-" } ] }"#,
    )?;
    let sinks = registry
        .open_scene_outputs(&scene, |p| Ok(p.to_path_buf()))?
        .into_iter()
        .map(|n| streamlib::SinkHandle::spawn(&n.name, n.sink, streamlib::Backpressure::Block, 4))
        .collect::<Result<Vec<_>, _>>()?;
    let gpu = GpuContext::new()?;
    let mut engine = streamlib::Engine::new(&gpu, scene, &registry, streamlib::Pacing::Offline)?;
    let options = streamlib::RunOptions { frames: Some(5), ..Default::default() };
    streamlib::run(&mut engine, sinks, streamlib::Pacing::Offline, &options, |_| {})?;
    Ok(())
}
