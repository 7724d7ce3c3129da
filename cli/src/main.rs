//! The `streamlib` program: render scenes to files, check them, and benchmark the compositor.

mod bench;
mod bench_media;
mod bench_ml;
mod bench_network;
mod bench_pacing;
mod bench_serve;
mod bench_soak;
mod compare;
mod fuzz;
mod hud;
mod plot;
mod preview;
mod ptp;
mod serve;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use streamlib::{Backpressure, Engine, GpuContext, Pacing, Registry, RunOptions, SinkHandle};

#[derive(Parser)]
#[command(name = "streamlib", version, about = "GPU-native real-time video compositing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render a scene: to --output (.mp4/.mov/.mkv/.webm encoded, .m3u8 HLS, .y4m raw, .png one
    /// frame or a %05d sequence) and to every entry of the scene's `outputs`, all at once.
    Render {
        /// Scene file (JSON).
        scene: PathBuf,
        /// Frames to render; by default until every input has ended.
        #[arg(long)]
        frames: Option<u64>,
        /// Index of the first frame to render (test patterns are functions of it).
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Output path; the extension picks the format. Optional when the scene has `outputs`.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Pace at the scene's frame rate instead of as fast as possible.
        #[arg(long)]
        realtime: bool,
        #[command(flatten)]
        pacing: ptp::PacingClockArgs,
    },
    /// Show a scene in a window, paced at its frame rate, with keyboard controls.
    Preview {
        scene: PathBuf,
        /// Also record to this file while previewing (live: a slow sink drops frames).
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Where S saves PNG snapshots.
        #[arg(long, default_value = ".")]
        snapshot_dir: PathBuf,
        /// Start with the HUD shown.
        #[arg(long)]
        hud: bool,
        #[command(flatten)]
        pacing: ptp::PacingClockArgs,
    },
    /// Parse and validate a scene, and print it back normalised.
    Check { scene: PathBuf },
    /// Print the GPU adapter streamlib would use.
    Adapter,
    /// Feed mutated frame-protocol packets to the decoder (docs/protocol.md); fails on a panic.
    FuzzProtocol(fuzz::FuzzArgs),
    /// Print a media file's metadata: duration, size, frame rate, codec, rotation.
    Probe {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the cameras GStreamer can capture from.
    Devices,
    /// Run a benchmark and print a table.
    Bench(bench::BenchArgs),
    /// Run the headless render server (HTTP/JSON API, metrics, events).
    Serve(serve::ServeArgs),
    /// Follow a PTP leader and report lock time, error against the system clock and status.
    Ptp(ptp::PtpArgs),
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    quiet_mesa_runtime_dir();
    // Bad arguments exit 1 like every other error (clap's own code is 2); help and version 0.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { 1 } else { 0 };
        let _ = e.print();
        std::process::exit(code);
    });
    if let Err(e) = real_main(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Mesa prints `error: XDG_RUNTIME_DIR is invalid or not set` on every start where no desktop
/// login made one (servers, CI). It is noise, but reads as an error: give Mesa a private one.
fn quiet_mesa_runtime_dir() {
    let valid = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if valid {
        return;
    }
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("streamlib-runtime-{uid}"));
    let _ = std::fs::DirBuilder::new().mode(0o700).create(&dir);
    // Only a directory of our own that nobody else can enter (not one planted by another user).
    let ours = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0);
    if ours {
        // No other thread runs yet: this is the first thing `main` does.
        std::env::set_var("XDG_RUNTIME_DIR", &dir);
    }
}

fn real_main(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Render { scene, frames, start, output, realtime, pacing } => {
            if pacing.ptp_domain.is_some() && !realtime {
                bail!("--ptp-domain paces a realtime render: add --realtime");
            }
            render(&scene, frames, start, output.as_deref(), realtime, pacing.clock()?)
        }
        Command::Probe { file, json } => probe(&file, json),
        Command::Devices => {
            let cameras = streamlib::media::list_cameras()?;
            if cameras.is_empty() {
                println!("no cameras found (no video capture devices)");
            }
            for c in cameras {
                println!("{}	{}", c.path.as_deref().unwrap_or("-"), c.name);
            }
            Ok(())
        }
        Command::Preview { scene, output, snapshot_dir, hud, pacing } => {
            let registry = streamlib_scenes::registry();
            let scene = load_scene(&registry, &scene)?;
            let clock = pacing.clock()?;
            preview::run(preview::PreviewArgs { scene, registry, output, snapshot_dir, hud, clock })
        }
        Command::Check { scene } => {
            let scene = load_scene(&streamlib_scenes::registry(), &scene)?;
            println!("{}", scene.to_json_pretty());
            Ok(())
        }
        Command::Adapter => {
            let gpu = GpuContext::new()?;
            println!("{}", gpu.adapter_summary());
            Ok(())
        }
        Command::Bench(args) => bench::run(args),
        Command::FuzzProtocol(args) => fuzz::run(&args),
        Command::Serve(args) => serve::run(args),
        Command::Ptp(args) => ptp::run(args),
    }
}

/// A scene file larger than this is refused (scenes are a few KB; a huge one is a mistake).
const MAX_SCENE_BYTES: u64 = 8 << 20;

fn load_scene(registry: &Registry, path: &Path) -> Result<streamlib::Scene> {
    let bytes = streamlib::files::read_regular(path, MAX_SCENE_BYTES)
        .with_context(|| format!("cannot read scene {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("scene {} is not UTF-8 text", path.display()))?;
    let mut scene = registry.parse_scene(&text).with_context(|| format!("invalid scene {}", path.display()))?;
    // File paths inside a scene are relative to the scene file, as users expect.
    scene.base_dir = path.parent().map(Path::to_path_buf);
    Ok(scene)
}

fn probe(file: &Path, json: bool) -> Result<()> {
    let info = streamlib::media::probe(file)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    let or_unknown = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    println!("file:      {}", info.path);
    println!("container: {}", or_unknown(info.container.clone()));
    println!("codec:     {}", or_unknown(info.codec.clone()));
    println!("size:      {}x{}", info.width, info.height);
    println!(
        "fps:       {}",
        info.fps.map_or("variable".to_string(), |(n, d)| format!("{n}/{d} ({:.3})", f64::from(n) / f64::from(d)))
    );
    println!("duration:  {}", or_unknown(info.duration_seconds().map(|d| format!("{d:.3} s"))));
    println!("rotation:  {} degrees", info.rotation);
    println!("bitrate:   {}", or_unknown(info.bitrate.map(|b| format!("{} kbit/s", b / 1000))));
    println!("seekable:  {}", info.seekable);
    println!("audio:     {}", if info.has_audio { "yes (ignored)" } else { "no" });
    Ok(())
}

/// Output paths in a scene are taken relative to the working directory, like `--output`.
fn place_output(path: &Path) -> Result<PathBuf, streamlib::SinkError> {
    Ok(path.to_path_buf())
}

fn render(
    scene_path: &Path,
    frames: Option<u64>,
    start: u64,
    output: Option<&Path>,
    realtime: bool,
    clock: Option<Arc<dyn streamlib::timing::Clock>>,
) -> Result<()> {
    let registry = streamlib_scenes::registry();
    let scene = load_scene(&registry, scene_path)?;
    let mut named = Vec::new();
    if let Some(output) = output {
        let is_png = output.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if is_png && frames != Some(1) && !output.to_string_lossy().contains('%') {
            bail!("a .png output holds one frame: pass --frames 1, or a numbered path such as frame_%05d.png");
        }
        named.extend(
            registry.open_output(output, &scene).with_context(|| format!("cannot create {}", output.display()))?,
        );
    }
    named.extend(registry.open_scene_outputs(&scene, place_output).context("cannot create the scene's outputs")?);
    if named.is_empty() {
        bail!("nowhere to render to: pass --output PATH or give the scene `outputs`");
    }
    let destinations: Vec<String> = named.iter().map(|n| n.name.clone()).collect();
    // Offline renders lose nothing: the renderer waits for the sinks.
    let sinks = named
        .into_iter()
        .map(|n| SinkHandle::spawn(&n.name, n.sink, Backpressure::Block, 4))
        .collect::<Result<Vec<_>, _>>()?;

    let gpu = GpuContext::new()?;
    let pacing = if realtime { Pacing::Realtime } else { Pacing::Offline };
    let mut engine = Engine::new(&gpu, scene, &registry, pacing)?;

    let bar = match frames {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} frames {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Ctrl-C (or SIGTERM) stops after the current frame; the output is then finished properly.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, std::sync::atomic::Ordering::Relaxed)) {
        tracing::warn!("cannot install the Ctrl-C handler: {e}");
    }
    let options = RunOptions { frames, start, stop: Some(stop.clone()) };
    let clock = clock.unwrap_or_else(|| Arc::new(streamlib::timing::SystemClock::default()));
    let mut pipeline = streamlib::Pipeline::with_clock(&mut engine, pacing, clock);
    pipeline.set_output("output", sinks);
    let stats = pipeline.run(&options, |_| bar.inc(1))?;
    drop(pipeline);
    bar.finish_and_clear();
    let interrupted = stop.load(std::sync::atomic::Ordering::Relaxed);
    let dropped: u64 = stats.sinks.iter().map(|s| s.dropped).sum();
    println!(
        "rendered {} frames in {:.2} s ({:.1} fps) on {} -> {}{}",
        stats.frames,
        stats.elapsed.as_secs_f64(),
        stats.fps(),
        gpu.adapter_summary(),
        destinations.join(", "),
        if dropped > 0 { format!(" ({dropped} frames dropped)") } else { String::new() }
    );
    if stats.input_errors + stats.layer_errors > 0 {
        eprintln!(
            "warning: {} input errors and {} layer errors (see the log above); those inputs or layers were skipped",
            stats.input_errors, stats.layer_errors
        );
    }
    for line in link_report(&engine, &stats) {
        println!("{line}");
    }
    if realtime {
        for line in sync_report(&engine, &stats) {
            println!("{line}");
        }
    }
    if interrupted {
        eprintln!("interrupted: {} frames written and the output closed properly", stats.frames);
        std::process::exit(130);
    }
    Ok(())
}

/// Lines on how the realtime ticks went and how each live input kept to the timeline.
fn sync_report(engine: &Engine, stats: &streamlib::RunStats) -> Vec<String> {
    let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.1}{unit}"));
    let l = &stats.ticks.lateness;
    let mut lines = vec![format!(
        "ticks: lateness p50 {:.2} ms p99 {:.2} ms max {:.2} ms, {} missed, {} re-anchored",
        l.p50_ms, l.p99_ms, l.max_ms, stats.ticks.missed, stats.ticks.reanchors
    )];
    for (id, s) in engine.input_sync() {
        lines.push(format!(
            "input {id}: sync {} shown, {} repeated, {} dropped, {} missing, {} late; {} fps, drift {}, \
             transit {}, offset p50 {} p95 {}",
            s.shown,
            s.repeats,
            s.drops,
            s.missing,
            s.late,
            opt(s.fps, ""),
            opt(s.drift_ppm, " ppm"),
            opt(s.transit_ms, " ms"),
            opt(s.offset_percentile_ms(0.5), " ms"),
            opt(s.offset_percentile_ms(0.95), " ms"),
        ));
    }
    let spread = engine.sync_spread();
    if spread.count > 0 {
        lines.push(format!(
            "inputs: spread of the frames shown together p50 {:.1} ms p95 {:.1} ms max {:.1} ms",
            spread.p50_ms, spread.p95_ms, spread.max_ms
        ));
    }
    lines
}

/// `name value` pairs of the counters not in `skip`.
fn others(counters: &std::collections::BTreeMap<&'static str, u64>, skip: &[&str]) -> String {
    let pairs: Vec<String> = counters
        .iter()
        .filter(|(k, _)| !skip.contains(k))
        .map(|(k, v)| format!("{} {v}", k.replace('_', " ")))
        .collect();
    pairs.join(", ")
}

/// One line per network input and output: what the link did, with its latency percentiles.
fn link_report(engine: &Engine, stats: &streamlib::RunStats) -> Vec<String> {
    let ms = |us: Option<&u64>| us.map_or("-".to_string(), |v| format!("{:.1}", *v as f64 / 1000.0));
    let mut lines = Vec::new();
    for (id, feed) in engine.input_feeds() {
        let c = &feed.counters;
        if c.is_empty() {
            continue;
        }
        let n = |k: &str| c.get(k).copied().unwrap_or(0);
        if !c.contains_key("latency_p50_us") {
            // A standard protocol's input (SRT, RTP): its own counters, and why it last failed.
            let why = feed.last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default();
            lines.push(format!("input {id}: {} frames; {}{why}", n("frames"), others(c, &["frames"])));
            continue;
        }
        lines.push(format!(
            "input {id}: {} frames, {} lost, {} incomplete, {} late, {} skipped, {} recovered by keyframe, {} NACKs, \
             {} malformed, {} undecodable; hop latency p50 {} ms p95 {} ms; glass-to-glass p50 {} ms p95 {} ms",
            n("frames"),
            n("lost"),
            n("incomplete"),
            n("late"),
            n("skipped"),
            n("recovered"),
            n("nacks"),
            n("malformed"),
            n("undecodable"),
            ms(c.get("latency_p50_us")),
            ms(c.get("latency_p95_us")),
            ms(c.get("glass_p50_us")),
            ms(c.get("glass_p95_us")),
        ));
    }
    for s in stats.sinks.iter().filter(|s| !s.counters.is_empty()) {
        let n = |k: &str| s.counters.get(k).copied().unwrap_or(0);
        if !s.counters.contains_key("forced_keyframes") {
            lines.push(format!("output {}: {}", s.name, others(&s.counters, &[])));
            continue;
        }
        lines.push(format!(
            "output {}: {} frames sent to {} receivers ({} connections), {} not sent, {} datagrams resent, {} keyframes forced",
            s.name,
            n("sent"),
            n("peers"),
            n("connections"),
            n("dropped"),
            n("retransmitted"),
            n("forced_keyframes"),
        ));
    }
    lines
}
