//! `streamlib bench`: workloads that print a table with the adapter named.

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::sync::Arc;
use streamlib::scene::{InputSpec, LayerSpec};
use streamlib::sinks::MemorySink;
use streamlib::{
    Backpressure, BlendMode, Color, Engine, Fps, GpuContext, Pacing, PixelFormat, Rect, Registry, RunOptions, Scene,
    SinkHandle,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Workload {
    /// 1920x1080, 4 layers (one opaque, three translucent offset), RGBA readback into memory.
    W1,
    /// 1920x1080 drawing layer: 1, 100 and 1000 shapes, and a 200-character text changing every frame.
    Drawing,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(value_enum, default_value = "w1")]
    workload: Workload,
    /// Frames per run.
    #[arg(long, default_value_t = 300)]
    frames: u64,
    /// Runs; the table shows the median.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Readback format.
    #[arg(long, value_enum, default_value = "rgba")]
    readback: Readback,
    /// Frames in flight between submit and readback.
    #[arg(long, default_value_t = streamlib::DEFAULT_RING_DEPTH)]
    ring_depth: usize,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Readback {
    Rgba,
    Nv12,
    I420,
}

fn pattern(name: &str) -> InputSpec {
    let mut params = serde_json::Map::new();
    params.insert("pattern".into(), name.into());
    InputSpec { kind: "test_pattern".into(), params }
}

fn layer(id: &str, input: &str, z: i32, opacity: f32, rect: Rect) -> LayerSpec {
    LayerSpec {
        id: id.into(),
        kind: "video".into(),
        input: Some(input.into()),
        z,
        opacity,
        blend: BlendMode::Normal,
        visible: true,
        rect: Some(rect),
        crop: None,
        params: Default::default(),
    }
}

/// W1 from the engine issue: four full-size layers at 1080p, three translucent and offset.
pub fn w1_scene() -> Scene {
    let (w, h) = (1920.0, 1080.0);
    Scene {
        width: 1920,
        height: 1080,
        fps: Fps::new(30, 1),
        background: Color::BLACK,
        inputs: [
            ("bars".to_string(), pattern("smpte_bars")),
            ("grad".to_string(), pattern("gradient")),
            ("check".to_string(), pattern("checkerboard")),
            ("card".to_string(), pattern("test_card")),
        ]
        .into_iter()
        .collect(),
        layers: vec![
            layer("base", "bars", 0, 1.0, Rect::new(0.0, 0.0, w, h)),
            layer("a", "grad", 1, 0.8, Rect::new(100.0, 50.0, w, h)),
            layer("b", "check", 2, 0.7, Rect::new(400.0, 200.0, w, h)),
            layer("c", "card", 3, 0.9, Rect::new(800.0, 400.0, w, h)),
        ],
        base_dir: None,
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    if let Workload::Drawing = args.workload {
        return drawing(&args);
    }
    let gpu = GpuContext::new()?;
    let registry = Registry::default();
    let scene = w1_scene();
    scene.validate(&registry)?;
    let format = match args.readback {
        Readback::Rgba => PixelFormat::Rgba8,
        Readback::Nv12 => PixelFormat::Nv12,
        Readback::I420 => PixelFormat::I420,
    };
    let pipelines = Arc::new(streamlib::gpu::Pipelines::new(&gpu)?);
    println!("W1: 1920x1080, 4 layers, {} frames, {:?} readback, ring depth {}", args.frames, format, args.ring_depth);
    println!("adapter: {}", gpu.adapter_summary());
    let mut rows = Vec::new();
    for run in 0..args.runs.max(1) {
        let mut engine = Engine::with_pipelines(&gpu, pipelines.clone(), scene.clone(), &registry, Pacing::Offline)?;
        engine.set_ring_depth(args.ring_depth);
        // Warm up: first frames compile shaders and allocate the ring.
        for i in 0..5 {
            engine.render(i, &[format])?;
        }
        engine.flush()?;
        let warm = engine.times();
        let sink = MemorySink::new(format, 0);
        let handle = SinkHandle::spawn("memory", Box::new(sink.clone()), Backpressure::Block, 4)?;
        let options = RunOptions { frames: Some(args.frames), stop: None, ..Default::default() };
        let stats = streamlib::run(&mut engine, vec![handle], Pacing::Offline, &options, |_| {})?;
        let per_frame = |d: std::time::Duration, w: std::time::Duration| {
            (d.saturating_sub(w)).as_secs_f64() * 1e3 / stats.frames as f64
        };
        let t = stats.times;
        rows.push([
            stats.fps(),
            per_frame(t.sources, warm.sources),
            per_frame(t.composite, warm.composite),
            per_frame(t.submit, warm.submit),
            per_frame(t.readback, warm.readback),
            sink.bytes() as f64 / (1 << 20) as f64,
        ]);
        println!("run {}: {:.1} fps", run + 1, stats.fps());
    }
    rows.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let m = rows[rows.len() / 2];
    println!();
    println!("| metric (median run) | value |");
    println!("|---|---|");
    println!("| fps | {:.1} |", m[0]);
    println!("| ms/frame, source updates (CPU) | {:.3} |", m[1]);
    println!("| ms/frame, composite recording (CPU) | {:.3} |", m[2]);
    println!("| ms/frame, convert+copy recording and submit (CPU) | {:.3} |", m[3]);
    println!("| ms/frame, waiting for GPU + unpadding readback | {:.3} |", m[4]);
    println!("| MiB read back | {:.0} |", m[5]);
    Ok(())
}

/// One drawing-layer workload: `shapes` shapes (circles and rounded rects, half stroked) and
/// optionally a 200-character text block that changes every frame.
fn drawing_kind(shapes: usize, text: bool, animated: bool) -> streamlib::layers::DrawingLayerKind {
    use streamlib::layers::canvas::{StrokeStyle, TextStyle};
    streamlib::layers::DrawingLayerKind::new(move |_| {
        Box::new(move |c, ctx| {
            if animated {
                // Moves every frame: the layer is redrawn (tessellations still come from the cache).
                c.translate((ctx.frame % 50) as f32, 0.0);
            }
            for i in 0..shapes {
                // A fixed pseudo-random layout (the same every frame, so tessellations are cached).
                let h = (i as u32).wrapping_mul(2_654_435_761);
                let (x, y) = ((h % 1800) as f32 + 40.0, ((h >> 11) % 1000) as f32 + 40.0);
                let color = Color::rgba((h >> 3) as u8, (h >> 9) as u8, (h >> 17) as u8, 200);
                if i % 2 == 0 {
                    c.fill_circle(x, y, 12.0 + (h % 20) as f32, color);
                } else {
                    c.fill_rounded_rect(Rect::new(x, y, 40.0, 24.0), 6.0, color);
                    c.stroke_rect(Rect::new(x, y, 40.0, 24.0), 6.0, &StrokeStyle::new(2.0), Color::WHITE);
                }
            }
            if text {
                let line: String =
                    (0..200).map(|i| char::from(b'a' + ((ctx.frame as usize + i * 7) % 26) as u8)).collect();
                let style = TextStyle { size: 28.0, wrap_width: Some(1800.0), ..TextStyle::default() };
                c.text(&line, 60.0, 900.0, &style);
            }
            Ok(())
        })
    })
}

fn drawing(args: &BenchArgs) -> Result<()> {
    let gpu = GpuContext::new()?;
    let pipelines = Arc::new(streamlib::gpu::Pipelines::new(&gpu)?);
    println!("drawing: 1920x1080, {} frames per case, RGBA readback", args.frames);
    println!("adapter: {}", gpu.adapter_summary());
    println!();
    println!("| case | ms/frame (median of {} runs) | fps |", args.runs.max(1));
    println!("|---|---|---|");
    for (name, shapes, text, animated) in [
        ("empty drawing layer", 0, false, false),
        ("1 shape, static", 1, false, false),
        ("100 shapes, static", 100, false, false),
        ("1000 shapes, static", 1000, false, false),
        ("1 shape, moving", 1, false, true),
        ("100 shapes, moving", 100, false, true),
        ("1000 shapes, moving", 1000, false, true),
        ("200-char text, new every frame", 0, true, false),
    ] {
        let mut registry = Registry::default();
        registry.register_layer("bench", drawing_kind(shapes, text, animated));
        let scene = Scene::from_value(
            serde_json::json!({ "width": 1920, "height": 1080, "layers": [ { "id": "b", "kind": "bench" } ] }),
            &registry,
        )?;
        let mut times = Vec::new();
        for _ in 0..args.runs.max(1) {
            let mut engine =
                Engine::with_pipelines(&gpu, pipelines.clone(), scene.clone(), &registry, Pacing::Offline)?;
            for i in 0..3 {
                engine.render_and_read(i, PixelFormat::Rgba8)?;
            }
            let start = std::time::Instant::now();
            for i in 0..args.frames {
                engine.render(i + 3, &[PixelFormat::Rgba8])?;
            }
            engine.flush()?;
            times.push(start.elapsed().as_secs_f64() * 1e3 / args.frames as f64);
        }
        times.sort_by(f64::total_cmp);
        let ms = times[times.len() / 2];
        println!("| {name} | {ms:.2} | {:.1} |", 1e3 / ms);
    }
    Ok(())
}
