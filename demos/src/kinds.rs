//! Layer kinds the `streamlib` program adds to the built-in registry, written with the public
//! Canvas API exactly as a library user would: an analog clock and a live chart.

use std::f32::consts::TAU;
use streamlib::layers::canvas::{Cap, Join, Paint, PathBuilder, StrokeStyle, TextStyle};
use streamlib::layers::{DrawFn, DrawingLayerKind, TextAlign, TextWeight};
use streamlib::{Color, Rect, Registry};

/// The built-in kinds plus the demo kinds.
pub fn registry() -> Registry {
    let mut r = Registry::default();
    r.register_layer("analog_clock", DrawingLayerKind::new(|_| analog_clock()));
    r.register_layer("live_chart", DrawingLayerKind::new(|_| live_chart()));
    r
}

/// A clock face whose hands follow the stream's timecode (pts), with a sweeping seconds hand.
fn analog_clock() -> DrawFn {
    Box::new(|c, ctx| {
        let (w, h) = (ctx.width as f32, ctx.height as f32);
        // Leave room for the rim stroke (5 % of the radius, half of it outside).
        let r = (w.min(h) / 2.0 - 2.0) / 1.025;
        c.translate(w / 2.0, h / 2.0);
        let face = vec![(0.0, Color::rgba(250, 250, 245, 255)), (1.0, Color::rgba(200, 205, 215, 255))];
        c.fill_circle(0.0, 0.0, r, Paint::Radial { center: [0.0, 0.0], radius: r, stops: face });
        c.stroke_circle(0.0, 0.0, r, &StrokeStyle::new(r * 0.05), Color::rgba(30, 40, 60, 255));
        for i in 0..60 {
            let (len, width) = if i % 5 == 0 { (0.12, 0.025) } else { (0.05, 0.01) };
            let a = i as f32 / 60.0 * TAU;
            let (s, co) = a.sin_cos();
            let tick = PathBuilder::new()
                .move_to(s * r * (0.9 - len), -co * r * (0.9 - len))
                .line_to(s * r * 0.9, -co * r * 0.9)
                .build();
            c.stroke(&tick, &StrokeStyle::new(r * width).cap(Cap::Round), Color::rgba(30, 40, 60, 255));
        }
        let t = ctx.seconds() as f32 + 10.0 * 3600.0 + 8.0 * 60.0;
        let hands = [
            (t / 43200.0, 0.5, 0.06, Color::rgba(30, 40, 60, 255)),
            (t / 3600.0, 0.75, 0.04, Color::rgba(30, 40, 60, 255)),
            (t / 60.0, 0.85, 0.015, Color::rgba(220, 40, 40, 255)),
        ];
        for (turns, len, width, color) in hands {
            c.save();
            c.rotate(turns.fract() * TAU);
            let hand = PathBuilder::new().move_to(0.0, r * 0.12).line_to(0.0, -r * len).build();
            c.stroke(&hand, &StrokeStyle::new(r * width).cap(Cap::Round).join(Join::Round), color);
            c.restore();
        }
        c.fill_circle(0.0, 0.0, r * 0.04, Color::rgba(220, 40, 40, 255));
        let style = TextStyle {
            size: r * 0.11,
            color: Color::rgba(30, 40, 60, 255),
            align: TextAlign::Center,
            wrap_width: Some(r),
            weight: TextWeight::Bold,
            ..TextStyle::default()
        };
        c.text(&format!("frame {}", ctx.frame), -r / 2.0, r * 0.35, &style);
        Ok(())
    })
}

/// A scrolling line chart of a synthetic signal, with grid, gradient area and a live value.
fn live_chart() -> DrawFn {
    Box::new(|c, ctx| {
        let (w, h) = (ctx.width as f32, ctx.height as f32);
        c.fill_rounded_rect(Rect::new(0.0, 0.0, w, h), 12.0, Color::rgba(10, 16, 30, 220));
        let grid = StrokeStyle::new(1.0).dash(&[4.0, 4.0]);
        for i in 1..4 {
            let y = h * i as f32 / 4.0;
            c.polyline(&[[10.0, y], [w - 10.0, y]], &grid, Color::rgba(120, 140, 170, 120));
        }
        let signal = |x: f32| {
            let s = x * 0.05 + ctx.seconds() as f32 * 2.0;
            0.5 + 0.3 * s.sin() + 0.12 * (s * 2.7).sin()
        };
        let points: Vec<[f32; 2]> = (0..=60)
            .map(|i| i as f32 / 60.0 * (w - 20.0) + 10.0)
            .map(|x| [x, h - 10.0 - signal(x) * (h - 20.0)])
            .collect();
        let mut area = PathBuilder::new().move_to(10.0, h - 10.0);
        for p in &points {
            area = area.line_to(p[0], p[1]);
        }
        let area = area.line_to(w - 10.0, h - 10.0).close().build();
        let fade = vec![(0.0, Color::rgba(60, 200, 255, 160)), (1.0, Color::rgba(60, 200, 255, 0))];
        c.fill(&area, Paint::Linear { start: [0.0, 10.0], end: [0.0, h - 10.0], stops: fade });
        c.polyline(&points, &StrokeStyle::new(3.0).join(Join::Round).cap(Cap::Round), Color::rgba(120, 220, 255, 255));
        let last = points.last().copied().unwrap_or([0.0, 0.0]);
        c.fill_circle(last[0], last[1], 6.0, Color::WHITE);
        let style = TextStyle { size: 22.0, color: Color::WHITE, ..TextStyle::default() };
        c.text(&format!("{:.1} %", signal(last[0]) * 100.0), 18.0, 12.0, &style);
        Ok(())
    })
}
