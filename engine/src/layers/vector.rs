//! The `vector` layer: a declarative list of shapes (rect, rounded rect, circle, ellipse,
//! polyline/polygon) with fills and strokes, tessellated once by lyon and drawn with 4x MSAA into
//! the layer's texture. Coordinates are pixels inside the layer's rect.

use super::canvas::{Canvas, Paint, PathBuilder, StrokeStyle};
use super::{DrawingLayer, Layer};
use crate::registry::{BuildContext, BuildError, LayerKind};
use crate::scene::{Color, LayerSpec, Rect, SceneError};
use serde::{Deserialize, Serialize};

/// Maximum distance in pixels between a curve and its flattened polygon: a tenth of a pixel is
/// invisible at any zoom we render and keeps a 100 px circle near 80 segments.
pub const TOLERANCE: f32 = 0.1;

/// How stroke segments meet at corners.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Join {
    /// Sharp corner, the outer edges extended until they meet.
    #[default]
    Miter,
    /// Rounded corner.
    Round,
    /// Corner cut off flat.
    Bevel,
}

/// How the open ends of a stroke are finished.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cap {
    /// Ends flat at the end point.
    #[default]
    Butt,
    /// Ends in a half circle around the end point.
    Round,
    /// Ends flat, half the line width past the end point.
    Square,
}

/// An outline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stroke {
    /// Stroke colour.
    pub color: Color,
    /// Line width in pixels; 1 when absent.
    #[serde(default = "one")]
    pub width: f32,
    /// Corner join; miter when absent.
    #[serde(default)]
    pub join: Join,
    /// End cap; butt when absent.
    #[serde(default)]
    pub cap: Cap,
    /// Dash pattern (on, off, ... lengths); solid when absent.
    #[serde(default)]
    pub dash: Vec<f32>,
}

fn one() -> f32 {
    1.0
}

/// The geometry of one shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Geometry {
    /// A rectangle, its corners rounded to `radius` (0: sharp).
    Rect {
        /// Left edge in pixels.
        x: f32,
        /// Top edge in pixels.
        y: f32,
        /// Width in pixels.
        w: f32,
        /// Height in pixels.
        h: f32,
        /// Corner radius in pixels; 0 when absent.
        #[serde(default)]
        radius: f32,
    },
    /// A circle.
    Circle {
        /// Centre x in pixels.
        cx: f32,
        /// Centre y in pixels.
        cy: f32,
        /// Radius in pixels.
        r: f32,
    },
    /// An ellipse.
    Ellipse {
        /// Centre x in pixels.
        cx: f32,
        /// Centre y in pixels.
        cy: f32,
        /// Horizontal radius in pixels.
        rx: f32,
        /// Vertical radius in pixels.
        ry: f32,
    },
    /// Open unless `closed` (then a polygon, which can be filled).
    Polyline {
        /// The points as `[x, y]` in pixels; at least two.
        points: Vec<[f32; 2]>,
        /// Whether the last point joins back to the first; false when absent.
        #[serde(default)]
        closed: bool,
    },
}

/// A gradient stop: `[offset, "#RRGGBBAA"]`.
pub type Stop = (f32, Color);

/// A fill: a colour, or `{"linear": {...}}` / `{"radial": {...}}` with up to four stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Fill {
    /// A single colour.
    Solid(Color),
    /// A linear or radial gradient.
    Gradient(Gradient),
}

/// A gradient fill with 1 to 4 stops, in pixels inside the layer's rect.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Gradient {
    /// From `start` to `end`.
    Linear {
        /// Where offset 0 lies, in layer pixels.
        start: [f32; 2],
        /// Where offset 1 lies, in layer pixels.
        end: [f32; 2],
        /// Colours by offset, in order.
        stops: Vec<Stop>,
    },
    /// Around `center` out to `radius`.
    Radial {
        /// Where offset 0 lies, in layer pixels.
        center: [f32; 2],
        /// The distance at offset 1, in pixels.
        radius: f32,
        /// Colours by offset, in order.
        stops: Vec<Stop>,
    },
}

impl Fill {
    fn paint(&self) -> Paint {
        match self {
            Fill::Solid(c) => Paint::Solid(*c),
            Fill::Gradient(Gradient::Linear { start, end, stops }) => {
                Paint::Linear { start: *start, end: *end, stops: stops.clone() }
            }
            Fill::Gradient(Gradient::Radial { center, radius, stops }) => {
                Paint::Radial { center: *center, radius: *radius, stops: stops.clone() }
            }
        }
    }
}

/// A shape with its paint. At least one of `fill` and `stroke`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    /// What the shape is and where.
    #[serde(flatten)]
    pub geometry: Geometry,
    /// What fills the shape; no fill when absent.
    #[serde(default)]
    pub fill: Option<Fill>,
    /// The shape's outline; none when absent.
    #[serde(default)]
    pub stroke: Option<Stroke>,
}

/// Parameters of a `vector` layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorLayerConfig {
    /// Shapes in drawing order.
    pub shapes: Vec<Shape>,
}

impl VectorLayerConfig {
    fn check(&self) -> Result<(), SceneError> {
        for (i, s) in self.shapes.iter().enumerate() {
            let at = |field: &str| format!("shapes[{i}].{field}");
            if s.fill.is_none() && s.stroke.is_none() {
                return Err(SceneError::new(format!("shapes[{i}]"), "a shape needs a `fill`, a `stroke` or both"));
            }
            if let Some(st) = s.stroke.as_ref().filter(|st| !(st.width.is_finite() && st.width > 0.0)) {
                return Err(SceneError::new(at("stroke.width"), format!("{} must be positive", st.width)));
            }
            if let Some(Fill::Gradient(Gradient::Linear { stops, .. } | Gradient::Radial { stops, .. })) = &s.fill {
                if stops.is_empty() || stops.len() > 4 {
                    return Err(SceneError::new(at("fill"), "a gradient takes 1 to 4 stops"));
                }
            }
            let numbers: Vec<f32> = match &s.geometry {
                Geometry::Rect { x, y, w, h, radius } => vec![*x, *y, *w, *h, *radius],
                Geometry::Circle { cx, cy, r } => vec![*cx, *cy, *r],
                Geometry::Ellipse { cx, cy, rx, ry } => vec![*cx, *cy, *rx, *ry],
                Geometry::Polyline { points, .. } => points.iter().flatten().copied().collect(),
            };
            if numbers.iter().any(|v| !v.is_finite()) {
                return Err(SceneError::new(format!("shapes[{i}]"), "coordinates must be finite numbers"));
            }
            if let Geometry::Polyline { points, .. } = &s.geometry {
                if points.len() < 2 {
                    return Err(SceneError::new(at("points"), "a polyline needs at least two points"));
                }
            }
        }
        Ok(())
    }
}

/// Draws `shapes` on `canvas`: for each shape its fill, then its stroke, in list order.
pub fn draw_shapes(canvas: &mut Canvas, shapes: &[Shape]) {
    for shape in shapes {
        let path = match &shape.geometry {
            Geometry::Rect { x, y, w, h, radius } => Canvas::rounded_rect_path(Rect::new(*x, *y, *w, *h), *radius),
            Geometry::Circle { cx, cy, r } => Canvas::ellipse_path(*cx, *cy, r.abs(), r.abs()),
            Geometry::Ellipse { cx, cy, rx, ry } => Canvas::ellipse_path(*cx, *cy, rx.abs(), ry.abs()),
            Geometry::Polyline { points, closed } => {
                let mut b = PathBuilder::new();
                for (i, p) in points.iter().enumerate() {
                    b = if i == 0 { b.move_to(p[0], p[1]) } else { b.line_to(p[0], p[1]) };
                }
                if *closed {
                    b = b.close();
                }
                b.build()
            }
        };
        if let Some(fill) = &shape.fill {
            canvas.fill(&path, fill.paint());
        }
        if let Some(st) = &shape.stroke {
            let style = StrokeStyle { width: st.width, join: st.join, cap: st.cap, dash: st.dash.clone() };
            canvas.stroke(&path, &style, st.color);
        }
    }
}

/// Registry entry for `"kind": "vector"`.
#[derive(Debug, Default)]
pub struct VectorLayerKind;

impl LayerKind for VectorLayerKind {
    type Config = VectorLayerConfig;

    fn needs_input(&self) -> bool {
        false
    }

    fn check(&self, config: &VectorLayerConfig) -> Result<(), SceneError> {
        config.check()
    }

    fn build(
        &self,
        _spec: &LayerSpec,
        config: VectorLayerConfig,
        _ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Layer>, BuildError> {
        // A declarative drawing: the same canvas and pipeline as Rust drawing code. The shapes
        // never change, so the drawing layer draws them once and then only composites.
        let shapes = config.shapes;
        Ok(Box::new(DrawingLayer::new(Box::new(move |canvas, _| {
            draw_shapes(canvas, &shapes);
            Ok(())
        }))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::AnyLayerKind;

    fn shape(geometry: Geometry, fill: bool, stroke: bool) -> Shape {
        Shape {
            geometry,
            fill: fill.then_some(Fill::Solid(Color::WHITE)),
            stroke: stroke.then_some(Stroke {
                color: Color::BLACK,
                width: 2.0,
                join: Join::Round,
                cap: Cap::Round,
                dash: Vec::new(),
            }),
        }
    }

    fn mesh(shapes: &[Shape]) -> crate::gpu::vector::Mesh {
        let mut c = Canvas::new(100, 100);
        draw_shapes(&mut c, shapes);
        c.take().0
    }

    #[test]
    fn a_filled_rect_is_two_triangles() {
        let m = mesh(&[shape(Geometry::Rect { x: 0.0, y: 0.0, w: 10.0, h: 5.0, radius: 0.0 }, true, false)]);
        assert_eq!(m.indices.len(), 6);
        assert_eq!(m.vertices.len(), 4);
        let xs: Vec<f32> = m.vertices.iter().map(|v| v.position[0]).collect();
        assert!(xs.contains(&0.0) && xs.contains(&10.0));
    }

    #[test]
    fn circles_are_flattened_within_tolerance() {
        let r = 100.0;
        let m = mesh(&[shape(Geometry::Circle { cx: 0.0, cy: 0.0, r }, true, false)]);
        // Every vertex lies on the circle (within the tolerance) and there are enough of them.
        assert!(m.vertices.len() >= 40, "{} vertices", m.vertices.len());
        for v in &m.vertices {
            let d = (v.position[0].powi(2) + v.position[1].powi(2)).sqrt();
            assert!((d - r).abs() <= TOLERANCE + 1e-3, "vertex at distance {d}");
        }
    }

    #[test]
    fn strokes_have_their_width() {
        let m =
            mesh(&[shape(Geometry::Polyline { points: vec![[0.0, 10.0], [50.0, 10.0]], closed: false }, false, true)]);
        let ys: Vec<f32> = m.vertices.iter().map(|v| v.position[1]).collect();
        let (min, max) = ys.iter().fold((f32::MAX, f32::MIN), |(a, b), &y| (a.min(y), b.max(y)));
        assert!((max - min - 2.0).abs() < 1e-3, "stroke spans {min}..{max}");
    }

    #[test]
    fn invalid_shapes_name_the_field() {
        let bad = |json: serde_json::Value| {
            let params = json.as_object().cloned().unwrap_or_default();
            VectorLayerKind.validate(&params).expect_err("invalid").path
        };
        assert_eq!(
            bad(serde_json::json!({ "shapes": [ { "type": "circle", "cx": 1, "cy": 1, "r": 2 } ] })),
            "shapes[0]"
        );
        let short =
            bad(serde_json::json!({ "shapes": [ { "type": "circle", "cx": 1, "cy": 1, "r": 2, "fill": "#FFF" } ] }));
        assert!(short.starts_with("shapes[0]"), "{short}");
        assert_eq!(
            bad(serde_json::json!({ "shapes": [ { "type": "polyline", "points": [[0, 0]], "fill": "#FFFFFF" } ] })),
            "shapes[0].points"
        );
        assert_eq!(
            bad(serde_json::json!({ "shapes": [ { "type": "rect", "x": 0, "y": 0, "w": 1, "h": 1,
                "stroke": { "color": "#000000", "width": -1 } } ] })),
            "shapes[0].stroke.width"
        );
        let typo = bad(serde_json::json!({ "shapes": [ { "type": "circle", "cx": 1, "cy": 1, "r": 2,
            "fill": "#FFFFFF", "colour": "#000000" } ] }));
        assert!(typo.starts_with("shapes[0]"), "{typo}");
        let ok = serde_json::json!({ "shapes": [
            { "type": "circle", "cx": 1, "cy": 1, "r": 2, "fill": "#FFFFFF",
              "stroke": { "color": "#000000", "width": 2, "join": "round", "cap": "square", "dash": [4, 2] } },
            { "type": "rect", "x": 0, "y": 0, "w": 9, "h": 9,
              "fill": { "linear": { "start": [0, 0], "end": [9, 0], "stops": [[0, "#000000"], [1, "#FFFFFF"]] } } },
            { "type": "ellipse", "cx": 5, "cy": 5, "rx": 4, "ry": 2,
              "fill": { "radial": { "center": [5, 5], "radius": 4, "stops": [[0, "#FFFFFF"], [1, "#FFFFFF00"]] } } }
        ] });
        VectorLayerKind.validate(ok.as_object().expect("object")).expect("valid shapes");
    }
}
