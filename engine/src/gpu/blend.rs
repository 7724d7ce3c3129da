//! The layer blend pipelines (`shaders/blend.wgsl`): one pipeline per blend mode, each a
//! fixed-function blend of premultiplied colour. Multiply needs a second draw when the
//! destination may be translucent (see `blend_states`).
//!
//! A layer whose opacity is the same as in the previous frame is drawn by a pipeline with that
//! opacity baked in as a shader constant: on llvmpipe only such a shader takes the fast linear
//! path (see `blend.wgsl`). While an opacity changes (a fade) the uniform pipelines draw it, so a
//! fade does not compile a pipeline per frame.

use super::shaders;
use super::texture::{self, COLOR_FORMAT};
use crate::scene::BlendMode;
use bytemuck::{Pod, Zeroable};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// Uniforms of `blend.wgsl`'s `LayerParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct LayerParams {
    pub dst: [f32; 4],
    pub src: [f32; 4],
    pub opacity: [f32; 4],
}
const _: () = assert!(std::mem::size_of::<LayerParams>() == 48);

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

/// Pipelines with a constant opacity kept at most; beyond that the cache starts over.
const MAX_CONSTANT_OPACITY_PIPELINES: usize = 64;

/// (mode, dst_opaque, opacity bits).
type ConstantKey = (BlendMode, bool, u32);

#[derive(Debug, Default)]
struct ConstantOpacity {
    built: HashMap<ConstantKey, Vec<wgpu::RenderPipeline>>,
    drawn_last_frame: HashSet<ConstantKey>,
    drawn_this_frame: HashSet<ConstantKey>,
}

#[derive(Debug)]
pub struct BlendPipelines {
    pub params_layout: wgpu::BindGroupLayout,
    pub texture_layout: wgpu::BindGroupLayout,
    pub sampler: wgpu::Sampler,
    layout: wgpu::PipelineLayout,
    module: wgpu::ShaderModule,
    /// (mode, dst_opaque) → the pipelines drawn in order, opacity from the uniform.
    pipelines: Vec<((BlendMode, bool), Vec<wgpu::RenderPipeline>)>,
    constant: Mutex<ConstantOpacity>,
}

fn make_pipeline(
    device: &wgpu::Device,
    layout: &wgpu::PipelineLayout,
    module: &wgpu::ShaderModule,
    blend: wgpu::BlendState,
    opacity: Option<f32>,
    label: &str,
) -> wgpu::RenderPipeline {
    let constants = opacity.map(|o| [("OPACITY", f64::from(o))]);
    device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some(label),
        layout: Some(layout),
        vertex: wgpu::VertexState {
            module,
            entry_point: Some("vs_main"),
            compilation_options: Default::default(),
            buffers: &[],
        },
        primitive: wgpu::PrimitiveState { topology: wgpu::PrimitiveTopology::TriangleStrip, ..Default::default() },
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        fragment: Some(wgpu::FragmentState {
            module,
            entry_point: Some(if opacity.is_some() { "fs_constant" } else { "fs_main" }),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: constants.as_ref().map_or(&[], |c| c.as_slice()),
                ..Default::default()
            },
            targets: &[Some(wgpu::ColorTargetState {
                format: COLOR_FORMAT,
                blend: Some(blend),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    })
}

impl BlendPipelines {
    pub fn new(device: &wgpu::Device) -> Self {
        let module = texture::shader(device, "streamlib blend shader", shaders::BLEND);
        let params_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib blend params layout"),
            entries: &[texture::uniform_entry(0, true, wgpu::ShaderStages::VERTEX_FRAGMENT)],
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
        let mut pipelines = Vec::new();
        for mode in BlendMode::ALL {
            for dst_opaque in [false, true] {
                let list = blend_states(mode, dst_opaque)
                    .into_iter()
                    .enumerate()
                    .map(|(i, state)| {
                        let label = format!("streamlib blend pipeline ({} {i})", mode.name());
                        make_pipeline(device, &layout, &module, state, None, &label)
                    })
                    .collect();
                pipelines.push(((mode, dst_opaque), list));
            }
        }
        BlendPipelines {
            params_layout,
            texture_layout,
            sampler: texture::linear_sampler(device, "streamlib layer sampler"),
            layout,
            module,
            pipelines,
            constant: Mutex::new(ConstantOpacity::default()),
        }
    }

    /// The pipelines to draw, in order, for one layer at `opacity` (which the uniform also holds).
    pub fn draws(
        &self,
        device: &wgpu::Device,
        mode: BlendMode,
        dst_opaque: bool,
        opacity: f32,
    ) -> Vec<wgpu::RenderPipeline> {
        let key = (mode, dst_opaque, opacity.to_bits());
        let mut constant = self.constant.lock().unwrap_or_else(|e| e.into_inner());
        constant.drawn_this_frame.insert(key);
        if let Some(list) = constant.built.get(&key) {
            return list.clone();
        }
        if !constant.drawn_last_frame.contains(&key) {
            return self.uniform_draws(mode, dst_opaque).to_vec();
        }
        if constant.built.len() >= MAX_CONSTANT_OPACITY_PIPELINES {
            constant.built.clear();
        }
        let list: Vec<_> = blend_states(mode, dst_opaque)
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let label = format!("streamlib blend pipeline ({} {i}, opacity {opacity})", mode.name());
                make_pipeline(device, &self.layout, &self.module, state, Some(opacity), &label)
            })
            .collect();
        constant.built.insert(key, list.clone());
        list
    }

    /// Marks the end of an output frame: opacities drawn in it count as held in the next one.
    pub fn end_frame(&self) {
        let mut constant = self.constant.lock().unwrap_or_else(|e| e.into_inner());
        constant.drawn_last_frame = std::mem::take(&mut constant.drawn_this_frame);
    }

    fn uniform_draws(&self, mode: BlendMode, dst_opaque: bool) -> &[wgpu::RenderPipeline] {
        self.pipelines.iter().find(|(key, _)| *key == (mode, dst_opaque)).map_or(&[], |(_, list)| list.as_slice())
    }

    /// A bind group sampling `view` for a layer quad.
    pub fn texture_bind_group(&self, device: &wgpu::Device, view: &wgpu::TextureView) -> wgpu::BindGroup {
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("streamlib layer texture bind group"),
            layout: &self.texture_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(view) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::Sampler(&self.sampler) },
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::GpuContext;

    #[test]
    fn held_opacities_get_constant_pipelines_and_changing_ones_the_uniform() {
        let gpu = GpuContext::new().expect("gpu");
        let p = BlendPipelines::new(&gpu.device);
        let device = &gpu.device;
        let uniform = p.uniform_draws(BlendMode::Normal, true).to_vec();
        // First sight of an opacity: the uniform pipeline.
        assert_eq!(p.draws(device, BlendMode::Normal, true, 0.8), uniform);
        p.end_frame();
        // Held for a second frame: its own pipeline, kept while it holds.
        let held = p.draws(device, BlendMode::Normal, true, 0.8);
        assert_ne!(held, uniform);
        assert_eq!(p.draws(device, BlendMode::Normal, true, 0.3), uniform);
        p.end_frame();
        assert_eq!(p.draws(device, BlendMode::Normal, true, 0.8), held);
        // Multiply over a translucent target keeps its two draws.
        p.end_frame();
        let _ = p.draws(device, BlendMode::Multiply, false, 0.5);
        p.end_frame();
        assert_eq!(p.draws(device, BlendMode::Multiply, false, 0.5).len(), 2);
    }
}
