//! `DrawingLayer`: user Rust code draws on a `Canvas` every frame. When that code returns an error
//! or panics, the layer is transparent for that frame, the compositor logs the message once, and
//! everything else keeps rendering.

use super::canvas::{Canvas, TextItem};
use super::text::{shared_fonts, TextAlign, TextWeight};
use super::{Layer, LayerError, LayerPass, PrepareContext, QuadSlot};
use crate::gpu::texture::{self, Target, COLOR_FORMAT};
use crate::gpu::vector::{Mesh, VectorCanvas, MSAA_SAMPLES};
use crate::registry::{BuildContext, BuildError, LayerKind};
use crate::scene::{Color, Fps, LayerSpec, Params, SceneError};
use glyphon::{
    Attrs, Buffer, ColorMode, Family, Metrics, Resolution, Shaping, TextArea, TextAtlas, TextBounds, TextRenderer,
    Viewport, Weight,
};
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

/// What the drawing code knows about the frame.
#[derive(Debug)]
pub struct DrawingContext<'a> {
    /// Index of the output frame.
    pub frame: u64,
    /// Presentation time of the output frame in nanoseconds.
    pub pts_ns: u64,
    /// Output frame rate.
    pub fps: Fps,
    /// Size of the layer's canvas in pixels.
    pub width: u32,
    /// Height of the layer's canvas in pixels.
    pub height: u32,
    /// Output size in pixels.
    pub output_width: u32,
    /// Output height in pixels.
    pub output_height: u32,
    /// User variables, settable from any thread through `DrawingLayer::vars`.
    pub vars: &'a BTreeMap<String, f64>,
}

impl DrawingContext<'_> {
    /// Presentation time of the output frame in seconds.
    pub fn seconds(&self) -> f64 {
        self.pts_ns as f64 / 1e9
    }
    /// The user variable `name`, if it is set.
    pub fn var(&self, name: &str) -> Option<f64> {
        self.vars.get(name).copied()
    }
}

/// What drawing code may fail with; the layer is then transparent for that frame.
pub type DrawError = Box<dyn std::error::Error + Send + Sync>;

thread_local! {
    static IN_USER_CODE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A panic in drawing code is caught and reported once per distinct message by the compositor;
/// the default hook would print it again on every frame. This wraps the process's hook once so
/// that only panics inside drawing code are silenced; every other panic is reported as before.
fn quiet_panics_in_user_code() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_USER_CODE.with(|f| f.get()) {
                previous(info);
            }
        }));
    });
}
/// The user's per-frame drawing code.
pub type DrawFn = Box<dyn FnMut(&mut Canvas, &DrawingContext<'_>) -> Result<(), DrawError> + Send>;
/// Shared user variables of a drawing layer.
pub type Vars = Arc<Mutex<BTreeMap<String, f64>>>;

struct Gpu {
    vector: VectorCanvas,
    target: Target,
    bind_group: wgpu::BindGroup,
}

/// A layer drawn by user Rust code on a `Canvas` every frame.
pub struct DrawingLayer {
    draw: DrawFn,
    vars: Vars,
    canvas: Canvas,
    gpu: Option<Gpu>,
    text: Option<(Viewport, TextAtlas, TextRenderer)>,
    buffers: Vec<Buffer>,
    slot: Option<QuadSlot>,
    /// What the layer texture currently shows, so an unchanged drawing is not redrawn.
    shown: Option<(Mesh, Vec<TextItem>)>,
}

impl std::fmt::Debug for DrawingLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DrawingLayer").field("canvas", &self.canvas).finish()
    }
}

fn glyph_color(c: Color) -> glyphon::Color {
    glyphon::Color::rgba(c.r, c.g, c.b, c.a)
}

impl DrawingLayer {
    /// A drawing layer running `draw` every frame, with its own variables.
    pub fn new(draw: DrawFn) -> Self {
        DrawingLayer {
            draw,
            vars: Vars::default(),
            canvas: Canvas::new(1, 1),
            gpu: None,
            text: None,
            buffers: Vec::new(),
            slot: None,
            shown: None,
        }
    }

    /// The layer's variables; set them from anywhere, the next frame sees them.
    pub fn vars(&self) -> Vars {
        self.vars.clone()
    }

    /// Uses `vars` (shared with other holders) as this layer's variables.
    pub fn with_vars(mut self, vars: Vars) -> Self {
        self.vars = vars;
        self
    }

    fn run_user_code(&mut self, ctx: &DrawingContext<'_>) -> Result<(), String> {
        let (draw, canvas) = (&mut self.draw, &mut self.canvas);
        quiet_panics_in_user_code();
        IN_USER_CODE.with(|f| f.set(true));
        let outcome = catch_unwind(AssertUnwindSafe(|| draw(canvas, ctx)));
        IN_USER_CODE.with(|f| f.set(false));
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("drawing code failed: {e}")),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(format!("drawing code panicked: {why}"))
            }
        }
    }

    fn prepare_text(&mut self, ctx: &PrepareContext<'_>, texts: &[TextItem], size: (u32, u32)) -> Result<(), String> {
        let gpu = ctx.gpu;
        let (viewport, atlas, renderer) = self.text.get_or_insert_with(|| {
            let cache = &gpu.text_cache;
            let viewport = Viewport::new(&gpu.device, cache);
            let mut atlas = TextAtlas::with_color_mode(&gpu.device, &gpu.queue, cache, COLOR_FORMAT, ColorMode::Web);
            let multisample = wgpu::MultisampleState { count: MSAA_SAMPLES, ..Default::default() };
            let renderer = TextRenderer::new(&mut atlas, &gpu.device, multisample, None);
            (viewport, atlas, renderer)
        });
        viewport.update(&gpu.queue, Resolution { width: size.0, height: size.1 });
        let mut fonts = shared_fonts();
        let fonts = &mut *fonts;
        while self.buffers.len() < texts.len() {
            self.buffers.push(Buffer::new(&mut fonts.system, Metrics::new(24.0, 30.0)));
        }
        self.buffers.truncate(texts.len().max(16));
        for (item, buffer) in texts.iter().zip(&mut self.buffers) {
            let s = &item.style;
            let size_px = (s.size * item.scale).clamp(1.0, 1000.0);
            buffer.set_metrics(Metrics::new(size_px, size_px * 1.25));
            buffer.set_size(s.wrap_width.map(|w| w * item.scale), None);
            let attrs = Attrs::new().family(Family::Name(&s.family)).weight(if s.weight == TextWeight::Bold {
                Weight::BOLD
            } else {
                Weight::NORMAL
            });
            let align = match s.align {
                TextAlign::Left => glyphon::cosmic_text::Align::Left,
                TextAlign::Center => glyphon::cosmic_text::Align::Center,
                TextAlign::Right => glyphon::cosmic_text::Align::Right,
            };
            buffer.set_text(&item.text, &attrs, Shaping::Advanced, Some(align));
            buffer.shape_until_scroll(&mut fonts.system, false);
        }
        let mut areas = Vec::new();
        for (item, buffer) in texts.iter().zip(&self.buffers) {
            let bounds = match item.clip {
                Some([x, y, w, h]) => {
                    TextBounds { left: x as i32, top: y as i32, right: (x + w) as i32, bottom: (y + h) as i32 }
                }
                None => TextBounds { left: 0, top: 0, right: size.0 as i32, bottom: size.1 as i32 },
            };
            let at = |dx: f32, dy: f32, color: Color| TextArea {
                buffer,
                left: item.position[0] + dx,
                top: item.position[1] + dy,
                scale: 1.0,
                bounds,
                default_color: glyph_color(color),
                custom_glyphs: &[],
            };
            if let Some((color, offset)) = item.style.shadow {
                areas.push(at(offset[0] * item.scale, offset[1] * item.scale, color));
            }
            if let Some((color, width)) = item.style.outline {
                // Eight offset copies under the fill: a cheap outline that reads well on video.
                let w = width * item.scale;
                for (dx, dy) in [
                    (-1.0, -1.0),
                    (0.0, -1.0),
                    (1.0, -1.0),
                    (-1.0, 0.0),
                    (1.0, 0.0),
                    (-1.0, 1.0),
                    (0.0, 1.0),
                    (1.0, 1.0),
                ] {
                    areas.push(at(dx * w, dy * w, color));
                }
            }
            areas.push(at(0.0, 0.0, item.style.color));
        }
        renderer
            .prepare(&gpu.device, &gpu.queue, &mut fonts.system, atlas, viewport, areas, &mut fonts.swash)
            .map_err(|e| format!("text: {e}"))
    }
}

impl Layer for DrawingLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        self.slot = None;
        let dst = ctx.dst_rect();
        let max = ctx.gpu.max_texture_side();
        let size = ((dst.w.round() as u32).clamp(1, max), (dst.h.round() as u32).clamp(1, max));
        let vars = self.vars.lock().map(|v| v.clone()).unwrap_or_default();
        let info = DrawingContext {
            frame: ctx.frame.time.index,
            pts_ns: ctx.frame.time.pts_ns,
            fps: ctx.frame.fps,
            width: size.0,
            height: size.1,
            output_width: ctx.frame.width,
            output_height: ctx.frame.height,
            vars: &vars,
        };
        self.canvas.begin_frame(size.0, size.1);
        self.run_user_code(&info).map_err(|e| LayerError::new(&ctx.spec.id, e))?;
        let (mesh, texts) = self.canvas.take();
        let rect = crate::scene::Rect::new(dst.x, dst.y, size.0 as f32, size.1 as f32);
        let same_size = self.gpu.as_ref().is_some_and(|g| g.vector.size() == size);
        if same_size && self.shown.as_ref().is_some_and(|(m, t)| *m == mesh && *t == texts) {
            // Unchanged drawing: composite the texture we already have.
            self.slot = Some(ctx.quad(rect, [0.0, 0.0, 1.0, 1.0]));
            return Ok(());
        }
        self.shown = None;

        if !same_size {
            let vector = VectorCanvas::new(ctx.gpu, &ctx.pipelines.vector, size.0, size.1);
            let target = Target::color(&ctx.gpu.device, "streamlib drawing layer", size.0, size.1);
            let bind_group = ctx.pipelines.blend.texture_bind_group(&ctx.gpu.device, &target.view);
            self.gpu = Some(Gpu { vector, target, bind_group });
        }
        if !texts.is_empty() {
            self.prepare_text(ctx, &texts, size).map_err(|e| LayerError::new(&ctx.spec.id, e))?;
        }
        let Some(gpu) = self.gpu.as_mut() else { return Ok(()) };
        gpu.vector.set_mesh(ctx.gpu, &ctx.pipelines.vector, &mesh);
        let attachment = wgpu::RenderPassColorAttachment {
            view: gpu.vector.msaa_view(),
            depth_slice: None,
            resolve_target: Some(&gpu.target.view),
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                store: wgpu::StoreOp::Discard,
            },
        };
        {
            let mut pass = texture::begin_pass(ctx.encoder, "streamlib drawing layer pass", &[Some(attachment)]);
            gpu.vector.record(&ctx.pipelines.vector, &mut pass);
            if let (false, Some((viewport, atlas, renderer))) = (texts.is_empty(), &self.text) {
                pass.set_scissor_rect(0, 0, size.0, size.1);
                renderer
                    .render(atlas, viewport, &mut pass)
                    .map_err(|e| LayerError::new(&ctx.spec.id, e.to_string()))?;
            }
        }
        if let Some((_, atlas, _)) = &mut self.text {
            // Evict glyphs this frame did not use: changing text keeps the atlas bounded.
            atlas.trim();
        }
        self.shown = Some((mesh, texts));
        self.slot = Some(ctx.quad(rect, [0.0, 0.0, 1.0, 1.0]));
        Ok(())
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        if let (Some(gpu), Some(slot)) = (&self.gpu, self.slot) {
            pass.draw_quad(&gpu.bind_group, slot);
        }
    }
}

/// Registers drawing code under a kind name: `make` builds the closure for each layer of that
/// kind (it sees the layer's spec, so kind-specific fields can configure it).
pub struct DrawingLayerKind {
    make: MakeDrawFn,
    validate: ValidateParams,
    vars: Vars,
}

/// What a kind's own code may fail with while making a layer's drawing closure.
pub type DrawKindError = Box<dyn std::error::Error + Send + Sync>;
type MakeDrawFn = Box<dyn Fn(&LayerSpec) -> Result<DrawFn, DrawKindError> + Send + Sync>;
type ValidateParams = Box<dyn Fn(&Params) -> Result<(), SceneError> + Send + Sync>;

impl DrawingLayerKind {
    /// A kind without parameters of its own.
    pub fn new(make: impl Fn(&LayerSpec) -> DrawFn + Send + Sync + 'static) -> Self {
        DrawingLayerKind {
            make: Box::new(move |spec| Ok(make(spec))),
            validate: Box::new(|params| match params.keys().next() {
                Some(k) => Err(SceneError::new(k.as_str(), "unknown field")),
                None => Ok(()),
            }),
            vars: Vars::default(),
        }
    }

    /// The variables every layer of this kind sees; keep a clone to drive them.
    pub fn vars(&self) -> Vars {
        self.vars.clone()
    }

    /// A kind with parameters: `validate` checks them (errors name the field), `make` may fail.
    pub fn with_params(
        validate: impl Fn(&Params) -> Result<(), SceneError> + Send + Sync + 'static,
        make: impl Fn(&LayerSpec) -> Result<DrawFn, DrawKindError> + Send + Sync + 'static,
    ) -> Self {
        DrawingLayerKind { make: Box::new(make), validate: Box::new(validate), vars: Vars::default() }
    }
}

impl LayerKind for DrawingLayerKind {
    // Drawing code reads its own parameters from the spec (`make`).
    type Config = Params;

    fn needs_input(&self) -> bool {
        false
    }

    fn check(&self, params: &Params) -> Result<(), SceneError> {
        (self.validate)(params)
    }

    fn build(&self, spec: &LayerSpec, _: Params, _ctx: &BuildContext<'_>) -> Result<Box<dyn Layer>, BuildError> {
        let draw = (self.make)(spec).map_err(|e| BuildError::new(format!("layer {}", spec.id), e))?;
        Ok(Box::new(DrawingLayer::new(draw).with_vars(self.vars.clone())))
    }
}
