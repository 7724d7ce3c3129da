//! `streamlib bench media`: decode → composite two overlays → encode, 1080p H.264, against the
//! equivalent gst-launch-1.0 pipeline on the same clip, overlays and encoder settings. Both run
//! as whole processes (start-up measured with a one-frame run and subtracted), alternating.
//! The two outputs are decoded and compared first (PSNR), so a fast wrong answer cannot win.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
/// Encoder settings both sides use.
const X264: &str = "x264enc speed-preset=ultrafast key-int-max=60 bitrate=8000 ! video/x-h264,profile=high";
/// (x, y, w, h, opacity) of the two overlays.
const OVERLAYS: [(u32, u32, u32, u32, f32); 2] = [(100, 100, 480, 270, 0.8), (1300, 700, 480, 270, 0.5)];

fn run(command: &mut Command, what: &str) -> Result<f64> {
    let start = Instant::now();
    let out = command.output().with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(start.elapsed().as_secs_f64())
}

fn gst(description: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!("gst-launch-1.0 -q {description}"));
    c
}

fn make_inputs(dir: &Path, frames: u64) -> Result<(PathBuf, [PathBuf; 2])> {
    let clip = dir.join("clip.mp4");
    run(
        &mut gst(&format!(
            "videotestsrc pattern=ball num-buffers={frames} ! video/x-raw,width={WIDTH},height={HEIGHT},framerate=30/1 ! \
             x264enc speed-preset=ultrafast ! mp4mux ! filesink location={}",
            clip.display()
        )),
        "gst-launch-1.0 (clip)",
    )?;
    let overlays = [dir.join("overlay0.png"), dir.join("overlay1.png")];
    for (i, path) in overlays.iter().enumerate() {
        let pattern = if i == 0 { "smpte" } else { "checkers-8" };
        run(
            &mut gst(&format!(
                "videotestsrc pattern={pattern} num-buffers=1 ! video/x-raw,format=RGBA,width={},height={} ! pngenc ! \
                 filesink location={}",
                OVERLAYS[i].2,
                OVERLAYS[i].3,
                path.display()
            )),
            "gst-launch-1.0 (overlay)",
        )?;
    }
    Ok((clip, overlays))
}

fn scene(clip: &Path, overlays: &[PathBuf; 2]) -> serde_json::Value {
    let mut layers = vec![serde_json::json!({ "id": "clip", "kind": "video", "input": "clip" })];
    for (i, (x, y, w, h, opacity)) in OVERLAYS.iter().enumerate() {
        layers.push(serde_json::json!({
            "id": format!("overlay{i}"), "kind": "image", "path": overlays[i],
            "rect": [x, y, w, h], "opacity": opacity, "z": i + 1
        }));
    }
    serde_json::json!({
        "width": WIDTH, "height": HEIGHT, "fps": 30,
        "inputs": { "clip": { "kind": "file", "path": clip } },
        "layers": layers
    })
}

fn gst_pipeline(clip: &Path, overlays: &[PathBuf; 2], frames: u64, out: &Path) -> String {
    let mut p = String::from("compositor name=c background=black");
    for (i, (x, y, w, h, opacity)) in OVERLAYS.iter().enumerate() {
        let pad = i + 1;
        p += &format!(" sink_{pad}::xpos={x} sink_{pad}::ypos={y} sink_{pad}::width={w} sink_{pad}::height={h} sink_{pad}::alpha={opacity}");
    }
    p += &format!(
        " ! identity eos-after={} ! videoconvert ! video/x-raw,format=NV12 ! {X264} ! h264parse ! mp4mux ! filesink location={} \
         filesrc location={} ! qtdemux ! h264parse ! avdec_h264 ! queue ! c.sink_0",
        // identity counts the buffer it ends on: one more lets exactly `frames` through.
        frames + 1,
        out.display(),
        clip.display()
    );
    for (i, path) in overlays.iter().enumerate() {
        p += &format!(
            " filesrc location={} ! pngdec ! videoconvert ! imagefreeze num-buffers={frames} ! c.sink_{}",
            path.display(),
            i + 1
        );
    }
    p
}

fn ffprobe_frames(path: &Path) -> Result<u64> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .context("ffprobe (apt-get install ffmpeg)")?;
    String::from_utf8_lossy(&out.stdout).trim().trim_matches(',').parse().context("ffprobe frame count")
}

fn psnr(a: &Path, b: &Path) -> Result<f64> {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(a)
        .arg("-i")
        .arg(b)
        .args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"])
        .output()
        .context("ffmpeg")?;
    let text = String::from_utf8_lossy(&out.stderr);
    let avg = text.split("average:").nth(1).and_then(|s| s.split_whitespace().next()).context("no PSNR")?;
    Ok(if avg == "inf" { f64::INFINITY } else { avg.parse()? })
}

pub fn media(frames: u64, runs: usize, json: Option<&Path>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("streamlib-bench-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (clip, overlays) = make_inputs(&dir, frames)?;
    let exe = std::env::current_exe()?;
    let ours = |n: u64, out: &Path| -> Result<f64> {
        // Same x264 settings as the peer: 8 Mbit/s, ultrafast, a keyframe every 60 frames.
        let mut s = scene(&clip, &overlays);
        s["outputs"] = serde_json::json!([{ "kind": "file", "path": out, "bitrate": 8000, "preset": "ultrafast",
            "keyframe_interval": 60 }]);
        let path = dir.join(format!("scene-{n}.json"));
        std::fs::write(&path, s.to_string())?;
        run(Command::new(&exe).arg("render").arg(&path).args(["--frames", &n.to_string()]), "streamlib render")
    };
    let theirs =
        |n: u64, out: &Path| run(&mut gst(&gst_pipeline(&clip, &overlays, n, out)), "gst-launch-1.0 (pipeline)");
    let (ours_out, gst_out) = (dir.join("ours.mp4"), dir.join("gst.mp4"));
    // Check the outputs first.
    ours(frames, &ours_out)?;
    theirs(frames, &gst_out)?;
    let (n_ours, n_gst) = (ffprobe_frames(&ours_out)?, ffprobe_frames(&gst_out)?);
    let db = psnr(&ours_out, &gst_out)?;
    println!("decode → composite (2 overlays) → x264 ultrafast 8 Mbit/s, {WIDTH}x{HEIGHT}, {frames} frames, {runs} alternating runs");
    println!("outputs: streamlib {n_ours} frames, GStreamer {n_gst} frames, PSNR between them {db:.1} dB");
    if n_ours != frames || n_gst != frames || db < 30.0 {
        bail!("the outputs differ: not timed");
    }
    let startup = (ours(1, &dir.join("o1.mp4"))?, theirs(1, &dir.join("g1.mp4"))?);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs.max(1) {
        a.push((frames - 1) as f64 / (ours(frames, &ours_out)? - startup.0).max(1e-6));
        b.push((frames - 1) as f64 / (theirs(frames, &gst_out)? - startup.1).max(1e-6));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ours_fps, gst_fps) = (median(a), median(b));
    let adapter = streamlib::GpuContext::new()?.adapter_summary().to_string();
    println!("adapter: {adapter}");
    println!();
    println!("| pipeline | fps | GStreamer / streamlib |");
    println!("|---|---|---|");
    println!("| streamlib (GPU composite, NV12 readback) | {ours_fps:.1} | |");
    println!("| gst-launch-1.0 (compositor, CPU) | {gst_fps:.1} | {:.2} |", gst_fps / ours_fps);
    if let Some(path) = json {
        let doc = serde_json::json!({ "adapter": adapter, "frames": frames, "runs": runs,
            "streamlib_fps": ours_fps, "gstreamer_fps": gst_fps, "ratio_gstreamer_over_streamlib": gst_fps / ours_fps,
            "psnr_between_outputs_db": db });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
