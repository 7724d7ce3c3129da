//! End to end: the `streamlib` program renders scenes to files that ffprobe and ffmpeg accept, and
//! bad input exits non-zero with a message naming the problem.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the program, killing it (and failing) if it takes longer than a minute.
fn streamlib(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run streamlib");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("streamlib {args:?} did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child.stdout.take().map(|mut s| s.read_to_end(&mut stdout));
    child.stderr.take().map(|mut s| s.read_to_end(&mut stderr));
    Output { status, stdout, stderr }
}

/// `streamlib render SCENE --frames N --output OUT`.
fn render(scene: &Path, frames: &str, out: &Path) -> Output {
    let path = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
    streamlib(&["render", &path(scene), "--frames", frames, "--output", &path(out)])
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamlib-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("root").to_path_buf()
}

fn write_scene(name: &str, json: &str) -> PathBuf {
    let p = tmp(name);
    std::fs::write(&p, json).expect("write scene");
    p
}

/// A small scene with an animated test card and a translucent moving box (shared with the preview tests).
const SMALL: &str = include_str!("scenes/small.json");

fn ffprobe(path: &Path, entries: &str) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", entries])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("ffprobe (apt-get install ffmpeg)");
    assert!(out.status.success(), "ffprobe failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn renders_y4m_that_ffprobe_and_ffmpeg_accept() {
    let scene = write_scene("small.json", SMALL);
    let out = tmp("small.y4m");
    let r = render(&scene, "12", &out);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let summary = String::from_utf8_lossy(&r.stdout);
    assert!(summary.contains("rendered 12 frames") && summary.contains("fps"), "{summary}");
    let probe = ffprobe(&out, "stream=width,height,pix_fmt,r_frame_rate,nb_read_frames");
    for want in ["width=320", "height=180", "pix_fmt=yuv420p", "r_frame_rate=25/1", "nb_read_frames=12"] {
        assert!(probe.contains(want), "{want} not in {probe}");
    }

    // Frame 0 decoded by ffmpeg (BT.601 limited, its default for y4m) against our RGBA still.
    let png_path = tmp("small.png");
    let r = render(&scene, "1", &png_path);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let decoded = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&out)
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgba", "-"])
        .output()
        .expect("ffmpeg");
    assert!(decoded.status.success());
    let reader = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).expect("png")));
    let mut reader = reader.read_info().expect("png header");
    let mut still = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut still).expect("png data");
    assert_eq!((info.width, info.height), (320, 180));
    assert_eq!(decoded.stdout.len(), still.len());
    let diff: u64 = decoded.stdout.iter().zip(&still).map(|(a, b)| u64::from(a.abs_diff(*b))).sum();
    let mean = diff as f64 / still.len() as f64;
    // 4:2:0 subsampling smears colour across sharp edges; over the whole frame the mean error of
    // the YUV round trip stays around one step.
    assert!(mean < 2.5, "mean abs difference {mean:.2} between ffmpeg's decode and our still");
}

#[test]
fn the_showcase_scene_renders() {
    let out = tmp("showcase.png");
    let scene = root().join("demos/scenes/showcase.json");
    let r =
        streamlib(&["render", scene.to_str().expect("path"), "--frames", "1", "--output", out.to_str().expect("path")]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let probe = ffprobe(&out, "stream=width,height");
    assert!(probe.contains("width=1280") && probe.contains("height=720"), "{probe}");
}

#[test]
fn every_example_scene_is_valid() {
    let dir = root().join("demos/scenes");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("demos/scenes") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let r = streamlib(&["check", path.to_str().expect("path")]);
            assert!(r.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&r.stderr));
            // And it renders: files it names resolve, its kinds build.
            let out = tmp(&format!("example-{n}.png"));
            let r = render(&path, "1", &out);
            assert!(r.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&r.stderr));
            n += 1;
        }
    }
    assert!(n >= 2, "expected several example scenes");
    // Between them the examples use every layer kind the program registers.
    let mut used = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("demos/scenes") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let doc: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
            for layer in doc["layers"].as_array().into_iter().flatten() {
                used.insert(layer["kind"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    for kind in ["video", "image", "text", "vector", "mosaic", "analog_clock", "live_chart", "faces", "segment", "pose"]
    {
        assert!(used.contains(kind), "no example scene uses a {kind} layer: {used:?}");
    }
}

fn fails_with(args: &[&str], needle: &str) {
    let r = streamlib(args);
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{args:?} should fail: {stderr}");
    assert!(stderr.contains(needle), "{args:?}: {needle:?} not in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_input_exits_non_zero_with_a_clear_message() {
    let out = tmp("never.y4m");
    let out = out.to_str().expect("path");
    let bad = write_scene("bad.json", &SMALL.replace("\"opacity\": 0.6", "\"opacity\": 1.6"));
    fails_with(&["render", bad.to_str().expect("path"), "--frames", "1", "--output", out], "layers[1].opacity");
    let dangling = write_scene("dangling.json", &SMALL.replace("\"input\": \"box\"", "\"input\": \"nope\""));
    fails_with(&["render", dangling.to_str().expect("path"), "--frames", "1", "--output", out], "layers[1].input");
    let broken = write_scene("broken.json", "{ \"width\": 10, ");
    fails_with(&["render", broken.to_str().expect("path"), "--frames", "1", "--output", out], "invalid JSON");
    fails_with(&["render", "/nonexistent/scene.json", "--frames", "1", "--output", out], "cannot read scene");
    let good = write_scene("good.json", SMALL);
    let good = good.to_str().expect("path");
    fails_with(&["render", good, "--frames", "1", "--output", "/tmp/x.avi"], "no output kind writes \"avi\"");
    fails_with(&["render", good, "--frames", "3", "--output", "/tmp/x.png"], "--frames 1");
    fails_with(&["render", good, "--frames", "1", "--output", "/nonexistent/dir/out.y4m"], "/nonexistent/dir/out.y4m");
    fails_with(&["render", good, "--output", out], "say how many frames");
}

#[test]
fn no_usable_adapter_is_a_clear_error() {
    let run = |var: &str, value: &str| {
        Command::new(env!("CARGO_BIN_EXE_streamlib")).arg("adapter").env(var, value).output().expect("run")
    };
    let r = run("WGPU_ADAPTER_NAME", "no-such-gpu-anywhere");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("WGPU_ADAPTER_NAME") && stderr.contains("available"), "{stderr}");
    // Metal does not exist on Linux: no adapter at all, and the message says what to install.
    let r = run("WGPU_BACKEND", "metal");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("mesa-vulkan-drivers"), "{stderr}");
    let r = Command::new(env!("CARGO_BIN_EXE_streamlib")).arg("adapter").output().expect("run");
    assert!(r.status.success());
    assert!(!String::from_utf8_lossy(&r.stdout).trim().is_empty(), "the adapter is named");
}

/// Starts an endless render of the small scene to `out`, interrupts it as a terminal would once
/// `out` holds `min_bytes`, and returns the frame count it reports after exiting with 130.
fn interrupt_render(scene_name: &str, out: &Path, min_bytes: u64) -> u64 {
    let scene = write_scene(scene_name, SMALL);
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .args(["render", scene.to_str().expect("path"), "--frames", "1000000", "--output"])
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(out).map_or(0, |m| m.len()) < min_bytes && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill").success());
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop after SIGINT");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child.stderr.take().map(|mut s| s.read_to_string(&mut stderr));
    assert_eq!(status.code(), Some(130), "{stderr}");
    stderr
        .split("interrupted: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no frame count in {stderr}"))
}

#[test]
fn ctrl_c_finishes_the_output_properly() {
    let out = tmp("interrupted.y4m");
    let written = interrupt_render("long.json", &out, 500_000);
    assert!(written > 0);
    // Every frame that was reported is whole in the file.
    let probe = ffprobe(&out, "stream=nb_read_frames");
    assert!(probe.contains(&format!("nb_read_frames={written}")), "{probe} vs {written}");
}

#[test]
fn relative_input_paths_are_taken_from_the_scene_file() {
    let dir = tmp("relative");
    std::fs::create_dir_all(&dir).expect("dir");
    let clip = dir.join("clip.y4m");
    let source = write_scene("clip_source.json", SMALL);
    let r = render(&source, "3", &clip);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let scene = dir.join("uses_clip.json");
    std::fs::write(
        &scene,
        r#"{ "width": 320, "height": 180, "fps": 25,
             "inputs": { "clip": { "kind": "y4m", "path": "clip.y4m" } },
             "layers": [ { "id": "clip", "kind": "video", "input": "clip" } ] }"#,
    )
    .expect("write");
    let out = tmp("from_clip.y4m");
    // Run from another directory: the path must resolve against the scene file, not the cwd.
    let r = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .current_dir("/")
        .args(["render", scene.to_str().expect("path"), "--output", out.to_str().expect("path")])
        .output()
        .expect("run");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stdout).contains("rendered 3 frames"), "ends with the input");
}

fn sh(command: &str) {
    let out = Command::new("sh").arg("-c").arg(command).output().expect("sh");
    assert!(out.status.success(), "`{command}` failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn probe_reports_what_ffprobe_reports() {
    let clip = tmp("clip15.mp4");
    sh(&format!(
        "gst-launch-1.0 -q videotestsrc num-buffers=30 ! video/x-raw,width=160,height=90,framerate=15/1 ! x264enc ! \
         mp4mux ! filesink location={}",
        clip.display()
    ));
    let r = streamlib(&["probe", "--json", clip.to_str().expect("path")]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let info: serde_json::Value = serde_json::from_slice(&r.stdout).expect("probe --json prints JSON");
    assert_eq!(info["width"], 160);
    assert_eq!(info["height"], 90);
    assert_eq!(info["fps"], serde_json::json!([15, 1]));
    assert_eq!(info["rotation"], 0);
    assert!(info["codec"].as_str().is_some_and(|c| c.contains("H.264")), "{info}");
    let duration = info["duration_ns"].as_u64().expect("duration") as f64 / 1e9;
    let theirs: f64 =
        ffprobe(&clip, "format=duration").trim().trim_start_matches("duration=").parse().expect("ffprobe");
    assert!((duration - theirs).abs() < 0.05, "ours {duration} s, ffprobe {theirs} s");
    let text = streamlib(&["probe", clip.to_str().expect("path")]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("160x90"));
    // A 15 fps file in a 30 fps scene: each frame shows twice, and the render lasts the file.
    let scene = write_scene(
        "clip15.json",
        &format!(
            r#"{{ "width": 160, "height": 90, "inputs": {{ "f": {{ "kind": "file", "path": "{}" }} }},
               "layers": [ {{ "id": "f", "kind": "video", "input": "f" }} ] }}"#,
            clip.display()
        ),
    );
    let out = tmp("clip15.y4m");
    let r = streamlib(&["render", scene.to_str().expect("path"), "--output", out.to_str().expect("path")]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let probe = ffprobe(&out, "stream=nb_read_frames");
    assert!(probe.contains("nb_read_frames=60"), "30 frames at 15 fps fill 60 at 30 fps: {probe}");
    let garbage = tmp("garbage.mkv");
    std::fs::write(&garbage, vec![7u8; 50_000]).expect("write");
    fails_with(&["probe", garbage.to_str().expect("path")], "garbage.mkv");
}

#[test]
fn one_render_writes_every_output_at_once() {
    let mp4 = tmp("all.mp4");
    let webm = tmp("all.webm");
    let y4m = tmp("all.y4m");
    let mut scene: serde_json::Value = serde_json::from_str(SMALL).expect("scene");
    scene["outputs"] = serde_json::json!([
        { "kind": "file", "path": mp4, "bitrate": 800, "keyframe_interval": 10 },
        { "kind": "file", "path": webm, "preset": "ultrafast" }
    ]);
    let path = write_scene("all.json", &scene.to_string());
    let r =
        streamlib(&["render", path.to_str().expect("path"), "--frames", "20", "--output", y4m.to_str().expect("path")]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    for (file, codec) in [(&mp4, "h264"), (&webm, "vp9"), (&y4m, "rawvideo")] {
        let probe = ffprobe(file, "stream=codec_name,nb_read_frames");
        assert!(probe.contains(&format!("codec_name={codec}")) && probe.contains("nb_read_frames=20"), "{probe}");
    }
    // The keyframe interval was honoured: frames 0 and 10 are keyframes.
    let keys = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "frame=key_frame", "-of", "csv=p=0"])
        .arg(&mp4)
        .output()
        .expect("ffprobe");
    let keys: Vec<String> =
        String::from_utf8_lossy(&keys.stdout).lines().map(|l| l.trim().trim_matches(',').to_string()).collect();
    assert_eq!(keys.iter().filter(|k| k.as_str() == "1").count(), 2, "{keys:?}");
}

#[test]
fn ctrl_c_finishes_an_mp4_that_plays() {
    // mp4mux writes the media data as it goes and the index at the end.
    let out = tmp("interrupted.mp4");
    let written = interrupt_render("long-mp4.json", &out, 20_000);
    let probe = ffprobe(&out, "stream=codec_name,nb_read_frames");
    assert!(
        probe.contains("codec_name=h264") && probe.contains(&format!("nb_read_frames={written}")),
        "{probe} vs {written}"
    );
}

/// Issue 20: scenes that are not scene files, device files, FIFOs and bad flags exit 1 with a
/// message (a FIFO used to block and `/dev/zero` to read until memory ran out), and Mesa's
/// `XDG_RUNTIME_DIR` noise is gone when the variable is unset.
#[test]
fn hostile_scene_files_and_flags_exit_1_with_a_message() {
    let out = tmp("hostile.y4m");
    let out = out.to_str().expect("path");
    let dir = tmp("a-directory");
    std::fs::create_dir_all(&dir).expect("dir");
    let fifo = tmp("scene.fifo");
    let _ = std::fs::remove_file(&fifo);
    sh(&format!("mkfifo {}", fifo.display()));
    let empty = write_scene("empty.json", "");
    let garbage = tmp("garbage.json");
    std::fs::write(&garbage, [0xffu8, 0xfe, 0, 1, 2, 3]).expect("garbage");
    let big = tmp("big.json");
    std::fs::write(&big, vec![b' '; 9 << 20]).expect("big");
    for (scene, needle) in [
        (dir.to_str().expect("path"), "a directory"),
        (fifo.to_str().expect("path"), "not a regular file"),
        ("/dev/zero", "not a regular file"),
        (empty.to_str().expect("path"), "invalid JSON"),
        (garbage.to_str().expect("path"), "not UTF-8"),
        (big.to_str().expect("path"), "the limit is"),
    ] {
        fails_with(&["render", scene, "--frames", "1", "--output", out], needle);
    }
    fails_with(&["render", "--no-such-flag"], "--no-such-flag");
    fails_with(&["render", "x.json", "--frames", "many"], "many");
    let fps = write_scene("slow.json", &SMALL.replace("\"fps\": 25", "\"fps\": \"1/4294967295\""));
    fails_with(&["render", fps.to_str().expect("path"), "--frames", "1", "--output", out], "[1, 1000]");

    let good = write_scene("quiet.json", SMALL);
    let r = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .args(["render", good.to_str().expect("path"), "--frames", "1", "--output", out])
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{stderr}");
    assert!(!stderr.contains("XDG_RUNTIME_DIR"), "Mesa's noise is back: {stderr}");
}

/// Whether a test that needs root may skip here: CI (`.ci/run` sets the variable) must run them.
fn skip_privileged(what: &str, why: &str) -> bool {
    if std::env::var_os("STREAMLIB_REQUIRE_PRIVILEGED").is_some() {
        panic!("{what} must run here but cannot: {why}");
    }
    eprintln!("SKIPPED {what}: {why}");
    true
}

/// A full disk while encoding: every encoded kind ends with exit 1 naming the cause (it used to
/// hang, deaf to SIGTERM, when the muxer's write failed and appsrc blocked). Needs root for a
/// small tmpfs.
#[test]
fn a_full_disk_ends_encoded_renders_with_an_error_not_a_hang() {
    let mount = tmp("full-disk");
    std::fs::create_dir_all(&mount).expect("dir");
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"]).arg(&mount).output();
    match mounted {
        Ok(o) if o.status.success() => {}
        Ok(o) => {
            if skip_privileged("full-disk test", &String::from_utf8_lossy(&o.stderr)) {
                return;
            }
        }
        Err(e) => {
            if skip_privileged("full-disk test", &e.to_string()) {
                return;
            }
        }
    }
    let scene = write_scene("full-disk.json", SMALL);
    for out in ["out.mp4", "out.mkv", "hls/master.m3u8"] {
        let _ = Command::new("sh").arg("-c").arg(format!("rm -rf {}/*", mount.display())).status();
        let path = mount.join(out);
        let r = render(&scene, "2000", &path);
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(1), "{out}: {stderr}");
        assert!(stderr.contains("No space left"), "{out}: {stderr}");
    }
    // Read-only: a png output is refused up front (it used to be accepted and write nothing).
    let _ = Command::new("mount").args(["-o", "remount,ro"]).arg(&mount).status();
    let png = mount.join("f%05d.png");
    fails_with(
        &["render", scene.to_str().expect("path"), "--frames", "3", "--output", png.to_str().expect("path")],
        "Read-only file system",
    );
    let _ = Command::new("umount").arg(&mount).status();
}

/// Crash-safe recording (issue 20): after `kill -9` an mp4 (fragmented by default) and an mkv
/// still play up to their last fragment or cluster; an unfragmented mp4 had no index at all.
#[test]
fn a_killed_render_leaves_files_that_play() {
    for name in ["killed.mp4", "killed.mkv"] {
        let out = tmp(name);
        let _ = std::fs::remove_file(&out);
        let scene = write_scene(&format!("{name}.json"), SMALL);
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamlib"))
            .args(["render", scene.to_str().expect("path"), "--frames", "1000000", "--realtime", "--output"])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        // Until two fragments (mp4 `moof`) or clusters (Matroska) are in the file: the first is
        // then complete whatever the machine's load (a fixed sleep was not enough on a busy one).
        let marker: &[u8] = if name.ends_with(".mp4") { b"moof" } else { &[0x1F, 0x43, 0xB6, 0x75] };
        let count = |bytes: &[u8]| bytes.windows(marker.len()).filter(|w| *w == marker).count();
        let deadline = Instant::now() + Duration::from_secs(60);
        while count(&std::fs::read(&out).unwrap_or_default()) < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        let probe = ffprobe(&out, "stream=codec_name,nb_read_frames");
        let frames: u64 = probe
            .lines()
            .find_map(|l| l.strip_prefix("nb_read_frames="))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name}: no frames readable: {probe}"));
        assert!(probe.contains("codec_name=h264") && frames >= 25, "{name}: {probe}");
    }
    // HLS killed before its first segment: every playlist the master names exists and is one.
    let dir = tmp("killed-hls");
    let _ = std::fs::remove_dir_all(&dir);
    let scene = write_scene("killed-hls.json", SMALL);
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .args(["render", scene.to_str().expect("path"), "--frames", "1000000", "--realtime", "--output"])
        .arg(dir.join("master.m3u8"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join("master.m3u8").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill -9");
    child.wait().expect("wait");
    let master = std::fs::read_to_string(dir.join("master.m3u8")).expect("master playlist");
    let named: Vec<&str> = master.lines().filter(|l| l.ends_with(".m3u8")).collect();
    assert!(!named.is_empty(), "{master}");
    for playlist in named {
        let text = std::fs::read_to_string(dir.join(playlist)).unwrap_or_else(|e| panic!("{playlist}: {e}"));
        assert!(text.starts_with("#EXTM3U"), "{playlist}: {text}");
    }
}

#[test]
fn two_processes_hop_frames_over_tcp_into_an_mp4_that_ffprobe_reads() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let sender_scene = write_scene(
        "net-sender.json",
        r#"{ "width": 160, "height": 90, "fps": 30,
             "inputs": { "bars": { "kind": "test_pattern", "pattern": "smpte_bars" } },
             "layers": [ { "id": "bars", "kind": "video", "input": "bars" } ] }"#,
    );
    let receiver_scene = write_scene(
        "net-receiver.json",
        &format!(
            r#"{{ "width": 160, "height": 90, "fps": 30,
                 "inputs": {{ "net": {{ "kind": "network", "url": "tcp://127.0.0.1:{port}" }} }},
                 "layers": [ {{ "id": "net", "kind": "video", "input": "net" }} ] }}"#
        ),
    );
    let url = format!("tcp://127.0.0.1:{port}");
    // The sender listens and paces itself; the receiver connects (retrying until it is up).
    let mut sender = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .args(["render", sender_scene.to_str().expect("path"), "--realtime", "--frames", "300", "--output", &url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sender");
    let out = tmp("net-received.mp4");
    let r = render(&receiver_scene, "30", &out);
    sender.kill().ok();
    sender.wait().ok();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let probe = ffprobe(&out, "stream=width,height,nb_read_frames");
    assert!(probe.contains("width=160") && probe.contains("nb_read_frames=30"), "{probe}");
}

/// The three-hop chain (`demos/chain/run.sh`): phone -> edge -> cloud in three network
/// namespaces, H.264 over UDP, 2 % loss on edge -> cloud. Every hop gets frames, the cloud's HLS
/// plays in ffprobe, and the losses nftables made were resent or recovered. Needs root.
#[test]
fn the_three_hop_chain_carries_frames_through_loss_into_hls() {
    let missing: Vec<&str> = ["ip", "nft", "tc"]
        .into_iter()
        .filter(|t| Command::new("which").arg(t).output().map_or(true, |o| !o.status.success()))
        .collect();
    let root = Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root.as_ref().map_or(true, |r| !r) || !missing.is_empty() {
        skip_privileged("the three-hop chain", &format!("needs root and ip, nft, tc (missing: {missing:?})"));
        return;
    }
    let out = tmp("chain");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../demos/chain/run.sh");
    let run = Command::new("bash")
        .arg(&script)
        .env("STREAMLIB", env!("CARGO_BIN_EXE_streamlib"))
        .env("FRAMES", "90")
        .env("OUT", &out)
        .env("CHAIN_ID", std::process::id().to_string())
        .output()
        .expect("run the chain");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let frames = |line_start: &str| -> u64 {
        let line =
            stdout.lines().find(|l| l.starts_with(line_start)).unwrap_or_else(|| panic!("{line_start}: {stdout}"));
        line[line_start.len()..].split_whitespace().next().and_then(|n| n.parse().ok()).expect("a count")
    };
    assert!(frames("input phone: ") >= 45, "the edge got the phone's frames: {stdout}");
    assert!(frames("input edge: ") >= 45, "the cloud got the edge's frames: {stdout}");
    let hls = stdout.lines().find(|l| l.starts_with("== cloud HLS:")).unwrap_or_else(|| panic!("{stdout}"));
    let played: u64 =
        hls.split(" plays ").nth(1).and_then(|r| r.split_whitespace().next()?.parse().ok()).expect("frames");
    assert!(played > 0, "{hls}");
    assert!(stdout.contains("glass-to-glass p50"), "{stdout}");
    // The namespaces are gone.
    let left = Command::new("ip").args(["netns", "list"]).output().expect("ip netns");
    assert!(!String::from_utf8_lossy(&left.stdout).contains(&format!("sledge{}", std::process::id())));
}

/// `--output srt://…?mode=listener&passphrase=…`: ffprobe with a wrong passphrase is refused;
/// with the right one, calling in mid-stream, it reads H.264 in MPEG-TS at the output's size until
/// the render ends, and ffmpeg, a second caller at the same time, decodes our picture within
/// 35 dB of our render (issue 13).
#[test]
fn an_srt_listener_output_is_read_by_ffprobe_with_its_passphrase() {
    let (scene, reference) = bars_scene_and_render("srt");
    let port = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let url = format!("srt://127.0.0.1:{port}?mode=listener&latency=20&passphrase=streamlib-secret");
    let mut render = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .args(["render"])
        .arg(&scene)
        .args(["--realtime", "--frames", "150", "--output", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("render");
    std::thread::sleep(Duration::from_millis(1000));
    let caller = format!("srt://127.0.0.1:{port}?mode=caller&passphrase=streamlib-secret");
    // ffprobe under `timeout`: a peer that never answers must fail the test, not hang it.
    let wrong = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "quiet", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
        .arg(format!("srt://127.0.0.1:{port}?mode=caller&passphrase=not-the-secret"))
        .output()
        .expect("ffprobe");
    assert!(!wrong.status.success() && wrong.stdout.is_empty(), "a wrong passphrase is refused");
    let frame = tmp("srt-decoded.yuv");
    let decoding = {
        let (caller, frame) = (caller.clone(), frame.clone());
        std::thread::spawn(move || ffmpeg_frame_30(&[], &caller, &frame))
    };
    let probe = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "quiet", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0"])
        .arg(&caller)
        .output()
        .expect("ffprobe");
    let decoded = decoding.join().expect("ffmpeg");
    let status = render.wait().expect("render ends");
    let mut err = String::new();
    render.stderr.take().expect("stderr").read_to_string(&mut err).expect("read");
    assert!(status.success(), "{err}");
    let text = String::from_utf8_lossy(&probe.stdout);
    let fields: Vec<&str> = text.lines().next().unwrap_or_default().split(',').collect();
    assert_eq!(fields.get(..3), Some(&["h264", "320", "180"][..]), "{text}");
    let frames: u64 = fields.get(3).and_then(|n| n.trim().parse().ok()).unwrap_or(0);
    assert!(frames >= 15, "ffprobe decoded {frames} frames of the last seconds");
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let db = psnr_against_render(&frame, &reference);
    assert!(db >= 35.0, "ffmpeg decoded our SRT stream at {db:.1} dB against our render");
}

/// ffmpeg's PSNR (average over Y, U, V, dB) of a decoded 320x180 I420 frame against our
/// rendered PNG, compared in YUV: the PNG is converted with the BT.601 limited-range matrix our
/// outputs below 720 lines are tagged with (comparing in RGB would measure ffmpeg's choice of
/// matrix instead of our stream).
fn psnr_against_render(decoded_i420: &Path, rendered_png: &Path) -> f64 {
    let reference = decoded_i420.with_extension("reference.yuv");
    let converted = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-i"])
        .arg(rendered_png)
        .args(["-vf", "scale=out_color_matrix=bt601:out_range=tv", "-pix_fmt", "yuv420p", "-f", "rawvideo"])
        .arg(&reference)
        .status()
        .expect("ffmpeg");
    assert!(converted.success());
    let raw = ["-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "320x180", "-i"];
    let out = Command::new("ffmpeg")
        .args(["-v", "info"])
        .args(raw)
        .arg(decoded_i420)
        .args(raw)
        .arg(&reference)
        .args(["-lavfi", "psnr", "-f", "null", "-"])
        .output()
        .expect("ffmpeg psnr");
    let text = String::from_utf8_lossy(&out.stderr);
    let average = text.split("average:").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("0");
    if average == "inf" {
        f64::INFINITY
    } else {
        average.parse().unwrap_or_else(|_| panic!("no PSNR in {text}"))
    }
}

/// An `rtp` output writes an SDP that ffmpeg opens mid-stream; the picture it decodes matches
/// our own render of the scene within 35 dB (issue 13).
#[test]
fn ffmpeg_opens_our_rtp_sdp_and_decodes_our_picture() {
    let port = loop {
        let p = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        if p.is_multiple_of(2) && p < 65000 {
            break p;
        }
    };
    let sdp = tmp("rtp-out.sdp");
    let (scene, reference) = bars_scene_and_render("rtp");
    let with_output = tmp("rtp-scene-out.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&scene).expect("scene")).expect("json");
    value["outputs"] = serde_json::json!([{ "kind": "rtp", "sdp": sdp, "port": port, "bitrate": 3000 }]);
    std::fs::write(&with_output, value.to_string()).expect("scene");
    let mut streaming = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .arg("render")
        .arg(&with_output)
        .args(["--realtime", "--frames", "150"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("render");
    for _ in 0..50 {
        if std::fs::metadata(&sdp).is_ok_and(|m| m.len() > 0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&sdp).expect("the output wrote its SDP");
    assert!(text.contains(&format!("m=video {port} RTP/AVPF 96 97")), "{text}");
    let last = tmp("rtp-decoded.yuv");
    let decoded = Command::new("timeout")
        .args(["20", "ffmpeg", "-y", "-v", "error", "-protocol_whitelist", "file,udp,rtp", "-i"])
        .arg(&sdp)
        .args(["-vf", "select=eq(n\\,59)", "-frames:v", "1", "-pix_fmt", "yuv420p", "-f", "rawvideo"])
        .arg(&last)
        .output()
        .expect("ffmpeg");
    let status = streaming.wait().expect("render ends");
    let mut err = String::new();
    streaming.stderr.take().expect("stderr").read_to_string(&mut err).expect("read");
    assert!(status.success(), "{err}");
    assert!(decoded.status.success(), "{}", String::from_utf8_lossy(&decoded.stderr));
    let db = psnr_against_render(&last, &reference);
    assert!(db >= 35.0, "ffmpeg decoded our RTP stream at {db:.1} dB against our render");
}

/// The still bars scene of the protocol tests, and our own render of it as a PNG.
fn bars_scene_and_render(name: &str) -> (PathBuf, PathBuf) {
    let scene = tmp(&format!("{name}-scene.json"));
    std::fs::write(
        &scene,
        r#"{ "width": 320, "height": 180, "fps": 30,
             "inputs": { "bars": { "kind": "test_pattern", "pattern": "smpte_bars" } },
             "layers": [ { "id": "bars", "kind": "video", "input": "bars" } ] }"#,
    )
    .expect("scene");
    let reference = tmp(&format!("{name}-reference.png"));
    assert!(render(&scene, "1", &reference).status.success());
    (scene, reference)
}

/// ffmpeg decodes frame 30 of `input` (after `args`) to raw I420 at `out`, under a timeout.
fn ffmpeg_frame_30(args: &[&str], input: &str, out: &Path) -> Output {
    Command::new("timeout")
        .args(["25", "ffmpeg", "-y", "-v", "error"])
        .args(args)
        .args(["-i", input, "-vf", "select=eq(n\\,30)", "-frames:v", "1", "-pix_fmt", "yuv420p", "-f", "rawvideo"])
        .arg(out)
        .output()
        .expect("ffmpeg")
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// `--output rtmp://…` pushes to ffmpeg acting as an RTMP server. The server comes up a second
/// after we start: the output connects again until it is there, and ffmpeg decodes our picture.
#[test]
fn an_rtmp_output_reaches_a_server_that_starts_late_and_ffmpeg_decodes_it() {
    let (scene, reference) = bars_scene_and_render("rtmp");
    let url = format!("rtmp://127.0.0.1:{}/live/streamlib-key", free_tcp_port());
    let pushing = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .arg("render")
        .arg(&scene)
        .args(["--realtime", "--frames", "180", "--output", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("render");
    std::thread::sleep(Duration::from_millis(1000));
    let frame = tmp("rtmp-decoded.yuv");
    let served = ffmpeg_frame_30(&["-listen", "1"], &url, &frame);
    let out = pushing.wait_with_output().expect("render ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(served.status.success(), "{}", String::from_utf8_lossy(&served.stderr));
    let report = stdout.lines().find(|l| l.starts_with("output ")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        report.contains("connects ") && !report.contains("failures 0,"),
        "it failed first, then connected: {report}"
    );
    let db = psnr_against_render(&frame, &reference);
    assert!(db >= 35.0, "ffmpeg decoded our RTMP stream at {db:.1} dB against our render");
}

/// gst-launch-1.0 reads one render's SRT, RTP and RTSP outputs at once, each with its own
/// elements (`srtsrc ! tsdemux`, `udpsrc ! rtph264depay`, `rtspsrc`), and decodes our picture
/// within 35 dB of our render (issue 13: ffmpeg and GStreamer both read every output).
#[test]
fn gstreamer_reads_our_srt_rtp_and_rtsp_outputs() {
    let (scene, reference) = bars_scene_and_render("gst-readers");
    let srt = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let rtp = loop {
        let p = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        if p.is_multiple_of(2) && p < 65000 {
            break p;
        }
    };
    let rtsp = free_tcp_port();
    let with_outputs = tmp("gst-readers-out.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&scene).expect("scene")).expect("json");
    value["outputs"] = serde_json::json!([
        { "kind": "srt", "url": format!("srt://127.0.0.1:{srt}?mode=listener&latency=20") },
        { "kind": "rtp", "sdp": tmp("gst-readers.sdp"), "port": rtp },
        { "kind": "rtsp", "port": rtsp, "path": "/live" },
    ]);
    std::fs::write(&with_outputs, value.to_string()).expect("scene");
    let mut streaming = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .arg("render")
        .arg(&with_outputs)
        .args(["--realtime", "--frames", "240"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("render");
    std::thread::sleep(Duration::from_millis(1000));
    let decode = "avdec_h264 ! videoconvert ! video/x-raw,format=I420";
    let readers = [
        ("srt", format!("srtsrc uri=srt://127.0.0.1:{srt}?mode=caller&latency=20 ! tsdemux ! h264parse ! {decode}")),
        (
            "rtp",
            format!(
                "udpsrc port={rtp} caps=application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96 \
                 ! rtph264depay ! h264parse ! {decode}"
            ),
        ),
        (
            "rtsp",
            format!("rtspsrc location=rtsp://127.0.0.1:{rtsp}/live latency=0 ! rtph264depay ! h264parse ! {decode}"),
        ),
    ]
    .map(|(name, pipeline)| {
        let raw = tmp(&format!("gst-readers-{name}.yuv"));
        // Interrupted after 4 s with -e: the file holds every frame decoded by then.
        let reader = Command::new("timeout")
            .args(["-s", "INT", "4", "gst-launch-1.0", "-q", "-e"])
            .args(pipeline.split_whitespace())
            .args(["!", "filesink"])
            .arg(format!("location={}", raw.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gst-launch-1.0");
        (name, reader, raw)
    });
    let mut decoded = Vec::new();
    for (name, reader, raw) in readers {
        let out = reader.wait_with_output().expect("gst-launch-1.0 ends");
        decoded.push((name, raw, String::from_utf8_lossy(&out.stderr).into_owned()));
    }
    let status = streaming.wait().expect("render ends");
    let mut err = String::new();
    streaming.stderr.take().expect("stderr").read_to_string(&mut err).expect("read");
    assert!(status.success(), "{err}");
    let frame_len = 320 * 180 * 3 / 2;
    for (name, raw, stderr) in decoded {
        let bytes = std::fs::read(&raw).unwrap_or_default();
        let frames = bytes.len() / frame_len;
        assert!(frames >= 31, "{name}: gst-launch-1.0 decoded {frames} frames in 4 s: {stderr}");
        let frame = tmp(&format!("gst-readers-{name}-30.yuv"));
        std::fs::write(&frame, &bytes[30 * frame_len..31 * frame_len]).expect("frame");
        let db = psnr_against_render(&frame, &reference);
        assert!(db >= 35.0, "{name}: GStreamer decoded our stream at {db:.1} dB against our render");
    }
}

/// `--output rtsp://127.0.0.1:PORT/live`: ffmpeg pulls over TCP and over UDP (two clients of one
/// shared media) and decodes our picture.
#[test]
fn an_rtsp_server_output_is_pulled_by_ffmpeg_over_tcp_and_udp() {
    let (scene, reference) = bars_scene_and_render("rtsp");
    let url = format!("rtsp://127.0.0.1:{}/live", free_tcp_port());
    let serving = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .arg("render")
        .arg(&scene)
        .args(["--realtime", "--frames", "240", "--output", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("render");
    std::thread::sleep(Duration::from_millis(1000));
    let (tcp, udp) = (tmp("rtsp-tcp.yuv"), tmp("rtsp-udp.yuv"));
    let over_tcp = {
        let (url, tcp) = (url.clone(), tcp.clone());
        std::thread::spawn(move || ffmpeg_frame_30(&["-rtsp_transport", "tcp"], &url, &tcp))
    };
    let over_udp = ffmpeg_frame_30(&["-rtsp_transport", "udp"], &url, &udp);
    let over_tcp = over_tcp.join().expect("tcp client");
    let out = serving.wait_with_output().expect("render ends");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (how, result, frame) in [("tcp", over_tcp, tcp), ("udp", over_udp, udp)] {
        assert!(result.status.success(), "{how}: {}", String::from_utf8_lossy(&result.stderr));
        let db = psnr_against_render(&frame, &reference);
        assert!(db >= 35.0, "{how}: ffmpeg decoded our RTSP stream at {db:.1} dB against our render");
    }
}

/// `streamlib bench ml --quick` runs the model alone and the paced runs with the layer off and
/// on, and prints its tables with the adapter named (issue 15's measurements stay runnable): every
/// model timed, every ML layer's paced run with results.
#[test]
fn bench_ml_quick_prints_inference_and_paced_runs() {
    if !root().join(".ml/models/centerface.onnx").is_file() && std::env::var_os("STREAMLIB_ML_DIR").is_none() {
        assert!(std::env::var_os("STREAMLIB_REQUIRE_ML").is_none(), "ML files missing (.ml/)");
        eprintln!("SKIPPED bench ml: no .ml/ (run python3 scripts/ml/fetch.py)");
        return;
    }
    let json = tmp("bench-ml.json");
    let r = streamlib(&["bench", "ml", "--quick", "--json", json.to_str().expect("path")]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{stdout}{}", String::from_utf8_lossy(&r.stderr));
    assert!(stdout.contains("adapter ") && stdout.contains("| CenterFace | 320x192 |"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    let runs = doc["runs"].as_array().expect("runs");
    let labels: Vec<&str> = runs.iter().filter_map(|r| r["layer"].as_str()).collect();
    for kind in ["faces, CenterFace", "faces, BlazeFace", "segment", "pose"] {
        let run = runs.iter().find(|r| r["layer"].as_str().is_some_and(|l| l.starts_with(kind)));
        let run = run.unwrap_or_else(|| panic!("no {kind} run in {labels:?}"));
        assert!(run["inference_runs"].as_f64().unwrap_or(0.0) > 0.0, "{run}");
        assert!(run["age_frames_p50"].as_f64().is_some(), "results came back: {run}");
    }
    for model in ["BlazeFace short range", "selfie segmentation landscape", "BlazePose landmarks lite"] {
        assert!(stdout.contains(&format!("| {model} |")), "{model} timed: {stdout}");
    }
}

/// Without ONNX Runtime the ML layers are skipped with an error naming what to install, and the
/// rest of the scene renders (the segment demo's caption).
#[test]
fn a_missing_onnx_runtime_skips_the_ml_layers_with_a_clear_error() {
    let out = tmp("no-onnx-runtime.y4m");
    let output = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .args(["render", root().join("demos/scenes/segment.json").to_str().expect("path"), "--frames", "1", "--output"])
        .arg(&out)
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")
        .output()
        .expect("run streamlib");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("ONNX Runtime is not available") && stderr.contains("scripts/ml/fetch.py"), "{stderr}");
    assert!(stderr.contains("2 layer errors"), "both segment layers are skipped: {stderr}");
    // The luma plane after the y4m headers: white caption text on black in rows 460–500.
    let bytes = std::fs::read(&out).expect("the frame");
    let start = bytes.windows(6).position(|w| w == b"FRAME\n").expect("a frame") + 6;
    let luma = &bytes[start..start + 1024 * 512];
    let caption = luma[460 * 1024..500 * 1024].iter().filter(|&&y| y > 200).count();
    let above = luma[..440 * 1024].iter().filter(|&&y| y > 16).count();
    assert!(caption > 200, "the caption still renders ({caption} white pixels)");
    assert_eq!(above, 0, "the skipped layers draw nothing");
}

/// `streamlib bench pacing --quick`: the frame timer against plain sleeping, one second at 60 fps,
/// a table and JSON (the 60 s run is the measurement; this keeps it runnable).
#[test]
fn bench_pacing_quick_compares_the_frame_timer_with_plain_sleeping() {
    let json = tmp("bench-pacing.json");
    let r = streamlib(&["bench", "pacing", "--quick", "--json", json.to_str().expect("path")]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert!(r.status.success(), "{stdout}{}", String::from_utf8_lossy(&r.stderr));
    assert!(stdout.contains("| FrameTimer (absolute deadlines) | 60 |"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    let timer = &doc["runs"][0];
    // Absolute deadlines: the last tick is where the schedule says, whatever each sleep overshot.
    assert!(timer["behind_schedule_ms"].as_f64().unwrap_or(f64::MAX) < 20.0, "{timer}");
    assert!(timer["lateness_ms_max"].as_f64().is_some(), "{timer}");
}
