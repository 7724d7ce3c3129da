//! Media I/O through GStreamer, checked with tools nobody here wrote: test media is made by
//! gst-launch-1.0 and ffmpeg, outputs are checked by ffprobe and decoded back by ffmpeg.

mod common;

use common::{gpu, scene};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use streamlib::media::{self, GstProducer};
use streamlib::sinks::MemorySink;
use streamlib::sources::{FrameProducer, SourceError};
use streamlib::{Backpressure, Engine, Pacing, PixelFormat, Registry, RunOptions, SinkHandle};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamlib-media-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

fn sh(command: &str) {
    let out = Command::new("sh").arg("-c").arg(command).output().expect("sh");
    assert!(out.status.success(), "`{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn sh_out(command: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(command).output().expect("sh");
    assert!(out.status.success(), "`{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `frames` frames of one solid colour (0xRRGGBB) at `fps`, encoded by `encoder ! mux`.
fn solid_clip(path: &Path, size: (u32, u32), frames: u32, rgb: u32, encoder_mux: &str) {
    sh(&format!(
        "gst-launch-1.0 -q videotestsrc num-buffers={frames} pattern=solid-color foreground-color={:#010x} ! \
         video/x-raw,format=I420,width={},height={},framerate=30/1 ! {encoder_mux} ! filesink location={}",
        0xff00_0000u32 | rgb,
        size.0,
        size.1,
        path.display()
    ));
}

fn engine_for(scene_json: serde_json::Value) -> Result<Engine, streamlib::EngineError> {
    let g = gpu();
    Engine::with_pipelines(&g.ctx, g.pipelines.clone(), scene(scene_json), &Registry::default(), Pacing::Offline)
}

/// Renders until every input ended (or `frames`), returning the RGBA frames.
fn render_all(engine: &mut Engine, frames: Option<u64>) -> Vec<streamlib::OutputFrame> {
    let memory = MemorySink::new(PixelFormat::Rgba8, 10_000);
    let handle = SinkHandle::spawn("memory", Box::new(memory.clone()), Backpressure::Block, 4).expect("sink");
    let options = RunOptions { frames, ..Default::default() };
    streamlib::run(engine, vec![handle], Pacing::Offline, &options, |_| {}).expect("run");
    memory.frames()
}

fn file_scene(path: &Path, size: (u32, u32)) -> serde_json::Value {
    json!({
        "width": size.0, "height": size.1, "fps": 30,
        "inputs": { "f": { "kind": "file", "path": path } },
        "layers": [ { "id": "v", "kind": "video", "input": "f" } ]
    })
}

fn assert_rgb_near(px: [u8; 4], rgb: u32, tolerance: i32, what: &str) {
    let want = [(rgb >> 16) as u8, (rgb >> 8) as u8, rgb as u8];
    for c in 0..3 {
        assert!(
            (i32::from(px[c]) - i32::from(want[c])).abs() <= tolerance,
            "{what}: pixel {px:?}, want {want:?} ±{tolerance}"
        );
    }
}

/// Lossy codecs and 4:2:0 shift a solid colour by a few levels.
const CODEC_TOLERANCE: i32 = 8;

#[test]
fn decodes_codecs_and_containers_with_frame_counts_and_colours() {
    let dir = tmp("codecs");
    let cases = [
        ("h264.mp4", "x264enc ! mp4mux", (64, 48)),
        ("h264.mov", "x264enc ! qtmux", (64, 48)),
        ("h265.mkv", "x265enc ! h265parse ! matroskamux", (64, 48)),
        ("vp8.webm", "vp8enc ! webmmux", (64, 48)),
        ("vp9-odd.webm", "vp9enc ! webmmux", (65, 49)),
        ("h264.avi", "x264enc ! avimux", (64, 48)),
    ];
    let rgb = 0x2080c0;
    for (name, pipeline, size) in cases {
        let path = dir.join(name);
        solid_clip(&path, size, 12, rgb, pipeline);
        let mut engine = engine_for(file_scene(&path, size)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let frames = render_all(&mut engine, None);
        assert_eq!(frames.len(), 12, "{name}: one output frame per decoded frame at the same rate");
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.time.pts_ns, streamlib::Fps::new(30, 1).pts_ns(i as u64));
        }
        let last = frames.last().expect("frames");
        for (x, y) in [(0, 0), (size.0 / 2, size.1 / 2), (size.0 - 1, size.1 - 1)] {
            assert_rgb_near(last.rgba_at(x, y), rgb, CODEC_TOLERANCE, &format!("{name} at ({x}, {y})"));
        }
    }
}

fn pts_list(producer: &mut GstProducer, max: usize) -> Vec<u64> {
    let mut out = Vec::new();
    while out.len() < max {
        match producer.next_frame() {
            Ok(Some(f)) => out.push(f.time.pts_ns),
            Ok(None) => break,
            Err(SourceError::NotYet) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    out
}

#[test]
fn variable_frame_rate_keeps_the_file_timestamps() {
    let dir = tmp("vfr");
    let path = dir.join("vfr.mkv");
    // Ten frames at 30 fps, then ten at 10 fps.
    sh(&format!(
        "ffmpeg -v error -y -f lavfi -i testsrc=size=64x48:rate=30 -frames:v 20 \
         -vf \"setpts='if(lt(N,10),N/30,10/30+(N-10)/10)/TB'\" -fps_mode vfr -c:v libx264 {}",
        path.display()
    ));
    let info = media::probe(&path).expect("probe");
    assert_eq!((info.width, info.height), (64, 48));
    let mut producer = media::open_file(&path, false, 0).expect("open");
    let pts = pts_list(&mut producer, 100);
    // What ffprobe reads from the same file (the muxer rounded the requested times to its clock).
    let want: Vec<f64> =
        sh_out(&format!("ffprobe -v error -show_entries frame=pts_time -of csv=p=0 {}", path.display()))
            .lines()
            .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
            .collect();
    assert_eq!(pts.len(), 20);
    assert_eq!(want.len(), 20);
    for (i, (p, w)) in pts.iter().zip(&want).enumerate() {
        // Matroska stores milliseconds.
        assert!((*p as f64 / 1e9 - (w - want[0])).abs() < 0.0015, "frame {i}: pts {p} ns, ffprobe {w} s; all: {pts:?}");
    }
    let gaps: Vec<u64> = pts.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect();
    assert!(gaps[..9].iter().all(|&g| g <= 34) && gaps[10..].iter().all(|&g| g >= 60), "two rates: {gaps:?}");
    // Rendered at 30 fps, the slow part holds frames: the render lasts as long as the file.
    let mut engine = engine_for(file_scene(&path, (64, 48))).expect("engine");
    let frames = render_all(&mut engine, None);
    let last = *pts.last().unwrap_or(&0);
    // Each input frame shows from the output tick nearest its pts.
    assert_eq!(frames.len() as u64, (last + 16_666_667) / 33_333_333 + 1, "output ticks up to the last input frame");
}

#[test]
fn start_loop_and_seek_follow_the_file_timeline() {
    let dir = tmp("seek");
    let path = dir.join("clip.mp4");
    solid_clip(&path, (64, 48), 30, 0x808080, "x264enc key-int-max=5 ! mp4mux");
    // Start at 0.5 s: input time 0 is file time 0.5 s, 15 frames remain in the first pass.
    let mut looping = media::open_file(&path, true, 500_000_000).expect("open");
    let pts = pts_list(&mut looping, 40);
    assert_eq!(pts.len(), 40);
    assert!(pts[0] < 1_000_000, "first frame at input time 0, got {}", pts[0]);
    assert!(pts.windows(2).all(|w| w[1] > w[0]), "looping keeps timestamps increasing: {pts:?}");
    let step = 1_000_000_000 / 30;
    assert!(pts[15].abs_diff(15 * step) < 2_000_000, "the second pass continues the timeline: {}", pts[15]);
    // Accurate seek: the next frame is the one at (or just before) the position.
    let mut clip = media::open_file(&path, false, 0).expect("open");
    clip.seek(700_000_000).expect("seek");
    let after = pts_list(&mut clip, 100);
    assert!(after[0].abs_diff(700_000_000) <= step, "after seeking to 0.7 s: {}", after[0]);
    assert_eq!(after.len(), 30 - 21, "frames 21..30 remain");
}

#[test]
fn a_paused_input_holds_while_the_scene_runs_on() {
    let dir = tmp("pause");
    let path = dir.join("clip.mkv");
    solid_clip(&path, (64, 48), 60, 0x808080, "x264enc ! matroskamux");
    let mut engine = engine_for(json!({
        "width": 64, "height": 48, "fps": 30,
        "inputs": { "f": { "kind": "file", "path": path } },
        "layers": [ { "id": "v", "kind": "video", "input": "f" } ]
    }))
    .expect("engine");
    let step = 1_000_000_000 / 30;
    for i in 0..10 {
        engine.render(i, &[PixelFormat::Rgba8]).expect("render");
    }
    let at = engine.input_position("f").expect("position");
    assert!(at.abs_diff(9 * step) < 2_000_000, "{at}");
    // A live update that leaves the input alone does not restart it.
    let mut dimmer = engine.scene().clone();
    dimmer.layers[0].opacity = 0.5;
    engine.apply_scene(dimmer, &Registry::default()).expect("apply");
    engine.set_input_paused("f", true).expect("pause");
    for i in 10..20 {
        engine.render(i, &[PixelFormat::Rgba8]).expect("render");
    }
    assert_eq!(engine.input_position("f"), Some(at), "paused: the input did not advance");
    engine.set_input_paused("f", false).expect("resume");
    engine.render(20, &[PixelFormat::Rgba8]).expect("render");
    let resumed = engine.input_position("f").expect("position");
    assert!(resumed.abs_diff(at + step) < 2_000_000, "resumes with the next frame: {resumed}");
    engine.seek_input("f", 1_500_000_000).expect("seek");
    engine.render(21, &[PixelFormat::Rgba8]).expect("render");
    let seeked = engine.input_position("f").expect("position");
    assert!(seeked.abs_diff(1_500_000_000) <= step, "{seeked}");
    engine.flush().expect("flush");
}

#[test]
fn missing_garbage_and_truncated_files_fail_cleanly() {
    let dir = tmp("bad");
    let missing = engine_for(file_scene(&dir.join("nope.mp4"), (64, 48))).expect_err("missing file");
    assert!(missing.to_string().contains("nope.mp4"), "{missing}");

    let garbage = dir.join("garbage.mp4");
    std::fs::write(&garbage, (0..200_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>())
        .expect("write");
    let err = engine_for(file_scene(&garbage, (64, 48))).expect_err("garbage");
    assert!(err.to_string().contains("garbage.mp4"), "{err}");
    assert!(media::probe(&garbage).is_err());

    // mp4mux writes its index last: cut it off and the file cannot be opened.
    let mp4 = dir.join("cut.mp4");
    solid_clip(&mp4, (64, 48), 30, 0x808080, "x264enc ! mp4mux");
    let bytes = std::fs::read(&mp4).expect("read");
    std::fs::write(&mp4, &bytes[..bytes.len() / 2]).expect("write");
    let err = engine_for(file_scene(&mp4, (64, 48))).expect_err("truncated mp4");
    assert!(err.to_string().contains("cut.mp4"), "{err}");

    // Matroska streams: a cut file plays what it holds, then ends.
    let mkv = dir.join("cut.mkv");
    solid_clip(&mkv, (64, 48), 60, 0x808080, "x264enc ! matroskamux");
    let bytes = std::fs::read(&mkv).expect("read");
    std::fs::write(&mkv, &bytes[..bytes.len() / 2]).expect("write");
    let mut engine = engine_for(file_scene(&mkv, (64, 48))).expect("a cut mkv opens");
    let frames = render_all(&mut engine, None);
    assert!(frames.len() > 5 && frames.len() < 60, "a clean end after the frames that decoded: {}", frames.len());
    // ... and says so: the file announced 2 s (issue 20: it used to end silently).
    let mut engine = engine_for(file_scene(&mkv, (64, 48))).expect("a cut mkv opens");
    let message = common::first_input_error(&mut engine, 200).expect("an input error at the early end");
    assert!(message.contains("looks truncated") && message.contains("frames"), "{message}");
}

#[test]
fn an_audio_only_file_as_a_video_input_says_it_has_no_video() {
    let dir = tmp("audio-only");
    let path = dir.join("tone.m4a");
    sh(&format!("ffmpeg -v error -y -f lavfi -i sine=duration=1 -c:a aac {}", path.display()));
    let err = engine_for(file_scene(&path, (64, 48))).expect_err("no video stream");
    let message = err.to_string();
    assert!(message.contains("no video stream") && !message.contains("install"), "{message}");
}

#[test]
fn a_broken_input_does_not_stop_the_others() {
    let dir = tmp("broken");
    let clip = dir.join("clip.mkv");
    solid_clip(&clip, (64, 48), 60, 0x2080c0, "x264enc ! matroskamux");
    // Garbage in the middle of the stream.
    let mut bytes = std::fs::read(&clip).expect("read");
    let (mid, len) = (bytes.len() / 2, 4000.min(bytes.len() / 4));
    for b in &mut bytes[mid..mid + len] {
        *b = 0x5a;
    }
    std::fs::write(&clip, &bytes).expect("write");
    let mut engine = engine_for(json!({
        "width": 128, "height": 48, "fps": 30,
        "inputs": {
            "f": { "kind": "file", "path": clip },
            "bars": { "kind": "test_pattern", "pattern": "solid", "color": "#FF0000" }
        },
        "layers": [
            { "id": "left", "kind": "video", "input": "f", "rect": [0, 0, 64, 48] },
            { "id": "right", "kind": "video", "input": "bars", "rect": [64, 0, 64, 48] }
        ]
    }))
    .expect("engine");
    let frames = render_all(&mut engine, Some(90));
    assert_eq!(frames.len(), 90, "the render ran its full length");
    for f in [&frames[0], &frames[89]] {
        assert_rgb_near(f.rgba_at(100, 20), 0xff0000, 0, "the healthy input");
    }
    assert_rgb_near(frames[89].rgba_at(20, 20), 0x2080c0, CODEC_TOLERANCE + 8, "the broken input keeps its last frame");
}

fn ffprobe(path: &Path, entries: &str) -> String {
    sh_out(&format!(
        "ffprobe -v error -select_streams v:0 -count_frames -show_entries {entries} -of default=nw=1 {}",
        path.display()
    ))
}

fn psnr(encoded: &Path, reference: &Path) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-v", "info", "-i"])
        .arg(encoded)
        .arg("-i")
        .arg(reference)
        .args(["-lavfi", "[0:v][1:v]psnr", "-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    let text = String::from_utf8_lossy(&out.stderr);
    let avg = text
        .split("average:")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no PSNR in ffmpeg output: {text}"));
    if avg == "inf" {
        return f64::INFINITY;
    }
    avg.parse().expect("psnr number")
}

/// A scene with motion and detail: bars and a moving box, 30 frames.
fn busy_scene(width: u32, height: u32, outputs: serde_json::Value) -> serde_json::Value {
    json!({
        "width": width, "height": height, "fps": 30,
        "inputs": {
            "bars": { "kind": "test_pattern", "pattern": "smpte_bars" },
            "box": { "kind": "test_pattern", "pattern": "moving_box" }
        },
        "layers": [
            { "id": "bars", "kind": "video", "input": "bars" },
            { "id": "box", "kind": "video", "input": "box", "opacity": 0.7, "rect": [0, 0, width / 2, height / 2] }
        ],
        "outputs": outputs
    })
}

fn run_outputs(scene_json: serde_json::Value, frames: u64) {
    run_outputs_in(scene_json, frames, None);
}

/// Renders `frames` frames to the scene's outputs, converting YUV output with `color_space`
/// (the engine's default for the size when `None`).
fn run_outputs_in(scene_json: serde_json::Value, frames: u64, color_space: Option<streamlib::YuvColorSpace>) {
    let registry = Registry::default();
    let scene = scene(scene_json);
    let sinks = registry
        .open_scene_outputs(&scene, |p| Ok(p.to_path_buf()))
        .expect("outputs")
        .into_iter()
        .map(|n| SinkHandle::spawn(&n.name, n.sink, Backpressure::Block, 4).expect("spawn"))
        .collect();
    let g = gpu();
    let mut engine =
        Engine::with_pipelines(&g.ctx, g.pipelines.clone(), scene, &registry, Pacing::Offline).expect("engine");
    if let Some(cs) = color_space {
        engine.set_output_color_space(cs);
    }
    let options = RunOptions { frames: Some(frames), ..Default::default() };
    streamlib::run(&mut engine, sinks, Pacing::Offline, &options, |_| {}).expect("run");
}

#[test]
fn encoded_files_probe_right_and_decode_back_close_to_the_render() {
    let dir = tmp("encode");
    let reference = dir.join("ref.y4m");
    let cases = [("h264.mp4", "h264"), ("h265.mkv", "hevc"), ("vp9.webm", "vp9"), ("h264.mkv", "h264")];
    let mut outputs = vec![json!({ "kind": "y4m", "path": reference })];
    for (name, probed) in cases {
        let codec = if probed == "hevc" { "h265" } else { probed };
        outputs.push(
            json!({ "kind": "file", "path": dir.join(name), "codec": codec, "quality": 18, "preset": "ultrafast" }),
        );
    }
    run_outputs(busy_scene(320, 180, json!(outputs)), 30);
    for (name, codec) in cases {
        let path = dir.join(name);
        let probe = ffprobe(&path, "stream=codec_name,width,height,nb_read_frames");
        for want in [format!("codec_name={codec}"), "width=320".into(), "height=180".into(), "nb_read_frames=30".into()]
        {
            assert!(probe.contains(&want), "{name}: want {want} in\n{probe}");
        }
        let duration: f64 =
            sh_out(&format!("ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 {}", path.display()))
                .trim()
                .parse()
                .expect("duration");
        assert!((duration - 1.0).abs() < 0.05, "{name}: duration {duration}");
        // High quality settings: the decoded video is close to what we rendered.
        let db = psnr(&path, &reference);
        assert!(db > 35.0, "{name}: PSNR {db:.1} dB against the rendered frames");
    }
}

/// The first value of `key=` in ffprobe's `default` output.
fn probed<'a>(probe: &'a str, key: &str) -> &'a str {
    probe.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).unwrap_or("")
}

#[test]
fn y4m_headers_and_encoder_tags_follow_the_output_colour_space() {
    use streamlib::YuvColorSpace;
    let dir = tmp("colour");
    // 320x180 defaults to BT.601 limited; each case differs from it in matrix, range or both.
    let cases = [
        ("709full", YuvColorSpace::BT709_FULL, "pc", "bt709", 255),
        ("601full", YuvColorSpace::BT601_FULL, "pc", "smpte170m", 255),
        ("709limited", YuvColorSpace::BT709_LIMITED, "tv", "bt709", 235),
        ("default", YuvColorSpace::default_for_height(180), "tv", "smpte170m", 235),
    ];
    for (name, cs, range, matrix, white_y) in cases {
        let (y4m, mp4, mkv) =
            (dir.join(format!("{name}.y4m")), dir.join(format!("{name}.mp4")), dir.join(format!("{name}.mkv")));
        let scene = json!({
            "width": 320, "height": 180, "fps": 30,
            "inputs": { "white": { "kind": "test_pattern", "pattern": "solid", "color": "#FFFFFF" } },
            "layers": [ { "id": "white", "kind": "video", "input": "white" } ],
            "outputs": [
                { "kind": "y4m", "path": y4m },
                { "kind": "file", "path": mp4, "preset": "ultrafast" },
                { "kind": "file", "path": mkv, "preset": "ultrafast" }
            ]
        });
        run_outputs_in(scene, 3, (name != "default").then_some(cs));
        let bytes = std::fs::read(&y4m).expect("y4m");
        let header =
            String::from_utf8_lossy(&bytes[..bytes.iter().position(|&b| b == b'\n').expect("header")]).into_owned();
        let want = if range == "pc" { "XCOLORRANGE=FULL" } else { "XCOLORRANGE=LIMITED" };
        assert!(header.contains(want), "{name}: y4m header {header:?} lacks {want}");
        // The pixels are what the header says: white is Y=255 in full range, 235 in limited.
        let first_y = bytes[header.len() + 1 + "FRAME\n".len()];
        assert!(i32::from(first_y).abs_diff(white_y) <= 1, "{name}: white is Y={first_y}, want {white_y}");
        for file in [&mp4, &mkv] {
            let probe = ffprobe(file, "stream=color_range,color_space");
            assert_eq!(probed(&probe, "color_range"), range, "{name} {}: {probe}", file.display());
            assert_eq!(probed(&probe, "color_space"), matrix, "{name} {}: {probe}", file.display());
        }
    }
}

#[test]
fn odd_sizes_are_refused_by_h264_with_a_reason() {
    let dir = tmp("odd");
    let registry = Registry::default();
    let s = scene(busy_scene(321, 181, json!([{ "kind": "file", "path": dir.join("odd.mp4") }])));
    let err = registry.open_scene_outputs(&s, |p| Ok(p.to_path_buf())).err().expect("odd size refused");
    assert!(err.to_string().contains("even"), "{err}");
    // A webm in h264 is a scene error naming the field.
    let bad = scene_error(
        json!({ "width": 64, "height": 48, "outputs": [ { "kind": "file", "path": "x.webm", "codec": "h264" } ] }),
    );
    assert!(bad.path.starts_with("outputs[0]"), "{bad}");
}

fn scene_error(json: serde_json::Value) -> streamlib::SceneError {
    streamlib::Scene::from_value(json, &Registry::default()).expect_err("invalid scene")
}

#[test]
fn hls_ladder_plays_in_ffprobe_and_every_rendition_decodes() {
    let dir = tmp("hls");
    let hls = dir.join("hls");
    let ladder = json!(["360p", { "name": "low", "height": 180, "bitrate": 300 }]);
    run_outputs(
        busy_scene(
            640,
            360,
            json!([{ "kind": "hls", "dir": hls, "ladder": ladder, "segment_seconds": 1, "preset": "ultrafast" }]),
        ),
        60,
    );
    let master = std::fs::read_to_string(hls.join("master.m3u8")).expect("master playlist");
    assert!(master.contains("RESOLUTION=640x360") && master.contains("RESOLUTION=320x180"), "{master}");
    assert!(master.contains("CODECS=\"avc1.64") && master.contains("BANDWIDTH="), "{master}");
    let streams = sh_out(&format!(
        "ffprobe -v error -show_entries stream=width,height -of csv=p=0 {}",
        hls.join("master.m3u8").display()
    ));
    assert!(streams.contains("640,360") && streams.contains("320,180"), "ffprobe sees both renditions: {streams}");
    for (name, size) in [("360p", "640,360"), ("low", "320,180")] {
        let playlist = hls.join(name).join("index.m3u8");
        let text = std::fs::read_to_string(&playlist).expect("media playlist");
        assert!(text.contains("#EXT-X-ENDLIST"), "VOD playlists end: {text}");
        assert!(text.matches("#EXTINF").count() >= 2, "{text}");
        let probe = ffprobe(&playlist, "stream=width,height,nb_read_frames");
        assert!(probe.contains(&format!("width={}", size.split(',').next().unwrap_or_default())), "{probe}");
        assert!(probe.contains("nb_read_frames=60"), "{name}: every frame decodes: {probe}");
    }
    // The codec string matches what x264 wrote.
    let level = sh_out(&format!(
        "ffprobe -v error -select_streams v:0 -show_entries stream=level -of csv=p=0 {}",
        hls.join("360p/index.m3u8").display()
    ));
    let (_, idc) = media::h264_level(640, 360, 30.0, 800);
    assert_eq!(
        level.lines().next().unwrap_or_default().trim(),
        idc.to_string(),
        "level in CODECS = level in the stream"
    );
}

#[test]
fn hls_live_mode_keeps_a_sliding_window() {
    let dir = tmp("hls-live");
    let hls = dir.join("live");
    run_outputs(
        busy_scene(
            160,
            90,
            json!([{ "kind": "hls", "dir": hls, "mode": "live", "window": 3, "segment_seconds": 1, "preset": "ultrafast" }]),
        ),
        30 * 7,
    );
    let playlist = std::fs::read_to_string(hls.join("90p/index.m3u8")).expect("playlist");
    assert_eq!(playlist.matches("#EXTINF").count(), 3, "{playlist}");
    assert!(!playlist.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "old segments slid out: {playlist}");
    let segments = std::fs::read_dir(hls.join("90p"))
        .expect("dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "ts")));
    assert!(segments.count() <= 5, "old segment files are deleted");
}

#[test]
fn screen_capture_under_xvfb() {
    if Command::new("Xvfb").arg("-help").output().is_err() {
        panic!("Xvfb is required (scripts/setup.sh installs it)");
    }
    // A free display number (the preview tests use 200..800).
    let n = (800 + std::process::id() % 100..1000)
        .find(|n| {
            !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .expect("a free X display number");
    let display = format!(":{n}");
    let mut xvfb = Command::new("Xvfb")
        .args([display.as_str(), "-screen", "0", "320x240x24", "-wr", "-nolisten", "tcp"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("Xvfb");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let result = std::panic::catch_unwind(|| {
        let mut engine = engine_for(json!({
            "width": 160, "height": 120, "fps": 10,
            "inputs": { "s": { "kind": "screen", "display": display, "region": [0, 0, 160, 120] } },
            "layers": [ { "id": "s", "kind": "video", "input": "s" } ]
        }))
        .expect("screen input");
        let frames = render_all(&mut engine, Some(3));
        let px = frames.last().expect("frame").rgba_at(80, 60);
        assert_rgb_near(px, 0xffffff, 2, "Xvfb -wr has a white root window");
    });
    let _ = xvfb.kill();
    let _ = xvfb.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

#[test]
fn camera_errors_are_clear() {
    let err = engine_for(json!({
        "width": 64, "height": 48,
        "inputs": { "cam": { "kind": "camera", "device": "/dev/video-streamlib-none" } },
        "layers": [ { "id": "c", "kind": "video", "input": "cam" } ]
    }))
    .expect_err("no such device");
    assert!(err.to_string().contains("/dev/video-streamlib-none"), "{err}");
    if media::list_cameras().expect("device monitor").is_empty() {
        let err = engine_for(json!({
            "width": 64, "height": 48,
            "inputs": { "cam": { "kind": "camera" } },
            "layers": [ { "id": "c", "kind": "video", "input": "cam" } ]
        }))
        .expect_err("no camera here");
        assert!(err.to_string().contains("no camera found"), "{err}");
    }
}

/// An `srt` listener input takes what gst-launch-1.0 sends as a caller (H.264 in MPEG-TS): the
/// composited frame shows the sender's red picture. Built before any caller exists, it waits on
/// its own thread (issue 13).
#[test]
fn an_srt_listener_input_shows_what_a_gstreamer_caller_sends() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let scene = scene(json!({
        "width": 64, "height": 36, "fps": 30, "background": "#0000FF",
        "inputs": { "cam": { "kind": "srt", "url": format!("srt://127.0.0.1:{port}?mode=listener&latency=20") } },
        "layers": [ { "id": "cam", "kind": "video", "input": "cam" } ]
    }));
    let mut engine = common::engine(scene);
    let mut sender = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "pattern=red", "is-live=true", "num-buffers=240", "!"])
        .args([
            "video/x-raw,width=320,height=180,framerate=30/1",
            "!",
            "x264enc",
            "tune=zerolatency",
            "key-int-max=15",
            "!",
        ])
        .args(["mpegtsmux", "!", "srtsink", &format!("uri=srt://127.0.0.1:{port}?mode=caller&latency=20")])
        .spawn()
        .expect("gst-launch-1.0");
    // Offline pacing waits up to 5 s for a live input's first frame; the caller needs a moment.
    let mut shown = None;
    for i in 0..10 {
        let frame = engine.render_and_read(i, PixelFormat::Rgba8).expect("render");
        let [r, g, b, _] = frame.rgba_at(32, 18);
        if r > 200 && g < 60 && b < 60 {
            shown = Some(i);
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let _ = sender.kill();
    let _ = sender.wait();
    assert!(shown.is_some(), "the sender's red never showed");
}

/// Renders until the composited centre pixel passes `want` (a live input needs a moment), at
/// most ten tries 300 ms apart.
fn shows(engine: &mut Engine, want: impl Fn([u8; 4]) -> bool) -> bool {
    (0..10).any(|i| {
        let frame = engine.render_and_read(i, PixelFormat::Rgba8).expect("render");
        let ok = want(frame.rgba_at(32, 18));
        if !ok {
            std::thread::sleep(Duration::from_millis(300));
        }
        ok
    })
}

fn free_udp_pair() -> u16 {
    // An even port whose neighbour is free too (RTP and RTCP).
    loop {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = s.local_addr().expect("addr").port();
        if port.is_multiple_of(2) && port < 65000 && std::net::UdpSocket::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// An `rtp` input given only a port takes H.264 from gst-launch-1.0's rtph264pay (issue 13).
#[test]
fn an_rtp_input_shows_what_gstreamer_sends_to_its_port() {
    let port = free_udp_pair();
    let scene = scene(json!({
        "width": 64, "height": 36, "fps": 30, "background": "#0000FF",
        "inputs": { "cam": { "kind": "rtp", "port": port } },
        "layers": [ { "id": "cam", "kind": "video", "input": "cam" } ]
    }));
    let mut engine = common::engine(scene);
    let mut sender = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "pattern=red", "is-live=true", "num-buffers=300", "!"])
        .args(["video/x-raw,width=320,height=180,framerate=30/1", "!", "x264enc", "tune=zerolatency"])
        .args(["key-int-max=15", "!", "rtph264pay", "pt=96", "config-interval=-1", "!", "udpsink", "host=127.0.0.1"])
        .arg(format!("port={port}"))
        .spawn()
        .expect("gst-launch-1.0");
    let red = shows(&mut engine, |[r, g, b, _]| r > 200 && g < 60 && b < 60);
    let _ = sender.kill();
    let _ = sender.wait();
    assert!(red, "the sender's red never showed");
}

/// An `rtp` input opens the SDP file ffmpeg writes (`-sdp_file`) and shows ffmpeg's picture.
#[test]
fn an_rtp_input_opens_ffmpegs_sdp_and_shows_its_picture() {
    let dir = tmp("rtp-ffmpeg");
    let sdp = dir.join("ffmpeg.sdp");
    let port = free_udp_pair();
    let mut sender = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", "color=c=0x00FF00:s=320x180:r=30", "-t", "12"])
        .args(["-c:v", "libx264", "-tune", "zerolatency", "-g", "15", "-pix_fmt", "yuv420p", "-f", "rtp"])
        .arg("-sdp_file")
        .arg(&sdp)
        .arg(format!("rtp://127.0.0.1:{port}"))
        .spawn()
        .expect("ffmpeg");
    for _ in 0..50 {
        if std::fs::metadata(&sdp).is_ok_and(|m| m.len() > 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let scene = scene(json!({
        "width": 64, "height": 36, "fps": 30, "background": "#0000FF",
        "inputs": { "cam": { "kind": "rtp", "sdp": sdp } },
        "layers": [ { "id": "cam", "kind": "video", "input": "cam" } ]
    }));
    let mut engine = common::engine(scene);
    let green = shows(&mut engine, |[r, g, b, _]| g > 200 && r < 60 && b < 60);
    let _ = sender.kill();
    let _ = sender.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(green, "ffmpeg's green never showed");
}

/// An `srt` caller input with a passphrase takes what ffmpeg (libsrt, MPEG-TS from its own muxer)
/// serves as a listener: the composited frame shows ffmpeg's green.
#[test]
fn an_srt_caller_input_shows_what_an_ffmpeg_listener_serves_with_a_passphrase() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut listener = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", "color=c=0x00FF00:s=320x180:r=30", "-t", "15"])
        .args(["-c:v", "libx264", "-tune", "zerolatency", "-g", "15", "-pix_fmt", "yuv420p", "-f", "mpegts"])
        .arg(format!("srt://127.0.0.1:{port}?mode=listener&passphrase=ffmpeg-secret-1"))
        .spawn()
        .expect("ffmpeg");
    std::thread::sleep(Duration::from_millis(500));
    let scene = scene(json!({
        "width": 64, "height": 36, "fps": 30, "background": "#0000FF",
        "inputs": { "cam": { "kind": "srt",
                             "url": format!("srt://127.0.0.1:{port}?mode=caller&passphrase=ffmpeg-secret-1") } },
        "layers": [ { "id": "cam", "kind": "video", "input": "cam" } ]
    }));
    let mut engine = common::engine(scene);
    let green = shows(&mut engine, |[r, g, b, _]| g > 200 && r < 60 && b < 60);
    let _ = listener.kill();
    let _ = listener.wait();
    assert!(green, "ffmpeg's green never showed");
}

/// An `srt` caller input with the wrong passphrase is refused by the listener: the input keeps
/// trying, renders nothing and says why (`last_error`, `link_errors`) instead of stopping.
#[test]
fn an_srt_input_with_a_wrong_passphrase_reports_why_and_keeps_trying() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut listener = Command::new("gst-launch-1.0")
        .args(["-q", "videotestsrc", "is-live=true", "!", "video/x-raw,width=160,height=90,framerate=30/1"])
        .args(["!", "x264enc", "tune=zerolatency", "!", "mpegtsmux", "!", "srtsink"])
        .arg(format!("uri=srt://127.0.0.1:{port}?mode=listener&passphrase=the-right-secret"))
        .spawn()
        .expect("gst-launch-1.0");
    std::thread::sleep(Duration::from_millis(500));
    let config: media::SrtInputConfig = serde_json::from_value(json!({
        "url": format!("srt://127.0.0.1:{port}?mode=caller&passphrase=not-the-secret") }))
    .expect("config");
    let mut producer = media::srt_producer(&config).expect("producer");
    let start = std::time::Instant::now();
    let mut frames = 0;
    while start.elapsed() < Duration::from_secs(8) {
        if let Ok(Some(_)) = producer.next_frame() {
            frames += 1;
        }
        if producer.counters().is_some_and(|c| c.snapshot()["link_errors"] > 0) {
            break;
        }
    }
    let _ = listener.kill();
    let _ = listener.wait();
    let counters = producer.counters().expect("counters");
    assert_eq!(frames, 0, "a refused caller shows nothing");
    assert!(counters.snapshot()["link_errors"] > 0, "the refusal is counted");
    let why = counters.last_error().expect("and said");
    assert!(!why.is_empty(), "{why}");
    println!("wrong passphrase: {why}");
}

/// A looping `file` input that is a still picture (one frame with no length) shows the picture
/// on every frame instead of spinning on the same timestamp (the render used to hang).
#[test]
fn a_looping_still_picture_file_shows_on_every_frame() {
    let dir = tmp("still");
    let png = dir.join("red.png");
    let made = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-f", "lavfi", "-i", "color=c=0xFF0000:s=64x36", "-frames:v", "1"])
        .arg(&png)
        .status()
        .expect("ffmpeg");
    assert!(made.success());
    let scene = scene(json!({
        "width": 64, "height": 36, "fps": 30, "background": "#0000FF",
        "inputs": { "still": { "kind": "file", "path": png, "loop": true } },
        "layers": [ { "id": "still", "kind": "video", "input": "still" } ]
    }));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut engine = common::engine(scene);
        let colours: Vec<[u8; 4]> =
            (0..45).map(|i| engine.render_and_read(i, PixelFormat::Rgba8).expect("render").rgba_at(32, 18)).collect();
        let _ = tx.send(colours);
    });
    let colours = rx.recv_timeout(Duration::from_secs(60)).expect("45 frames render, none hangs");
    for (i, [r, g, b, _]) in colours.into_iter().enumerate() {
        assert!(r > 230 && g < 30 && b < 30, "frame {i} shows the picture: {r},{g},{b}");
    }
}

/// Two live inputs at their own rates (30 and 25 fps), one delivering its frames 150 ms after
/// capture: with a latency budget every tick shows frames captured together (on one timeline,
/// the pipelines' running time); without one, the newest frames, 150 ms apart.
#[test]
fn live_inputs_are_aligned_by_capture_time_within_the_latency_budget() {
    let run = |latency_ms: Option<f64>| {
        let mut doc = json!({
            "width": 320, "height": 180, "fps": 30,
            "inputs": {
                "a": { "kind": "live_test", "pattern": "ball", "fps": 30, "width": 160, "height": 90 },
                "b": { "kind": "live_test", "pattern": "ball", "fps": 25, "width": 160, "height": 90, "delay_ms": 150 }
            },
            "layers": [
                { "id": "a", "kind": "video", "input": "a", "rect": [0, 0, 160, 90] },
                { "id": "b", "kind": "video", "input": "b", "rect": [160, 0, 160, 90] }
            ]
        });
        if let Some(l) = latency_ms {
            doc["sync"] = json!({ "latency_ms": l });
        }
        let g = gpu();
        let engine =
            Engine::with_pipelines(&g.ctx, g.pipelines.clone(), scene(doc), &Registry::default(), Pacing::Realtime)
                .expect("engine");
        let mut pipeline = streamlib::Pipeline::new(engine, Pacing::Realtime);
        for _ in 0..75 {
            let index = pipeline.wait_next();
            pipeline.render(index, &[]).expect("frame");
        }
        let sync: std::collections::BTreeMap<_, _> = pipeline.engine().input_sync().into_iter().collect();
        (sync, pipeline.engine().sync_spread())
    };
    let (sync, spread) = run(Some(250.0));
    println!("aligned: spread {spread:?}");
    for (id, s) in &sync {
        let offsets = (s.offset_percentile_ms(0.0), s.offset_percentile_ms(1.0));
        println!(
            "{id}: shown {} repeats {} drops {} late {} transit {:?} offsets {offsets:?}",
            s.shown, s.repeats, s.drops, s.late, s.transit_ms
        );
    }
    let (a, b) = (&sync["a"], &sync["b"]);
    assert_eq!((a.late, b.late), (0, 0), "a budget of 250 ms covers a 150 ms delay");
    let transit = b.transit_ms.unwrap_or(0.0);
    assert!((140.0..200.0).contains(&transit), "b arrives 150 ms after capture: {transit} ms");
    assert!(a.fps.is_some_and(|f| (f - 30.0).abs() < 0.5) && b.fps.is_some_and(|f| (f - 25.0).abs() < 0.5));
    // One output frame (33.3 ms): the 25 fps input's frames lie up to 20 ms off each tick.
    assert!(spread.count > 30 && spread.p95_ms <= 33.4, "spread {spread:?}");
    for (id, s) in [("a", a), ("b", b)] {
        let (lo, hi) = (s.offset_percentile_ms(0.0).unwrap_or(99.0), s.offset_percentile_ms(1.0).unwrap_or(99.0));
        assert!(lo >= -26.0 && hi <= 26.0, "{id}: frames shown {lo}..{hi} ms from their tick");
    }
    // A 25 fps input at 30 fps repeats one tick in six.
    assert!((8..=17).contains(&b.repeats), "b repeated {}", b.repeats);

    let (_, newest) = run(None);
    println!("newest: {newest:?}");
    assert!(newest.p50_ms >= 100.0, "without a budget the delayed input lags: {newest:?}");
}

/// Pausing a live input in a realtime render holds its frame; resuming shows new ones again.
#[test]
fn a_paused_live_input_holds_in_realtime() {
    let doc = json!({
        "width": 160, "height": 90, "fps": 30,
        "inputs": { "cam": { "kind": "live_test", "fps": 30, "width": 160, "height": 90 } },
        "layers": [{ "id": "cam", "kind": "video", "input": "cam" }]
    });
    let g = gpu();
    let engine =
        Engine::with_pipelines(&g.ctx, g.pipelines.clone(), scene(doc), &Registry::default(), Pacing::Realtime)
            .expect("engine");
    let mut pipeline = streamlib::Pipeline::new(engine, Pacing::Realtime);
    let ticks = |pipeline: &mut streamlib::Pipeline, n: usize| {
        for _ in 0..n {
            let index = pipeline.wait_next();
            pipeline.render(index, &[]).expect("frame");
        }
        pipeline.engine().input_sync().into_iter().map(|(_, s)| s.shown).sum::<u64>()
    };
    let before = ticks(&mut pipeline, 15);
    assert!(before > 0, "the input showed frames");
    pipeline.engine_mut().set_input_paused("cam", true).expect("pause");
    assert_eq!(ticks(&mut pipeline, 10), before, "a paused input shows no new frame");
    pipeline.engine_mut().set_input_paused("cam", false).expect("resume");
    assert!(ticks(&mut pipeline, 10) > before, "it runs again once resumed");
}
