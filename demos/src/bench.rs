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
    let Workload::W1 = args.workload;
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
