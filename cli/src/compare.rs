//! Compositing benchmarks against GStreamer's `compositor`, run side by side on the identical
//! workload: the same still inputs (our patterns, written to PNG), sizes, positions, opacities and
//! frame count. Runs alternate (ours, GStreamer, ours, ...); medians and the ratio are reported.
//! Before timing, one frame of each is compared so a fast wrong answer cannot win.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use streamlib::sinks::MemorySink;
use streamlib::{
    Backpressure, Engine, GpuContext, OutputFrame, Pacing, PixelFormat, Registry, RunOptions, Scene, SinkHandle,
};
pub use streamlib_scenes::layers::{layers, Case};

/// Our frames per second for `frames` frames with RGBA readback into memory.
pub fn ours(gpu: &GpuContext, pipelines: &Arc<streamlib::Pipelines>, scene: &Scene, frames: u64) -> Result<f64> {
    let registry = Registry::default();
    let mut engine = Engine::with_pipelines(gpu, pipelines.clone(), scene.clone(), &registry, Pacing::Offline)?;
    for i in 0..3 {
        engine.render(i, &[PixelFormat::Rgba8])?;
    }
    engine.flush()?;
    let sink = SinkHandle::spawn("memory", Box::new(MemorySink::new(PixelFormat::Rgba8, 0)), Backpressure::Block, 4)?;
    let options = RunOptions { frames: Some(frames), ..Default::default() };
    let stats = streamlib::run(&mut engine, vec![sink], Pacing::Offline, &options, |_| {})?;
    Ok(stats.fps())
}

/// Writes each layer's input as a PNG (rendered by us, so both sides composite the same pixels).
pub fn write_inputs(
    gpu: &GpuContext,
    pipelines: &Arc<streamlib::Pipelines>,
    case: &Case,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    let registry = Registry::default();
    let mut paths = Vec::new();
    for (i, (input, _, _, _)) in case.layers.iter().enumerate() {
        let json = serde_json::json!({ "width": case.width, "height": case.height,
            "inputs": { "p": input }, "layers": [ { "id": "p", "kind": "video", "input": "p" } ] });
        let scene = Scene::from_value(json, &registry)?;
        let mut engine = Engine::with_pipelines(gpu, pipelines.clone(), scene, &registry, Pacing::Offline)?;
        let frame = engine.render_and_read(0, PixelFormat::Rgba8)?;
        let path = dir.join(format!("input{i}.png"));
        streamlib::sinks::write_png(&path, frame.width, frame.height, &frame.data)?;
        paths.push(path);
    }
    Ok(paths)
}

fn gst_args(case: &Case, inputs: &[PathBuf], frames: u64, sink: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["-q".into(), "compositor".into(), "name=c".into(), "background=black".into()];
    for (i, (_, x, y, opacity)) in case.layers.iter().enumerate() {
        args.push(format!("sink_{i}::xpos={x}"));
        args.push(format!("sink_{i}::ypos={y}"));
        args.push(format!("sink_{i}::alpha={opacity}"));
        args.push(format!("sink_{i}::zorder={i}"));
    }
    args.push("!".into());
    args.push(format!("video/x-raw,format=RGBA,width={},height={}", case.width, case.height));
    args.push("!".into());
    args.extend(sink.iter().map(|s| s.to_string()));
    for (i, path) in inputs.iter().enumerate() {
        let caps = format!("video/x-raw,format=RGBA,width={},height={},framerate=30/1", case.width, case.height);
        args.extend([
            "filesrc".to_string(),
            format!("location={}", path.display()),
            "!".into(),
            "pngdec".into(),
            "!".into(),
            "videoconvert".into(),
            "!".into(),
            "imagefreeze".into(),
            format!("num-buffers={frames}"),
            "!".into(),
            caps,
            "!".into(),
            format!("c.sink_{i}"),
        ]);
    }
    args
}

/// GStreamer's frames per second on the same workload (process start included, measured once
/// with a one-frame run and subtracted).
pub fn gstreamer(case: &Case, inputs: &[PathBuf], frames: u64) -> Result<f64> {
    let time = |n: u64| -> Result<f64> {
        let start = Instant::now();
        let status = Command::new("gst-launch-1.0")
            .args(gst_args(case, inputs, n, &["fakesink", "sync=false"]))
            .status()
            .context("gst-launch-1.0 (apt-get install gstreamer1.0-tools)")?;
        if !status.success() {
            bail!("gst-launch-1.0 failed for {}", case.name);
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let startup = time(1)?;
    let total = time(frames)?;
    Ok((frames - 1) as f64 / (total - startup).max(1e-6))
}

/// Mean and max absolute difference between our frame and GStreamer's frame 0.
pub fn check_same_output(case: &Case, inputs: &[PathBuf], ours: &OutputFrame, dir: &Path) -> Result<(f64, u8)> {
    let out = dir.join("gst-frame0.png");
    let location = format!("location={}", out.display());
    let status = Command::new("gst-launch-1.0")
        .args(gst_args(case, inputs, 1, &["pngenc", "!", "filesink", &location]))
        .status()?;
    if !status.success() {
        bail!("gst-launch-1.0 could not write a frame");
    }
    let (w, h, theirs) = streamlib::layers::load_rgba(&out)?;
    if (w, h) != (ours.width, ours.height) {
        bail!("GStreamer frame is {w}x{h}");
    }
    Ok(diff(&ours.data, &theirs))
}

fn ffmpeg_args(case: &Case, inputs: &[PathBuf], frames: u64) -> Vec<String> {
    let mut args: Vec<String> = ["-v", "error", "-nostdin"].iter().map(|s| s.to_string()).collect();
    for path in inputs {
        args.extend([
            "-loop".into(),
            "1".into(),
            "-framerate".into(),
            "30".into(),
            "-i".into(),
            path.display().to_string(),
        ]);
    }
    // Straight-alpha "over" in RGB (format=rgb keeps ffmpeg from converting to YUV in between).
    let mut graph = String::from("[0:v]format=rgba[b0]");
    for (i, (_, x, y, opacity)) in case.layers.iter().enumerate().skip(1) {
        graph.push_str(&format!(
            ";[{i}:v]format=rgba,colorchannelmixer=aa={opacity}[l{i}];[b{}][l{i}]overlay={x}:{y}:format=rgb[b{i}]",
            i - 1
        ));
    }
    let last = case.layers.len().saturating_sub(1);
    graph.push_str(&format!(";[b{last}]format=rgba[out]"));
    args.extend([
        "-filter_complex".into(),
        graph,
        "-map".into(),
        "[out]".into(),
        "-frames:v".into(),
        frames.to_string(),
    ]);
    args
}

/// ffmpeg's `overlay` filter on the same workload (start-up subtracted as for GStreamer).
pub fn ffmpeg(case: &Case, inputs: &[PathBuf], frames: u64) -> Result<f64> {
    let time = |n: u64| -> Result<f64> {
        let start = Instant::now();
        let status = Command::new("ffmpeg")
            .args(ffmpeg_args(case, inputs, n))
            .args(["-f", "null", "-"])
            .status()
            .context("ffmpeg (apt-get install ffmpeg)")?;
        if !status.success() {
            bail!("ffmpeg failed for {}", case.name);
        }
        Ok(start.elapsed().as_secs_f64())
    };
    let startup = time(1)?;
    let total = time(frames)?;
    Ok((frames - 1) as f64 / (total - startup).max(1e-6))
}

/// Mean and max absolute difference between our frame and ffmpeg's frame 0.
pub fn check_same_output_ffmpeg(case: &Case, inputs: &[PathBuf], ours: &OutputFrame) -> Result<(f64, u8)> {
    let out = Command::new("ffmpeg")
        .args(ffmpeg_args(case, inputs, 1))
        .args(["-f", "rawvideo", "-pix_fmt", "rgba", "-"])
        .output()
        .context("ffmpeg")?;
    if !out.status.success() || out.stdout.len() != ours.data.len() {
        bail!("ffmpeg could not produce a {}x{} frame", ours.width, ours.height);
    }
    Ok(diff(&ours.data, &out.stdout))
}

fn diff(a: &[u8], b: &[u8]) -> (f64, u8) {
    let diffs = a.iter().zip(b).enumerate().filter(|(i, _)| i % 4 != 3).map(|(_, (x, y))| x.abs_diff(*y));
    let (sum, max, n) = diffs.fold((0u64, 0u8, 0u64), |(s, m, n), d| (s + u64::from(d), m.max(d), n + 1));
    (sum as f64 / n.max(1) as f64, max)
}
