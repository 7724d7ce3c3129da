//! The drawing canvas handed to a `DrawingLayer`'s closure every frame: paths, shapes, strokes,
//! solid and gradient paints, transforms with save/restore, clip rects and text. Recording is pure
//! CPU work (tested without a GPU); paths are tessellated by lyon and cached, so shapes that do not
//! change are not re-tessellated every frame, only re-transformed.

use crate::gpu::vector::{GpuPaint, Mesh, VectorVertex};
use crate::layers::text::{TextAlign, TextWeight};
use crate::scene::{Color, Rect};
use lyon::math::{point, vector, Angle, Box2D, Transform};
use lyon::path::Path as LyonPath;
use lyon::tessellation::{
    BuffersBuilder, FillOptions, FillTessellator, FillVertex, LineCap, LineJoin, StrokeOptions, StrokeTessellator,
    StrokeVertex, VertexBuffers,
};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};

pub use crate::layers::vector::{Cap, Join, TOLERANCE};

/// A path under construction; finish with `build`.
#[derive(Clone, Debug, Default)]
pub struct PathBuilder {
    commands: Vec<PathCommand>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum PathCommand {
    MoveTo([f32; 2]),
    LineTo([f32; 2]),
    QuadTo([f32; 2], [f32; 2]),
    CubicTo([f32; 2], [f32; 2], [f32; 2]),
    Arc { center: [f32; 2], radii: [f32; 2], start: f32, sweep: f32 },
    Close,
}

/// A finished path, in user coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct CanvasPath {
    commands: Vec<PathCommand>,
}

impl PathBuilder {
    /// An empty path.
    pub fn new() -> Self {
        Self::default()
    }
    /// Starts a new sub-path at (x, y).
    pub fn move_to(mut self, x: f32, y: f32) -> Self {
        self.commands.push(PathCommand::MoveTo([x, y]));
        self
    }
    /// Adds a straight line from the current point to (x, y).
    pub fn line_to(mut self, x: f32, y: f32) -> Self {
        self.commands.push(PathCommand::LineTo([x, y]));
        self
    }
    /// Adds a quadratic Bezier curve with control point (cx, cy), ending at (x, y).
    pub fn quad_to(mut self, cx: f32, cy: f32, x: f32, y: f32) -> Self {
        self.commands.push(PathCommand::QuadTo([cx, cy], [x, y]));
        self
    }
    /// Adds a cubic Bezier curve with control points (c1x, c1y) and (c2x, c2y), ending at (x, y).
    pub fn cubic_to(mut self, c1x: f32, c1y: f32, c2x: f32, c2y: f32, x: f32, y: f32) -> Self {
        self.commands.push(PathCommand::CubicTo([c1x, c1y], [c2x, c2y], [x, y]));
        self
    }
    /// An elliptic arc around `center` from angle `start` sweeping `sweep` (radians, clockwise
    /// on screen), continuing the current sub-path.
    pub fn arc(mut self, cx: f32, cy: f32, rx: f32, ry: f32, start: f32, sweep: f32) -> Self {
        self.commands.push(PathCommand::Arc { center: [cx, cy], radii: [rx, ry], start, sweep });
        self
    }
    /// Closes the current sub-path with a line back to its start.
    pub fn close(mut self) -> Self {
        self.commands.push(PathCommand::Close);
        self
    }
    /// Finishes the path.
    pub fn build(self) -> CanvasPath {
        CanvasPath { commands: self.commands }
    }
}

impl CanvasPath {
    fn to_lyon(&self) -> LyonPath {
        let mut b = LyonPath::builder().with_svg();
        for c in &self.commands {
            match *c {
                PathCommand::MoveTo(p) => {
                    b.move_to(point(p[0], p[1]));
                }
                PathCommand::LineTo(p) => {
                    b.line_to(point(p[0], p[1]));
                }
                PathCommand::QuadTo(c, p) => {
                    b.quadratic_bezier_to(point(c[0], c[1]), point(p[0], p[1]));
                }
                PathCommand::CubicTo(c1, c2, p) => {
                    b.cubic_bezier_to(point(c1[0], c1[1]), point(c2[0], c2[1]), point(p[0], p[1]));
                }
                PathCommand::Arc { center, radii, start, sweep } => {
                    // Flattened on the true ellipse (lyon's SVG arc goes through quadratic curves,
                    // which stray ~0.15 px from a 100 px circle); chords stay within TOLERANCE.
                    let arc = lyon::geom::Arc {
                        center: point(center[0], center[1]),
                        radii: vector(radii[0], radii[1]),
                        start_angle: Angle::radians(start),
                        sweep_angle: Angle::radians(sweep),
                        x_rotation: Angle::radians(0.0),
                    };
                    let from = arc.from();
                    if b.current_position() != from {
                        b.line_to(from);
                    }
                    arc.for_each_flattened(TOLERANCE, &mut |segment| {
                        b.line_to(segment.to);
                    });
                }
                PathCommand::Close => b.close(),
            }
        }
        b.build()
    }

    fn hash_into(&self, h: &mut impl Hasher) {
        for c in &self.commands {
            let (tag, values): (u8, Vec<f32>) = match *c {
                PathCommand::MoveTo(p) => (0, p.to_vec()),
                PathCommand::LineTo(p) => (1, p.to_vec()),
                PathCommand::QuadTo(a, p) => (2, [a, p].concat()),
                PathCommand::CubicTo(a, b, p) => (3, [a, b, p].concat()),
                PathCommand::Arc { center, radii, start, sweep } => {
                    (4, vec![center[0], center[1], radii[0], radii[1], start, sweep])
                }
                PathCommand::Close => (5, Vec::new()),
            };
            tag.hash(h);
            for v in values {
                v.to_bits().hash(h);
            }
        }
    }
}

/// What fills a shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Paint {
    /// A single colour.
    Solid(Color),
    /// From `start` to `end` in user coordinates; up to four `(offset, colour)` stops.
    Linear {
        /// Start of the gradient line, in user coordinates.
        start: [f32; 2],
        /// End of the gradient line, in user coordinates.
        end: [f32; 2],
        /// Colour stops as `(offset, colour)`, offsets in 0..=1 along the line.
        stops: Vec<(f32, Color)>,
    },
    /// Around `center` out to `radius`; up to four stops.
    Radial {
        /// Centre of the gradient, in user coordinates.
        center: [f32; 2],
        /// Radius of the gradient circle, in user units.
        radius: f32,
        /// Colour stops as `(offset, colour)`, offsets in 0..=1 from the centre out.
        stops: Vec<(f32, Color)>,
    },
}

impl From<Color> for Paint {
    fn from(c: Color) -> Self {
        Paint::Solid(c)
    }
}

/// How a path is outlined.
#[derive(Clone, Debug, PartialEq)]
pub struct StrokeStyle {
    /// Line width in user units.
    pub width: f32,
    /// How segments meet at corners.
    pub join: Join,
    /// How the open ends of the path are finished.
    pub cap: Cap,
    /// Dash pattern: on, off, on, off, ... lengths in user units; empty for a solid line.
    pub dash: Vec<f32>,
}

impl StrokeStyle {
    /// A solid stroke `width` user units wide, with miter joins and butt caps.
    pub fn new(width: f32) -> Self {
        StrokeStyle { width, join: Join::Miter, cap: Cap::Butt, dash: Vec::new() }
    }
    /// Sets the corner join.
    pub fn join(mut self, join: Join) -> Self {
        self.join = join;
        self
    }
    /// Sets the end cap.
    pub fn cap(mut self, cap: Cap) -> Self {
        self.cap = cap;
        self
    }
    /// Sets the dash pattern (on, off, ... lengths in user units); empty for a solid line.
    pub fn dash(mut self, pattern: &[f32]) -> Self {
        self.dash = pattern.to_vec();
        self
    }
}

/// How text is set.
#[derive(Clone, Debug, PartialEq)]
pub struct TextStyle {
    /// Font family name, e.g. `DejaVu Sans`.
    pub family: String,
    /// Font size in user units; the canvas scale applies to it.
    pub size: f32,
    /// Font weight.
    pub weight: TextWeight,
    /// Text colour.
    pub color: Color,
    /// Horizontal alignment of the lines.
    pub align: TextAlign,
    /// Lines wrap at this width (and alignment is within it).
    pub wrap_width: Option<f32>,
    /// Outline colour and width in user units, drawn as offset copies under the text.
    pub outline: Option<(Color, f32)>,
    /// Drop shadow colour and `[x, y]` offset in user units.
    pub shadow: Option<(Color, [f32; 2])>,
}

impl Default for TextStyle {
    fn default() -> Self {
        TextStyle {
            family: "DejaVu Sans".into(),
            size: 24.0,
            weight: TextWeight::Normal,
            color: Color::WHITE,
            align: TextAlign::Left,
            wrap_width: None,
            outline: None,
            shadow: None,
        }
    }
}

/// A piece of text placed on the canvas (drawn by the layer with glyphon).
#[derive(Clone, Debug, PartialEq)]
pub struct TextItem {
    /// The text to draw.
    pub text: String,
    /// Top-left in target pixels (the transform's translation and scale applied).
    pub position: [f32; 2],
    /// Scale of the transform when the text was placed, applied to its size and offsets.
    pub scale: f32,
    /// How the text is set.
    pub style: TextStyle,
    /// Clip rect in target pixels as `[x, y, w, h]`; `None` when unclipped.
    pub clip: Option<[u32; 4]>,
}

#[derive(Clone, Copy, Debug)]
struct State {
    transform: Transform,
    clip: Option<Box2D>,
    alpha: f32,
}

/// Cached tessellations in user space, keyed by path and style. Bounded: cleared when full.
const CACHE_ENTRIES: usize = 4096;

#[derive(Default)]
struct Tessellation {
    positions: Vec<[f32; 2]>,
    indices: Vec<u32>,
}

/// The per-frame drawing surface.
pub struct Canvas {
    width: u32,
    height: u32,
    state: State,
    stack: Vec<State>,
    mesh: Mesh,
    texts: Vec<TextItem>,
    cache: HashMap<u64, Tessellation>,
    fill: FillTessellator,
    stroke: StrokeTessellator,
    tessellations: u64,
}

impl std::fmt::Debug for Canvas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canvas").field("size", &(self.width, self.height)).finish()
    }
}

fn premultiplied(c: Color, alpha: f32) -> [f32; 4] {
    c.premultiplied().map(|v| v as f32 * alpha)
}

impl Canvas {
    /// A canvas of `width` x `height` pixels with nothing drawn.
    pub fn new(width: u32, height: u32) -> Self {
        Canvas {
            width,
            height,
            state: State { transform: Transform::identity(), clip: None, alpha: 1.0 },
            stack: Vec::new(),
            mesh: Mesh::default(),
            texts: Vec::new(),
            cache: HashMap::new(),
            fill: FillTessellator::new(),
            stroke: StrokeTessellator::new(),
            tessellations: 0,
        }
    }

    /// Width of the canvas in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }
    /// Height of the canvas in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Clears what was drawn (not the cache) for a new frame.
    pub(crate) fn begin_frame(&mut self, width: u32, height: u32) {
        self.width = width;
        self.height = height;
        self.state = State { transform: Transform::identity(), clip: None, alpha: 1.0 };
        self.stack.clear();
        self.mesh = Mesh::default();
        self.texts.clear();
    }

    pub(crate) fn take(&mut self) -> (Mesh, Vec<TextItem>) {
        (std::mem::take(&mut self.mesh), std::mem::take(&mut self.texts))
    }

    /// Paths tessellated so far (cache misses), for tests and stats.
    pub fn tessellations(&self) -> u64 {
        self.tessellations
    }

    /// Pushes the current transform, clip and alpha; `restore` brings them back.
    pub fn save(&mut self) {
        self.stack.push(self.state);
    }
    /// Pops the state pushed by the last `save`; does nothing without one.
    pub fn restore(&mut self) {
        if let Some(s) = self.stack.pop() {
            self.state = s;
        }
    }
    /// Moves the origin by (x, y) in user units.
    pub fn translate(&mut self, x: f32, y: f32) {
        self.state.transform = self.state.transform.pre_translate(vector(x, y));
    }
    /// Rotates by `radians`, clockwise on screen.
    pub fn rotate(&mut self, radians: f32) {
        self.state.transform = self.state.transform.pre_rotate(Angle::radians(radians));
    }
    /// Scales user coordinates by `sx` horizontally and `sy` vertically.
    pub fn scale(&mut self, sx: f32, sy: f32) {
        self.state.transform = self.state.transform.pre_scale(sx, sy);
    }
    /// Multiplies the alpha of everything drawn until `restore`.
    pub fn set_alpha(&mut self, alpha: f32) {
        self.state.alpha = alpha.clamp(0.0, 1.0);
    }
    /// Clips to `rect` (user coordinates); under rotation, to its bounding box on the target.
    pub fn clip_rect(&mut self, rect: Rect) {
        let b = Box2D::new(point(rect.x, rect.y), point(rect.x + rect.w, rect.y + rect.h));
        let corners = [b.min, point(b.max.x, b.min.y), b.max, point(b.min.x, b.max.y)]
            .map(|p| self.state.transform.transform_point(p));
        let device = Box2D::from_points(corners);
        self.state.clip = Some(match self.state.clip {
            Some(c) => c.intersection(&device).unwrap_or(Box2D::zero()),
            None => device,
        });
    }

    fn clip_pixels(&self) -> Option<[u32; 4]> {
        self.state.clip.map(|c| {
            let x0 = c.min.x.floor().clamp(0.0, self.width as f32) as u32;
            let y0 = c.min.y.floor().clamp(0.0, self.height as f32) as u32;
            let x1 = c.max.x.ceil().clamp(0.0, self.width as f32) as u32;
            let y1 = c.max.y.ceil().clamp(0.0, self.height as f32) as u32;
            [x0, y0, x1.saturating_sub(x0), y1.saturating_sub(y0)]
        })
    }

    fn paint_vertex(&mut self, paint: &Paint) -> ([f32; 4], u32) {
        let alpha = self.state.alpha;
        let stops_of = |stops: &[(f32, Color)]| {
            let mut offsets = [1.0f32; 4];
            let mut colors = [[0.0f32; 4]; 4];
            let n = stops.len().clamp(1, 4);
            for (i, (o, c)) in stops.iter().take(4).enumerate() {
                offsets[i] = o.clamp(0.0, 1.0);
                colors[i] = premultiplied(*c, 1.0);
            }
            (n as u32, offsets, colors)
        };
        let gpu = match paint {
            Paint::Solid(c) => return (premultiplied(*c, alpha), 0),
            Paint::Linear { start, end, stops } => {
                let (n, offsets, colors) = stops_of(stops);
                GpuPaint { kind: [1, n, 0, 0], geometry: [start[0], start[1], end[0], end[1]], offsets, colors }
            }
            Paint::Radial { center, radius, stops } => {
                let (n, offsets, colors) = stops_of(stops);
                GpuPaint { kind: [2, n, 0, 0], geometry: [center[0], center[1], *radius, 0.0], offsets, colors }
            }
        };
        self.mesh.paints.push(gpu);
        ([alpha; 4], self.mesh.paints.len() as u32)
    }

    fn emit(&mut self, key: u64, path: &CanvasPath, stroke: Option<&StrokeStyle>, paint: &Paint) {
        if !self.cache.contains_key(&key) {
            if self.cache.len() >= CACHE_ENTRIES {
                self.cache.clear();
            }
            let t = self.tessellate(path, stroke);
            self.tessellations += 1;
            self.cache.insert(key, t);
        }
        let (color, paint_index) = self.paint_vertex(paint);
        let clip = self.clip_pixels();
        let Some(t) = self.cache.get(&key) else { return };
        let base = self.mesh.vertices.len() as u32;
        let transform = self.state.transform;
        self.mesh.vertices.extend(t.positions.iter().map(|p| VectorVertex {
            position: transform.transform_point(point(p[0], p[1])).to_array(),
            local: *p,
            color,
            paint: paint_index,
            _pad: 0,
        }));
        let start = self.mesh.indices.len() as u32;
        self.mesh.indices.extend(t.indices.iter().map(|i| i + base));
        let end = self.mesh.indices.len() as u32;
        match self.mesh.batches.last_mut() {
            Some((range, c)) if *c == clip && range.end == start => range.end = end,
            _ => self.mesh.batches.push((start..end, clip)),
        }
    }

    fn tessellate(&mut self, path: &CanvasPath, stroke: Option<&StrokeStyle>) -> Tessellation {
        let lyon_path = path.to_lyon();
        let mut out: VertexBuffers<[f32; 2], u32> = VertexBuffers::new();
        // A path lyon cannot tessellate (degenerate input from user code) draws nothing.
        let result = match stroke {
            None => self
                .fill
                .tessellate_path(
                    &lyon_path,
                    &FillOptions::tolerance(TOLERANCE),
                    &mut BuffersBuilder::new(&mut out, |v: FillVertex| v.position().to_array()),
                )
                .map_err(|e| format!("{e:?}")),
            Some(style) => {
                let options = StrokeOptions::tolerance(TOLERANCE)
                    .with_line_width(style.width.max(0.0))
                    .with_line_join(match style.join {
                        Join::Miter => LineJoin::Miter,
                        Join::Round => LineJoin::Round,
                        Join::Bevel => LineJoin::Bevel,
                    })
                    .with_line_cap(match style.cap {
                        Cap::Butt => LineCap::Butt,
                        Cap::Round => LineCap::Round,
                        Cap::Square => LineCap::Square,
                    });
                let dashed;
                let to_stroke = if style.dash.iter().any(|d| *d > 0.0) {
                    dashed = dash_path(&lyon_path, &style.dash);
                    &dashed
                } else {
                    &lyon_path
                };
                self.stroke
                    .tessellate_path(
                        to_stroke,
                        &options,
                        &mut BuffersBuilder::new(&mut out, |v: StrokeVertex| v.position().to_array()),
                    )
                    .map_err(|e| format!("{e:?}"))
            }
        };
        if let Err(e) = result {
            tracing::debug!("path not tessellated: {e}");
            return Tessellation::default();
        }
        Tessellation { positions: out.vertices, indices: out.indices }
    }

    fn key(path: &CanvasPath, stroke: Option<&StrokeStyle>) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash_into(&mut h);
        if let Some(s) = stroke {
            s.width.to_bits().hash(&mut h);
            (s.join as u8, s.cap as u8).hash(&mut h);
            for d in &s.dash {
                d.to_bits().hash(&mut h);
            }
        }
        h.finish()
    }

    /// Fills `path` with `paint`.
    pub fn fill(&mut self, path: &CanvasPath, paint: impl Into<Paint>) {
        let key = Self::key(path, None);
        self.emit(key, path, None, &paint.into());
    }

    /// Strokes the outline of `path` with `style` and `paint`.
    pub fn stroke(&mut self, path: &CanvasPath, style: &StrokeStyle, paint: impl Into<Paint>) {
        let key = Self::key(path, Some(style));
        self.emit(key, path, Some(style), &paint.into());
    }

    /// The outline of a rectangle with rounded corners (`radius` 0: sharp).
    pub fn rounded_rect_path(rect: Rect, radius: f32) -> CanvasPath {
        let r = radius.max(0.0).min(rect.w / 2.0).min(rect.h / 2.0);
        if r <= 0.0 {
            return PathBuilder::new()
                .move_to(rect.x, rect.y)
                .line_to(rect.x + rect.w, rect.y)
                .line_to(rect.x + rect.w, rect.y + rect.h)
                .line_to(rect.x, rect.y + rect.h)
                .close()
                .build();
        }
        let (x0, y0, x1, y1) = (rect.x, rect.y, rect.x + rect.w, rect.y + rect.h);
        let q = std::f32::consts::FRAC_PI_2;
        PathBuilder::new()
            .move_to(x0 + r, y0)
            .line_to(x1 - r, y0)
            .arc(x1 - r, y0 + r, r, r, -q, q)
            .line_to(x1, y1 - r)
            .arc(x1 - r, y1 - r, r, r, 0.0, q)
            .line_to(x0 + r, y1)
            .arc(x0 + r, y1 - r, r, r, q, q)
            .line_to(x0, y0 + r)
            .arc(x0 + r, y0 + r, r, r, 2.0 * q, q)
            .close()
            .build()
    }

    /// The outline of an ellipse.
    pub fn ellipse_path(cx: f32, cy: f32, rx: f32, ry: f32) -> CanvasPath {
        PathBuilder::new().move_to(cx + rx, cy).arc(cx, cy, rx, ry, 0.0, std::f32::consts::TAU).close().build()
    }

    /// Fills `rect`.
    pub fn fill_rect(&mut self, rect: Rect, paint: impl Into<Paint>) {
        self.fill(&Self::rounded_rect_path(rect, 0.0), paint);
    }
    /// Fills `rect` with its corners rounded to `radius`.
    pub fn fill_rounded_rect(&mut self, rect: Rect, radius: f32, paint: impl Into<Paint>) {
        self.fill(&Self::rounded_rect_path(rect, radius), paint);
    }
    /// Outlines `rect` with its corners rounded to `radius` (0: sharp).
    pub fn stroke_rect(&mut self, rect: Rect, radius: f32, style: &StrokeStyle, paint: impl Into<Paint>) {
        self.stroke(&Self::rounded_rect_path(rect, radius), style, paint);
    }
    /// Fills a circle of radius `r` around (cx, cy).
    pub fn fill_circle(&mut self, cx: f32, cy: f32, r: f32, paint: impl Into<Paint>) {
        self.fill(&Self::ellipse_path(cx, cy, r, r), paint);
    }
    /// Outlines a circle of radius `r` around (cx, cy).
    pub fn stroke_circle(&mut self, cx: f32, cy: f32, r: f32, style: &StrokeStyle, paint: impl Into<Paint>) {
        self.stroke(&Self::ellipse_path(cx, cy, r, r), style, paint);
    }
    /// Fills an ellipse with radii `rx` and `ry` around (cx, cy).
    pub fn fill_ellipse(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, paint: impl Into<Paint>) {
        self.fill(&Self::ellipse_path(cx, cy, rx, ry), paint);
    }
    /// Strokes an open line through `points`; fewer than two points draw nothing.
    pub fn polyline(&mut self, points: &[[f32; 2]], style: &StrokeStyle, paint: impl Into<Paint>) {
        let mut b = PathBuilder::new();
        for (i, p) in points.iter().enumerate() {
            b = if i == 0 { b.move_to(p[0], p[1]) } else { b.line_to(p[0], p[1]) };
        }
        if points.len() >= 2 {
            self.stroke(&b.build(), style, paint);
        }
    }

    /// Places `text` with its top-left at (x, y) in user coordinates. Rotation does not apply to
    /// text; translation and the (uniform) scale do.
    pub fn text(&mut self, text: &str, x: f32, y: f32, style: &TextStyle) {
        let p = self.state.transform.transform_point(point(x, y));
        let scale = self.state.transform.transform_vector(vector(1.0, 0.0)).length();
        let mut style = style.clone();
        style.color = Color { a: (f32::from(style.color.a) * self.state.alpha).round() as u8, ..style.color };
        self.texts.push(TextItem {
            text: text.to_string(),
            position: p.to_array(),
            scale,
            style,
            clip: self.clip_pixels(),
        });
    }
}

/// Splits `path` into dashes following `pattern` (on, off, ...).
fn dash_path(path: &LyonPath, pattern: &[f32]) -> LyonPath {
    use lyon::algorithms::measure::{PathMeasurements, SampleType};
    let measurements = PathMeasurements::from_path(path, TOLERANCE);
    let mut sampler = measurements.create_sampler(path, SampleType::Distance);
    let total = sampler.length();
    let pattern: Vec<f32> = pattern.iter().map(|d| d.max(0.01)).collect();
    let mut b = LyonPath::builder();
    let (mut at, mut i) = (0.0f32, 0usize);
    // Bounded: a pattern is at least 0.01 long per segment, and paths are finite.
    while at < total && i < 1_000_000 {
        let len = pattern[i % pattern.len()];
        if i % 2 == 0 {
            sampler.split_range(at..(at + len).min(total), &mut b);
        }
        at += len;
        i += 1;
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unchanged_paths_are_tessellated_once() {
        let mut c = Canvas::new(100, 100);
        for frame in 0..10 {
            c.begin_frame(100, 100);
            c.save();
            c.translate(frame as f32, 0.0);
            c.rotate(frame as f32 * 0.1);
            c.fill_circle(10.0, 10.0, 5.0, Color::WHITE);
            c.restore();
            c.stroke_rect(Rect::new(1.0, 1.0, 50.0, 20.0), 4.0, &StrokeStyle::new(2.0), Color::BLACK);
        }
        assert_eq!(c.tessellations(), 2, "moved shapes reuse their tessellation");
    }

    #[test]
    fn transforms_move_vertices_and_keep_local_coordinates() {
        let mut c = Canvas::new(100, 100);
        c.translate(10.0, 20.0);
        c.scale(2.0, 2.0);
        c.fill_rect(Rect::new(0.0, 0.0, 5.0, 5.0), Color::WHITE);
        let (mesh, _) = c.take();
        let xs: Vec<f32> = mesh.vertices.iter().map(|v| v.position[0]).collect();
        assert!(xs.iter().any(|x| (*x - 10.0).abs() < 1e-4) && xs.iter().any(|x| (*x - 20.0).abs() < 1e-4));
        assert!(mesh.vertices.iter().all(|v| v.local[0] <= 5.0));
    }

    #[test]
    fn save_restore_and_clip_batches() {
        let mut c = Canvas::new(100, 100);
        c.save();
        c.clip_rect(Rect::new(10.0, 10.0, 20.0, 20.0));
        c.fill_rect(Rect::new(0.0, 0.0, 50.0, 50.0), Color::WHITE);
        c.restore();
        c.fill_rect(Rect::new(0.0, 0.0, 50.0, 50.0), Color::WHITE);
        let (mesh, _) = c.take();
        assert_eq!(mesh.batches.len(), 2);
        assert_eq!(mesh.batches[0].1, Some([10, 10, 20, 20]));
        assert_eq!(mesh.batches[1].1, None);
    }

    #[test]
    fn gradients_go_to_the_paint_table() {
        let mut c = Canvas::new(100, 100);
        let stops = vec![(0.0, Color::BLACK), (1.0, Color::WHITE)];
        c.fill_rect(Rect::new(0.0, 0.0, 10.0, 10.0), Paint::Linear { start: [0.0, 0.0], end: [10.0, 0.0], stops });
        let (mesh, _) = c.take();
        assert_eq!(mesh.paints.len(), 1);
        assert!(mesh.vertices.iter().all(|v| v.paint == 1));
    }

    #[test]
    fn dashes_split_the_stroke() {
        let mut c = Canvas::new(100, 100);
        c.polyline(&[[0.0, 5.0], [100.0, 5.0]], &StrokeStyle::new(2.0).dash(&[10.0, 10.0]), Color::WHITE);
        let (mesh, _) = c.take();
        // Five dashes of two triangles each.
        assert_eq!(mesh.indices.len(), 5 * 6, "{}", mesh.indices.len());
    }

    #[test]
    fn text_takes_the_transform() {
        let mut c = Canvas::new(100, 100);
        c.translate(5.0, 6.0);
        c.scale(2.0, 2.0);
        c.text("hi", 1.0, 1.0, &TextStyle::default());
        let (_, texts) = c.take();
        assert_eq!(texts[0].position, [7.0, 8.0]);
        assert_eq!(texts[0].scale, 2.0);
    }
}
