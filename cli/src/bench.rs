//! `streamlib bench`: workloads that print a table with the adapter named.

use anyhow::Result;
use clap::{Args, ValueEnum};
use std::sync::Arc;
use streamlib::sinks::MemorySink;
use streamlib::{
    Backpressure, Color, Engine, GpuContext, Pacing, PixelFormat, Rect, Registry, RunOptions, Scene, SinkHandle,
};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Workload {
    /// 1920x1080, 4 layers (one opaque, three translucent offset), RGBA readback into memory.
    W1,
    /// 1920x1080 drawing layer: 1, 100 and 1000 shapes, and a 200-character text changing every frame.
    Drawing,
    /// W1 against GStreamer's compositor and ffmpeg's overlay on identical inputs, alternating runs.
    W1VsGst,
    /// 1, 2, 4, 8, 16 layers at 1080p, against GStreamer's compositor.
    Layers,
    /// The ML layers at 720p30: inference ms per model, result age, frame time with each on and off.
    Ml,
    /// 4 layers at 720p, 1080p and 2160p, against GStreamer's compositor.
    Resolution,
    /// Decode a 1080p H.264 clip, composite two overlays, encode H.264: against gst-launch-1.0.
    Media,
    /// PATCH requests per second against `streamlib serve` rendering W1, and the frames it costs.
    Serve,
    /// The frame protocol against GStreamer on loopback: H.264 over UDP (RTP), raw 720p over TCP
    /// (GDP), raw 1080p rates, H.264 under 2 % loss.
    Network,
    /// A long server run (text, moving inputs, live HLS, a PATCH every 100 ms): memory, fds,
    /// threads and HLS size sampled; they must stay flat.
    Soak,
    /// How late a paced loop wakes: the engine's frame timer against plain sleeping, at `--fps`
    /// for `--seconds`.
    Pacing,
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
    /// A short run: 60 frames, one run.
    #[arg(long)]
    quick: bool,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// `soak`: how long to run.
    #[arg(long, default_value_t = 60.0)]
    minutes: f64,
    /// `soak`: seconds between samples.
    #[arg(long, default_value_t = 30.0)]
    sample_seconds: f64,
    /// Also draw the results as a PNG plot here (the peer comparison; for `soak`, memory,
    /// descriptors, threads and HLS size over time).
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// `soak`: plot the samples of an earlier run (its --json file) instead of running.
    #[arg(long)]
    from_json: Option<std::path::PathBuf>,
    /// `ml`, `pacing`: seconds of each paced run (`pacing`: 60 unless given).
    #[arg(long)]
    seconds: Option<f64>,
    /// `pacing`: ticks per second.
    #[arg(long, default_value_t = 60)]
    fps: u32,
    /// `network`: only these groups of cases (comma-separated: h264, raw, loss, srt, rtp).
    #[arg(long, value_delimiter = ',')]
    cases: Vec<crate::bench_network::CaseGroup>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Readback {
    Rgba,
    Nv12,
    I420,
}

/// W1 from the engine issue: four full-size layers at 1080p, three translucent and offset, over
/// still inputs (the same ones `w1-vs-gst` hands to GStreamer).
pub fn w1_scene() -> Result<Scene> {
    Ok(streamlib_scenes::layers::w1().scene(&Registry::default())?)
}

pub fn run(mut args: BenchArgs) -> Result<()> {
    if args.quick {
        args.frames = args.frames.min(60);
        args.runs = 1;
        args.seconds = Some(args.seconds.unwrap_or(1.0).min(1.0));
    }
    match args.workload {
        Workload::Drawing => return drawing(&args),
        Workload::W1VsGst => return compare(&args, vec![crate::compare::layers(4, 1920, 1080)]),
        Workload::Layers => {
            return compare(&args, [1, 2, 4, 8, 16].map(|n| crate::compare::layers(n, 1920, 1080)).to_vec())
        }
        Workload::Resolution => {
            return compare(
                &args,
                [(1280, 720), (1920, 1080), (3840, 2160)].map(|(w, h)| crate::compare::layers(4, w, h)).to_vec(),
            )
        }
        Workload::Media => return crate::bench_media::media(args.frames, args.runs, args.json.as_deref()),
        Workload::Network => return crate::bench_network::network(args.frames, &args.cases, args.json.as_deref()),
        Workload::Ml => return crate::bench_ml::ml(args.seconds.unwrap_or(20.0), args.json.as_deref()),
        Workload::Pacing => {
            return crate::bench_pacing::pacing(args.fps, args.seconds.unwrap_or(60.0), args.json.as_deref())
        }
        Workload::Serve => return crate::bench_serve::serve(if args.quick { 3 } else { 10 }, 4),
        Workload::Soak => {
            let plot = args.plot.as_deref();
            return match &args.from_json {
                Some(from) => crate::bench_soak::replot(from, plot.unwrap_or(std::path::Path::new("soak.png"))),
                None => crate::bench_soak::soak(args.minutes, args.sample_seconds, args.json.as_deref(), plot),
            };
        }
        Workload::W1 => {}
    }
    let gpu = GpuContext::new()?;
    let registry = Registry::default();
    let scene = w1_scene()?;
    let format = match args.readback {
        Readback::Rgba => PixelFormat::Rgba8,
        Readback::Nv12 => PixelFormat::Nv12,
        Readback::I420 => PixelFormat::I420,
    };
    let pipelines = Arc::new(streamlib::Pipelines::new(&gpu)?);
    println!("W1: 1920x1080, 4 layers, {} frames, {:?} readback, ring depth {}", args.frames, format, args.ring_depth);
    println!("adapter: {}", gpu.adapter_summary());
    // Timestamp queries serialise llvmpipe's work (about a third of its frame rate), so the fps
    // runs go without them and one extra run measures the GPU stages.
    let mut rows = Vec::new();
    let mut gpu_stages = None;
    let runs = args.runs.max(1);
    for run in 0..=runs {
        let timed = run == runs;
        let mut engine = Engine::with_pipelines(&gpu, pipelines.clone(), scene.clone(), &registry, Pacing::Offline)?;
        engine.set_ring_depth(args.ring_depth);
        // Warm up: first frames compile shaders and allocate the ring.
        for i in 0..5 {
            engine.render(i, &[format])?;
        }
        engine.flush()?;
        if timed && !engine.enable_gpu_timing(args.frames as u32) {
            break;
        }
        let warm = engine.times();
        let sink = MemorySink::new(format, 0);
        let handle = SinkHandle::spawn("memory", Box::new(sink.clone()), Backpressure::Block, 4)?;
        let options = RunOptions { frames: Some(args.frames), stop: None, ..Default::default() };
        let stats = streamlib::run(&mut engine, vec![handle], Pacing::Offline, &options, |_| {})?;
        if timed {
            gpu_stages = engine.gpu_times().map(|g| (stats.fps(), g));
            break;
        }
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
    match gpu_stages {
        None => println!("\n(no GPU timestamps: this adapter lacks TIMESTAMP_QUERY_INSIDE_ENCODERS; CPU timings only)"),
        Some((fps, g)) => {
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3 / g.frames.max(1) as f64;
            println!();
            println!("GPU stages from timestamp queries (a separate run: they slow llvmpipe to {fps:.1} fps)");
            println!();
            println!("| stage | ms/frame on the GPU |");
            println!("|---|---|");
            println!("| inputs (upload + convert) | {:.3} |", ms(g.inputs));
            println!("| composite | {:.3} |", ms(g.composite));
            println!("| output convert + copy to readback | {:.3} |", ms(g.readback));
        }
    }
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
    let pipelines = Arc::new(streamlib::Pipelines::new(&gpu)?);
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

/// The CPU model and how many cores this process may use, for result headers and plots.
fn cpu_summary() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores")
}

#[derive(serde::Serialize)]
struct CompareRow {
    case: crate::compare::Case,
    ours_fps: f64,
    gstreamer_fps: f64,
    ratio_gstreamer_over_ours: f64,
    ffmpeg_fps: f64,
    ratio_ffmpeg_over_ours: f64,
    output_mean_abs_diff: f64,
    output_max_abs_diff: u8,
    ffmpeg_output_mean_abs_diff: f64,
    ffmpeg_output_max_abs_diff: u8,
}

fn compare(args: &BenchArgs, cases: Vec<crate::compare::Case>) -> Result<()> {
    let gpu = GpuContext::new()?;
    let pipelines = Arc::new(streamlib::Pipelines::new(&gpu)?);
    let registry = Registry::default();
    let dir = std::env::temp_dir().join(format!("streamlib-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cpu = cpu_summary();
    println!("adapter: {}", gpu.adapter_summary());
    println!("cpu: {cpu}");
    println!(
        "{} frames per run, {} alternating runs each, RGBA out (ours: read back into memory; GStreamer: fakesink)",
        args.frames,
        args.runs.max(1)
    );
    println!();
    println!("| case | streamlib fps | GStreamer compositor fps | GStreamer / streamlib | ffmpeg overlay fps | ffmpeg / streamlib | output mean / max diff (GStreamer; ffmpeg) |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for case in cases {
        let scene = case.scene(&registry)?;
        let inputs = crate::compare::write_inputs(&gpu, &pipelines, &case, &dir)?;
        // Our frame 2 (the inputs are stills, so every frame is the same picture): by then each
        // opacity has held and the pipelines the timed runs use drew it.
        let mut engine = Engine::with_pipelines(&gpu, pipelines.clone(), scene.clone(), &registry, Pacing::Offline)?;
        for index in 0..2 {
            engine.render_and_read(index, PixelFormat::Rgba8)?;
        }
        let ours = engine.render_and_read(2, PixelFormat::Rgba8)?;
        let (mean, max) = crate::compare::check_same_output(&case, &inputs, &ours, &dir)?;
        let (fmean, fmax) = crate::compare::check_same_output_ffmpeg(&case, &inputs, &ours)?;
        // All composite the same 8-bit inputs; rounding differs by a step or two per layer.
        if mean > 2.0 || fmean > 2.0 {
            println!(
                "| {} | outputs differ (GStreamer mean {mean:.2} max {max}; ffmpeg mean {fmean:.2} max {fmax}): not timed | | | | | |",
                case.name
            );
            continue;
        }
        let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..args.runs.max(1) {
            a.push(crate::compare::ours(&gpu, &pipelines, &scene, args.frames)?);
            b.push(crate::compare::gstreamer(&case, &inputs, args.frames)?);
            c.push(crate::compare::ffmpeg(&case, &inputs, args.frames)?);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (ours, gst, ff) = (median(a), median(b), median(c));
        println!(
            "| {} | {ours:.1} | {gst:.1} | {:.2} | {ff:.1} | {:.2} | {mean:.2} / {max}; {fmean:.2} / {fmax} |",
            case.name,
            gst / ours,
            ff / ours
        );
        rows.push(CompareRow {
            case,
            ours_fps: ours,
            gstreamer_fps: gst,
            ratio_gstreamer_over_ours: gst / ours,
            ffmpeg_fps: ff,
            ratio_ffmpeg_over_ours: ff / ours,
            output_mean_abs_diff: mean,
            output_max_abs_diff: max,
            ffmpeg_output_mean_abs_diff: fmean,
            ffmpeg_output_max_abs_diff: fmax,
        });
    }
    if let Some(path) = &args.plot {
        let labels: Vec<String> = rows.iter().map(|r| r.case.name.replace(" layers ", " × ")).collect();
        let series = [
            crate::plot::Series { name: "streamlib", values: rows.iter().map(|r| r.ours_fps).collect() },
            crate::plot::Series {
                name: "GStreamer compositor",
                values: rows.iter().map(|r| r.gstreamer_fps).collect(),
            },
            crate::plot::Series { name: "ffmpeg overlay", values: rows.iter().map(|r| r.ffmpeg_fps).collect() },
        ];
        let adapter = gpu.adapter_summary();
        let title = format!("{} frames, RGBA out — {}, {} — {cpu}", args.frames, adapter.name, adapter.driver_info);
        crate::plot::line_chart(path, &title, "layers × output size", &labels, &series)?;
        println!("\nplotted {}", path.display());
    }
    if let Some(path) = &args.json {
        let doc = serde_json::json!({ "adapter": gpu.adapter_summary().to_string(), "cpu": cpu,
            "frames": args.frames, "runs": args.runs, "results": rows });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
        println!("\nwrote {}", path.display());
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
