//! Text and image layers: reference images, live placeholders, straight-to-premultiplied alpha, and
//! clear errors for bad fonts and bad image files.

mod common;

use common::{assert_snapshot, gpu, render, scene, workspace_root};
use serde_json::json;
use streamlib::{Engine, Pacing, PixelFormat, Registry};

fn text_scene(text: &str, extra: serde_json::Value) -> streamlib::Scene {
    let mut layer = json!({ "id": "t", "kind": "text", "text": text, "size": 32, "rect": [8, 8, 304, 74] });
    if let (Some(l), Some(e)) = (layer.as_object_mut(), extra.as_object()) {
        l.extend(e.clone());
    }
    scene(json!({ "width": 320, "height": 90, "fps": 25, "background": "#203040", "layers": [layer] }))
}

#[test]
fn text_matches_its_reference() {
    let frame = render(
        text_scene(
            "streamlib {frame}",
            json!({ "weight": "bold", "shadow": { "offset": [2, 2] }, "color": "#FFD040" }),
        ),
        42,
        PixelFormat::Rgba8,
    );
    assert_snapshot("text_bold_shadow", &frame);
    let frame = render(
        text_scene("centred mono", json!({ "font": "DejaVu Sans Mono", "align": "center", "size": 24 })),
        0,
        PixelFormat::Rgba8,
    );
    assert_snapshot("text_mono_centred", &frame);
}

#[test]
fn placeholders_update_every_frame_and_static_text_does_not() {
    let mut engine = common::engine(text_scene("{frame}", json!({})));
    let a = engine.render_and_read(7, PixelFormat::Rgba8).expect("render");
    let b = engine.render_and_read(8, PixelFormat::Rgba8).expect("render");
    assert_ne!(a.data, b.data, "{{frame}} must change the picture");
    let mut engine = common::engine(text_scene("still", json!({})));
    let a = engine.render_and_read(7, PixelFormat::Rgba8).expect("render");
    let b = engine.render_and_read(8, PixelFormat::Rgba8).expect("render");
    assert_eq!(a.data, b.data);
}

#[test]
fn bad_font_and_size_name_the_field() {
    let bad = json!({ "width": 64, "height": 64, "layers": [
        { "id": "t", "kind": "text", "text": "x", "font": "Comic Sans" } ] });
    let err = streamlib::Scene::from_value(bad, &Registry::default()).expect_err("unknown font");
    assert_eq!(err.path, "layers[0].font");
    assert!(err.message.contains("DejaVu Sans"), "{err}");
    let bad = json!({ "width": 64, "height": 64, "layers": [
        { "id": "t", "kind": "text", "text": "x", "size": 0 } ] });
    assert_eq!(streamlib::Scene::from_value(bad, &Registry::default()).expect_err("size").path, "layers[0].size");
}

#[test]
fn images_are_premultiplied_once_and_drawn_at_their_size() {
    let logo = workspace_root().join("assets/images/logo.png");
    let (w, h, straight) = streamlib::layers::load_rgba(&logo).expect("decode logo");
    let s = scene(json!({
        "width": 200, "height": 150,
        "layers": [ { "id": "logo", "kind": "image", "path": logo } ]
    }));
    let frame = render(s, 0, PixelFormat::Rgba8);
    // Over the opaque black background the result is the premultiplied colour: c·a.
    let mut worst = 0u8;
    for y in 0..h {
        for x in 0..w {
            let i = ((y * w + x) * 4) as usize;
            let a = u32::from(straight[i + 3]);
            let got = frame.rgba_at(x, y);
            for c in 0..3 {
                let want = ((u32::from(straight[i + c]) * a + 127) / 255) as u8;
                worst = worst.max(got[c].abs_diff(want));
            }
        }
    }
    assert!(worst <= 1, "premultiplied colour off by {worst}");
    assert_eq!(frame.rgba_at(w + 10, 10), [0, 0, 0, 255], "nothing drawn outside the image's own size");
}

#[test]
fn bad_image_files_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("streamlib-drawing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let corrupt = dir.join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\n this is not really a png").expect("write");
    let g = gpu();
    for (path, needle) in [(dir.join("missing.png"), "cannot open image"), (corrupt, "cannot decode image")] {
        let s =
            scene(json!({ "width": 64, "height": 64, "layers": [ { "id": "logo", "kind": "image", "path": path } ] }));
        let err = Engine::with_pipelines(&g.ctx, g.pipelines.clone(), s, &Registry::default(), Pacing::Offline)
            .expect_err("bad image");
        let msg = err.to_string();
        assert!(msg.contains(needle) && msg.contains("layer logo"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "names the file: {msg}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

fn vector_scene() -> streamlib::Scene {
    scene(json!({
        "width": 320, "height": 180, "background": "#182028",
        "layers": [ { "id": "v", "kind": "vector", "rect": [10, 10, 300, 160], "shapes": [
            { "type": "rect", "x": 4, "y": 4, "w": 140, "h": 70, "radius": 14, "fill": "#2060C0",
              "stroke": { "color": "#FFFFFF", "width": 3 } },
            { "type": "circle", "cx": 220, "cy": 45, "r": 38, "fill": "#F0A02080" },
            { "type": "ellipse", "cx": 220, "cy": 120, "rx": 70, "ry": 28,
              "stroke": { "color": "#40E080", "width": 5, "join": "round" } },
            { "type": "polyline", "points": [[10, 150], [40, 95], [70, 130], [100, 90], [130, 140]],
              "stroke": { "color": "#FF4060", "width": 6, "join": "round", "cap": "round" } },
            { "type": "polyline", "points": [[150, 150], [175, 100], [200, 150]], "closed": true, "fill": "#E0E0E0" }
        ] } ]
    }))
}

#[test]
fn vector_shapes_match_their_reference_and_are_antialiased() {
    let frame = render(vector_scene(), 0, PixelFormat::Rgba8);
    assert_snapshot("vector_shapes", &frame);
    // Along the circle's rim (layer offset 10,10; centre 230,55; radius 38) MSAA leaves partial
    // coverage: some pixels are strictly between the background and the fill.
    let background = frame.rgba_at(300, 5);
    let inside = frame.rgba_at(230, 55);
    let partial = (0..360)
        .map(|deg| {
            let a = (deg as f32).to_radians();
            frame.rgba_at((230.0 + 38.0 * a.cos()).round() as u32, (55.0 + 38.0 * a.sin()).round() as u32)
        })
        .filter(|px| *px != background && *px != inside)
        .count();
    assert!(partial > 60, "only {partial} rim samples were blended: edges look jagged");
}
