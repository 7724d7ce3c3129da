//! The preview window under Xvfb on the software Vulkan driver: what it shows equals the headless
//! render of the same frame, pause stops time, S saves the frame, Q quits with 0, and no display is
//! a clear error. Keys go in through XTEST (xdotool), pictures come out through xwd.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const SCENE: &str = include_str!("scenes/small.json");

fn tmp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamlib-preview-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir
}

/// A private X server for one test, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    fn start() -> Xvfb {
        for n in 200 + (std::process::id() % 200)..800 {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() || Path::new(&format!("/tmp/.X{n}-lock")).exists() {
                continue;
            }
            let display = format!(":{n}");
            let child = Command::new("Xvfb")
                .args([&display, "-screen", "0", "1280x720x24", "-nolisten", "tcp"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb (apt-get install xvfb)");
            let mut x = Xvfb { child, display };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                    return x;
                }
                if x.child.try_wait().ok().flatten().is_some() {
                    break; // lost a race for this display number: try the next
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            x.child.kill().ok();
        }
        panic!("could not start Xvfb");
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("DISPLAY", &self.display).env_remove("WAYLAND_DISPLAY");
        c
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The preview process and its stdout lines.
struct Preview {
    child: Child,
    lines: Receiver<String>,
}

impl Preview {
    fn expect_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(_) => break,
            }
        }
        panic!("no line starting {prefix:?} within 30 s");
    }
}

impl Drop for Preview {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

fn start_preview(x: &Xvfb, scene: &Path, snapshots: &Path) -> Preview {
    let mut child = x
        .cmd(env!("CARGO_BIN_EXE_streamlib"))
        .arg("preview")
        .arg(scene)
        .arg("--snapshot-dir")
        .arg(snapshots)
        .env("XDG_RUNTIME_DIR", snapshots)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start preview");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Preview { child, lines }
}

fn xdotool(x: &Xvfb, args: &[&str]) -> String {
    let out = x.cmd("xdotool").args(args).output().expect("xdotool (apt-get install xdotool)");
    assert!(out.status.success(), "xdotool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn key(x: &Xvfb, window: &str, name: &str) {
    xdotool(x, &["windowfocus", "--sync", window]);
    xdotool(x, &["key", name]);
}

/// RGBA bytes of an image file or of `xwd:-` from stdin data, through ImageMagick.
fn rgba_of(input: &str, data: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new("convert")
        .args([input, "-alpha", "off", "-depth", "8", "rgba:-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("convert (apt-get install imagemagick)");
    let mut stdin = child.stdin.take().expect("stdin");
    if let Some(d) = data {
        std::io::Write::write_all(&mut stdin, d).expect("feed convert");
    }
    drop(stdin);
    let out = child.wait_with_output().expect("convert");
    assert!(out.status.success());
    out.stdout
}

fn screenshot(x: &Xvfb, window: &str) -> Vec<u8> {
    let xwd = x.cmd("xwd").args(["-silent", "-id", window]).output().expect("xwd (apt-get install x11-apps)");
    assert!(xwd.status.success());
    rgba_of("xwd:-", Some(&xwd.stdout))
}

/// A screenshot once the window stopped changing: presents already queued may land a moment after
/// the key that paused (the swapchain holds up to two frames).
fn settled_screenshot(x: &Xvfb, window: &str, what: &str) -> Vec<u8> {
    let mut last = screenshot(x, window);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(150));
        let next = screenshot(x, window);
        if next == last {
            return next;
        }
        last = next;
    }
    let dump = std::env::temp_dir().join(format!("streamlib-unsettled-{what}.rgba"));
    std::fs::write(&dump, &last).ok();
    panic!("the window never settled {what} (last screenshot in {})", dump.display());
}

fn headless_render(scene: &Path, frame: u64, out: &Path) -> Vec<u8> {
    let r = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .args(["render", scene.to_str().expect("path"), "--start", &frame.to_string(), "--frames", "1", "--output"])
        .arg(out)
        .output()
        .expect("render");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    rgba_of(out.to_str().expect("path"), None)
}

/// Largest per-channel difference. The window is presented 1:1 into a non-sRGB 8-bit surface,
/// so the bytes should be identical; one step is allowed for drivers that dither or round.
fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len(), "image sizes differ");
    a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0)
}

fn frame_of(line: &str, prefix: &str) -> u64 {
    line[prefix.len()..].split_whitespace().next().and_then(|n| n.parse().ok()).expect("frame number")
}

#[test]
fn the_window_shows_the_render_and_obeys_the_keys() {
    let x = Xvfb::start();
    let dir = tmp_dir("keys");
    let scene = dir.join("scene.json");
    std::fs::write(&scene, SCENE).expect("scene");
    let mut preview = start_preview(&x, &scene, &dir);
    assert!(preview.expect_line("keys:").contains("Space"), "the key list is printed at start");
    preview.expect_line("ready:");
    let window = xdotool(&x, &["search", "--sync", "--name", "streamlib preview"]);
    let window = window.lines().next().expect("window id").to_string();
    std::thread::sleep(Duration::from_millis(300));

    // Pause: the picture stops changing, and it is the headless render of that frame.
    key(&x, &window, "space");
    let paused = frame_of(&preview.expect_line("paused at frame "), "paused at frame ");
    let a = settled_screenshot(&x, &window, "after pausing");
    std::thread::sleep(Duration::from_millis(600));
    let b = screenshot(&x, &window);
    if a != b {
        std::fs::write(dir.join("a.rgba"), &a).ok();
        std::fs::write(dir.join("b.rgba"), &b).ok();
        panic!("time must stand still while paused (screenshots in {})", dir.display());
    }
    let reference = headless_render(&scene, paused, &dir.join("reference.png"));
    assert!(max_diff(&a, &reference) <= 1, "window differs from the headless render of frame {paused}");

    // S saves exactly that frame.
    key(&x, &window, "s");
    let saved = preview.expect_line("saved ");
    let path = saved["saved ".len()..].split(" (frame").next().expect("path");
    assert!(max_diff(&rgba_of(path, None), &reference) <= 1, "saved PNG differs from the render");

    // '.' steps one frame while paused.
    key(&x, &window, "period");
    assert_eq!(frame_of(&preview.expect_line("frame "), "frame "), paused + 1);
    let stepped = settled_screenshot(&x, &window, "after stepping");
    let next_reference = headless_render(&scene, paused + 1, &dir.join("next.png"));
    assert!(max_diff(&stepped, &next_reference) <= 1, "stepped frame differs from the render");

    // H draws the HUD over the (still paused) picture.
    key(&x, &window, "h");
    assert!(settled_screenshot(&x, &window, "with the HUD") != stepped, "the HUD should appear");
    key(&x, &window, "h");

    // Resume: time moves again.
    key(&x, &window, "space");
    preview.expect_line("resumed at frame ");
    std::thread::sleep(Duration::from_millis(500));
    assert!(screenshot(&x, &window) != stepped, "the picture moves after resuming");

    // Q quits with 0.
    key(&x, &window, "q");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = preview.child.try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "preview did not quit on Q");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn no_display_is_a_clear_error() {
    let dir = tmp_dir("nodisplay");
    let scene = dir.join("scene.json");
    std::fs::write(&scene, SCENE).expect("scene");
    let out = Command::new(env!("CARGO_BIN_EXE_streamlib"))
        .arg("preview")
        .arg(&scene)
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no display"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
