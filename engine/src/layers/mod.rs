//! Layers: what gets drawn into the output. Each layer prepares on the CPU side (and may record
//! offscreen GPU work), then records its draws into the compositor's render pass.

pub mod canvas;
mod drawing;
#[cfg(feature = "ml")]
mod faces;
mod image;
#[cfg(feature = "ml")]
mod inference;
mod mosaic;
#[cfg(feature = "ml")]
mod pose;
#[cfg(feature = "ml")]
pub(crate) mod segment;
pub(crate) mod text;
mod vector;
mod video;

pub use drawing::{DrawError, DrawFn, DrawKindError, DrawingContext, DrawingLayer, DrawingLayerKind, Vars};
#[cfg(feature = "ml")]
pub use faces::{Anonymize, FaceDetector, FacesLayer, FacesLayerConfig, FacesLayerKind};
pub use image::{load_rgba, ImageError, ImageLayer, ImageLayerConfig, ImageLayerKind};
pub use mosaic::{MosaicConfig, MosaicLayer, MosaicLayerKind, MAX_MOSAIC_INPUTS};
#[cfg(feature = "ml")]
pub use pose::{PoseLayer, PoseLayerConfig, PoseLayerKind};
#[cfg(feature = "ml")]
pub use segment::{Mask, SegmentEffect, SegmentLayer, SegmentLayerConfig, SegmentLayerKind, SegmentModel};
pub use text::{shared_fonts, Fonts, TextAlign, TextLayer, TextLayerConfig, TextLayerKind, TextWeight, MAX_TEXT_BYTES};
pub use vector::{draw_shapes, Fill, Gradient, Shape, VectorLayerConfig, VectorLayerKind, TOLERANCE};
pub use video::{VideoLayer, VideoLayerKind};

use crate::frame::FrameInfo;
use crate::gpu::blend::{opacity_step, BlendPipelines, LayerParams, SLOT_STRIDE};
use crate::gpu::texture::{self, Target};
use crate::gpu::{GpuContext, Pipelines};
use crate::scene::{BlendMode, LayerSpec, Rect};
use std::collections::HashMap;

/// An input's current premultiplied colour texture, as layers see it.
#[derive(Clone, Debug)]
pub struct InputView {
    /// View of the input's current texture.
    pub view: wgpu::TextureView,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The source draws this texture once and never changes it (a static pattern), so layers
    /// may derive textures from it once (see `OpacityBake`).
    pub still: bool,
    /// Alpha is 1 everywhere (decoded video, opaque patterns): a layer showing it at opacity 1
    /// hides everything below it.
    pub opaque: bool,
}

/// Current textures of all inputs that have produced a frame, by input id.
pub type InputViews = HashMap<String, InputView>;

/// The metadata of the frame each input shows (a network sender's timecode, values,
/// detections), by input id; inputs without any are absent.
pub type InputMetadata = HashMap<String, crate::metadata::FrameMetadata>;

/// The live inputs' synchronizer counts (realtime renders), by input id: what `{sync.ID}` badges
/// and multiviewers show.
pub type InputSyncStats = HashMap<String, crate::timing::SyncStats>;

/// A layer failed for this frame; it is skipped and everything else still renders.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("layer {layer}: {message}")]
#[non_exhaustive]
pub struct LayerError {
    /// Id of the layer that failed.
    pub layer: String,
    /// What went wrong.
    pub message: String,
}

impl LayerError {
    /// An error for layer `layer`.
    pub fn new(layer: impl Into<String>, message: impl Into<String>) -> Self {
        LayerError { layer: layer.into(), message: message.into() }
    }
}

/// A handle to the uniforms of one quad this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuadSlot(u32);

impl QuadSlot {
    pub(crate) fn offset(self) -> u32 {
        self.0 * SLOT_STRIDE as u32
    }
}

/// What a layer may use while preparing a frame.
pub struct PrepareContext<'a> {
    pub(crate) gpu: &'a GpuContext,
    pub(crate) pipelines: &'a Pipelines,
    pub(crate) encoder: &'a mut wgpu::CommandEncoder,
    /// The output frame being prepared.
    pub frame: &'a FrameInfo,
    /// Current textures of the inputs.
    pub inputs: &'a InputViews,
    /// Metadata of the inputs' current frames.
    pub metadata: &'a InputMetadata,
    /// The live inputs' synchronizer counts.
    pub sync: &'a InputSyncStats,
    /// The layer's spec from the scene.
    pub spec: &'a LayerSpec,
    pub(crate) quads: &'a mut Vec<LayerParams>,
}

impl PrepareContext<'_> {
    /// Reserves a quad drawing `src` (normalised u0, v0, u1, v1) into `dst` (output pixels); the
    /// layer's opacity and blend mode come with the pipeline `LayerPass` picks.
    pub fn quad(&mut self, dst: Rect, src: [f32; 4]) -> QuadSlot {
        let (w, h) = (self.frame.width as f32, self.frame.height as f32);
        let params = LayerParams {
            dst: [
                dst.x / w * 2.0 - 1.0,
                1.0 - dst.y / h * 2.0,
                (dst.x + dst.w) / w * 2.0 - 1.0,
                1.0 - (dst.y + dst.h) / h * 2.0,
            ],
            src,
        };
        self.quads.push(params);
        QuadSlot(self.quads.len() as u32 - 1)
    }

    /// The layer's destination rect in output pixels (the whole frame when unset).
    pub fn dst_rect(&self) -> Rect {
        self.spec.rect.unwrap_or(Rect::new(0.0, 0.0, self.frame.width as f32, self.frame.height as f32))
    }
}

/// The layer's rect as fractions of the output frame.
#[cfg_attr(not(feature = "ml"), allow(dead_code))]
pub(crate) fn placed(ctx: &PrepareContext<'_>) -> Rect {
    let (w, h) = (ctx.frame.width as f32, ctx.frame.height as f32);
    let d = ctx.dst_rect();
    Rect::new(d.x / w, d.y / h, d.w / w, d.h / h)
}

/// What a layer may use while analysing a frame (`Layer::analyze`).
pub struct AnalyzeContext<'a> {
    #[cfg_attr(not(feature = "ml"), allow(dead_code))]
    pub(crate) gpu: &'a GpuContext,
    /// The output frame about to be prepared.
    pub frame: &'a FrameInfo,
    /// Current textures of the inputs, their uploads submitted.
    pub inputs: &'a InputViews,
    /// The layer's spec from the scene.
    pub spec: &'a LayerSpec,
}

/// The compositor's render pass as one layer sees it.
pub struct LayerPass<'a, 'p> {
    pub(crate) pass: &'a mut wgpu::RenderPass<'p>,
    pub(crate) device: &'a wgpu::Device,
    pub(crate) pipelines: &'a BlendPipelines,
    pub(crate) params: &'a wgpu::BindGroup,
    pub(crate) blend: BlendMode,
    pub(crate) opacity: f32,
    pub(crate) dst_opaque: bool,
}

impl LayerPass<'_, '_> {
    /// Draws a reserved quad sampling `texture` (from `BlendPipelines::texture_bind_group`) with
    /// the layer's blend mode.
    pub fn draw_quad(&mut self, texture: &wgpu::BindGroup, slot: QuadSlot) {
        for pipeline in self.pipelines.draws(self.device, self.blend, self.dst_opaque, self.opacity) {
            self.pass.set_pipeline(&pipeline);
            self.pass.set_bind_group(0, self.params, &[slot.offset()]);
            self.pass.set_bind_group(1, texture, &[]);
            self.pass.draw(0..4, 0..1);
        }
    }

    /// `draw_quad` for a texture that already carries the layer's opacity (`OpacityBake`).
    pub fn draw_baked_quad(&mut self, texture: &wgpu::BindGroup, slot: QuadSlot) {
        let opacity = std::mem::replace(&mut self.opacity, 1.0);
        self.draw_quad(texture, slot);
        self.opacity = opacity;
    }
}

/// A still texture times the layer's opacity, made once (again only when the texture or the
/// opacity changes) and drawn every frame at opacity 1 with `LayerPass::draw_baked_quad`. On
/// llvmpipe that draw is a plain blit-and-blend, about 1.5× the speed of multiplying every pixel
/// by the opacity in every frame; on a GPU it costs one texture of the layer's size.
#[derive(Debug, Default)]
pub struct OpacityBake {
    baked: Option<Baked>,
}

#[derive(Debug)]
struct Baked {
    source: wgpu::TextureView,
    step: u8,
    target: Target,
    bind_group: wgpu::BindGroup,
}

impl OpacityBake {
    /// The last bake, to draw with `LayerPass::draw_baked_quad`.
    pub fn bind_group(&self) -> Option<&wgpu::BindGroup> {
        self.baked.as_ref().map(|b| &b.bind_group)
    }

    /// Whether a layer at `opacity` over a texture that is `still` should draw through a bake.
    /// Depends on nothing else, so the same frame is drawn the same way in any sequence.
    pub fn applies(still: bool, opacity: f32) -> bool {
        still && opacity_step(opacity) < 255
    }

    /// Bakes `source` (bound as `source_group`, `size` pixels) at the layer's opacity, recorded
    /// into `ctx.encoder`, when the source or the opacity changed since the last bake.
    pub fn update(
        &mut self,
        ctx: &mut PrepareContext<'_>,
        source: &wgpu::TextureView,
        source_group: &wgpu::BindGroup,
        size: (u32, u32),
    ) {
        let step = opacity_step(ctx.spec.opacity);
        let baked = match self.baked.take() {
            Some(b) if b.source == *source && b.step == step && b.target.size() == size => b,
            previous => {
                // Reuse the target when only the opacity or the source texture changed.
                let target = match previous {
                    Some(old) if old.target.size() == size => old.target,
                    _ => Target::color(&ctx.gpu.device, "streamlib opacity bake", size.0, size.1),
                };
                let mut pass = texture::begin_pass(
                    ctx.encoder,
                    "streamlib opacity bake pass",
                    &[Some(texture::color_attachment(&target.view, None))],
                );
                pass.set_pipeline(&ctx.pipelines.blend.bake_pipeline(&ctx.gpu.device, step));
                pass.set_bind_group(0, source_group, &[]);
                pass.draw(0..4, 0..1);
                drop(pass);
                let bind_group = ctx.pipelines.blend.texture_bind_group(&ctx.gpu.device, &target.view);
                Baked { source: source.clone(), step, target, bind_group }
            }
        };
        self.baked = Some(baked);
    }
}

/// A layer kind's per-instance state.
pub trait Layer: Send {
    /// CPU-side work for this frame; may upload or record offscreen GPU work into `ctx.encoder`
    /// and reserves the quads it will draw.
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError>;
    /// Records this frame's draws into the output pass.
    fn record(&self, pass: &mut LayerPass<'_, '_>);
    /// After `prepare`: this frame's draw is opaque everywhere inside the layer's rect (an opaque
    /// texture at full opacity). The compositor then skips what lies below it if it covers the
    /// whole frame. False unless known.
    fn opaque(&self) -> bool {
        false
    }
    /// The frame's work (what `prepare` recorded) was submitted to the GPU: buffers it wrote
    /// may be mapped now (an ML layer hands its tensor to its worker here).
    fn submitted(&mut self) {}
    /// Offline renders only (`Pacing::Offline`), before `prepare`, with the frame's inputs
    /// already on the GPU: a layer whose drawing depends on analysing its input (the ML layers)
    /// runs that analysis now and waits for it, so every frame is drawn from its own result and
    /// the render is the same however fast the machine is. Live renders never call this: there
    /// the analysis runs beside compositing and drawing uses the newest result.
    fn analyze(&mut self, _ctx: &AnalyzeContext<'_>) -> Result<(), LayerError> {
        Ok(())
    }
    /// `analyze` does something (the engine then submits the inputs' uploads before it).
    fn analyzes(&self) -> bool {
        false
    }
    /// What the layer found in this frame (an ML layer's faces or person), boxes as fractions of
    /// the output frame: they travel with the output frame's metadata (the frame protocol's
    /// detections) and to the server's events. Empty by default.
    fn detections(&self) -> Vec<crate::metadata::Detection> {
        Vec::new()
    }
    /// Figures the layer keeps (an ML layer's inference time, result age, skipped frames), by
    /// name; names ending in `_total` count up, the others are current values. Empty by default.
    fn stats(&self) -> Vec<(&'static str, f64)> {
        Vec::new()
    }
}
