//! A custom layer kind drawn with the Canvas API every frame (paths, strokes, text), driven by a
//! variable your program sets. `cargo run -p streamlib --example drawing_layer` writes
//! `drawing_layer.png`.

use streamlib::layers::canvas::{StrokeStyle, TextStyle};
use streamlib::layers::DrawingLayerKind;
use streamlib::{Color, GpuContext, PixelFormat, Rect, Registry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let kind = DrawingLayerKind::new(|_spec| {
        Box::new(|c, ctx| {
            c.fill_rounded_rect(Rect::new(20.0, 20.0, 280.0, 80.0), 12.0, Color::rgba(16, 48, 106, 230));
            c.save();
            c.translate(60.0, 60.0);
            c.rotate(ctx.seconds() as f32);
            c.stroke_rect(Rect::new(-20.0, -20.0, 40.0, 40.0), 4.0, &StrokeStyle::new(3.0), Color::WHITE);
            c.restore();
            let score = ctx.var("score").unwrap_or(0.0);
            c.text(&format!("score {score}"), 110.0, 40.0, &TextStyle { size: 32.0, ..TextStyle::default() });
            Ok(())
        })
    });
    // Variables can be set from any thread while the engine renders.
    let vars = kind.vars();
    let mut registry = Registry::default();
    registry.register_layer("scoreboard", kind);
    let scene = registry.parse_scene(
        r##"{ "width": 320, "height": 120, "background": "#202020",
              "layers": [ { "id": "score", "kind": "scoreboard" } ] }"##,
    )?;
    vars.lock().map_err(|_| "vars poisoned")?.insert("score".into(), 3.0);
    let gpu = GpuContext::new()?;
    let mut engine = streamlib::Engine::new(&gpu, scene, &registry, streamlib::Pacing::Offline)?;
    let frame = engine.render_and_read(15, PixelFormat::Rgba8)?;
    let mut rgba = frame.data.clone();
    streamlib::sinks::unpremultiply(&mut rgba);
    streamlib::sinks::write_png(std::path::Path::new("drawing_layer.png"), frame.width, frame.height, &rgba)?;
    println!("drew frame {} with score 3 -> drawing_layer.png", frame.time.index);
    Ok(())
}
