//! `streamlib bench ml`: the ML layers at 720p30 on this machine's adapter. Inference time per
//! model and tensor size on one ONNX Runtime thread; then paced 30 fps live runs of the same
//! scene, the picture as a `video` layer (off) and as each ML layer (`faces` with CenterFace and
//! with BlazeFace, `segment`, `pose`), side by side: frame time p50/p99, frames that missed their
//! tick, the result's age in frames and bytes read back for the model.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamlib::{Engine, GpuContext, Pacing, PixelFormat, Registry, Scene};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const FPS: u32 = 30;

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// astronaut.png centred on a 720p frame, as a one-frame y4m.
fn picture(dir: &Path) -> Result<std::path::PathBuf> {
    let png = streamlib::ml::ml_dir().join("test/astronaut.png");
    if !png.is_file() {
        bail!("{} is missing: run python3 scripts/ml/fetch.py", png.display());
    }
    let y4m = dir.join("streamlib-bench-ml.y4m");
    let status = Command::new("ffmpeg")
        .args(["-y", "-v", "error", "-i"])
        .arg(&png)
        .args(["-vf", "pad=1280:720:384:104", "-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe"])
        .arg(&y4m)
        .status()
        .context("ffmpeg (bash scripts/setup.sh)")?;
    if !status.success() {
        bail!("ffmpeg could not convert {}", png.display());
    }
    Ok(y4m)
}

fn scene(y4m: &Path, layer: &serde_json::Value) -> Result<Scene> {
    let mut layer = layer.clone();
    layer["id"] = "layer".into();
    layer["input"] = "photo".into();
    let doc = serde_json::json!({
        "width": WIDTH, "height": HEIGHT, "fps": FPS,
        "inputs": { "photo": { "kind": "y4m", "path": y4m, "loop": true } },
        "layers": [ layer ]
    });
    Ok(Scene::from_value(doc, &Registry::default())?)
}

#[derive(serde::Serialize)]
struct RunRow {
    layer: String,
    frames: usize,
    frame_ms_p50: f64,
    frame_ms_p99: f64,
    missed_ticks: u64,
    age_frames_p50: f64,
    age_frames_p95: f64,
    inference_runs: f64,
    frames_skipped: f64,
    tensor_bytes: f64,
}

/// Renders `seconds` of `scene` paced at 30 fps; each frame's render time (CPU side, readback
/// of the previous frames included) and the layer's figures.
fn paced(
    gpu: &GpuContext,
    pipelines: &Arc<streamlib::Pipelines>,
    scene: Scene,
    label: &str,
    seconds: f64,
) -> Result<RunRow> {
    // Live: ML layers run beside compositing, as on a server (offline, each frame would wait).
    let mut engine = Engine::with_pipelines(gpu, pipelines.clone(), scene, &Registry::default(), Pacing::Realtime)?;
    for i in 0..5 {
        engine.render(i, &[PixelFormat::Rgba8])?;
    }
    let period = Duration::from_secs_f64(1.0 / f64::from(FPS));
    let count = (seconds * f64::from(FPS)) as u64;
    let (mut times, mut ages) = (Vec::new(), Vec::new());
    let mut missed = 0;
    let start = Instant::now();
    for n in 0..count {
        let deadline = start + period * n as u32;
        let now = Instant::now();
        if now < deadline {
            std::thread::sleep(deadline - now);
        } else if now > deadline + period {
            missed += 1;
        }
        let t = Instant::now();
        engine.render(5 + n, &[PixelFormat::Rgba8])?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let stats = engine.layer_stats();
        if let Some(age) = stats.first().and_then(|(_, s)| s.iter().find(|(k, _)| *k == "result_age_frames")) {
            ages.push(age.1);
        }
    }
    let stat = |name: &str| {
        engine
            .layer_stats()
            .first()
            .and_then(|(_, s)| s.iter().find(|(k, _)| *k == name).map(|(_, v)| *v))
            .unwrap_or(0.0)
    };
    Ok(RunRow {
        layer: label.to_string(),
        frames: times.len(),
        frame_ms_p50: percentile(&times, 0.5),
        frame_ms_p99: percentile(&times, 0.99),
        missed_ticks: missed,
        age_frames_p50: percentile(&ages, 0.5),
        age_frames_p95: percentile(&ages, 0.95),
        inference_runs: stat("inference_runs_total"),
        frames_skipped: stat("frames_skipped_total"),
        tensor_bytes: stat("tensor_bytes"),
    })
}

/// (label, model file, tensor width × height, NHWC) of every model the layers run.
const MODELS: &[(&str, &str, (u32, u32), bool)] = &[
    ("CenterFace", "centerface.onnx", (320, 192), false),
    ("CenterFace", "centerface.onnx", (640, 352), false),
    ("BlazeFace short range", "face_detection_short_range.onnx", (128, 128), true),
    ("selfie segmentation landscape", "selfie_segmentation_landscape.onnx", (256, 144), true),
    ("selfie segmentation square", "selfie_segmentation.onnx", (256, 256), true),
    ("BlazePose detector", "pose_detection.onnx", (224, 224), true),
    ("BlazePose landmarks lite", "pose_landmark_lite.onnx", (256, 256), true),
];

#[derive(serde::Serialize)]
struct InferenceRow {
    model: &'static str,
    width: u32,
    height: u32,
    runs: usize,
    ms_p50: f64,
    ms_p95: f64,
}

pub fn ml(seconds: f64, json: Option<&Path>) -> Result<()> {
    let gpu = GpuContext::new()?;
    let adapter = gpu.adapter_summary().to_string();
    println!(
        "ml: {WIDTH}x{HEIGHT}@{FPS}, {} CPUs, adapter {adapter}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let y4m = picture(&std::env::temp_dir())?;
    // Inference alone, one thread, a mid-grey tensor (these models' cost does not depend on it).
    let mut inference = Vec::new();
    for &(label, file, (w, h), nhwc) in MODELS {
        let path = streamlib::ml::model_path(file);
        let mut model = streamlib::ml::Model::open(&path)?;
        let (input, _) = model.first_names();
        let outputs = model.output_names();
        let outputs: Vec<&str> = outputs.iter().map(String::as_str).collect();
        let (w, h) = (w as usize, h as usize);
        let shape = if nhwc { [1, h, w, 3] } else { [1, 3, h, w] };
        let tensor = vec![0.5f32; 3 * w * h];
        // A quick run (tests) times a few: the full one keeps two cores busy for seconds.
        let (warm, timed) = if seconds < 5.0 { (1, 5) } else { (3, 30) };
        for _ in 0..warm {
            model.run(&input, shape, tensor.clone(), &outputs)?;
        }
        let mut ms = Vec::new();
        for _ in 0..timed {
            let t = Instant::now();
            model.run(&input, shape, tensor.clone(), &outputs)?;
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        inference.push(InferenceRow {
            model: label,
            width: w as u32,
            height: h as u32,
            runs: ms.len(),
            ms_p50: percentile(&ms, 0.5),
            ms_p95: percentile(&ms, 0.95),
        });
    }
    println!();
    println!("| model | tensor | runs | inference ms p50 | p95 |");
    println!("|---|---|---|---|---|");
    for r in &inference {
        println!("| {} | {}x{} | {} | {:.1} | {:.1} |", r.model, r.width, r.height, r.runs, r.ms_p50, r.ms_p95);
    }
    let pipelines = Arc::new(streamlib::Pipelines::new(&gpu)?);
    let mut runs = Vec::new();
    let off = serde_json::json!({ "kind": "video" });
    let layers = [
        ("video (off)", off.clone()),
        ("faces, CenterFace 320 (boxes)", serde_json::json!({ "kind": "faces" })),
        (
            "faces, BlazeFace (pixelate)",
            serde_json::json!({ "kind": "faces", "detector": "blazeface", "anonymize": "pixelate" }),
        ),
        ("segment (background blur)", serde_json::json!({ "kind": "segment", "effect": "blur" })),
        ("pose (skeleton)", serde_json::json!({ "kind": "pose" })),
        ("video (off, again)", off),
    ];
    for (label, layer) in &layers {
        runs.push(paced(&gpu, &pipelines, scene(&y4m, layer)?, label, seconds)?);
    }
    println!();
    println!("| layer | frames | frame ms p50 | p99 | missed ticks | result age p50 / p95 (frames) | inferences | frames skipped | tensor bytes |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {} / {} | {} | {} | {} |",
            r.layer,
            r.frames,
            r.frame_ms_p50,
            r.frame_ms_p99,
            r.missed_ticks,
            r.age_frames_p50,
            r.age_frames_p95,
            r.inference_runs,
            r.frames_skipped,
            r.tensor_bytes
        );
    }
    if let Some(path) = json {
        let doc = serde_json::json!({ "adapter": adapter, "seconds": seconds, "inference": inference, "runs": runs });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}
