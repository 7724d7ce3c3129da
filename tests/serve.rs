//! The render server over real HTTP on loopback: updates change the next frames, bad requests get
//! 4xx while rendering goes on, concurrent updates serialize without losing the last write, the
//! token and the media root are enforced, and SIGTERM finishes the outputs.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    addr: String,
    root: PathBuf,
}

impl Server {
    fn start(name: &str, extra: &[&str]) -> Server {
        Self::start_with_env(name, extra, &[])
    }

    fn start_with_env(name: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let root = std::env::temp_dir().join(format!("streamlib-serve-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("media root");
        let mut child = Command::new(env!("CARGO_BIN_EXE_streamlib"))
            .args(["serve", "--listen", "127.0.0.1:0", "--media-root"])
            .arg(&root)
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("first line");
        let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line}")).to_string();
        Server { child, addr, root }
    }

    fn request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        self.request_with(method, path, body, &[])
    }

    fn request_with(&self, method: &str, path: &str, body: &str, headers: &[&str]) -> (u16, String) {
        let (status, bytes) = http(&self.addr, method, path, body.as_bytes(), headers);
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Stops the server as a supervisor would and returns its exit code.
    fn terminate(mut self) -> Option<i32> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (one request per connection), so the tests need no HTTP crate.
fn http(addr: &str, method: &str, path: &str, body: &[u8], headers: &[&str]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    if !body.is_empty() {
        head += "Content-Type: application/json\r\n";
    }
    for h in headers {
        head += &format!("{h}\r\n");
    }
    head += "\r\n";
    s.write_all(head.as_bytes()).expect("write");
    // The server may answer (413) before reading a large body; a failed write is fine then.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("no HTTP response: {raw:?}"));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
    out
}

const SCENE: &str = r##"{
  "width": 64, "height": 48, "fps": 30, "background": "#0000FF",
  "inputs": { "red": { "kind": "test_pattern", "pattern": "solid", "color": "#FF0000" } },
  "layers": [ { "id": "box", "kind": "video", "input": "red", "rect": [0, 0, 16, 16] } ]
}"##;

fn pixel(server: &Server, x: u32, y: u32) -> [u8; 4] {
    let (status, png) = http(&server.addr, "GET", "/snapshot.png", b"", &[]);
    assert_eq!(status, 200);
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().expect("png");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let i = ((y * info.width + x) * 4) as usize;
    [buf[i], buf[i + 1], buf[i + 2], buf[i + 3]]
}

fn frames(server: &Server) -> u64 {
    let (_, body) = server.request("GET", "/health", "");
    let v: serde_json::Value = serde_json::from_str(&body).expect("health JSON");
    v["frames"].as_u64().expect("frames")
}

#[test]
fn a_patch_visibly_changes_the_next_frames() {
    let server = Server::start("patch", &[]);
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 200);
    assert_eq!(pixel(&server, 5, 5), [255, 0, 0, 255]);
    assert_eq!(pixel(&server, 30, 30), [0, 0, 255, 255]);
    let (status, body) = server.request("PATCH", "/layers/box", r#"{ "rect": [24, 24, 16, 16] }"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(pixel(&server, 5, 5), [0, 0, 255, 255], "moved away");
    assert_eq!(pixel(&server, 30, 30), [255, 0, 0, 255], "moved here");
    assert_eq!(server.request("PATCH", "/layers/box", r#"{ "opacity": 0.5 }"#).0, 200);
    let p = pixel(&server, 30, 30);
    assert!(p[0].abs_diff(128) <= 1 && p[2].abs_diff(127) <= 1, "half red over blue: {p:?}");
    assert_eq!(server.request("PATCH", "/layers/box", r#"{ "visible": false }"#).0, 200);
    assert_eq!(pixel(&server, 30, 30), [0, 0, 255, 255]);
    // Inputs and layers come and go.
    assert_eq!(
        server
            .request(
                "POST",
                "/inputs",
                r##"{ "id": "green", "kind": "test_pattern", "pattern": "solid", "color": "#00FF00" }"##
            )
            .0,
        200
    );
    assert_eq!(
        server
            .request("POST", "/layers", r#"{ "id": "g", "kind": "video", "input": "green", "rect": [0, 0, 8, 8] }"#)
            .0,
        200
    );
    assert_eq!(pixel(&server, 2, 2), [0, 255, 0, 255]);
    assert_eq!(server.request("DELETE", "/layers/g", "").0, 200);
    assert_eq!(server.request("DELETE", "/inputs/green", "").0, 200);
    assert_eq!(pixel(&server, 2, 2), [0, 0, 255, 255]);
}

#[test]
fn bad_requests_get_4xx_naming_the_problem_and_rendering_goes_on() {
    let server = Server::start("bad", &[]);
    assert_eq!(server.request("GET", "/snapshot.png", "").0, 409, "no scene yet");
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 200);
    let (_, before) = server.request("GET", "/scene", "");
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        ("PATCH", "/layers/box", r#"{ "opacity": 0.5 "#, 400, "invalid JSON"),
        ("PATCH", "/layers/box", "[1, 2]", 400, "object"),
        ("PATCH", "/layers/box", r#"{ "opacity": 2 }"#, 422, "layers[0].opacity"),
        ("PATCH", "/layers/box", r#"{ "colour": "red" }"#, 422, "layers[0].colour"),
        ("PATCH", "/layers/box", r#"{ "blend": "overlay" }"#, 422, "layers[0].blend"),
        ("PATCH", "/layers/box", r#"{ "id": "other" }"#, 422, "id"),
        ("PATCH", "/layers/nope", r#"{ "opacity": 0.5 }"#, 404, "nope"),
        ("DELETE", "/inputs/red", "", 422, "layers[0].input"),
        ("POST", "/layers", r#"{ "id": "img", "kind": "image", "path": "missing.png" }"#, 422, "missing.png"),
        ("PUT", "/scene", r#"{ "width": 0, "height": 48 }"#, 422, "width"),
        ("PUT", "/scene", r#"{ "width": 64, "height": 48, "extra": 1 }"#, 422, "extra"),
    ];
    for (method, path, body, status, needle) in cases {
        let (got, text) = server.request(method, path, body);
        assert_eq!(got, *status, "{method} {path} {body}: {text}");
        assert!(text.contains(needle), "{method} {path} {body}: {needle:?} not in {text}");
    }
    let huge = format!("{{ \"text\": \"{}\" }}", "x".repeat(2 << 20));
    assert_eq!(server.request("PATCH", "/layers/box", &huge).0, 413);
    // The running scene is untouched and frames keep coming.
    assert_eq!(server.request("GET", "/scene", "").1, before);
    let n = frames(&server);
    std::thread::sleep(Duration::from_millis(400));
    assert!(frames(&server) > n, "still rendering");
    assert_eq!(pixel(&server, 5, 5), [255, 0, 0, 255]);
}

#[test]
fn concurrent_patches_neither_deadlock_nor_lose_the_last_write() {
    let server = Server::start("concurrent", &[]);
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 200);
    let addr = server.addr.clone();
    let results: Vec<(u64, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..=100)
            .map(|i| {
                let addr = addr.clone();
                s.spawn(move || {
                    let opacity = f64::from(i) / 100.0;
                    let body = format!("{{ \"opacity\": {opacity} }}");
                    let (status, text) = http(&addr, "PATCH", "/layers/box", body.as_bytes(), &[]);
                    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
                    let v: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
                    (v["revision"].as_u64().expect("revision"), opacity)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let mut revisions: Vec<u64> = results.iter().map(|r| r.0).collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), 100, "each update applied once, in some order");
    let last = results.iter().max_by_key(|r| r.0).expect("results");
    let (_, scene) = server.request("GET", "/scene", "");
    let scene: serde_json::Value = serde_json::from_str(&scene).expect("scene");
    assert_eq!(scene["layers"][0]["opacity"].as_f64(), Some(last.1), "the last applied write wins");
}

#[test]
fn the_token_is_enforced_and_open_binds_need_one() {
    let server = Server::start("token", &["--token", "s3cret-token"]);
    assert_eq!(server.request("GET", "/health", "").0, 200, "health stays open");
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 401);
    assert_eq!(server.request_with("PUT", "/scene", SCENE, &["Authorization: Bearer wrong-token!"]).0, 401);
    assert_eq!(server.request_with("PUT", "/scene", SCENE, &["Authorization: Bearer s3cret-token"]).0, 200);
    assert_eq!(server.request("GET", "/metrics", "").0, 401);
    let open =
        Command::new(env!("CARGO_BIN_EXE_streamlib")).args(["serve", "--listen", "0.0.0.0:0"]).output().expect("run");
    assert_eq!(open.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&open.stderr).contains("--token"));
}

fn ffprobe_frames(path: &Path) -> u64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout).trim().trim_matches(',').parse().unwrap_or(0)
}

#[test]
fn outputs_stay_under_the_media_root_hls_is_served_and_sigterm_finishes_files() {
    let server = Server::start("outputs", &[]);
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 200);
    for path in ["../escape.mp4", "/tmp/escape.mp4", "a/../../escape.mp4"] {
        let body = format!(r#"{{ "id": "x", "kind": "file", "path": "{path}" }}"#);
        let (status, text) = server.request("POST", "/outputs", &body);
        assert_eq!(status, 403, "{path}: {text}");
        assert!(text.contains("media root"), "{text}");
    }
    let (status, text) = server.request(
        "POST",
        "/outputs",
        r#"{ "id": "rec", "kind": "file", "path": "rec.mp4", "preset": "ultrafast" }"#,
    );
    assert_eq!(status, 200, "{text}");
    let hls = r#"{ "id": "live", "kind": "hls", "dir": "hls", "mode": "live", "window": 3, "segment_seconds": 1, "preset": "ultrafast" }"#;
    assert_eq!(server.request("POST", "/outputs", hls).0, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    // Until the first segment is listed (the playlist exists from the start, empty).
    let listed =
        |root: &Path| std::fs::read_to_string(root.join("hls/48p/index.m3u8")).is_ok_and(|p| p.contains("#EXTINF"));
    while !listed(&server.root) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, master) = server.request("GET", "/media/hls/master.m3u8", "");
    assert_eq!(status, 200);
    assert!(master.starts_with("#EXTM3U") && master.contains("48p/index.m3u8"), "{master}");
    let (status, playlist) = server.request("GET", "/media/hls/48p/index.m3u8", "");
    assert_eq!(status, 200, "{playlist}");
    assert!(playlist.starts_with("#EXTM3U"), "{playlist}");
    assert_eq!(server.request("GET", "/media/../etc/passwd", "").0 / 100, 4, "no escape through /media either");
    // Metrics name every sink.
    let (_, metrics) = server.request("GET", "/metrics", "");
    assert!(metrics.contains("streamlib_sink_dropped_total{output=\"rec\""), "{metrics}");
    assert!(metrics.contains("streamlib_frames_rendered_total"), "{metrics}");
    let root = server.root.clone();
    assert_eq!(server.terminate(), Some(0));
    assert!(ffprobe_frames(&root.join("rec.mp4")) > 10, "the mp4 was finished and plays");
}

#[test]
fn events_openapi_and_metrics_are_served() {
    let server = Server::start("events", &[]);
    let (status, doc) = server.request("GET", "/openapi.json", "");
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("OpenAPI JSON");
    assert_eq!(doc["openapi"], "3.0.3");
    assert!(doc["paths"]["/layers/{id}"]["patch"].is_object());
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 200);
    // Read the event stream until a stats event arrives.
    let mut s = TcpStream::connect(&server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    write!(s, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.contains("event: stats") && Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen += &String::from_utf8_lossy(&buf[..n]),
        }
    }
    assert!(seen.contains("text/event-stream"), "{seen}");
    assert!(seen.contains("event: stats") && seen.contains("\"fps\""), "{seen}");
}

/// `GET /stats/sync` and `/metrics` say which clock paces the output and how it is doing (the
/// system clock here: its own reference, no steps).
#[test]
fn the_pacing_clock_is_reported() {
    let server = Server::start("clock", &[]);
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    let sync = loop {
        let (status, body) = server.request("GET", "/stats/sync", "");
        assert_eq!(status, 200, "{body}");
        let sync: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if sync["clock"].is_object() && sync["output"]["frames"].as_u64().unwrap_or(0) > 0 {
            break sync;
        }
        assert!(Instant::now() < deadline, "no clock status: {sync}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(sync["clock"]["name"], "system", "{sync}");
    assert_eq!(sync["clock"]["state"], "free_running", "{sync}");
    assert_eq!(sync["clock"]["timescale"], "monotonic", "{sync}");
    assert_eq!(sync["clock"]["steps"], 0, "{sync}");
    assert!(sync["output"]["missed_ticks"].as_u64().is_some(), "{sync}");
    assert_eq!(metric(&server, "streamlib_clock_locked{clock=\"system\"}"), Some(1.0));
    assert_eq!(metric(&server, "streamlib_clock_steps_total{clock=\"system\"}"), Some(0.0));
}

/// Two live inputs, one 100 ms late, aligned within a 200 ms budget: `/stats/sync` and `/metrics`
/// say where each stands; a new sync policy alone does not restart the input.
#[test]
fn live_inputs_sync_figures_are_served() {
    let server = Server::start("livesync", &[]);
    let scene = |offset_ms: f64| {
        serde_json::json!({
            "width": 320, "height": 180, "fps": 30, "sync": { "latency_ms": 200 },
            "inputs": {
                "a": { "kind": "live_test", "fps": 30, "width": 160, "height": 90 },
                "b": { "kind": "live_test", "fps": 25, "width": 160, "height": 90, "delay_ms": 100,
                       "sync": { "offset_ms": offset_ms, "max_repeat": 10 } }
            },
            "layers": [{ "id": "wall", "kind": "mosaic", "inputs": ["a", "b"] }]
        })
        .to_string()
    };
    assert_eq!(server.request("PUT", "/scene", &scene(0.0)).0, 200);
    let shown = |sync: &serde_json::Value, id: &str| sync["sync"][id]["shown"].as_u64().unwrap_or(0);
    let wait_for = |min: u64| {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, body) = server.request("GET", "/stats/sync", "");
            assert_eq!(status, 200, "{body}");
            let sync: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            if shown(&sync, "a") >= min && shown(&sync, "b") >= min {
                break sync;
            }
            assert!(Instant::now() < deadline, "inputs not shown {min} times: {sync}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let sync = wait_for(30);
    assert_eq!((sync["mode"].as_str(), sync["latency_ms"].as_f64()), (Some("aligned"), Some(200.0)), "{sync}");
    let transit = sync["sync"]["b"]["transit_ms"].as_f64().unwrap_or(0.0);
    assert!((90.0..160.0).contains(&transit), "b arrives 100 ms after capture: {sync}");
    assert!(sync["sync"]["a"]["offset_p50_ms"].as_f64().is_some_and(|o| o.abs() <= 17.0), "{sync}");
    assert!(sync["output"]["spread_ms"]["count"].as_u64().unwrap_or(0) > 0, "{sync}");
    assert!(sync["output"]["ticks"]["lateness"]["p50_ms"].as_f64().is_some(), "{sync}");
    let fps = metric(&server, "streamlib_input_fps{input=\"a\"}").unwrap_or(0.0);
    assert!((fps - 30.0).abs() < 0.5, "{fps}");
    assert!(metric(&server, "streamlib_input_sync_ticks_total{input=\"b\",event=\"shown\"}").unwrap_or(0.0) > 0.0);
    assert!(metric(&server, "streamlib_input_sync_offset_seconds_count{input=\"a\"}").unwrap_or(0.0) > 0.0);
    // Only b's offset changes: it keeps running (its counts go on from where they were).
    let before = shown(&sync, "b");
    assert_eq!(server.request("PUT", "/scene", &scene(-20.0)).0, 200);
    std::thread::sleep(Duration::from_millis(300));
    let (_, body) = server.request("GET", "/stats/sync", "");
    let after: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    // A rebuilt input would count from 0 again.
    assert!(shown(&after, "b") >= before, "b restarted: {before} shown before, {after}");
}

/// Issue 20's render-thread panics and confinement holes: each request is refused with a 4xx, the
/// server stays healthy, frames keep coming and the scene is what it was.
#[test]
fn hostile_scenes_and_links_are_refused_and_the_server_stays_healthy() {
    let server = Server::start("hostile", &[]);
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 200);
    let (_, before) = server.request("GET", "/scene", "");
    // A link inside the media root to the outside, and a file reachable only through it.
    let outside = std::env::temp_dir().join(format!("streamlib-serve-{}-outside", std::process::id()));
    std::fs::create_dir_all(&outside).expect("outside dir");
    std::fs::write(outside.join("secret.png"), b"not yours").expect("outside file");
    std::os::unix::fs::symlink(&outside, server.root.join("link")).expect("symlink");
    std::fs::write(server.root.join("in.y4m"), b"YUV4MPEG2 W2 H2 F30:1 C420jpeg\nFRAME\n\0\0\0\0\0\0").expect("y4m");
    let fifo = std::process::Command::new("mkfifo").arg(server.root.join("pipe")).status().expect("mkfifo");
    assert!(fifo.success());
    let with = |field: &str, value: &str| {
        let mut v: serde_json::Value = serde_json::from_str(SCENE).expect("scene");
        match field {
            "input" => v["inputs"]["f"] = serde_json::json!({ "kind": "y4m", "path": value }),
            "image" => v["layers"]
                .as_array_mut()
                .expect("layers")
                .push(serde_json::json!({ "id": "i", "kind": "image", "path": value })),
            _ => v["outputs"] = serde_json::json!([{ "kind": "png", "path": value }]),
        }
        v.to_string()
    };
    let deep = format!("/media{}", "/a".repeat(3000));
    let mut overwrite: serde_json::Value = serde_json::from_str(&with("input", "in.y4m")).expect("scene");
    overwrite["outputs"] = serde_json::json!([{ "kind": "y4m", "path": "./in.y4m" }]);
    let overwrite = overwrite.to_string();
    let cases: Vec<(&str, &str, String, u16, &str)> = vec![
        // Serde takes a struct from an array; a scene is an object (this one used to wedge the server).
        ("PUT", "/scene", "[320, 180]".into(), 422, "object"),
        ("PUT", "/scene", with("output", "out\u{0}.png"), 403, "NUL"),
        ("PUT", "/scene", with("input", "link/secret.y4m"), 403, "link"),
        ("PUT", "/scene", with("image", "link/secret.png"), 403, "link"),
        ("PUT", "/scene", with("output", "link/new.png"), 403, "link"),
        ("PUT", "/scene", overwrite, 422, "would overwrite a file this scene reads"),
        ("GET", "/media/link/secret.png", String::new(), 404, "outside"),
        // FIFOs used to block the render thread (and SIGTERM) forever.
        ("PUT", "/scene", with("input", "pipe"), 422, "not a regular file"),
        ("PUT", "/scene", with("image", "pipe"), 422, "not a regular file"),
        ("PUT", "/scene", with("output", "pipe"), 422, "not a regular file"),
        ("GET", "/media/pipe", String::new(), 404, "not a regular file"),
        ("GET", &deep, String::new(), 404, "longer than"),
    ];
    for (method, path, body, status, needle) in &cases {
        let (got, text) = server.request(method, path, body);
        let shown: String = path.chars().take(40).collect();
        assert_eq!(got, *status, "{method} {shown} {body}: {text}");
        assert!(text.contains(needle), "{method} {shown} {body}: {needle:?} not in {text}");
    }
    // An edit after the array was refused (it used to panic the render thread).
    assert_eq!(server.request("PATCH", "/layers/box", r#"{ "opacity": 1 }"#).0, 200);
    let (status, health) = server.request("GET", "/health", "");
    assert_eq!(status, 200, "{health}");
    assert!(health.contains("\"panics\":0"), "{health}");
    let n = frames(&server);
    std::thread::sleep(Duration::from_millis(300));
    assert!(frames(&server) > n, "still rendering");
    let (_, after) = server.request("GET", "/scene", "");
    let strip = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).expect("scene JSON");
        v.as_object_mut().map(|o| o.remove("revision"));
        v
    };
    // Only the accepted patch changed it.
    let mut expected = strip(&before);
    expected["layers"][0]["opacity"] = serde_json::json!(1);
    assert_eq!(strip(&after), expected);
    let _ = std::fs::remove_dir_all(&outside);
}

#[test]
fn health_is_503_with_the_reason_when_the_server_cannot_render() {
    let server = Server::start_with_env("nogpu", &[], &[("WGPU_ADAPTER_NAME", "no-such-adapter")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = server.request("GET", "/health", "");
        if status == 503 {
            assert!(body.contains("no GPU") && body.contains("no-such-adapter"), "{body}");
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(Instant::now() < deadline, "health never reported the missing GPU: {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn trailing_garbage_and_endless_frame_rates_are_refused() {
    let server = Server::start("garbage", &[]);
    assert_eq!(server.request("PUT", "/scene", SCENE).0, 200);
    let (status, body) = server.request("PATCH", "/layers/box", r#"{"opacity":0.5}xyz"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("trailing"), "{body}");
    let slow = SCENE.replace("\"fps\": 30", "\"fps\": \"1/4294967295\"");
    let (status, body) = server.request("PUT", "/scene", &slow);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("[1, 1000]"), "{body}");
    // Still at 30 fps: a frame within a few frame periods.
    let n = frames(&server);
    std::thread::sleep(Duration::from_millis(300));
    assert!(frames(&server) > n);
}

/// Issue 20's HTTP holes: idle and slow sockets are closed after the header timeout, connections
/// beyond the limit are closed at once while `/health` answers again as soon as the others go, a
/// 2 GiB Content-Length with no body gets 413 at once.
#[test]
fn slow_idle_and_lying_clients_cannot_hold_the_server() {
    let server = Server::start("slowloris", &["--header-timeout", "1", "--max-connections", "16"]);
    // Slowloris: half a request line, then nothing.
    let mut slow = TcpStream::connect(&server.addr).expect("connect");
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").expect("write");
    let idle: Vec<TcpStream> = (0..40).filter_map(|_| TcpStream::connect(&server.addr).ok()).collect();
    assert!(idle.len() >= 16, "connected {}", idle.len());
    let started = Instant::now();
    slow.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let held = started.elapsed();
    assert!(held < Duration::from_secs(5), "a slow client held its connection {held:?}");
    drop(idle);
    // Once the idle sockets are gone (closed by us or timed out), health answers.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(&server.addr) {
            s.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
            let _ = s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
        }
        assert!(Instant::now() < deadline, "health never answered after the idle sockets went");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A body announced but never sent.
    let mut liar = TcpStream::connect(&server.addr).expect("connect");
    liar.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    liar.write_all(
        b"PUT /scene HTTP/1.1\r\nHost: x\r\nContent-Length: 2147483648\r\nContent-Type: application/json\r\n\r\n",
    )
    .expect("write");
    let mut answer = vec![0u8; 64];
    let n = liar.read(&mut answer).expect("an answer before any body");
    assert!(
        String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 413"),
        "{:?}",
        String::from_utf8_lossy(&answer[..n])
    );
    assert_eq!(server.terminate(), Some(0), "SIGTERM with connections open still stops cleanly");
}

/// A short run of the HTTP fuzz harness (`scripts/fuzz_api.py`; the long run is a separate
/// command, see README): mutated bodies on every route, broken HTTP, bursts of connections;
/// no 5xx, the server alive, frames advancing, the scene changed only by accepted requests.
#[test]
fn the_api_survives_a_short_fuzz_run() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/fuzz_api.py");
    let run = Command::new("python3")
        .arg(&script)
        .args(["--bin", env!("CARGO_BIN_EXE_streamlib"), "--requests", "600", "--seed", "11", "--max-seconds", "240"])
        .output();
    let out = match run {
        Ok(out) => out,
        Err(e) if std::env::var_os("STREAMLIB_REQUIRE_PRIVILEGED").is_none() => {
            eprintln!("SKIPPED the fuzz run: python3: {e}");
            return;
        }
        Err(e) => panic!("python3 is needed here: {e}"),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("'5xx': 0"), "{text}");
}

/// Reads server-sent events until `done` holds for one or `timeout` passes; returns the events.
fn events_until(
    server: &Server,
    timeout: Duration,
    done: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let mut s = TcpStream::connect(&server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    write!(s, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let (mut text, mut events, mut buf) = (String::new(), Vec::new(), [0u8; 65536]);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            text += &String::from_utf8_lossy(&buf[..n]);
        }
        while let Some(at) = text.find("data: ") {
            let Some(end) = text[at..].find('\n') else { break };
            let line = text[at + 6..at + end].to_string();
            text = text[at + end..].to_string();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                let finished = done(&v);
                events.push(v);
                if finished {
                    return events;
                }
            }
        }
    }
    events
}

fn metric(server: &Server, line_start: &str) -> Option<f64> {
    let (_, text) = server.request("GET", "/metrics", "");
    text.lines().filter(|l| l.starts_with(line_start)).find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Two servers joined by the frame protocol: an output added with `POST /outputs`, the
/// receiver's `/metrics` and `/events` reporting the link's state, counters and the sender's
/// metadata, and the state turning to holding and stale when the sender's output goes.
#[test]
fn a_network_link_between_two_servers_reports_its_state_counters_and_metadata() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let sender = Server::start("net-sender", &[]);
    assert_eq!(sender.request("PUT", "/scene", SCENE).0, 200);
    let output = format!(r#"{{"id": "uplink", "kind": "network", "url": "tcp://127.0.0.1:{port}", "codec": "jpeg"}}"#);
    let (status, body) = sender.request("POST", "/outputs", &output);
    assert_eq!(status, 200, "{body}");
    let revision: serde_json::Value = serde_json::from_str(&body).expect("applied");
    let revision = revision["revision"].as_u64().expect("revision");
    let receiver = Server::start("net-receiver", &[]);
    let scene = format!(
        r#"{{"width": 64, "height": 48, "fps": 30,
            "inputs": {{ "net": {{ "kind": "network", "url": "tcp://127.0.0.1:{port}", "hold_ms": 1500 }} }},
            "layers": [ {{ "id": "v", "kind": "video", "input": "net" }},
                        {{ "id": "t", "kind": "text", "text": "{{meta.net.timecode}}", "size": 10, "rect": [0, 30, 64, 18] }} ] }}"#
    );
    assert_eq!(receiver.request("PUT", "/scene", &scene).0, 200);
    let live = events_until(&receiver, Duration::from_secs(15), |e| {
        e["type"] == "stats"
            && e["inputs"][0]["state"] == "live"
            && e["inputs"][0]["counters"]["frames"].as_u64() > Some(5)
    });
    let stats = live.last().expect("events");
    assert_eq!(stats["inputs"][0]["state"], "live", "{live:?}");
    let input = &stats["inputs"][0];
    assert_eq!(input["input"], "net");
    assert_eq!(input["metadata"]["scene_revision"].as_u64(), Some(revision), "the sender's revision: {input}");
    assert!(input["metadata"]["timecode"].as_str().is_some_and(|t| t.len() == 11), "the sender's timecode: {input}");
    assert_eq!(input["counters"]["connected"], 1);
    assert_eq!(input["counters"]["malformed"], 0);
    assert!(input["latency_ms"].as_f64().is_some());
    assert_eq!(metric(&receiver, r#"streamlib_input_state{input="net",state="live"}"#), Some(1.0));
    assert!(metric(&receiver, r#"streamlib_input_frames_total{input="net"}"#) > Some(5.0));
    assert_eq!(metric(&sender, r#"streamlib_sink_net_peers{output="uplink""#), Some(1.0), "one receiver");
    // The red box came across the network (JPEG: within a tolerance).
    let [r, g, b, _] = pixel(&receiver, 4, 4);
    assert!(r > 200 && g < 60 && b < 60, "({r}, {g}, {b})");
    // The sender's output goes: the receiver holds the last frame, then shows nothing.
    assert_eq!(sender.request("DELETE", "/outputs/uplink", "").0, 200);
    let states =
        events_until(&receiver, Duration::from_secs(10), |e| e["type"] == "input_state" && e["state"] == "stale");
    let seen: Vec<&str> =
        states.iter().filter(|e| e["type"] == "input_state").filter_map(|e| e["state"].as_str()).collect();
    assert!(seen.ends_with(&["stale"]), "{seen:?}");
    assert_eq!(metric(&receiver, r#"streamlib_input_state{input="net",state="stale"}"#), Some(1.0));
}

/// A live SRT input whose peer is not there yet: `input_error` events say why (with the count
/// in `/metrics`) while the scene renders on; when gst-launch-1.0 starts listening and sending,
/// `input_recovered` follows and its picture shows. An RTMP output with no server reports
/// `output_error` and keeps reconnecting; the scene never stops (issue 13).
#[test]
fn live_links_report_errors_and_recovery_in_events_and_metrics() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let rtmp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let server = Server::start("live-links", &[]);
    let scene = format!(
        r##"{{"width": 64, "height": 48, "fps": 30, "background": "#0000FF",
            "inputs": {{ "cam": {{ "kind": "srt", "url": "srt://127.0.0.1:{port}?mode=caller&latency=20" }} }},
            "layers": [ {{ "id": "v", "kind": "video", "input": "cam" }} ],
            "outputs": [ {{ "id": "push", "kind": "rtmp", "url": "rtmp://127.0.0.1:{rtmp}/live/key" }} ] }}"##
    );
    let (status, body) = server.request("PUT", "/scene", &scene);
    assert_eq!(status, 200, "{body}");
    let failing = events_until(&server, Duration::from_secs(15), |e| e["type"] == "input_error");
    let error = failing.iter().find(|e| e["type"] == "input_error").unwrap_or_else(|| panic!("{failing:?}"));
    assert_eq!(error["input"], "cam");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "it says why: {error}");
    assert!(metric(&server, r#"streamlib_input_link_errors_total{input="cam"}"#) >= Some(1.0));
    let pushing = events_until(&server, Duration::from_secs(10), |e| e["type"] == "output_error");
    assert!(pushing.iter().any(|e| e["type"] == "output_error" && e["output"] == "push"), "{pushing:?}");
    let [r, g, b, _] = pixel(&server, 32, 24);
    assert!(b > 200 && r < 60 && g < 60, "the background while the input waits: ({r}, {g}, {b})");
    let mut sender = std::process::Command::new("gst-launch-1.0")
        .args([
            "-q",
            "videotestsrc",
            "pattern=red",
            "is-live=true",
            "!",
            "video/x-raw,width=160,height=90,framerate=30/1",
        ])
        .args(["!", "x264enc", "tune=zerolatency", "key-int-max=15", "!", "mpegtsmux", "!", "srtsink"])
        .arg(format!("uri=srt://127.0.0.1:{port}?mode=listener&latency=20"))
        .spawn()
        .expect("gst-launch-1.0");
    let recovered = events_until(&server, Duration::from_secs(20), |e| e["type"] == "input_recovered");
    let seen = recovered.iter().any(|e| e["type"] == "input_recovered" && e["input"] == "cam");
    let [r, g, b, _] = pixel(&server, 32, 24);
    let _ = sender.kill();
    let _ = sender.wait();
    assert!(seen, "{recovered:?}");
    assert!(r > 200 && g < 60 && b < 60, "the sender's red: ({r}, {g}, {b})");
    // An RTP output's SDP is served for players that open it over HTTP.
    let rtp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port() & !1;
    let output = format!(r#"{{"id": "rtp", "kind": "rtp", "sdp": "out.sdp", "port": {rtp}}}"#);
    let (status, body) = server.request("POST", "/outputs", &output);
    assert_eq!(status, 200, "{body}");
    let (status, sdp) = server.request("GET", "/outputs/rtp/sdp", "");
    assert_eq!(status, 200, "{sdp}");
    assert!(sdp.contains(&format!("m=video {rtp} RTP/AVPF 96 97")) && sdp.contains("a=rtpmap:96 H264/90000"), "{sdp}");
    assert_eq!(server.request("GET", "/outputs/push/sdp", "").0, 404, "an RTMP output has no SDP");
}

/// A `faces` layer in a served scene reports its inference figures in `/metrics` (issue 15).
#[test]
fn an_ml_layer_reports_inference_figures_in_metrics() {
    let server = Server::start("ml", &[]);
    if common::astronaut_y4m(&server.root.join("astronaut.y4m")).is_none() {
        return;
    }
    let scene = r#"{ "width": 512, "height": 512, "fps": 30,
        "inputs": { "photo": { "kind": "y4m", "path": "astronaut.y4m", "loop": true } },
        "layers": [ { "id": "faces", "kind": "faces", "input": "photo", "anonymize": "blur" } ] }"#;
    let (status, body) = server.request("PUT", "/scene", scene);
    assert_eq!(status, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&server, "streamlib_layer_inference_runs_total{layer=\"faces\"}").unwrap_or(0.0) < 3.0 {
        assert!(Instant::now() < deadline, "no inference figures in /metrics");
        std::thread::sleep(Duration::from_millis(100));
    }
    let age = metric(&server, "streamlib_layer_result_age_frames{layer=\"faces\"}").expect("result age");
    let ms = metric(&server, "streamlib_layer_inference_ms{layer=\"faces\"}").expect("inference ms");
    assert_eq!(metric(&server, "streamlib_layer_faces{layer=\"faces\"}"), Some(1.0), "one face followed");
    println!("result age {age} frames, inference {ms} ms");
    assert!(ms > 0.0 && age < 30.0);
    // The face rides on the `stats` event as a detection (fractions of the frame, a track id)...
    let events = events_until(&server, Duration::from_secs(5), |e| e["type"] == "stats");
    let stats = events.last().expect("a stats event");
    let face = &stats["layers"][0]["detections"][0];
    assert_eq!(face["label"], "face", "{stats}");
    let centre = (face["x"].as_f64().unwrap_or(0.0) + face["w"].as_f64().unwrap_or(0.0) / 2.0) * 512.0;
    assert!((centre - 227.0).abs() < 20.0, "the face's detection is where the face is: {face}");
    assert!(face["track_id"].as_u64().is_some(), "{face}");
    // ...and a change in what is found is an event of its own: hiding the layer loses the face.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(700));
            let (status, body) = server.request("PATCH", "/layers/faces", r#"{"visible": false}"#);
            assert_eq!(status, 200, "{body}");
        });
        let events = events_until(&server, Duration::from_secs(10), |e| e["type"] == "detections");
        let gone = events.last().expect("events");
        assert_eq!((gone["type"].as_str(), gone["count"].as_u64()), (Some("detections"), Some(0)), "{gone}");
    });
}
