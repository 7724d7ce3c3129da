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
    // At opacity 1 the image is drawn as is; below 1 from a copy with the opacity multiplied in.
    for opacity in [1.0f64, 0.6] {
        let s = scene(json!({
            "width": 200, "height": 150,
            "layers": [ { "id": "logo", "kind": "image", "path": logo, "opacity": opacity } ]
        }));
        let frame = render(s, 0, PixelFormat::Rgba8);
        // Over the opaque black background the result is the premultiplied colour: c·a·opacity.
        let mut worst = 0u8;
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 4) as usize;
                let a = f64::from(straight[i + 3]) / 255.0;
                let got = frame.rgba_at(x, y);
                for c in 0..3 {
                    let want = (f64::from(straight[i + c]) * a * opacity).round() as u8;
                    worst = worst.max(got[c].abs_diff(want));
                }
            }
        }
        assert!(worst <= 1, "opacity {opacity}: premultiplied colour off by {worst}");
        assert_eq!(frame.rgba_at(w + 10, 10), [0, 0, 0, 255], "nothing drawn outside the image's own size");
    }
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

mod canvas {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use streamlib::layers::canvas::{Cap, Join, Paint, PathBuilder, StrokeStyle, TextStyle};
    use streamlib::layers::{DrawFn, DrawingLayerKind};
    use streamlib::{Color, Rect};

    fn engine_with(kind: DrawingLayerKind, extra_layers: serde_json::Value) -> Engine {
        let mut registry = Registry::default();
        registry.register_layer("drawing", kind);
        let mut layers = vec![json!({ "id": "d", "kind": "drawing", "z": 1 })];
        layers.extend(extra_layers.as_array().cloned().unwrap_or_default());
        let s = streamlib::Scene::from_value(
            json!({ "width": 320, "height": 180, "background": "#101820",
                    "inputs": { "c": { "kind": "test_pattern", "pattern": "solid", "color": "#00FF00" } },
                    "layers": layers }),
            &registry,
        )
        .expect("scene");
        let g = gpu();
        Engine::with_pipelines(&g.ctx, g.pipelines.clone(), s, &registry, Pacing::Offline).expect("engine")
    }

    fn showcase() -> DrawFn {
        Box::new(|c, _ctx| {
            let stops = vec![(0.0, Color::rgba(255, 60, 60, 255)), (1.0, Color::rgba(60, 60, 255, 255))];
            c.fill_rounded_rect(
                Rect::new(10.0, 10.0, 140.0, 60.0),
                12.0,
                Paint::Linear { start: [10.0, 0.0], end: [150.0, 0.0], stops },
            );
            let radial =
                vec![(0.0, Color::WHITE), (0.6, Color::rgba(255, 200, 0, 255)), (1.0, Color::rgba(255, 200, 0, 0))];
            c.fill_circle(230.0, 45.0, 35.0, Paint::Radial { center: [230.0, 45.0], radius: 35.0, stops: radial });
            let wave = PathBuilder::new()
                .move_to(10.0, 120.0)
                .cubic_to(50.0, 80.0, 90.0, 160.0, 130.0, 120.0)
                .quad_to(150.0, 100.0, 170.0, 120.0)
                .build();
            c.stroke(&wave, &StrokeStyle::new(4.0).join(Join::Round).cap(Cap::Round), Color::rgba(80, 220, 120, 255));
            c.polyline(&[[10.0, 160.0], [170.0, 160.0]], &StrokeStyle::new(3.0).dash(&[12.0, 6.0]), Color::WHITE);
            c.save();
            c.translate(250.0, 130.0);
            c.rotate(0.4);
            c.fill_rect(Rect::new(-25.0, -15.0, 50.0, 30.0), Color::rgba(200, 80, 255, 200));
            c.restore();
            c.save();
            c.clip_rect(Rect::new(180.0, 95.0, 40.0, 40.0));
            c.fill_circle(200.0, 115.0, 30.0, Color::rgba(255, 255, 255, 255));
            c.restore();
            let style = TextStyle {
                size: 20.0,
                color: Color::rgba(255, 230, 80, 255),
                outline: Some((Color::BLACK, 1.5)),
                ..TextStyle::default()
            };
            c.text("canvas 42", 180.0, 150.0, &style);
            Ok(())
        })
    }

    #[test]
    fn canvas_drawing_matches_its_reference() {
        let mut e = engine_with(DrawingLayerKind::new(|_| showcase()), json!([]));
        let frame = e.render_and_read(0, PixelFormat::Rgba8).expect("render");
        assert_snapshot("canvas_showcase", &frame);
        // The clip holds: the white circle (r 30 around 200,115) is cut at x = 220.
        assert_eq!(frame.rgba_at(200, 115), [255, 255, 255, 255]);
        assert_ne!(frame.rgba_at(224, 115), [255, 255, 255, 255]);
    }

    #[test]
    fn failing_drawing_code_blanks_only_its_layer_for_that_frame() {
        let calls = Arc::new(AtomicU64::new(0));
        let counter = calls.clone();
        let kind = DrawingLayerKind::new(move |_| {
            let counter = counter.clone();
            Box::new(move |c, ctx| {
                counter.fetch_add(1, Ordering::Relaxed);
                match ctx.frame % 3 {
                    1 => return Err("no data for this frame".into()),
                    2 => panic!("bug in user code at frame {}", ctx.frame),
                    _ => {}
                }
                c.fill_rect(Rect::new(0.0, 0.0, 320.0, 90.0), Color::rgba(255, 0, 0, 255));
                Ok(())
            })
        });
        let video = json!([{ "id": "v", "kind": "video", "input": "c", "rect": [0, 90, 320, 90] }]);
        let mut e = engine_with(kind, video);
        for index in 0..6u64 {
            let (mut done, issues) = e.render(index, &[PixelFormat::Rgba8]).expect("the frame renders");
            done.extend(e.flush().expect("flush"));
            let frame = done.into_iter().find(|f| f.time.index == index).expect("frame");
            assert_eq!(frame.rgba_at(10, 150), [0, 255, 0, 255], "frame {index}: other layers keep rendering");
            let top = frame.rgba_at(10, 10);
            if index % 3 == 0 {
                assert!(issues.layers.is_empty());
                assert_eq!(top, [255, 0, 0, 255], "frame {index}: drawing works again");
            } else {
                assert_eq!(issues.layers.len(), 1, "frame {index}");
                let msg = issues.layers[0].to_string();
                assert!(msg.contains(if index % 3 == 1 { "no data" } else { "panicked: bug in user code" }), "{msg}");
                assert_eq!(top, [16, 24, 32, 255], "frame {index}: the failing layer is transparent");
            }
        }
        assert_eq!(calls.load(Ordering::Relaxed), 6);
    }

    #[test]
    fn vars_reach_the_drawing_code() {
        let kind = DrawingLayerKind::new(|_| {
            Box::new(|c, ctx| {
                let w = ctx.var("progress").unwrap_or(0.0) as f32 * ctx.width as f32;
                c.fill_rect(Rect::new(0.0, 0.0, w.max(1.0), 10.0), Color::WHITE);
                Ok(())
            })
        });
        let vars = kind.vars();
        let mut e = engine_with(kind, json!([]));
        vars.lock().expect("vars").insert("progress".into(), 0.25);
        let quarter = e.render_and_read(0, PixelFormat::Rgba8).expect("render");
        vars.lock().expect("vars").insert("progress".into(), 0.75);
        let three_quarters = e.render_and_read(1, PixelFormat::Rgba8).expect("render");
        assert_eq!(quarter.rgba_at(100, 5), [16, 24, 32, 255], "bar ends at x = 80");
        assert_eq!(three_quarters.rgba_at(100, 5), [255, 255, 255, 255], "bar reaches x = 240");
    }
}

#[test]
fn glyph_atlas_stays_bounded_over_10000_frames_of_changing_text() {
    use streamlib::layers::canvas::TextStyle;
    use streamlib::layers::DrawingLayerKind;
    // Every frame shows 24 characters drawn from ~900 code points (Latin, Greek, Cyrillic) at a
    // size that changes too: ~350 000 distinct glyph images, which without eviction would grow the
    // atlas to the adapter's limit (an 8192² atlas alone is 64 MiB).
    let alphabet: Vec<char> =
        (0x21u32..0x7f).chain(0xc0..0x250).chain(0x391..0x3ca).chain(0x410..0x450).filter_map(char::from_u32).collect();
    let kind = DrawingLayerKind::new(move |_| {
        let alphabet = alphabet.clone();
        Box::new(move |c, ctx| {
            let start = (ctx.frame as usize * 7) % alphabet.len();
            let text: String = (0..24).map(|i| alphabet[(start + i * 13) % alphabet.len()]).collect();
            let size = 12.0 + (ctx.frame % 97) as f32 * 0.25;
            c.text(&text, 2.0, 2.0, &TextStyle { size, ..TextStyle::default() });
            Ok(())
        })
    });
    let mut registry = Registry::default();
    registry.register_layer("ticker", kind);
    let s = streamlib::Scene::from_value(
        json!({ "width": 320, "height": 32, "layers": [ { "id": "t", "kind": "ticker" } ] }),
        &registry,
    )
    .expect("scene");
    let g = gpu();
    let mut engine =
        Engine::with_pipelines(&g.ctx, g.pipelines.clone(), s, &registry, Pacing::Offline).expect("engine");
    let memory = |engine: &mut Engine, frames: std::ops::Range<u64>| {
        for i in frames {
            engine.render::<PixelFormat>(i, &[]).expect("render");
            if i % 64 == 0 {
                g.ctx.wait_idle().expect("idle");
            }
        }
        g.ctx.wait_idle().expect("idle");
        g.ctx.device().get_internal_counters().hal.texture_memory.read()
    };
    let after_warmup = memory(&mut engine, 0..1000);
    let after_all = memory(&mut engine, 1000..10_000);
    assert!(after_warmup > 0, "counters are on");
    // Budget: the layer's own textures (~0.2 MiB) plus atlases that may double once or twice
    // through fragmentation; far below what 350 000 cached glyphs would need.
    const BUDGET: isize = 4 << 20;
    assert!(after_all <= BUDGET, "texture memory {after_all} bytes after 10 000 frames (warm-up: {after_warmup})");
    eprintln!("texture memory: {after_warmup} bytes after 1000 frames, {after_all} after 10 000");
}
