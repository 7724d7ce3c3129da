//! The vector pipeline (`shaders/vector.wgsl`): triangles from lyon with per-vertex premultiplied
//! colour, rendered with 4x MSAA into a layer texture and resolved.

use super::texture::{self, Target, RGBA_FORMAT};
use super::{shaders, GpuContext};
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

/// Samples per pixel for vector shapes: smooth edges at a modest cost on a software rasterizer.
pub const MSAA_SAMPLES: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct VectorVertex {
    pub position: [f32; 2],
    /// Premultiplied RGBA.
    pub color: [f32; 4],
}

/// Uniforms of `vector.wgsl`'s `VectorParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct VectorParams {
    pub size: [f32; 4],
}
const _: () = assert!(std::mem::size_of::<VectorParams>() == 16);

/// Triangles ready to upload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    pub vertices: Vec<VectorVertex>,
    pub indices: Vec<u32>,
}

#[derive(Debug)]
pub struct VectorPipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
}

impl VectorPipeline {
    pub fn new(device: &wgpu::Device) -> Self {
        let module = texture::shader(device, "streamlib vector shader", shaders::VECTOR);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib vector bind group layout"),
            entries: &[texture::uniform_entry(0, false, wgpu::ShaderStages::VERTEX)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib vector pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let over = wgpu::BlendComponent {
            src_factor: wgpu::BlendFactor::One,
            dst_factor: wgpu::BlendFactor::OneMinusSrcAlpha,
            operation: wgpu::BlendOperation::Add,
        };
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("streamlib vector pipeline"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs_main"),
                compilation_options: Default::default(),
                buffers: &[Some(wgpu::VertexBufferLayout {
                    array_stride: std::mem::size_of::<VectorVertex>() as u64,
                    step_mode: wgpu::VertexStepMode::Vertex,
                    attributes: &wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x4],
                })],
            },
            primitive: wgpu::PrimitiveState::default(),
            depth_stencil: None,
            multisample: wgpu::MultisampleState { count: MSAA_SAMPLES, ..Default::default() },
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs_main"),
                compilation_options: Default::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: RGBA_FORMAT,
                    blend: Some(wgpu::BlendState { color: over, alpha: over }),
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        VectorPipeline { pipeline, layout }
    }
}

/// A mesh on the GPU with its multisampled canvas, drawn into a layer texture on demand.
#[derive(Debug)]
pub struct VectorCanvas {
    msaa: wgpu::Texture,
    msaa_view: wgpu::TextureView,
    /// Kept with the bind group that reads it.
    _uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    buffers: Option<(wgpu::Buffer, wgpu::Buffer, u32)>,
}

impl VectorCanvas {
    pub fn new(gpu: &GpuContext, pipeline: &VectorPipeline, width: u32, height: u32) -> Self {
        let msaa = gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("streamlib vector msaa target"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: MSAA_SAMPLES,
            dimension: wgpu::TextureDimension::D2,
            format: RGBA_FORMAT,
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            view_formats: &[],
        });
        let msaa_view = msaa.create_view(&Default::default());
        let params = VectorParams { size: [width as f32, height as f32, 0.0, 0.0] };
        let uniform = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("streamlib vector uniforms"),
            contents: bytemuck::bytes_of(&params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("streamlib vector bind group"),
            layout: &pipeline.layout,
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }],
        });
        VectorCanvas { msaa, msaa_view, _uniform: uniform, bind_group, buffers: None }
    }

    pub fn size(&self) -> (u32, u32) {
        (self.msaa.width(), self.msaa.height())
    }

    /// Replaces the mesh (only when the shapes changed: tessellation and upload are not per frame).
    pub fn set_mesh(&mut self, gpu: &GpuContext, mesh: &Mesh) {
        if mesh.indices.is_empty() {
            self.buffers = None;
            return;
        }
        let vertices = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("streamlib vector vertices"),
            contents: bytemuck::cast_slice(&mesh.vertices),
            usage: wgpu::BufferUsages::VERTEX,
        });
        let indices = gpu.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("streamlib vector indices"),
            contents: bytemuck::cast_slice(&mesh.indices),
            usage: wgpu::BufferUsages::INDEX,
        });
        self.buffers = Some((vertices, indices, mesh.indices.len() as u32));
    }

    /// Records a pass drawing the mesh over transparent and resolving into `target`.
    pub fn draw(&self, pipeline: &VectorPipeline, encoder: &mut wgpu::CommandEncoder, target: &Target) {
        let attachment = wgpu::RenderPassColorAttachment {
            view: &self.msaa_view,
            depth_slice: None,
            resolve_target: Some(&target.view),
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color::TRANSPARENT),
                store: wgpu::StoreOp::Discard,
            },
        };
        let mut pass = texture::begin_pass(encoder, "streamlib vector pass", &[Some(attachment)]);
        if let Some((vertices, indices, count)) = &self.buffers {
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, &self.bind_group, &[]);
            pass.set_vertex_buffer(0, vertices.slice(..));
            pass.set_index_buffer(indices.slice(..), wgpu::IndexFormat::Uint32);
            pass.draw_indexed(0..*count, 0, 0..1);
        }
    }
}
