//! ML layers on the GPU (issue 15): CenterFace, MediaPipe's selfie segmentation and BlazePose
//! through ONNX Runtime on astronaut.png (public domain, from the scikit-image wheel;
//! `scripts/ml/fetch.py` puts it, the runtime and the models under `.ml/`). The face is near
//! (227, 130) in that picture.

mod common;

use common::{engine, scene};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use streamlib::{Engine, OutputFrame, Pacing, PixelFormat, Registry};

/// An engine paced live: ML layers run beside compositing and draw their newest result (the
/// tests' `engine` is offline, where each frame waits for its own result).
fn live_engine(scene: streamlib::Scene) -> Engine {
    let g = common::gpu();
    Engine::with_pipelines(&g.ctx, g.pipelines.clone(), scene, &Registry::default(), Pacing::Realtime).expect("engine")
}

/// astronaut.png as a one-frame y4m (what a test input plays in a loop), or None when the ML
/// files are not fetched.
fn astronaut() -> Option<PathBuf> {
    common::astronaut_y4m(&std::env::temp_dir().join(format!("streamlib-ml-astronaut-{}.y4m", std::process::id())))
}

fn faces_scene(y4m: &PathBuf, faces: serde_json::Value) -> streamlib::Scene {
    layer_scene(y4m, "faces", faces)
}

/// A 512 × 512 scene of the photo under one layer of `kind` with `fields`.
fn layer_scene(y4m: &PathBuf, kind: &str, fields: serde_json::Value) -> streamlib::Scene {
    let mut layer = json!({ "id": kind, "kind": kind, "input": "photo" });
    for (k, v) in fields.as_object().expect("object") {
        layer[k] = v.clone();
    }
    scene(json!({
        "width": 512, "height": 512, "fps": 30,
        "inputs": { "photo": { "kind": "y4m", "path": y4m, "loop": true } },
        "layers": [ layer ]
    }))
}

/// Renders frames (giving the worker time between them) until `done` accepts one; that frame.
fn render_until(engine: &mut Engine, mut done: impl FnMut(&OutputFrame) -> bool) -> (u64, OutputFrame) {
    let start = Instant::now();
    for i in 0.. {
        let frame = engine.render_and_read(i, PixelFormat::Rgba8).expect("render");
        if done(&frame) {
            return (i, frame);
        }
        assert!(start.elapsed() < Duration::from_secs(30), "nothing after {i} frames");
        std::thread::sleep(Duration::from_millis(20));
    }
    unreachable!()
}

fn is_box_colour([r, g, b, _]: [u8; 4]) -> bool {
    r < 60 && g > 200 && (60..150).contains(&b)
}

/// The bounding box of box-coloured pixels.
fn drawn_box(frame: &OutputFrame) -> Option<[u32; 4]> {
    let mut b: Option<[u32; 4]> = None;
    for y in 0..frame.height {
        for x in 0..frame.width {
            if is_box_colour(frame.rgba_at(x, y)) {
                let r = b.get_or_insert([x, y, x, y]);
                *r = [r[0].min(x), r[1].min(y), r[2].max(x), r[3].max(y)];
            }
        }
    }
    b
}

/// The centroid of box-coloured pixels.
fn drawn_centroid(frame: &OutputFrame) -> Option<(f32, f32)> {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for y in 0..frame.height {
        for x in 0..frame.width {
            if is_box_colour(frame.rgba_at(x, y)) {
                (sx, sy, n) = (sx + x as f32, sy + y as f32, n + 1.0);
            }
        }
    }
    (n > 0.0).then(|| (sx / n, sy / n))
}

#[test]
fn the_face_in_astronaut_png_is_found_where_it_is() {
    let Some(y4m) = astronaut() else { return };
    let mut boxes = engine(faces_scene(&y4m, json!({ "landmarks": false, "labels": false })));
    let (_, frame) = render_until(&mut boxes, |f| drawn_box(f).is_some());
    let [x0, y0, x1, y1] = drawn_box(&frame).expect("a box");
    println!("face box {x0},{y0} – {x1},{y1}");
    assert!(x0 < 227 && 227 < x1 && y0 < 130 && 130 < y1, "the box holds the face");
    assert!((40..200).contains(&(x1 - x0)), "a face-sized box: {}", x1 - x0);
    // CenterFace's boxes reach up to the hairline; the landmarks (eyes, nose, mouth corners)
    // centre on the face itself.
    let mut points = engine(faces_scene(&y4m, json!({ "boxes": false, "landmarks": true, "labels": false })));
    let (_, frame) = render_until(&mut points, |f| drawn_centroid(f).is_some());
    let centre = drawn_centroid(&frame).expect("landmarks");
    println!("landmarks centre {centre:?}");
    assert!((centre.0 - 227.0).abs() <= 8.0 && (centre.1 - 130.0).abs() <= 8.0, "centre {centre:?}");
}

#[test]
fn blazeface_finds_the_face_too() {
    let Some(y4m) = astronaut() else { return };
    // The picture, scaled into BlazeFace's 128×128 square.
    let fields = json!({ "detector": "blazeface", "landmarks": false, "labels": false });
    let mut boxes = engine(faces_scene(&y4m, fields));
    let (_, frame) = render_until(&mut boxes, |f| drawn_box(f).is_some());
    let [x0, y0, x1, y1] = drawn_box(&frame).expect("a box");
    println!("BlazeFace box {x0},{y0} – {x1},{y1}");
    let centre = ((x0 + x1) as f32 / 2.0, (y0 + y1) as f32 / 2.0);
    assert!((centre.0 - 227.0).abs() <= 8.0 && (centre.1 - 130.0).abs() <= 12.0, "box centre {centre:?}");
    assert!((40..200).contains(&(x1 - x0)), "a face-sized box: {}", x1 - x0);
    let stats = boxes.layer_stats().remove(0).1;
    let bytes = stats.iter().find(|(k, _)| *k == "tensor_bytes").map_or(0.0, |(_, v)| *v);
    assert_eq!(bytes, (128 * 128 * 3 * 4) as f64, "BlazeFace reads back a 128×128 RGB tensor");
}

#[test]
fn a_crop_hides_what_lies_outside_it_from_the_model() {
    let Some(y4m) = astronaut() else { return };
    // The right of the picture, away from her face (x 183–269): BlazeFace's letterbox around this
    // tall crop reaches over the face; it reads black beyond the crop, and boxes are clipped to
    // the crop (empty ones dropped), so no face is reported.
    let fields = json!({ "detector": "blazeface", "crop": [300, 0, 212, 512], "rect": [0, 0, 212, 512] });
    let mut offline = engine(faces_scene(&y4m, fields));
    for i in 0..3 {
        offline.render_and_read(i, PixelFormat::Rgba8).expect("render");
        let stats = offline.layer_stats().remove(0).1;
        let faces = stats.iter().find(|(k, _)| *k == "faces").map(|(_, v)| *v);
        assert_eq!(faces, Some(0.0), "frame {i}: no face inside the crop ({stats:?})");
    }
    // The same crop moved over her face finds it.
    let fields = json!({ "detector": "blazeface", "crop": [120, 0, 212, 512], "rect": [0, 0, 212, 512] });
    let mut offline = engine(faces_scene(&y4m, fields));
    offline.render_and_read(0, PixelFormat::Rgba8).expect("render");
    let stats = offline.layer_stats().remove(0).1;
    assert_eq!(stats.iter().find(|(k, _)| *k == "faces").map(|(_, v)| *v), Some(1.0), "{stats:?}");
}

#[test]
fn anonymize_hides_the_face_and_leaves_the_rest_alone() {
    let Some(y4m) = astronaut() else { return };
    let plain =
        engine(faces_scene(&y4m, json!({ "boxes": false }))).render_and_read(0, PixelFormat::Rgba8).expect("plain");
    let mut hiding = live_engine(faces_scene(&y4m, json!({ "anonymize": "pixelate" })));
    // Fails closed: nothing is shown before the model has looked at a frame.
    let first = hiding.render_and_read(0, PixelFormat::Rgba8).expect("render");
    assert!(first.data.chunks(4).all(|p| p[..3] == [0, 0, 0]), "the first frame, before any result, is empty");
    let (_, hidden) = render_until(&mut hiding, |f| f.rgba_at(20, 500)[..3] != [0, 0, 0]);
    let differs = |x0: u32, y0: u32, x1: u32, y1: u32| {
        let mut n = 0;
        for y in y0..y1 {
            for x in x0..x1 {
                let (a, b) = (plain.rgba_at(x, y), hidden.rgba_at(x, y));
                if a.iter().zip(b).any(|(p, q)| p.abs_diff(q) > 2) {
                    n += 1;
                }
            }
        }
        n
    };
    let face = differs(207, 110, 247, 150);
    assert!(face > 40 * 40 / 2, "the face changed ({face} of 1600 pixels)");
    // Away from the face (the lower half, the left edge) nothing changes.
    assert_eq!(differs(0, 300, 512, 512), 0, "the rest is untouched");
    assert_eq!(differs(0, 0, 100, 300), 0, "the rest is untouched");
}

#[test]
fn slow_inference_never_holds_frames_back() {
    let Some(y4m) = astronaut() else { return };
    // 1920 × 1920 tensors: seconds of inference on one thread, while frames go on.
    let mut engine =
        live_engine(faces_scene(&y4m, json!({ "detect_width": 1920, "landmarks": false, "labels": false })));
    // Live, the input's first frame arrives when it is decoded.
    let (first, _) = render_until(&mut engine, |f| f.rgba_at(20, 500)[..3] != [0, 0, 0]);
    let mut without_result = 0;
    for i in first + 1..first + 9 {
        let frame = engine.render_and_read(i, PixelFormat::Rgba8).expect("render");
        assert_ne!(frame.rgba_at(20, 500)[..3], [0, 0, 0], "frame {i} shows the input");
        if drawn_box(&frame).is_none() {
            without_result += 1;
        }
    }
    assert!(without_result >= 6, "frames were rendered while the model ran ({without_result} of 8 without a result)");
}

#[test]
fn a_missing_model_is_a_clear_layer_error_and_the_rest_renders() {
    let Some(y4m) = astronaut() else { return };
    let mut engine = engine(scene(json!({
        "width": 128, "height": 72, "fps": 30, "background": "#0000FF",
        "inputs": { "photo": { "kind": "y4m", "path": y4m, "loop": true } },
        "layers": [
            { "id": "faces", "kind": "faces", "input": "photo", "model": "/nonexistent/model.onnx" },
            { "id": "title", "kind": "text", "text": "on air", "rect": [0, 0, 128, 30] }
        ]
    })));
    let start = Instant::now();
    let error = loop {
        let (_, issues) = engine.render(0, &[PixelFormat::Rgba8]).expect("render");
        if let Some(e) = issues.layers.first() {
            break e.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no error reported");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(error.contains("/nonexistent/model.onnx") && error.contains("fetch.py"), "{error}");
    let frame = engine.render_and_read(1, PixelFormat::Rgba8).expect("render");
    assert_eq!(frame.rgba_at(120, 60), [0, 0, 255, 255], "the background still renders");
}

/// Renders until the layer reports a result (`inference_runs_total` ≥ 1), then one more frame,
/// which uses it. A layer error fails the test.
fn render_with_result(engine: &mut Engine) -> OutputFrame {
    let start = Instant::now();
    for i in 0.. {
        let (_, issues) = engine.render(i, &[PixelFormat::Rgba8]).expect("render");
        assert!(issues.layers.is_empty(), "layer error: {:?}", issues.layers);
        let stats = engine.layer_stats();
        if stats.iter().flat_map(|(_, s)| s).any(|(k, v)| *k == "inference_runs_total" && *v >= 1.0) {
            return engine.render_and_read(i + 1, PixelFormat::Rgba8).expect("render");
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no result after {i} frames");
        std::thread::sleep(Duration::from_millis(20));
    }
    unreachable!()
}

#[test]
fn the_person_mask_matches_the_tflite_runtimes_within_iou_0_95() {
    let Some(y4m) = astronaut() else { return };
    let reference = image::open(common::workspace_root().join("tests/snapshots/ml/astronaut-person-mask.png"))
        .expect("tests/snapshots/ml/astronaut-person-mask.png (made by scripts/ml/reference_mask.py)")
        .to_luma8();
    let mut engine =
        engine(layer_scene(&y4m, "segment", json!({ "effect": "mask", "shape": "square", "softness": 0.0 })));
    let frame = render_with_result(&mut engine);
    let (mut both, mut either) = (0u64, 0u64);
    for y in 0..512 {
        for x in 0..512 {
            let ours = frame.rgba_at(x, y)[0] >= 128;
            let theirs = reference.get_pixel(x, y)[0] >= 128;
            both += u64::from(ours && theirs);
            either += u64::from(ours || theirs);
        }
    }
    let iou = both as f64 / either.max(1) as f64;
    println!("person mask IoU against the TFLite runtime's: {iou:.4} ({either} pixels in either)");
    assert!(iou >= 0.95, "IoU {iou:.4}");
}

#[test]
fn background_effects_keep_the_person_and_change_the_rest() {
    let Some(y4m) = astronaut() else { return };
    let plain = engine(layer_scene(&y4m, "video", json!({}))).render_and_read(0, PixelFormat::Rgba8).expect("plain");
    let reference = image::open(common::workspace_root().join("tests/snapshots/ml/astronaut-person-mask.png"))
        .expect("reference mask")
        .to_luma8();
    // Well inside the person, and well inside the background (the mask eroded by 12 px).
    let inside = |x: u32, y: u32, person: bool| {
        let (x0, y0, x1, y1) = (x.saturating_sub(12), y.saturating_sub(12), (x + 12).min(511), (y + 12).min(511));
        [(x0, y0), (x1, y0), (x0, y1), (x1, y1), (x, y)]
            .iter()
            .all(|&(a, b)| (reference.get_pixel(a, b)[0] >= 128) == person)
    };
    // Off the picture's edges, where the mask is speckled.
    let sample: Vec<(u32, u32)> =
        (16..496).step_by(7).flat_map(|y| (16..496).step_by(7).map(move |x| (x, y))).collect();
    for effect in [json!({ "effect": "blur", "blur": 32 }), json!({ "effect": "replace", "color": "#FF00FF" })] {
        let mut fields = effect.clone();
        fields["shape"] = json!("square");
        let mut engine = engine(layer_scene(&y4m, "segment", fields));
        let frame = render_with_result(&mut engine);
        let (mut person_same, mut person_n, mut back_changed, mut back_n, mut colour) = (0, 0, 0, 0, 0);
        for &(x, y) in &sample {
            let close = plain.rgba_at(x, y).iter().zip(frame.rgba_at(x, y)).all(|(a, b)| a.abs_diff(b) <= 3);
            if inside(x, y, true) {
                person_n += 1;
                person_same += usize::from(close);
            } else if inside(x, y, false) {
                back_n += 1;
                back_changed += usize::from(!close);
                // Within the mask's faint residue (a few per cent) of the colour.
                let p = frame.rgba_at(x, y);
                colour += usize::from(p.iter().zip([255u8, 0, 255, 255]).all(|(a, b)| a.abs_diff(b) <= 8));
            }
        }
        println!(
            "{effect}: person unchanged {person_same}/{person_n}, background changed {back_changed}/{back_n}, \
             the colour {colour}/{back_n}"
        );
        if effect["effect"] == "replace" {
            assert!(colour as f64 >= 0.95 * back_n as f64, "the background is the colour");
        }
        assert!(person_same as f64 >= 0.98 * person_n as f64, "{effect}: the person is kept");
        assert!(back_changed as f64 >= 0.6 * back_n as f64, "{effect}: the background changes");
    }
}

#[test]
fn the_astronauts_pose_is_present_and_her_nose_is_on_her_face() {
    let Some(y4m) = astronaut() else { return };
    let mut engine = engine(layer_scene(&y4m, "pose", json!({ "skeleton": false, "color": "#00FF66" })));
    // The detector's run, then landmark runs (each placing the next square).
    let start = Instant::now();
    let mut i = 0;
    let stats = loop {
        let (_, issues) = engine.render(i, &[PixelFormat::Rgba8]).expect("render");
        assert!(issues.layers.is_empty(), "layer error: {:?}", issues.layers);
        let stats: Vec<(&str, f64)> = engine.layer_stats().remove(0).1;
        let get = |k: &str| stats.iter().find(|(n, _)| *n == k).map_or(0.0, |(_, v)| *v);
        if get("landmark_runs_total") >= 3.0 {
            break stats;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no landmarks after {i} frames: {stats:?}");
        std::thread::sleep(Duration::from_millis(20));
        i += 1;
    };
    let get = |k: &str| stats.iter().find(|(n, _)| *n == k).map_or(0.0, |(_, v)| *v);
    println!("pose figures {stats:?}");
    assert!(get("pose_presence") > 0.5, "presence {}", get("pose_presence"));
    assert_eq!(get("tracking"), 1.0, "the body is tracked");
    assert_eq!(get("detector_runs_total"), 1.0, "the detector ran once: tracking needs no more");
    // The keypoints' dots: the face ones (nose, eyes, ears, mouth: 0–10) cluster on her face.
    let frame = engine.render_and_read(i + 1, PixelFormat::Rgba8).expect("render");
    let (mut n, mut near) = (0, 0);
    for y in 0..512 {
        for x in 0..512 {
            if is_box_colour(frame.rgba_at(x, y)) {
                n += 1;
                let (dx, dy) = (x as f32 - 227.0, y as f32 - 130.0);
                near += usize::from(dx * dx + dy * dy <= 45.0 * 45.0);
            }
        }
    }
    println!("keypoint pixels {n}, within 45 px of the face {near}");
    assert!(near >= 11 * 10, "the face's keypoints lie on the face ({near} pixels of {n})");
}

#[test]
fn offline_every_frame_is_drawn_from_its_own_result() {
    let Some(y4m) = astronaut() else { return };
    let plain =
        engine(faces_scene(&y4m, json!({ "boxes": false }))).render_and_read(0, PixelFormat::Rgba8).expect("plain");
    let scene = scene(json!({
        "width": 512, "height": 1024, "fps": 30,
        "inputs": { "photo": { "kind": "y4m", "path": y4m, "loop": true } },
        "layers": [
            { "id": "faces", "kind": "faces", "input": "photo", "rect": [0, 0, 512, 512], "anonymize": "pixelate" },
            { "id": "pose", "kind": "pose", "input": "photo", "rect": [0, 512, 512, 512] }
        ]
    }));
    let mut offline = engine(scene);
    for i in 0..3 {
        let frame = offline.render_and_read(i, PixelFormat::Rgba8).expect("render");
        // The face is hidden from the very first frame: nothing is drawn from an older frame.
        let mut changed = 0;
        for y in 110..150 {
            for x in 207..247 {
                changed +=
                    usize::from(plain.rgba_at(x, y).iter().zip(frame.rgba_at(x, y)).any(|(a, b)| a.abs_diff(b) > 2));
            }
        }
        assert!(changed > 800, "frame {i}: the face is hidden ({changed} of 1600 pixels changed)");
        let stats = offline.layer_stats();
        for (layer, figures) in &stats {
            let get = |k: &str| figures.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
            assert_eq!(get("result_age_frames"), Some(0.0), "frame {i}, {layer}: its own result ({figures:?})");
            assert_eq!(get("frames_skipped_total"), Some(0.0), "frame {i}, {layer}: none skipped");
        }
        let pose = &stats.iter().find(|(l, _)| l == "pose").expect("pose").1;
        let get = |k: &str| pose.iter().find(|(n, _)| *n == k).map_or(0.0, |(_, v)| *v);
        assert!(get("pose_presence") > 0.5, "frame {i}: the body is found in the frame itself: {pose:?}");
        assert_eq!(get("landmark_runs_total"), (i + 1) as f64, "frame {i}: one landmark run a frame once tracking");
        // What was found travels with the frame (the frame protocol sends it on): the face in
        // the top half, the person in the bottom half, as fractions of the 512 × 1024 frame.
        let found = &frame.meta.detections;
        let face = found.iter().find(|d| d.label == "face").expect("a face detection");
        let person = found.iter().find(|d| d.label == "person").expect("a person detection");
        let (fx, fy) = ((face.x + face.w / 2.0) * 512.0, (face.y + face.h / 2.0) * 1024.0);
        assert!((fx - 227.0).abs() < 20.0 && (fy - 130.0).abs() < 30.0, "face at {fx},{fy}");
        assert!(person.y >= 0.5 && person.y + person.h <= 1.0 + 1e-3, "the person is in the bottom half: {person:?}");
        assert_eq!((face.track_id, person.track_id), (Some(1), Some(1)), "followed, not found anew each frame");
    }
}

#[test]
fn the_execution_provider_is_picked_at_run_time_and_a_missing_one_is_a_clear_error() {
    if astronaut().is_none() {
        return;
    }
    let path = streamlib::ml::model_path("face_detection_short_range.onnx");
    // The PyPI wheel is ONNX Runtime's CPU build: `auto` finds no GPU provider in it.
    let auto = streamlib::ml::Model::open_on(&path, "auto").expect("auto");
    assert_eq!(auto.provider(), "CPU");
    let cuda = streamlib::ml::Model::open_on(&path, "cuda").expect_err("this ONNX Runtime has no CUDA");
    assert!(cuda.to_string().contains("CUDA"), "{cuda}");
    let bogus = streamlib::ml::Model::open_on(&path, "quantum").expect_err("no such provider");
    assert!(bogus.to_string().contains("auto, cpu, cuda or tensorrt"), "{bogus}");
}
