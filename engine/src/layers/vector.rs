//! The `vector` layer: a declarative list of shapes (rect, rounded rect, circle, ellipse,
//! polyline/polygon) with fills and strokes, tessellated once by lyon and drawn with 4x MSAA into
//! the layer's texture. Coordinates are pixels inside the layer's rect.

use super::{Layer, LayerError, LayerPass, PrepareContext, QuadSlot};
use crate::gpu::texture::Target;
use crate::gpu::vector::{Mesh, VectorCanvas, VectorVertex};
use crate::registry::{parse_params, BuildContext, BuildError, LayerKind};
use crate::scene::{Color, LayerSpec, Params, Rect, SceneError};
use lyon::math::{point, vector, Angle, Box2D};
use lyon::path::builder::BorderRadii;
use lyon::path::{Path, Winding};
use lyon::tessellation::{
    BuffersBuilder, FillOptions, FillTessellator, FillVertex, LineCap, LineJoin, StrokeOptions, StrokeTessellator,
    StrokeVertex, VertexBuffers,
};
use serde::{Deserialize, Serialize};

/// Maximum distance in pixels between a curve and its flattened polygon: a tenth of a pixel is
/// invisible at any zoom we render and keeps a 100 px circle near 80 segments.
pub const TOLERANCE: f32 = 0.1;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Join {
    #[default]
    Miter,
    Round,
    Bevel,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cap {
    #[default]
    Butt,
    Round,
    Square,
}

/// An outline.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stroke {
    pub color: Color,
    #[serde(default = "one")]
    pub width: f32,
    #[serde(default)]
    pub join: Join,
    #[serde(default)]
    pub cap: Cap,
}

fn one() -> f32 {
    1.0
}

/// The geometry of one shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Geometry {
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        #[serde(default)]
        radius: f32,
    },
    Circle {
        cx: f32,
        cy: f32,
        r: f32,
    },
    Ellipse {
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
    },
    /// Open unless `closed` (then a polygon, which can be filled).
    Polyline {
        points: Vec<[f32; 2]>,
        #[serde(default)]
        closed: bool,
    },
}

/// A shape with its paint. At least one of `fill` and `stroke`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shape {
    #[serde(flatten)]
    pub geometry: Geometry,
    #[serde(default)]
    pub fill: Option<Color>,
    #[serde(default)]
    pub stroke: Option<Stroke>,
}

/// Parameters of a `vector` layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorLayerConfig {
    pub shapes: Vec<Shape>,
}

impl VectorLayerConfig {
    fn check(&self) -> Result<(), SceneError> {
        for (i, s) in self.shapes.iter().enumerate() {
            let at = |field: &str| format!("shapes[{i}].{field}");
            if s.fill.is_none() && s.stroke.is_none() {
                return Err(SceneError::new(format!("shapes[{i}]"), "a shape needs a `fill`, a `stroke` or both"));
            }
            if let Some(st) = s.stroke.filter(|st| !(st.width.is_finite() && st.width > 0.0)) {
                return Err(SceneError::new(at("stroke.width"), format!("{} must be positive", st.width)));
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

fn path_of(geometry: &Geometry) -> Path {
    let mut b = Path::builder();
    match geometry {
        Geometry::Rect { x, y, w, h, radius } => {
            let rect = Box2D::new(point(*x, *y), point(x + w, y + h));
            b.add_rounded_rectangle(&rect, &BorderRadii::new(radius.min(w / 2.0).min(h / 2.0)), Winding::Positive);
        }
        Geometry::Circle { cx, cy, r } => b.add_circle(point(*cx, *cy), r.abs(), Winding::Positive),
        Geometry::Ellipse { cx, cy, rx, ry } => {
            b.add_ellipse(point(*cx, *cy), vector(rx.abs(), ry.abs()), Angle::radians(0.0), Winding::Positive)
        }
        Geometry::Polyline { points, closed } => {
            let mut it = points.iter();
            if let Some(first) = it.next() {
                b.begin(point(first[0], first[1]));
                for p in it {
                    b.line_to(point(p[0], p[1]));
                }
                b.end(*closed);
            }
        }
    }
    b.build()
}

fn premultiplied(c: Color) -> [f32; 4] {
    c.premultiplied().map(|v| v as f32)
}

/// Tessellates every shape, fills before strokes for each, in list order.
pub fn tessellate(shapes: &[Shape]) -> Result<Mesh, String> {
    let mut geometry: VertexBuffers<VectorVertex, u32> = VertexBuffers::new();
    let mut fill = FillTessellator::new();
    let mut stroke = StrokeTessellator::new();
    for (i, shape) in shapes.iter().enumerate() {
        let path = path_of(&shape.geometry);
        if let Some(color) = shape.fill {
            let color = premultiplied(color);
            fill.tessellate_path(
                &path,
                &FillOptions::tolerance(TOLERANCE),
                &mut BuffersBuilder::new(&mut geometry, |v: FillVertex| {
                    VectorVertex::solid(v.position().to_array(), color)
                }),
            )
            .map_err(|e| format!("shape {i}: fill: {e:?}"))?;
        }
        if let Some(st) = shape.stroke {
            let color = premultiplied(st.color);
            let options = StrokeOptions::tolerance(TOLERANCE)
                .with_line_width(st.width)
                .with_line_join(match st.join {
                    Join::Miter => LineJoin::Miter,
                    Join::Round => LineJoin::Round,
                    Join::Bevel => LineJoin::Bevel,
                })
                .with_line_cap(match st.cap {
                    Cap::Butt => LineCap::Butt,
                    Cap::Round => LineCap::Round,
                    Cap::Square => LineCap::Square,
                });
            stroke
                .tessellate_path(
                    &path,
                    &options,
                    &mut BuffersBuilder::new(&mut geometry, |v: StrokeVertex| {
                        VectorVertex::solid(v.position().to_array(), color)
                    }),
                )
                .map_err(|e| format!("shape {i}: stroke: {e:?}"))?;
        }
    }
    let count = geometry.indices.len() as u32;
    Ok(Mesh {
        vertices: geometry.vertices,
        indices: geometry.indices,
        paints: Vec::new(),
        batches: vec![(0..count, None)],
    })
}

pub struct VectorLayer {
    mesh: Mesh,
    canvas: Option<(VectorCanvas, Target, wgpu::BindGroup)>,
    drawn: bool,
    slot: Option<QuadSlot>,
}

impl std::fmt::Debug for VectorLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorLayer").field("triangles", &(self.mesh.indices.len() / 3)).finish()
    }
}

impl VectorLayer {
    pub fn new(config: &VectorLayerConfig) -> Result<Self, String> {
        Ok(VectorLayer { mesh: tessellate(&config.shapes)?, canvas: None, drawn: false, slot: None })
    }
}

impl Layer for VectorLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        let dst = ctx.dst_rect();
        let max = ctx.gpu.max_texture_side();
        let size = ((dst.w.round() as u32).clamp(1, max), (dst.h.round() as u32).clamp(1, max));
        if self.canvas.as_ref().is_none_or(|(c, _, _)| c.size() != size) {
            let mut canvas = VectorCanvas::new(ctx.gpu, &ctx.pipelines.vector, size.0, size.1);
            canvas.set_mesh(ctx.gpu, &ctx.pipelines.vector, &self.mesh);
            let target = Target::rgba(&ctx.gpu.device, "streamlib vector layer", size.0, size.1);
            let group = ctx.pipelines.blend.texture_bind_group(&ctx.gpu.device, &target.view);
            self.canvas = Some((canvas, target, group));
            self.drawn = false;
        }
        // The shapes are static: drawn once into the layer texture, composited every frame.
        if let (false, Some((canvas, target, _))) = (self.drawn, &self.canvas) {
            canvas.draw(&ctx.pipelines.vector, ctx.encoder, target);
            self.drawn = true;
        }
        self.slot = Some(ctx.quad(Rect::new(dst.x, dst.y, size.0 as f32, size.1 as f32), [0.0, 0.0, 1.0, 1.0]));
        Ok(())
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        if let (Some((_, _, group)), Some(slot)) = (&self.canvas, self.slot) {
            pass.draw_quad(group, slot);
        }
    }
}

/// Registry entry for `"kind": "vector"`.
#[derive(Debug, Default)]
pub struct VectorLayerKind;

impl LayerKind for VectorLayerKind {
    fn needs_input(&self) -> bool {
        false
    }

    fn validate(&self, params: &Params) -> Result<(), SceneError> {
        parse_params::<VectorLayerConfig>(params)?.check()
    }

    fn build(&self, spec: &LayerSpec, _ctx: &BuildContext<'_>) -> Result<Box<dyn Layer>, BuildError> {
        let config: VectorLayerConfig = parse_params(&spec.params).map_err(|e| BuildError::new(&spec.id, e))?;
        config.check().map_err(|e| BuildError::new(&spec.id, e))?;
        Ok(Box::new(VectorLayer::new(&config).map_err(|e| BuildError::new(format!("layer {}", spec.id), e))?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(geometry: Geometry, fill: bool, stroke: bool) -> Shape {
        Shape {
            geometry,
            fill: fill.then_some(Color::WHITE),
            stroke: stroke.then_some(Stroke { color: Color::BLACK, width: 2.0, join: Join::Round, cap: Cap::Round }),
        }
    }

    #[test]
    fn a_filled_rect_is_two_triangles() {
        let mesh = tessellate(&[shape(Geometry::Rect { x: 0.0, y: 0.0, w: 10.0, h: 5.0, radius: 0.0 }, true, false)])
            .expect("tessellate");
        assert_eq!(mesh.indices.len(), 6);
        assert_eq!(mesh.vertices.len(), 4);
        let xs: Vec<f32> = mesh.vertices.iter().map(|v| v.position[0]).collect();
        assert!(xs.contains(&0.0) && xs.contains(&10.0));
    }

    #[test]
    fn circles_are_flattened_within_tolerance() {
        let r = 100.0;
        let mesh = tessellate(&[shape(Geometry::Circle { cx: 0.0, cy: 0.0, r }, true, false)]).expect("tessellate");
        // Every vertex lies on the circle (within the tolerance) and there are enough of them.
        assert!(mesh.vertices.len() >= 40, "{} vertices", mesh.vertices.len());
        for v in &mesh.vertices {
            let d = (v.position[0].powi(2) + v.position[1].powi(2)).sqrt();
            assert!((d - r).abs() <= TOLERANCE + 1e-3, "vertex at distance {d}");
        }
    }

    #[test]
    fn strokes_have_their_width() {
        let mesh = tessellate(&[shape(
            Geometry::Polyline { points: vec![[0.0, 10.0], [50.0, 10.0]], closed: false },
            false,
            true,
        )])
        .expect("tessellate");
        let ys: Vec<f32> = mesh.vertices.iter().map(|v| v.position[1]).collect();
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
        assert_eq!(
            bad(serde_json::json!({ "shapes": [ { "type": "circle", "cx": 1, "cy": 1, "r": 2, "fill": "#FFF" } ] })),
            "shapes[0].fill"
        );
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
        let ok = serde_json::json!({ "shapes": [ { "type": "circle", "cx": 1, "cy": 1, "r": 2, "fill": "#FFFFFF",
            "stroke": { "color": "#000000", "width": 2, "join": "round", "cap": "square" } } ] });
        VectorLayerKind.validate(ok.as_object().expect("object")).expect("valid shape");
    }
}
