//! The layer blend pipelines (`shaders/blend.wgsl`): one pipeline per blend mode, each a
//! fixed-function blend of premultiplied colour. Multiply needs a second draw when the
//! destination may be translucent (see `BlendPipelines::draws`).

use super::shaders;
use super::texture::{self, RGBA_FORMAT};
use crate::scene::BlendMode;
use bytemuck::{Pod, Zeroable};

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

#[derive(Debug)]
pub struct BlendPipelines {
    pub params_layout: wgpu::BindGroupLayout,
    pub texture_layout: wgpu::BindGroupLayout,
    pub sampler: wgpu::Sampler,
    /// (mode, dst_opaque) → the pipelines drawn in order.
    pipelines: Vec<((BlendMode, bool), Vec<wgpu::RenderPipeline>)>,
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
        let make = |blend: wgpu::BlendState, label: &str| {
            device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
                label: Some(label),
                layout: Some(&layout),
                vertex: wgpu::VertexState {
                    module: &module,
                    entry_point: Some("vs_main"),
                    compilation_options: Default::default(),
                    buffers: &[],
                },
                primitive: wgpu::PrimitiveState {
                    topology: wgpu::PrimitiveTopology::TriangleStrip,
                    ..Default::default()
                },
                depth_stencil: None,
                multisample: wgpu::MultisampleState::default(),
                fragment: Some(wgpu::FragmentState {
                    module: &module,
                    entry_point: Some("fs_main"),
                    compilation_options: Default::default(),
                    targets: &[Some(wgpu::ColorTargetState {
                        format: RGBA_FORMAT,
                        blend: Some(blend),
                        write_mask: wgpu::ColorWrites::ALL,
                    })],
                }),
                multiview_mask: None,
                cache: None,
            })
        };
        let mut pipelines = Vec::new();
        for mode in BlendMode::ALL {
            for dst_opaque in [false, true] {
                let list = blend_states(mode, dst_opaque)
                    .into_iter()
                    .enumerate()
                    .map(|(i, state)| make(state, &format!("streamlib blend pipeline ({} {i})", mode.name())))
                    .collect();
                pipelines.push(((mode, dst_opaque), list));
            }
        }
        BlendPipelines {
            params_layout,
            texture_layout,
            sampler: texture::linear_sampler(device, "streamlib layer sampler"),
            pipelines,
        }
    }

    /// The pipelines to draw, in order, for one layer.
    pub fn draws(&self, mode: BlendMode, dst_opaque: bool) -> &[wgpu::RenderPipeline] {
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
