//! The `video` layer: an input's frames, cropped, scaled into the layer's rect.

use super::{InputView, Layer, LayerError, LayerPass, OpacityBake, PrepareContext, QuadSlot};
use crate::registry::{BuildContext, BuildError, LayerKind, NoParams};
use crate::scene::{LayerSpec, Rect};

/// A `video` layer: draws an input's current frame, cropped and scaled into the layer's rect.
#[derive(Debug)]
pub struct VideoLayer {
    input: String,
    bound: Option<(wgpu::TextureView, wgpu::BindGroup)>,
    slot: Option<QuadSlot>,
    /// A still input at an opacity below 1 is drawn from this (see `OpacityBake`).
    bake: OpacityBake,
    baked: bool,
    opaque: bool,
}

impl VideoLayer {
    /// A video layer showing the input with id `input`.
    pub fn new(input: impl Into<String>) -> Self {
        VideoLayer {
            input: input.into(),
            bound: None,
            slot: None,
            bake: OpacityBake::default(),
            baked: false,
            opaque: false,
        }
    }
}

/// The crop as normalised texture coordinates, clamped to the input.
pub(crate) fn crop_uv(crop: Option<Rect>, input: &InputView) -> [f32; 4] {
    let (w, h) = (input.width as f32, input.height as f32);
    let Some(c) = crop else { return [0.0, 0.0, 1.0, 1.0] };
    let x0 = c.x.clamp(0.0, w);
    let y0 = c.y.clamp(0.0, h);
    let x1 = (c.x + c.w).clamp(x0, w);
    let y1 = (c.y + c.h).clamp(y0, h);
    [x0 / w, y0 / h, x1 / w, y1 / h]
}

impl Layer for VideoLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        self.slot = None;
        self.opaque = false;
        // An input that has not produced a frame yet draws nothing.
        let Some(input) = ctx.inputs.get(&self.input) else { return Ok(()) };
        if self.bound.as_ref().is_none_or(|(view, _)| *view != input.view) {
            let bind_group = ctx.pipelines.blend.texture_bind_group(&ctx.gpu.device, &input.view);
            self.bound = Some((input.view.clone(), bind_group));
        }
        self.baked = OpacityBake::applies(input.still, ctx.spec.opacity);
        self.opaque = input.opaque;
        if let (true, Some((view, group))) = (self.baked, &self.bound) {
            self.bake.update(ctx, view, group, (input.width, input.height));
        }
        let uv = crop_uv(ctx.spec.crop, input);
        let dst = ctx.dst_rect();
        self.slot = Some(ctx.quad(dst, uv));
        Ok(())
    }

    fn opaque(&self) -> bool {
        self.opaque && self.slot.is_some()
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        let Some(slot) = self.slot else { return };
        match (self.baked, self.bake.bind_group(), &self.bound) {
            (true, Some(baked), _) => pass.draw_baked_quad(baked, slot),
            (_, _, Some((_, bind_group))) => pass.draw_quad(bind_group, slot),
            _ => {}
        }
    }
}

/// Registry entry for `"kind": "video"`: no parameters beyond the common layer fields.
#[derive(Debug, Default)]
pub struct VideoLayerKind;

impl LayerKind for VideoLayerKind {
    type Config = NoParams;

    fn needs_input(&self) -> bool {
        true
    }

    fn build(&self, spec: &LayerSpec, _: NoParams, _ctx: &BuildContext<'_>) -> Result<Box<dyn Layer>, BuildError> {
        let input = spec.input.clone().ok_or_else(|| BuildError::new(&spec.id, "a video layer needs an input"))?;
        Ok(Box::new(VideoLayer::new(input)))
    }
}
