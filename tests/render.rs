//! Compositing correctness on the GPU: blend maths against an f64 reference, z order, visibility,
//! opacity, rect scaling and crop, odd sizes and readback row padding.

mod common;

use common::{engine, render, scene};
use serde_json::json;
use streamlib::{BlendMode, Color, PixelFormat, Scene};

/// 8-bit steps between the GPU and the f64 reference. Inputs are quantised exactly as stored
/// (8-bit textures), so what remains is rounding of the blend result itself: one step. Multiply
/// over a translucent destination takes two fixed-function draws with an 8-bit store between
/// them, hence two.
const TOLERANCE: u8 = 1;
const TOLERANCE_TWO_DRAWS: u8 = 2;

fn q(v: f64) -> f64 {
    (v * 255.0).round() / 255.0
}

/// Premultiplied colour as stored in an 8-bit texture.
fn stored(c: Color) -> [f64; 4] {
    c.premultiplied().map(q)
}

/// The reference blend of premultiplied `s` (already scaled by opacity) over `d`.
fn blend(mode: BlendMode, s: [f64; 4], d: [f64; 4]) -> [f64; 4] {
    let (sa, da) = (s[3], d[3]);
    let mut out = [0.0; 4];
    for c in 0..3 {
        out[c] = match mode {
            BlendMode::Normal => s[c] + d[c] * (1.0 - sa),
            BlendMode::Add => (s[c] + d[c]).min(1.0),
            BlendMode::Multiply => s[c] * d[c] + s[c] * (1.0 - da) + d[c] * (1.0 - sa),
            BlendMode::Screen => s[c] + d[c] - s[c] * d[c],
        };
    }
    out[3] = sa + da * (1.0 - sa);
    out
}

fn solid(color: Color) -> serde_json::Value {
    json!({ "kind": "test_pattern", "pattern": "solid", "color": color.to_string() })
}

#[test]
fn blend_modes_match_the_f64_reference() {
    let backgrounds = [Color::rgba(32, 48, 64, 255), Color::rgba(200, 40, 90, 128)];
    let pairs = [
        (Color::rgba(240, 120, 30, 255), Color::rgba(30, 200, 255, 255)),
        (Color::rgba(90, 180, 60, 200), Color::rgba(250, 250, 20, 96)),
    ];
    let mut checked = 0;
    for bg in backgrounds {
        for (bottom, top) in pairs {
            for mode in BlendMode::ALL {
                for opacity in [1.0f32, 0.75, 0.3] {
                    let s = scene(json!({
                        "width": 8, "height": 8, "background": bg.to_string(),
                        "inputs": { "a": solid(bottom), "b": solid(top) },
                        "layers": [
                            { "id": "bottom", "kind": "video", "input": "a" },
                            { "id": "top", "kind": "video", "input": "b", "z": 1,
                              "blend": mode.name(), "opacity": opacity }
                        ]
                    }));
                    let d = blend(BlendMode::Normal, stored(bottom), stored(bg)).map(q);
                    let src = stored(top).map(|v| v * f64::from(opacity));
                    let want = blend(mode, src, d).map(|v| v * 255.0);
                    let tolerance = if mode == BlendMode::Multiply && bg.a < 255 && bottom.a < 255 {
                        TOLERANCE_TWO_DRAWS
                    } else {
                        TOLERANCE
                    };
                    // Two frames: the second reuses the pipelines the first built.
                    let mut e = engine(s);
                    for index in 0..2 {
                        let got = e.render_and_read(index, PixelFormat::Rgba8).expect("render").rgba_at(3, 5);
                        for c in 0..4 {
                            let err = (f64::from(got[c]) - want[c]).abs();
                            assert!(
                                err <= f64::from(tolerance) + 0.5,
                                "{} opacity {opacity} bg {bg} {bottom} under {top}, frame {index}: got {got:?}, want {want:.2?}",
                                mode.name()
                            );
                        }
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 48);
}

fn three_boxes(z: [i32; 3], visible: [bool; 3], opacity: [f32; 3]) -> streamlib::Scene {
    scene(json!({
        "width": 64, "height": 64,
        "inputs": {
            "r": solid(Color::rgba(255, 0, 0, 255)),
            "g": solid(Color::rgba(0, 255, 0, 255)),
            "b": solid(Color::rgba(0, 0, 255, 255))
        },
        "layers": [
            { "id": "red", "kind": "video", "input": "r", "z": z[0], "visible": visible[0], "opacity": opacity[0], "rect": [0, 0, 40, 40] },
            { "id": "green", "kind": "video", "input": "g", "z": z[1], "visible": visible[1], "opacity": opacity[1], "rect": [12, 12, 40, 40] },
            { "id": "blue", "kind": "video", "input": "b", "z": z[2], "visible": visible[2], "opacity": opacity[2], "rect": [24, 24, 40, 40] }
        ]
    }))
}

#[test]
fn layers_draw_by_z_and_file_order_breaks_ties() {
    let px = |s| render(s, 0, PixelFormat::Rgba8).rgba_at(30, 30);
    assert_eq!(px(three_boxes([0, 1, 2], [true; 3], [1.0; 3])), [0, 0, 255, 255], "blue on top");
    assert_eq!(px(three_boxes([2, 1, 0], [true; 3], [1.0; 3])), [255, 0, 0, 255], "red on top");
    assert_eq!(px(three_boxes([5, 5, 5], [true; 3], [1.0; 3])), [0, 0, 255, 255], "equal z: file order");
    assert_eq!(px(three_boxes([5, 9, 5], [true; 3], [1.0; 3])), [0, 255, 0, 255], "green raised");
}

#[test]
fn invisible_and_transparent_layers_are_not_drawn() {
    let frame = render(three_boxes([0, 1, 2], [true, true, false], [1.0; 3]), 0, PixelFormat::Rgba8);
    assert_eq!(frame.rgba_at(30, 30), [0, 255, 0, 255], "hidden blue leaves green");
    assert_eq!(frame.rgba_at(60, 60), [0, 0, 0, 255], "background where only blue was");
    let frame = render(three_boxes([0, 1, 2], [true; 3], [1.0, 1.0, 0.0]), 0, PixelFormat::Rgba8);
    assert_eq!(frame.rgba_at(30, 30), [0, 255, 0, 255], "opacity 0 draws nothing");
    let frame = render(three_boxes([0, 1, 2], [true; 3], [1.0, 1.0, 1.0]), 0, PixelFormat::Rgba8);
    assert_eq!(frame.rgba_at(2, 2), [255, 0, 0, 255], "opacity 1 is exact");
    assert_eq!(frame.rgba_at(63, 10), [0, 0, 0, 255], "outside every rect: background");
}

#[test]
fn rect_edges_are_pixel_exact() {
    let frame = render(three_boxes([0, 1, 2], [true, false, false], [1.0; 3]), 0, PixelFormat::Rgba8);
    assert_eq!(frame.rgba_at(39, 39), [255, 0, 0, 255]);
    assert_eq!(frame.rgba_at(40, 39), [0, 0, 0, 255]);
    assert_eq!(frame.rgba_at(39, 40), [0, 0, 0, 255]);
}

#[test]
fn scaling_filters_linearly_and_crop_selects_the_source_region() {
    // A 64x64 checkerboard of 16 px cells drawn into 128x128: cells become 32 px. Cell centres
    // stay exact; the two pixels either side of a cell edge sample 3/4 and 1/4 of the way between
    // a white and a black texel, so linear filtering gives 191 and 64.
    let s = scene(json!({
        "width": 160, "height": 160,
        "inputs": { "c": { "kind": "test_pattern", "pattern": "checkerboard", "cell": 16, "width": 64, "height": 64 } },
        "layers": [ { "id": "c", "kind": "video", "input": "c", "rect": [0, 0, 128, 128] } ]
    }));
    let frame = render(s, 0, PixelFormat::Rgba8);
    assert_eq!(frame.rgba_at(16, 16), [255, 255, 255, 255]);
    assert_eq!(frame.rgba_at(48, 16), [0, 0, 0, 255]);
    let (left, right) = (frame.rgba_at(31, 16)[0], frame.rgba_at(32, 16)[0]);
    assert!(left.abs_diff(191) <= 2 && right.abs_diff(64) <= 2, "edge pixels {left}, {right}");
    assert_eq!(frame.rgba_at(140, 140), [0, 0, 0, 255], "outside the rect");

    // Crop the yellow bar (second of seven) out of 700-px-wide bars and stretch it over the frame.
    let s = scene(json!({
        "width": 50, "height": 20,
        "inputs": { "bars": { "kind": "test_pattern", "pattern": "smpte_bars", "width": 700, "height": 100 } },
        "layers": [ { "id": "y", "kind": "video", "input": "bars", "crop": [110, 10, 80, 40] } ]
    }));
    let frame = render(s, 0, PixelFormat::Rgba8);
    for (x, y) in [(0, 0), (49, 19), (25, 10)] {
        let px = frame.rgba_at(x, y);
        assert!(px[0].abs_diff(191) <= 1 && px[1].abs_diff(191) <= 1 && px[2] <= 1, "({x},{y}) {px:?}");
    }
}

#[test]
fn a_frame_rendered_alone_equals_the_same_frame_in_a_sequence() {
    // The pipelines that draw a layer depend only on its blend mode and opacity, never on the
    // frames before (on lavapipe two shader shapes would round differently by a step or two), so
    // `render --start N --frames 1` gives exactly frame N of a long render.
    let s = scene(json!({
        "width": 320, "height": 180, "background": "#203040",
        "inputs": {
            "g": { "kind": "test_pattern", "pattern": "gradient" },
            "c": { "kind": "test_pattern", "pattern": "checkerboard", "cell": 8, "width": 128, "height": 96 },
            "b": { "kind": "test_pattern", "pattern": "smpte_bars", "width": 200, "height": 100 },
            "m": { "kind": "test_pattern", "pattern": "moving_box" }
        },
        "layers": [
            { "id": "g", "kind": "video", "input": "g", "opacity": 0.9 },
            { "id": "c", "kind": "video", "input": "c", "z": 1, "opacity": 0.6, "rect": [40, 30, 128, 96] },
            { "id": "b", "kind": "video", "input": "b", "z": 2, "opacity": 0.45, "rect": [120, 50, 190, 120],
              "crop": [10, 5, 150, 80] },
            { "id": "s", "kind": "video", "input": "c", "z": 3, "blend": "screen", "opacity": 0.5, "rect": [0, 100, 64, 48] },
            { "id": "m", "kind": "video", "input": "m", "z": 4, "opacity": 0.7, "rect": [200, 0, 120, 68] }
        ]
    }));
    let mut e = engine(s.clone());
    for index in 0..3 {
        e.render_and_read(index, PixelFormat::Rgba8).expect("frame");
    }
    let in_sequence = e.render_and_read(3, PixelFormat::Rgba8).expect("frame 3");
    let alone = render(s, 3, PixelFormat::Rgba8);
    assert!(in_sequence.data == alone.data, "frame 3 differs when rendered alone");
}

#[test]
fn odd_sizes_render_and_read_back_whole() {
    let s = |_| {
        scene(json!({
            "width": 1279, "height": 719, "background": "#102030",
            "inputs": { "r": solid(Color::rgba(250, 10, 10, 255)) },
            "layers": [ { "id": "r", "kind": "video", "input": "r", "rect": [1000, 500, 279, 219] } ]
        }))
    };
    let frame = render(s(()), 0, PixelFormat::Rgba8);
    assert_eq!(frame.data.len(), 1279 * 719 * 4);
    assert_eq!(frame.rgba_at(0, 0), [16, 32, 48, 255]);
    assert_eq!(frame.rgba_at(1278, 718), [250, 10, 10, 255], "last pixel of the last row");
    assert_eq!(frame.rgba_at(999, 718), [16, 32, 48, 255]);
    let yuv = render(s(()), 0, PixelFormat::I420);
    assert_eq!(yuv.data.len(), 1279 * 719 + 2 * 640 * 360);
    assert_eq!(yuv.plane(1).len(), 640 * 360);
}

#[test]
fn readback_rows_are_unpadded() {
    // A horizontal ramp: every row must be identical and the ramp must rise left to right. A row
    // padding mistake shears the image, which both checks catch.
    for width in [33u32, 257, 1279] {
        let s = scene(json!({
            "width": width, "height": 7,
            "inputs": { "g": { "kind": "test_pattern", "pattern": "gradient" } },
            "layers": [ { "id": "g", "kind": "video", "input": "g" } ]
        }));
        let frame = render(s, 0, PixelFormat::Rgba8);
        let row = (width * 4) as usize;
        let first = &frame.data[..row];
        for y in 1..3 {
            assert_eq!(&frame.data[y * row..(y + 1) * row], first, "width {width}: row {y} differs");
        }
        let reds: Vec<u8> = first.chunks(4).map(|p| p[0]).collect();
        assert!(reds.windows(2).all(|w| w[1] >= w[0]), "width {width}: ramp not monotonic");
        assert!(reds[0] < 10 && *reds.last().unwrap_or(&0) > 245, "width {width}: {reds:?}");
    }
}

#[test]
fn several_frames_in_flight_come_back_in_order() {
    let s = scene(json!({
        "width": 64, "height": 36,
        "inputs": { "m": { "kind": "test_pattern", "pattern": "moving_box" } },
        "layers": [ { "id": "m", "kind": "video", "input": "m" } ]
    }));
    let mut engine = common::engine(s);
    let mut frames = Vec::new();
    for i in 0..10 {
        frames.extend(engine.render(i, &[PixelFormat::Rgba8, PixelFormat::Nv12]).expect("render").0);
    }
    frames.extend(engine.flush().expect("flush"));
    let rgba: Vec<u64> = frames.iter().filter(|f| f.format == PixelFormat::Rgba8).map(|f| f.time.index).collect();
    let nv12: Vec<u64> = frames.iter().filter(|f| f.format == PixelFormat::Nv12).map(|f| f.time.index).collect();
    assert_eq!(rgba, (0..10).collect::<Vec<_>>());
    assert_eq!(nv12, (0..10).collect::<Vec<_>>());
    let f = frames.iter().find(|f| f.time.index == 9 && f.format == PixelFormat::Rgba8).expect("frame 9");
    assert_eq!(f.time.pts_ns, 300_000_000, "30 fps default: frame 9 at 300 ms");
    assert_eq!(f.time.duration_ns, 33_333_333);
}

/// A sink that takes 30 ms a frame.
struct SlowSink;

impl streamlib::Sink for SlowSink {
    fn format(&self) -> PixelFormat {
        PixelFormat::Rgba8
    }
    fn write(&mut self, _: &streamlib::OutputFrame) -> Result<(), streamlib::SinkError> {
        std::thread::sleep(std::time::Duration::from_millis(30));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), streamlib::SinkError> {
        Ok(())
    }
}

#[test]
fn a_slow_live_sink_drops_frames_without_stalling_the_renderer() {
    let s = scene(json!({
        "width": 64, "height": 36, "fps": 100,
        "inputs": { "m": { "kind": "test_pattern", "pattern": "moving_box" } },
        "layers": [ { "id": "m", "kind": "video", "input": "m" } ]
    }));
    let mut engine = common::engine(s);
    let slow =
        streamlib::SinkHandle::spawn("slow", Box::new(SlowSink), streamlib::Backpressure::Drop, 2).expect("spawn");
    let options = streamlib::RunOptions { frames: Some(60), stop: None, ..Default::default() };
    let started = std::time::Instant::now();
    let stats = streamlib::run(&mut engine, vec![slow], streamlib::Pacing::Realtime, &options, |_| {}).expect("run");
    let sink = &stats.sinks[0];
    assert_eq!(stats.frames, 60);
    assert_eq!(sink.written + sink.dropped, 60, "every frame is either written or counted as dropped");
    assert!(sink.dropped >= 20, "a 30 ms sink cannot take 100 fps: {sink:?}");
    // The renderer kept its pace: 60 frames at 100 fps, plus draining at most 2 queued frames.
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
}

#[test]
fn scene_updates_apply_at_a_frame_boundary_or_not_at_all() {
    let registry = streamlib::Registry::default();
    let mut engine = common::engine(three_boxes([0, 1, 2], [true; 3], [1.0; 3]));
    let px = |e: &mut streamlib::Engine, i: u64, x: u32, y: u32| {
        e.render_and_read(i, PixelFormat::Rgba8).expect("render").rgba_at(x, y)
    };
    assert_eq!(px(&mut engine, 0, 30, 30), [0, 0, 255, 255]);
    // Common fields: raise red, hide blue.
    let mut next = three_boxes([9, 1, 2], [true, true, false], [1.0; 3]);
    engine.apply_scene(next.clone(), &registry).expect("apply");
    assert_eq!(px(&mut engine, 1, 30, 30), [255, 0, 0, 255]);
    // An input's colour changes: that input is rebuilt.
    next.inputs.get_mut("r").expect("input r").params.insert("color".into(), json!("#FFFF00"));
    engine.apply_scene(next.clone(), &registry).expect("apply");
    assert_eq!(px(&mut engine, 2, 30, 30), [255, 255, 0, 255]);
    // A layer that cannot be built: an error, and the running scene is untouched.
    let mut bad = next.clone();
    let mut image = bad.layers[0].clone();
    image.id = "logo".into();
    image.kind = "image".into();
    image.input = None;
    image.params.insert("path".into(), json!("/nonexistent/logo.png"));
    bad.layers.push(image);
    let err = engine.apply_scene(bad, &registry).expect_err("bad image path");
    assert!(err.to_string().contains("logo.png"), "{err}");
    assert_eq!(engine.scene(), &next);
    assert_eq!(px(&mut engine, 3, 30, 30), [255, 255, 0, 255]);
    // Removing a layer and an input.
    let mut fewer = next.clone();
    fewer.layers.retain(|l| l.id != "red");
    fewer.inputs.remove("r");
    engine.apply_scene(fewer, &registry).expect("apply");
    assert_eq!(px(&mut engine, 4, 30, 30), [0, 255, 0, 255]);
}

#[test]
fn opacity_and_input_changes_reach_a_still_layer_in_the_next_frame() {
    // A still input below opacity 1 is drawn from a copy with the opacity multiplied in; a new
    // opacity or a new input texture must remake that copy before the frame that shows it.
    let registry = streamlib::Registry::default();
    let mut engine = common::engine(three_boxes([0, 1, 2], [true; 3], [1.0, 1.0, 0.5]));
    let px =
        |e: &mut streamlib::Engine, i: u64| e.render_and_read(i, PixelFormat::Rgba8).expect("render").rgba_at(30, 30);
    let near = |got: [u8; 4], want: [u8; 4]| got.iter().zip(want).all(|(g, w)| g.abs_diff(w) <= 1);
    for i in 0..2 {
        let got = px(&mut engine, i);
        assert!(near(got, [0, 128, 128, 255]), "blue at 0.5 over green, frame {i}: {got:?}");
    }
    engine.apply_scene(three_boxes([0, 1, 2], [true; 3], [1.0, 1.0, 0.25]), &registry).expect("apply");
    let got = px(&mut engine, 2);
    assert!(near(got, [0, 191, 64, 255]), "blue at 0.25 over green: {got:?}");
    let mut yellow = three_boxes([0, 1, 2], [true; 3], [1.0, 1.0, 0.25]);
    yellow.inputs.get_mut("b").expect("input b").params.insert("color".into(), json!("#FFFF00"));
    engine.apply_scene(yellow, &registry).expect("apply");
    let got = px(&mut engine, 3);
    assert!(near(got, [64, 255, 0, 255]), "yellow at 0.25 over green: {got:?}");
}

#[test]
fn an_opaque_full_frame_layer_hides_everything_below_it() {
    // Below the topmost opaque, full-opacity, full-frame layer nothing is drawn and the target is
    // not even cleared; the result must be exactly that layer, frame after frame. Anything that
    // lets the background through (translucent colour, opacity, a smaller rect) keeps the rest.
    let s = |top: &str, opacity: f32, rect: [u32; 4]| {
        scene(json!({
            "width": 64, "height": 48, "background": "#10203080",
            "inputs": { "under": solid(Color::rgba(200, 0, 0, 255)), "top": { "kind": "test_pattern", "pattern": "solid", "color": top } },
            "layers": [
                { "id": "under", "kind": "video", "input": "under" },
                { "id": "top", "kind": "video", "input": "top", "z": 1, "opacity": opacity, "rect": rect }
            ]
        }))
    };
    let mut e = engine(s("#00FF00", 1.0, [0, 0, 64, 48]));
    for i in 0..3 {
        let frame = e.render_and_read(i, PixelFormat::Rgba8).expect("render");
        assert!(frame.data.chunks(4).all(|p| p == [0, 255, 0, 255]), "frame {i}: not exactly the top layer");
    }
    let px = |s: streamlib::Scene, x: u32, y: u32| render(s, 0, PixelFormat::Rgba8).rgba_at(x, y);
    assert_eq!(px(s("#00FF00", 1.0, [0, 0, 60, 48]), 62, 10), [200, 0, 0, 255], "a smaller rect shows what is below");
    let got = px(s("#00FF00", 0.5, [0, 0, 64, 48]), 10, 10);
    assert!(got[0].abs_diff(100) <= 1 && got[1].abs_diff(128) <= 1, "half opacity blends: {got:?}");
    let got = px(s("#00FF0080", 1.0, [0, 0, 64, 48]), 10, 10);
    assert!(got[0].abs_diff(100) <= 1 && got[1].abs_diff(128) <= 1, "a translucent colour blends: {got:?}");
}

#[test]
fn gpu_stage_times_come_from_timestamp_queries_where_the_adapter_has_them() {
    let mut engine = common::engine(three_boxes([0, 1, 2], [true; 3], [0.5; 3]));
    if !engine.enable_gpu_timing(16) {
        eprintln!("this adapter has no timestamp queries inside encoders: CPU timings only");
        return;
    }
    for i in 0..10 {
        engine.render(i, &[PixelFormat::Nv12]).expect("render");
    }
    engine.flush().expect("flush");
    let t = engine.gpu_times().expect("timestamps");
    assert_eq!(t.frames, 10);
    assert!(t.composite > std::time::Duration::ZERO, "{t:?}");
    assert!(t.readback > std::time::Duration::ZERO, "NV12 conversion and copy take GPU time: {t:?}");
}

/// A scene update that changes the size rebuilds a test pattern drawn at the scene's size (issue
/// 11): 8-pixel cells stay 8 pixels, not a stretched copy of the old texture.
#[test]
fn a_new_scene_size_rebuilds_patterns_drawn_at_the_scene_size() {
    let doc = |w: u32, h: u32| {
        json!({
            "width": w, "height": h, "background": "#0000FF",
            "inputs": { "c": { "kind": "test_pattern", "pattern": "checkerboard", "color": "#FFFFFF", "cell": 8 } },
            "layers": [ { "id": "c", "kind": "video", "input": "c" } ]
        })
    };
    let mut e = engine(scene(doc(32, 16)));
    e.render_and_read(0, PixelFormat::Rgba8).expect("first frame");
    e.apply_scene(scene(doc(64, 32)), &streamlib::Registry::default()).expect("resize");
    let f = e.render_and_read(1, PixelFormat::Rgba8).expect("resized frame");
    assert_eq!((f.width, f.height), (64, 32));
    assert_eq!(f.rgba_at(4, 4), [255, 255, 255, 255], "cell (0,0) is light");
    assert_eq!(f.rgba_at(12, 4)[0], 0, "cell (1,0) is dark: the pattern was redrawn at 64x32");
    assert_eq!(f.rgba_at(52, 28)[0], 0, "cell (6,3) is dark");
}

/// Issue 20's resource limits: each is refused at validation with the JSON path and the limit.
#[test]
fn scenes_beyond_the_documented_limits_are_refused() {
    let registry = streamlib::Registry::default();
    let refused = |doc: serde_json::Value| Scene::from_value(doc, &registry).expect_err("over a limit");
    let e = refused(json!({ "width": 16384, "height": 16384 }));
    assert!(e.message.contains("pixels"), "{e}");
    let layers: Vec<_> = (0..300).map(|i| json!({ "id": format!("t{i}"), "kind": "text", "text": "x" })).collect();
    let e = refused(json!({ "width": 64, "height": 64, "layers": layers }));
    assert_eq!(e.path, "layers", "{e}");
    let long = "x".repeat(20_000);
    let e = refused(json!({ "width": 64, "height": 64, "layers": [ { "id": "t", "kind": "text", "text": long } ] }));
    assert!(e.path.ends_with("text") && e.message.contains("at most"), "{e}");
    let e = refused(json!({ "width": 64, "height": 64,
        "inputs": { "p": { "kind": "test_pattern", "pattern": "solid", "width": 16000, "height": 16000 } } }));
    assert!(e.message.contains("pixels"), "{e}");
    // 8K UHD is inside.
    Scene::from_value(json!({ "width": 7680, "height": 4320 }), &registry).expect("8K");
}
