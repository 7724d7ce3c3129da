//! Shared helpers for the render tests: one GPU context per test binary, scene builders, and the
//! reference-image comparison.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use streamlib::Pipelines;
use streamlib::{Engine, GpuContext, OutputFrame, Pacing, PixelFormat, Registry, Scene};

pub struct Gpu {
    pub ctx: GpuContext,
    pub pipelines: Arc<Pipelines>,
}

/// The adapter every render test uses (lavapipe on CI; a real GPU where there is one).
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| {
        let ctx = GpuContext::new().expect("a GPU adapter (install mesa-vulkan-drivers)");
        let pipelines = Arc::new(Pipelines::new(&ctx).expect("pipelines"));
        Gpu { ctx, pipelines }
    })
}

pub fn scene(json: serde_json::Value) -> Scene {
    Scene::from_value(json, &Registry::default()).expect("valid scene")
}

pub fn engine(scene: Scene) -> Engine {
    let g = gpu();
    Engine::with_pipelines(&g.ctx, g.pipelines.clone(), scene, &Registry::default(), Pacing::Offline).expect("engine")
}

/// Renders frame `index` of `scene` and reads it back in `format`.
pub fn render(scene: Scene, index: u64, format: PixelFormat) -> OutputFrame {
    let mut e = engine(scene);
    e.render_and_read(index, format).expect("render")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf()
}

/// Premultiplied RGBA to straight, as written to PNG.
pub fn straight(frame: &OutputFrame) -> Vec<u8> {
    let mut rgba = frame.data.clone();
    streamlib::sinks::unpremultiply(&mut rgba);
    rgba
}

fn read_png(path: &Path) -> Option<(u32, u32, Vec<u8>)> {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).ok()?));
    let mut reader = decoder.read_info().ok()?;
    let mut buf = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut buf).ok()?;
    if info.color_type != png::ColorType::Rgba || info.bit_depth != png::BitDepth::Eight {
        return None;
    }
    buf.truncate(info.buffer_size());
    Some((info.width, info.height, buf))
}

/// A pixel counts as different when any channel differs by more than this (in 8-bit steps).
/// Two steps: our references come from lavapipe; real GPUs round interpolated values and filtered
/// samples slightly differently.
pub const SNAPSHOT_CHANNEL_TOLERANCE: u8 = 2;
/// Share of pixels allowed to differ beyond that: edge pixels of rasterized shapes (circle,
/// segments) can land on the other side of a pixel centre on another rasterizer.
pub const SNAPSHOT_PIXEL_FRACTION: f64 = 0.005;

/// Compares `frame` with `tests/snapshots/NAME.png`. A missing reference fails; set
/// `STREAMLIB_UPDATE_SNAPSHOTS=1` to write references. On failure the actual image and a diff are
/// written to `target/snapshot-failures/`.
pub fn assert_snapshot(name: &str, frame: &OutputFrame) {
    let rgba = straight(frame);
    let root = workspace_root();
    let reference = root.join("tests/snapshots").join(format!("{name}.png"));
    if std::env::var_os("STREAMLIB_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        streamlib::sinks::write_png(&reference, frame.width, frame.height, &rgba).expect("write reference");
        eprintln!("updated {}", reference.display());
        return;
    }
    let failures = root.join("target/snapshot-failures");
    let save_actual = || {
        std::fs::create_dir_all(&failures).ok();
        let path = failures.join(format!("{name}.actual.png"));
        streamlib::sinks::write_png(&path, frame.width, frame.height, &rgba).ok();
        path
    };
    let Some((w, h, expected)) = read_png(&reference) else {
        let actual = save_actual();
        panic!(
            "missing or unreadable reference {} (actual written to {}); run with STREAMLIB_UPDATE_SNAPSHOTS=1 to create it",
            reference.display(),
            actual.display()
        );
    };
    assert_eq!((w, h), (frame.width, frame.height), "{name}: size differs from the reference");
    let mut diff = vec![0u8; rgba.len()];
    let mut bad = 0usize;
    let mut worst = 0u8;
    for (i, (a, e)) in rgba.chunks_exact(4).zip(expected.chunks_exact(4)).enumerate() {
        let d = a.iter().zip(e).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
        worst = worst.max(d);
        if d > SNAPSHOT_CHANNEL_TOLERANCE {
            bad += 1;
            diff[i * 4..i * 4 + 4].copy_from_slice(&[255, 0, 255, 255]);
        } else {
            diff[i * 4..i * 4 + 4].copy_from_slice(&[e[0] / 4, e[1] / 4, e[2] / 4, 255]);
        }
    }
    let fraction = bad as f64 / (w * h) as f64;
    if fraction > SNAPSHOT_PIXEL_FRACTION {
        let actual = save_actual();
        let diff_path = failures.join(format!("{name}.diff.png"));
        streamlib::sinks::write_png(&diff_path, w, h, &diff).ok();
        panic!(
            "{name}: {bad} pixels ({:.3} %) differ by more than {SNAPSHOT_CHANNEL_TOLERANCE}/255 (worst {worst}); \
             actual {}, diff {}",
            fraction * 100.0,
            actual.display(),
            diff_path.display()
        );
    }
}

/// Renders up to `frames` frames and returns the first input error reported, if any (an input
/// that fails keeps rendering its last frame, so the error is what tells).
pub fn first_input_error(engine: &mut Engine, frames: u64) -> Option<String> {
    for i in 0..frames {
        let (_, issues) = engine.render(i, &[PixelFormat::Rgba8]).expect("render");
        if let Some((_, e)) = issues.sources.into_iter().next() {
            return Some(e.to_string());
        }
        if engine.all_inputs_ended() {
            break;
        }
    }
    None
}

/// astronaut.png (public domain; `scripts/ml/fetch.py` puts it under the ML directory) as a
/// one-frame y4m at `y4m`, converted by ffmpeg; `None` with a SKIPPED line when the ML files are
/// not fetched (CI sets STREAMLIB_REQUIRE_ML and fails instead).
pub fn astronaut_y4m(y4m: &Path) -> Option<PathBuf> {
    let dir = std::env::var_os("STREAMLIB_ML_DIR").map_or_else(|| workspace_root().join(".ml"), PathBuf::from);
    let png = dir.join("test/astronaut.png");
    if !png.is_file() || !dir.join("models/centerface.onnx").is_file() {
        assert!(std::env::var_os("STREAMLIB_REQUIRE_ML").is_none(), "ML files missing under {}", dir.display());
        eprintln!("SKIPPED: no {} (run python3 scripts/ml/fetch.py)", png.display());
        return None;
    }
    if !y4m.is_file() {
        let status = std::process::Command::new("ffmpeg")
            .args(["-y", "-v", "error", "-i"])
            .arg(&png)
            .args(["-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe"])
            .arg(y4m)
            .status()
            .expect("ffmpeg");
        assert!(status.success(), "ffmpeg converted {}", png.display());
    }
    Some(y4m.to_path_buf())
}
