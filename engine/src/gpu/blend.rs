//! The layer blend pipelines (`shaders/blend.wgsl`): one pipeline per blend mode, each a
//! fixed-function blend of premultiplied colour. Multiply needs a second draw when the
//! destination may be translucent (see `blend_states`).
//!
//! The layer's opacity is baked into its pipeline as a shader constant, in 1/255 steps (what an
//! 8-bit compositor can express): on llvmpipe only such a shader takes the fast linear path (see
//! `blend.wgsl`). Pipelines are built on first use and kept, so at most 256 per blend mode exist;
//! building one costs ~30 ms on llvmpipe, so the first pass of a fade is slower, later ones are
//! not. Every frame is drawn by the same pipelines whatever came before it, so a frame rendered
//! alone equals the same frame inside a long render.

use super::shaders;
use super::texture::{self, COLOR_FORMAT};
use crate::scene::BlendMode;
use bytemuck::{Pod, Zeroable};
use std::collections::HashMap;
use std::sync::Mutex;

/// Uniforms of `blend.wgsl`'s `LayerParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct LayerParams {
    pub dst: [f32; 4],
    pub src: [f32; 4],
}
const _: () = assert!(std::mem::size_of::<LayerParams>() == 32);

/// Uniform slots are bound with dynamic offsets, which must be multiples of this.
pub const SLOT_STRIDE: u64 = 256;

fn component(src: wgpu::BlendFactor, dst: wgpu::BlendFactor) -> wgpu::BlendComponent {
    wgpu::BlendComponent { src_factor: src, dst_factor: dst, operation: wgpu::BlendOperation::Add }
}

/// Blend states drawn for one layer in `mode`, in order.
/// `dst_opaque`: the target is known to be opaque, so multiply's second term vanishes.
pub fn blend_states(mode: BlendMode, dst_opaque: bool) -> Vec<wgpu::BlendState> {
    use wgpu::BlendFactor::*;
    let over = component(One, OneMinusSrcAlpha);
    match mode {
        BlendMode::Normal => vec![wgpu::BlendState { color: over, alpha: over }],
        BlendMode::Add => vec![wgpu::BlendState { color: component(One, One), alpha: over }],
        BlendMode::Screen => vec![wgpu::BlendState { color: component(One, OneMinusSrc), alpha: over }],
        // src·dst + dst·(1−αs), keeping dst alpha; then + src·(1−αd) with the usual alpha.
        BlendMode::Multiply if dst_opaque => {
            vec![wgpu::BlendState { color: component(Dst, OneMinusSrcAlpha), alpha: over }]
        }
        BlendMode::Multiply => vec![
            wgpu::BlendState { color: component(Dst, OneMinusSrcAlpha), alpha: component(Zero, One) },
            wgpu::BlendState { color: component(OneMinusDstAlpha, One), alpha: over },
        ],
    }
}

/// Pipelines kept at most: every (mode, target opacity, 8-bit opacity) fits.
const MAX_PIPELINES: usize = BlendMode::ALL.len() * 2 * 256;

/// (mode, dst_opaque, opacity in 1/255 steps).
type PipelineKey = (BlendMode, bool, u8);

#[derive(Debug)]
pub struct BlendPipelines {
    pub params_layout: wgpu::BindGroupLayout,
    pub texture_layout: wgpu::BindGroupLayout,
    pub sampler: wgpu::Sampler,
    /// Nearest filtering, for blocks (a pixelated face).
    #[cfg_attr(not(feature = "ml"), allow(dead_code))]
    pub nearest_sampler: wgpu::Sampler,
    layout: wgpu::PipelineLayout,
    module: wgpu::ShaderModule,
    /// The pipelines drawn in order for each key, built on first use.
    built: Mutex<HashMap<PipelineKey, Vec<wgpu::RenderPipeline>>>,
    bake_layout: wgpu::PipelineLayout,
    bake_module: wgpu::ShaderModule,
    /// `opacity_bake.wgsl` per opacity step, built on first use.
    bakes: Mutex<HashMap<u8, wgpu::RenderPipeline>>,
}

/// `opacity` in the 1/255 steps pipelines are built for.
pub fn opacity_step(opacity: f32) -> u8 {
    (opacity.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn make_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    blend: Option<wgpu::BlendState>,
    opacity: u8,
    label: &str,
) -> wgpu::RenderPipeline {
    let constants = [("OPACITY", f64::from(opacity) / 255.0)];
    let target = wgpu::ColorTargetState { format: COLOR_FORMAT, blend, write_mask: wgpu::ColorWrites::ALL };
    let strip = wgpu::PrimitiveTopology::TriangleStrip;
    texture::pipeline(device, label, layout, module, ("fs_main", &constants), strip, &[Some(target)])
}

impl BlendPipelines {
    pub fn new(device: &wgpu::Device) -> Self {
        let module = texture::shader(device, "streamlib blend shader", shaders::BLEND);
        let params_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib blend params layout"),
            entries: &[texture::uniform_entry(0, true, wgpu::ShaderStages::VERTEX)],
        });
        let texture_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib blend texture layout"),
            entries: &[texture::texture_entry(0), texture::sampler_entry(1)],
        });
        let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib blend pipeline layout"),
            bind_group_layouts: &[Some(&params_layout), Some(&texture_layout)],
            immediate_size: 0,
        });
        let bake_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib opacity bake pipeline layout"),
            bind_group_layouts: &[Some(&texture_layout)],
            immediate_size: 0,
        });
        BlendPipelines {
            params_layout,
            texture_layout,
            sampler: texture::linear_sampler(device, "streamlib layer sampler"),
            nearest_sampler: device.create_sampler(&wgpu::SamplerDescriptor {
                label: Some("streamlib nearest sampler"),
                ..Default::default()
            }),
            layout,
            module,
            built: Mutex::new(HashMap::new()),
            bake_layout,
            bake_module: texture::shader(device, "streamlib opacity bake shader", shaders::OPACITY_BAKE),
            bakes: Mutex::new(HashMap::new()),
        }
    }

    /// The pipeline of `opacity_bake.wgsl` for `step` (see `opacity_step`): it writes a texture
    /// bound by `texture_bind_group` times the opacity into a `COLOR_FORMAT` target of its size.
    pub fn bake_pipeline(&self, device: &wgpu::Device, step: u8) -> wgpu::RenderPipeline {
        let mut bakes = self.bakes.lock().unwrap_or_else(|e| e.into_inner());
        bakes
            .entry(step)
            .or_insert_with(|| {
                let label = format!("streamlib opacity bake pipeline ({step}/255)");
                make_pipeline(device, &self.bake_layout, &self.bake_module, None, step, &label)
            })
            .clone()
    }

    /// The pipelines to draw, in order, for one layer.
    pub fn draws(
        &self,
        device: &wgpu::Device,
        mode: BlendMode,
        dst_opaque: bool,
        opacity: f32,
    ) -> Vec<wgpu::RenderPipeline> {
        let step = opacity_step(opacity);
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = built.get(&(mode, dst_opaque, step)) {
            return list.clone();
        }
        if built.len() >= MAX_PIPELINES {
            built.clear();
        }
        let list: Vec<_> = blend_states(mode, dst_opaque)
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let label = format!("streamlib blend pipeline ({} {i}, opacity {step}/255)", mode.name());
                make_pipeline(device, &self.layout, &self.module, Some(state), step, &label)
            })
            .collect();
        built.insert((mode, dst_opaque, step), list.clone());
        list
    }

    /// A bind group sampling `view` for a layer quad.
    pub fn texture_bind_group(&self, device: &wgpu::Device, view: &wgpu::TextureView) -> wgpu::BindGroup {
        self.bind_group_with(device, view, &self.sampler)
    }

    /// `texture_bind_group` with nearest filtering: each texel a block.
    #[cfg_attr(not(feature = "ml"), allow(dead_code))]
    pub fn texture_bind_group_nearest(&self, device: &wgpu::Device, view: &wgpu::TextureView) -> wgpu::BindGroup {
        self.bind_group_with(device, view, &self.nearest_sampler)
    }

    fn bind_group_with(
        &self,
        device: &wgpu::Device,
        view: &wgpu::TextureView,
        sampler: &wgpu::Sampler,
    ) -> wgpu::BindGroup {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("streamlib layer texture bind group"),
            layout: &self.texture_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(view) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::Sampler(sampler) },
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::GpuContext;

    #[test]
    fn pipelines_are_built_once_per_mode_and_opacity_step() {
        let gpu = GpuContext::new().expect("gpu");
        let p = BlendPipelines::new(&gpu.device);
        let device = &gpu.device;
        let a = p.draws(device, BlendMode::Normal, true, 0.8);
        assert_eq!(p.draws(device, BlendMode::Normal, true, 0.8), a, "built once, then reused");
        assert_eq!(p.draws(device, BlendMode::Normal, true, 0.8005), a, "the same 1/255 step");
        assert_ne!(p.draws(device, BlendMode::Normal, true, 0.81), a);
        assert_ne!(p.draws(device, BlendMode::Normal, false, 0.8), a);
        assert_eq!(p.draws(device, BlendMode::Multiply, false, 0.5).len(), 2, "multiply over translucent: two draws");
        assert_eq!(opacity_step(-1.0), 0);
        assert_eq!(opacity_step(0.3), 77);
        assert_eq!(opacity_step(2.0), 255);
    }
}
