//! The `segment` layer (feature `ml`): an input with the person in it kept and the background
//! blurred, replaced (by another input or a colour) or removed, or the person mask itself.
//!
//! The model is MediaPipe's selfie segmentation (landscape 256×144 or square 256×256). Its
//! input tensor is made on the GPU from the layer's input (`Inference`); its output, a small
//! mask, goes back up as an R8 texture and is applied at full resolution in WGSL
//! (`shaders/ml_segment.wgsl`), so the frame itself never leaves the GPU. Drawing uses the
//! newest mask. Before the first mask the whole frame counts as background, and while the
//! model cannot run the layer is skipped with the error: like `faces`, it fails closed, since
//! people blur their background to hide it.

use super::inference::{check_unit, Inference, TensorJob};
use super::video::crop_uv;
use super::{AnalyzeContext, Layer, LayerError, LayerPass, PrepareContext, QuadSlot};
use crate::gpu::shaders;
use crate::gpu::tensor::{read_tensor, Region, TensorShape};
use crate::gpu::texture::{self, Target};
use crate::ml::{model_path, Model};
use crate::registry::{BuildContext, BuildError, LayerKind};
use crate::scene::{Color, LayerSpec, SceneError};
use bytemuck::{Pod, Zeroable};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

/// What happens to the background.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SegmentEffect {
    /// Blurred (`blur` pixels).
    #[default]
    Blur,
    /// Another input (`background`) or a colour (`color`) behind the person.
    Replace,
    /// Transparent: the person alone, over the layers below.
    Cutout,
    /// The mask itself, white (person) on black.
    Mask,
}

/// Which of the two selfie segmentation models runs.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SegmentModel {
    /// 256×144, for 16:9 pictures.
    Landscape,
    /// 256×256.
    Square,
}

impl SegmentModel {
    fn file(self) -> &'static str {
        match self {
            SegmentModel::Landscape => "selfie_segmentation_landscape.onnx",
            SegmentModel::Square => "selfie_segmentation.onnx",
        }
    }

    fn size(self) -> (u32, u32) {
        match self {
            SegmentModel::Landscape => (256, 144),
            SegmentModel::Square => (256, 256),
        }
    }
}

/// `{"kind": "segment", "input": "cam", "effect": "blur", ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentLayerConfig {
    /// What happens to the background.
    #[serde(default)]
    pub effect: SegmentEffect,
    /// Blur radius in input pixels (`blur`), 2–256.
    #[serde(default = "default_blur")]
    pub blur: f32,
    /// The input shown behind the person (`replace`), stretched to the layer.
    #[serde(default)]
    pub background: Option<String>,
    /// The colour behind the person (`replace` without `background`).
    #[serde(default)]
    pub color: Option<Color>,
    /// Mask level (0–1) where the person begins.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Width of the soft edge around `threshold`, 0–0.5.
    #[serde(default = "default_softness")]
    pub softness: f32,
    /// `landscape` or `square`; by default landscape for pictures wider than 4:3.
    #[serde(default)]
    pub shape: Option<SegmentModel>,
    /// Another ONNX model taking and giving the same tensors (NHWC RGB 0–1 in, a mask out).
    #[serde(default)]
    pub model: Option<PathBuf>,
}

fn default_blur() -> f32 {
    24.0
}
fn default_threshold() -> f32 {
    0.5
}
fn default_softness() -> f32 {
    0.15
}

/// A mask: `width` × `height` levels, 0 background – 255 person.
#[derive(Clone, Debug)]
pub struct Mask {
    /// Width in mask pixels (the model's).
    pub width: u32,
    /// Height in mask pixels.
    pub height: u32,
    /// One level per pixel, row by row.
    pub levels: Arc<Vec<u8>>,
}

/// `Params` of `ml_segment.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub(crate) struct SegmentParams {
    pub crop: [f32; 4],
    pub color: [f32; 4],
    pub background_texel: [f32; 2],
    pub threshold: f32,
    pub softness: f32,
    pub mode: u32,
    pub pad0: u32,
    pub pad1: u32,
    pub pad2: u32,
}

/// The composite pass's pipelines (one per mode, built on first use), the blur's tent pipeline
/// and the uniform buffer.
struct Composite {
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    module: wgpu::ShaderModule,
    pipelines: std::collections::HashMap<u32, wgpu::RenderPipeline>,
    tent: wgpu::RenderPipeline,
    sampler: wgpu::Sampler,
    params: wgpu::Buffer,
}

impl Composite {
    fn new(device: &wgpu::Device) -> Self {
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib segment layout"),
            entries: &[
                texture::texture_entry(0),
                texture::texture_entry(1),
                texture::texture_entry(2),
                texture::sampler_entry(3),
                texture::uniform_entry(4, false, wgpu::ShaderStages::FRAGMENT),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib segment pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = texture::shader(device, "streamlib segment shader", shaders::ML_SEGMENT);
        let tent = Self::build(device, &pipeline_layout, &module, "fs_tent", 0);
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("streamlib segment params"),
            size: std::mem::size_of::<SegmentParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let sampler = texture::linear_sampler(device, "streamlib segment sampler");
        Composite { layout, pipeline_layout, module, pipelines: Default::default(), tent, sampler, params }
    }

    fn build(
        device: &wgpu::Device,
        layout: &wgpu::PipelineLayout,
        module: &wgpu::ShaderModule,
        entry: &str,
        mode: u32,
    ) -> wgpu::RenderPipeline {
        texture::pipeline(
            device,
            &format!("streamlib segment pipeline ({entry}, mode {mode})"),
            layout,
            module,
            (entry, &[("MODE", f64::from(mode))]),
            wgpu::PrimitiveTopology::TriangleStrip,
            &[texture::replace_target(texture::COLOR_FORMAT)],
        )
    }

    fn pipeline(&mut self, device: &wgpu::Device, mode: u32) -> &wgpu::RenderPipeline {
        let (layout, module) = (&self.pipeline_layout, &self.module);
        self.pipelines.entry(mode).or_insert_with(|| Self::build(device, layout, module, "fs_main", mode))
    }

    fn bind_group(&self, device: &wgpu::Device, views: &[wgpu::TextureView; 3]) -> wgpu::BindGroup {
        let entries = [
            wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&views[0]) },
            wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&views[1]) },
            wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(&views[2]) },
            wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::Sampler(&self.sampler) },
            wgpu::BindGroupEntry { binding: 4, resource: self.params.as_entire_binding() },
        ];
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("streamlib segment bind group"),
            layout: &self.layout,
            entries: &entries,
        })
    }
}

/// The textures a frame is composited from; the bind group is remade when one changes.
struct Bound {
    views: [wgpu::TextureView; 3],
    group: wgpu::BindGroup,
}

/// The `segment` layer.
pub struct SegmentLayer {
    id: String,
    input: String,
    config: SegmentLayerConfig,
    inference: Inference<(), Mask>,
    composite: Option<Composite>,
    /// The mask texture and the frame of the result it holds.
    mask: Option<(Target, Option<u64>)>,
    /// The input halved `n` times (the blur's source), largest first.
    halvings: Vec<Target>,
    halving_groups: Vec<(wgpu::TextureView, wgpu::BindGroup)>,
    /// The last halving, tent-filtered: what the blur mode samples.
    blurred: Option<Target>,
    tent_bound: Option<Bound>,
    /// The composited picture, the size of the input's region.
    matte: Option<(Target, wgpu::BindGroup)>,
    bound: Option<Bound>,
    slot: Option<QuadSlot>,
    age: Option<u64>,
}

impl std::fmt::Debug for SegmentLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentLayer").field("id", &self.id).field("input", &self.input).finish()
    }
}

impl SegmentLayer {
    fn model_shape(&self, region: (f32, f32)) -> SegmentModel {
        self.config.shape.unwrap_or(if region.0 > region.1 * 4.0 / 3.0 {
            SegmentModel::Landscape
        } else {
            SegmentModel::Square
        })
    }

    /// The model's tensor of the input's region `uv` (`region`: its size in pixels).
    fn tensor_shape(&self, uv: [f32; 4], region: (f32, f32)) -> TensorShape {
        let (width, height) = self.model_shape(region).size();
        let region = Region::rect(uv);
        TensorShape { width, height, region, bounds: uv, scale: [1.0; 3], bias: [0.0; 3], bgr: false, nhwc: true }
    }

    /// The mask texture, holding the newest result (all background before the first).
    fn update_mask(&mut self, ctx: &PrepareContext<'_>, size: (u32, u32)) {
        let latest = self.inference.latest();
        let (w, h) = latest.as_ref().map_or(size, |r| (r.value.width, r.value.height));
        let device = &ctx.gpu.device;
        let fresh = || {
            let usage = wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST;
            let target = Target::new(device, "streamlib segment mask", w, h, wgpu::TextureFormat::R8Unorm, usage);
            (target, None)
        };
        let (target, shown) = match self.mask.take() {
            Some(m) if m.0.size() == (w, h) => m,
            _ => {
                let m = fresh();
                write_mask(ctx, &m.0, &vec![0; (w * h) as usize], (w, h));
                m
            }
        };
        let mut shown = shown;
        if let Some(result) = latest.filter(|r| Some(r.frame) != shown) {
            write_mask(ctx, &target, &result.value.levels, (w, h));
            shown = Some(result.frame);
        }
        self.age = shown.map(|f| ctx.frame.time.index.saturating_sub(f));
        self.mask = Some((target, shown));
    }

    /// Halves the input until a texel spans about half the blur radius; the last halving is
    /// the blur's source.
    fn update_halvings(&mut self, ctx: &mut PrepareContext<'_>, input: &wgpu::TextureView, size: (u32, u32)) {
        let steps = (self.config.blur / 2.0).max(2.0).log2().round().clamp(1.0, 7.0) as usize;
        let mut sizes = Vec::with_capacity(steps);
        let (mut w, mut h) = size;
        for _ in 0..steps {
            (w, h) = ((w / 2).max(1), (h / 2).max(1));
            sizes.push((w, h));
        }
        let device = &ctx.gpu.device;
        if self.halvings.iter().map(Target::size).ne(sizes.iter().copied()) {
            self.halvings = sizes.iter().map(|&(w, h)| Target::color(device, "streamlib segment blur", w, h)).collect();
            self.halving_groups.clear();
        }
        let blend = &ctx.pipelines.blend;
        let sources: Vec<wgpu::TextureView> =
            std::iter::once(input.clone()).chain(self.halvings.iter().map(|t| t.view.clone())).take(steps).collect();
        if self.halving_groups.iter().map(|(v, _)| v).ne(sources.iter()) {
            self.halving_groups = sources.iter().map(|v| (v.clone(), blend.texture_bind_group(device, v))).collect();
        }
        let pipeline = blend.bake_pipeline(device, 255);
        for (target, (_, group)) in self.halvings.iter().zip(&self.halving_groups) {
            let mut pass = texture::begin_pass(
                ctx.encoder,
                "streamlib segment blur pass",
                &[Some(texture::color_attachment(&target.view, None))],
            );
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, group, &[]);
            pass.draw(0..4, 0..1);
        }
    }
}

impl SegmentLayer {
    /// Tent-filters the last halving into `blurred`; its view.
    fn tent_blur(&mut self, ctx: &mut PrepareContext<'_>) -> Option<wgpu::TextureView> {
        let (last, composite, (mask, _)) = (self.halvings.last()?, self.composite.as_ref()?, self.mask.as_ref()?);
        let device = &ctx.gpu.device;
        if self.blurred.as_ref().is_none_or(|b| b.size() != last.size()) {
            let (w, h) = last.size();
            self.blurred = Some(Target::color(device, "streamlib segment blurred", w, h));
        }
        let views = [last.view.clone(), last.view.clone(), mask.view.clone()];
        if self.tent_bound.as_ref().is_none_or(|b| b.views != views) {
            let group = composite.bind_group(device, &views);
            self.tent_bound = Some(Bound { views, group });
        }
        let (blurred, bound) = (self.blurred.as_ref()?, self.tent_bound.as_ref()?);
        let mut pass = texture::begin_pass(
            ctx.encoder,
            "streamlib segment tent pass",
            &[Some(texture::color_attachment(&blurred.view, None))],
        );
        pass.set_pipeline(&composite.tent);
        pass.set_bind_group(0, &bound.group, &[]);
        pass.draw(0..4, 0..1);
        Some(blurred.view.clone())
    }
}

fn write_mask(ctx: &PrepareContext<'_>, target: &Target, levels: &[u8], (w, h): (u32, u32)) {
    ctx.gpu.queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture: &target.texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        levels,
        wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(w), rows_per_image: Some(h) },
        wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
    );
}

impl Layer for SegmentLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        self.slot = None;
        let Some(input) = ctx.inputs.get(&self.input).cloned() else { return Ok(()) };
        let uv = crop_uv(ctx.spec.crop, &input);
        let region = ((uv[2] - uv[0]) * input.width as f32, (uv[3] - uv[1]) * input.height as f32);
        let shape = self.tensor_shape(uv, region);
        let (tw, th) = (shape.width, shape.height);
        self.inference.record(ctx, &input.view, shape, ());
        if let Some(e) = self.inference.error() {
            return Err(LayerError::new(&self.id, e));
        }
        self.update_mask(ctx, (tw, th));

        let effect = self.config.effect;
        let device = &ctx.gpu.device;
        self.composite.get_or_insert_with(|| Composite::new(device));
        let background = match (effect, &self.config.background) {
            (SegmentEffect::Blur, _) => {
                self.update_halvings(ctx, &input.view, (input.width, input.height));
                self.tent_blur(ctx)
            }
            // Until the background input has a frame: the person over transparency.
            (SegmentEffect::Replace, Some(id)) => ctx.inputs.get(id).map(|b| b.view.clone()),
            _ => None,
        };
        let mode = match (effect, &background) {
            (SegmentEffect::Blur, _) => 0,
            (SegmentEffect::Replace, Some(_)) => 1,
            (SegmentEffect::Replace, None) if self.config.color.is_some() => 2,
            (SegmentEffect::Mask, _) => 4,
            _ => 3,
        };
        let device = &ctx.gpu.device;
        let Some(composite) = self.composite.as_mut() else { return Ok(()) };
        let background_size = self.halvings.last().map_or((1, 1), Target::size);
        let color = self.config.color.unwrap_or(Color::rgba(0, 0, 0, 0));
        let alpha = f32::from(color.a) / 255.0;
        let params = SegmentParams {
            crop: uv,
            color: [
                f32::from(color.r) / 255.0 * alpha,
                f32::from(color.g) / 255.0 * alpha,
                f32::from(color.b) / 255.0 * alpha,
                alpha,
            ],
            background_texel: [1.0 / background_size.0 as f32, 1.0 / background_size.1 as f32],
            threshold: self.config.threshold,
            softness: self.config.softness,
            mode,
            pad0: 0,
            pad1: 0,
            pad2: 0,
        };
        ctx.gpu.queue.write_buffer(&composite.params, 0, bytemuck::bytes_of(&params));

        let Some((mask, _)) = &self.mask else { return Ok(()) };
        let views = [input.view.clone(), background.unwrap_or_else(|| input.view.clone()), mask.view.clone()];
        if self.bound.as_ref().is_none_or(|b| b.views != views) {
            let group = composite.bind_group(device, &views);
            self.bound = Some(Bound { views, group });
        }
        let pipeline = composite.pipeline(device, mode).clone();
        let size = (region.0.round().max(1.0) as u32, region.1.round().max(1.0) as u32);
        if self.matte.as_ref().is_none_or(|(t, _)| t.size() != size) {
            let target = Target::color(device, "streamlib segment matte", size.0, size.1);
            let group = ctx.pipelines.blend.texture_bind_group(device, &target.view);
            self.matte = Some((target, group));
        }
        if let (Some((matte, _)), Some(bound)) = (&self.matte, &self.bound) {
            let mut pass = texture::begin_pass(
                ctx.encoder,
                "streamlib segment pass",
                &[Some(texture::color_attachment(&matte.view, None))],
            );
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &bound.group, &[]);
            pass.draw(0..4, 0..1);
        }
        let dst = ctx.dst_rect();
        self.slot = Some(ctx.quad(dst, [0.0, 0.0, 1.0, 1.0]));
        Ok(())
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        if let (Some(slot), Some((_, group))) = (self.slot, &self.matte) {
            pass.draw_quad(group, slot);
        }
    }

    fn submitted(&mut self) {
        self.inference.submitted();
    }

    fn analyzes(&self) -> bool {
        true
    }

    fn analyze(&mut self, ctx: &AnalyzeContext<'_>) -> Result<(), LayerError> {
        let Some(input) = ctx.inputs.get(&self.input) else { return Ok(()) };
        let uv = crop_uv(ctx.spec.crop, input);
        let region = ((uv[2] - uv[0]) * input.width as f32, (uv[3] - uv[1]) * input.height as f32);
        let shape = self.tensor_shape(uv, region);
        self.inference.run_now(ctx, &input.view, shape, ()).map(drop).map_err(|e| LayerError::new(&self.id, e))
    }

    fn stats(&self) -> Vec<(&'static str, f64)> {
        let mut stats = self.inference.stats(self.age);
        if let Some(mask) = self.inference.latest() {
            let person = mask.value.levels.iter().filter(|&&l| l >= 128).count();
            stats.push(("person_share", person as f64 / mask.value.levels.len().max(1) as f64));
        }
        stats
    }
}

/// Registry entry for `"kind": "segment"`.
#[derive(Debug, Default)]
pub struct SegmentLayerKind;

impl LayerKind for SegmentLayerKind {
    type Config = SegmentLayerConfig;

    fn needs_input(&self) -> bool {
        true
    }

    fn path_fields(&self) -> &'static [&'static str] {
        &["model"]
    }

    fn check(&self, config: &SegmentLayerConfig) -> Result<(), SceneError> {
        check_unit("threshold", config.threshold)?;
        if !(0.0..=0.5).contains(&config.softness) {
            return Err(SceneError::new("softness", "must be between 0 and 0.5"));
        }
        if !(2.0..=256.0).contains(&config.blur) {
            return Err(SceneError::new("blur", "must be from 2 to 256 pixels"));
        }
        if config.effect == SegmentEffect::Replace && config.background.is_none() && config.color.is_none() {
            return Err(SceneError::new("effect", "replace needs a background input or a color"));
        }
        Ok(())
    }

    fn build(
        &self,
        spec: &LayerSpec,
        config: SegmentLayerConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Layer>, BuildError> {
        let input = spec.input.clone().ok_or_else(|| BuildError::new(&spec.id, "a segment layer needs an input"))?;
        if let Some(b) = &config.background {
            if !ctx.scene.inputs.contains_key(b) {
                return Err(BuildError::new(&spec.id, format!("background: no input {b:?} in the scene")));
            }
        }
        let path = match &config.model {
            Some(p) => ctx.scene.resolve_path(p),
            None => model_path(config.shape.unwrap_or(SegmentModel::Landscape).file()),
        };
        // Both shapes can be picked by the input's aspect: open whichever the tensor has.
        let chosen = config.model.is_some();
        let mut models: Vec<((u32, u32), Result<Model, String>)> = Vec::new();
        let inference = Inference::start(&spec.id, move |job: TensorJob<()>, stop| {
            let (w, h) = (job.shape.width, job.shape.height);
            let i = match models.iter().position(|(size, _)| *size == (w, h)) {
                Some(i) => i,
                None => {
                    let path = if chosen {
                        path.clone()
                    } else {
                        let kind = if w == h { SegmentModel::Square } else { SegmentModel::Landscape };
                        model_path(kind.file())
                    };
                    models.push(((w, h), Model::open(&path).map_err(|e| e.to_string())));
                    models.len() - 1
                }
            };
            let model = models[i].1.as_mut().map_err(|e| e.clone())?;
            let tensor = read_tensor(&job.staging, stop)?;
            segment(model, tensor, w, h).map_err(|e| e.to_string())
        })?;
        Ok(Box::new(SegmentLayer {
            id: spec.id.clone(),
            input,
            config,
            inference,
            composite: None,
            mask: None,
            halvings: Vec::new(),
            halving_groups: Vec::new(),
            blurred: None,
            tent_bound: None,
            matte: None,
            bound: None,
            slot: None,
            age: None,
        }))
    }
}

/// Runs a selfie segmentation model on an NHWC tensor of `w` × `h`: the mask.
pub fn segment(model: &mut Model, tensor: Vec<f32>, w: u32, h: u32) -> Result<Mask, crate::ml::MlError> {
    let shape = [1, h as usize, w as usize, 3];
    let (input, output) = model.first_names();
    let mut outputs = model.run(&input, shape, tensor, &[&output])?;
    let (out_shape, values) = outputs.pop().ok_or_else(|| crate::ml::MlError::Inference("no output".into()))?;
    let (mh, mw) = match out_shape[..] {
        [_, mh, mw, 1] => (mh, mw),
        _ => return Err(crate::ml::MlError::Inference(format!("unexpected mask shape {out_shape:?}"))),
    };
    if values.len() != mh * mw {
        return Err(crate::ml::MlError::Inference(format!("mask of {} values for {mw}×{mh}", values.len())));
    }
    let levels = values.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8).collect();
    Ok(Mask { width: mw as u32, height: mh as u32, levels: Arc::new(levels) })
}
