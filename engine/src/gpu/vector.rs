//! The vector pipeline (`shaders/vector.wgsl`): triangles from lyon with per-vertex premultiplied
//! colour, rendered with 4x MSAA into a layer texture and resolved.

use super::texture::{self, COLOR_FORMAT};
use super::{shaders, GpuContext};
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

/// Samples per pixel for vector shapes: smooth edges at a modest cost on a software rasterizer.
pub const MSAA_SAMPLES: u32 = 4;

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct VectorVertex {
    /// Target pixels.
    pub position: [f32; 2],
    /// The shape's own coordinates (before transforms), where gradients are evaluated.
    pub local: [f32; 2],
    /// Premultiplied RGBA; with a gradient paint only its alpha is used (as a global alpha).
    pub color: [f32; 4],
    /// 0 for the vertex colour, else 1 + an index into the paint table.
    pub paint: u32,
    pub _pad: u32,
}

/// A gradient in `vector.wgsl`'s paint table.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct GpuPaint {
    /// x: 1 linear, 2 radial; y: stop count.
    pub kind: [u32; 4],
    pub geometry: [f32; 4],
    pub offsets: [f32; 4],
    pub colors: [[f32; 4]; 4],
}
const _: () = assert!(std::mem::size_of::<GpuPaint>() == 112);

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
    pub paints: Vec<GpuPaint>,
    /// Index ranges with the scissor rect (x, y, w, h in target pixels) they are clipped to.
    pub batches: Vec<(std::ops::Range<u32>, Option<[u32; 4]>)>,
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
            entries: &[
                texture::uniform_entry(0, false, wgpu::ShaderStages::VERTEX),
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: true },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
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
                    attributes: &wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x2, 2 => Float32x4, 3 => Uint32],
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
                    format: COLOR_FORMAT,
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
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    paint_capacity: usize,
    paint_buffer: wgpu::Buffer,
    buffers: Option<(wgpu::Buffer, wgpu::Buffer)>,
    batches: Vec<(std::ops::Range<u32>, Option<[u32; 4]>)>,
}

fn paint_buffer(gpu: &GpuContext, capacity: usize) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("streamlib vector paints"),
        size: (capacity.max(1) * std::mem::size_of::<GpuPaint>()) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

fn vector_bind_group(
    gpu: &GpuContext,
    pipeline: &VectorPipeline,
    uniform: &wgpu::Buffer,
    paints: &wgpu::Buffer,
) -> wgpu::BindGroup {
    gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("streamlib vector bind group"),
        layout: &pipeline.layout,
        entries: &[
            wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
            wgpu::BindGroupEntry { binding: 1, resource: paints.as_entire_binding() },
        ],
    })
}

impl VectorCanvas {
    pub fn new(gpu: &GpuContext, pipeline: &VectorPipeline, width: u32, height: u32) -> Self {
        let msaa = gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("streamlib vector msaa target"),
            size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
            mip_level_count: 1,
            sample_count: MSAA_SAMPLES,
            dimension: wgpu::TextureDimension::D2,
            format: COLOR_FORMAT,
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
        let paint_buffer = paint_buffer(gpu, 1);
        let bind_group = vector_bind_group(gpu, pipeline, &uniform, &paint_buffer);
        VectorCanvas {
            msaa,
            msaa_view,
            uniform,
            bind_group,
            paint_capacity: 1,
            paint_buffer,
            buffers: None,
            batches: Vec::new(),
        }
    }

    pub fn size(&self) -> (u32, u32) {
        (self.msaa.width(), self.msaa.height())
    }

    /// The multisampled target, for passes that add more (text) before resolving.
    pub fn msaa_view(&self) -> &wgpu::TextureView {
        &self.msaa_view
    }

    /// Replaces the mesh (only when the shapes changed: tessellation and upload are not per frame).
    pub fn set_mesh(&mut self, gpu: &GpuContext, pipeline: &VectorPipeline, mesh: &Mesh) {
        self.batches = mesh.batches.clone();
        if mesh.indices.is_empty() {
            self.buffers = None;
            return;
        }
        if mesh.paints.len() > self.paint_capacity {
            self.paint_capacity = mesh.paints.len().next_power_of_two();
            self.paint_buffer = paint_buffer(gpu, self.paint_capacity);
            self.bind_group = vector_bind_group(gpu, pipeline, &self.uniform, &self.paint_buffer);
        }
        if !mesh.paints.is_empty() {
            gpu.queue.write_buffer(&self.paint_buffer, 0, bytemuck::cast_slice(&mesh.paints));
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
        self.buffers = Some((vertices, indices));
    }

    /// Records the mesh's draws into an open pass on this canvas's MSAA target.
    pub fn record(&self, pipeline: &VectorPipeline, pass: &mut wgpu::RenderPass<'_>) {
        let Some((vertices, indices)) = &self.buffers else { return };
        let (w, h) = self.size();
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.set_vertex_buffer(0, vertices.slice(..));
        pass.set_index_buffer(indices.slice(..), wgpu::IndexFormat::Uint32);
        for (range, clip) in &self.batches {
            let [x, y, cw, ch] = clip.unwrap_or([0, 0, w, h]);
            let (x, y) = (x.min(w), y.min(h));
            let (cw, ch) = (cw.min(w - x), ch.min(h - y));
            if cw == 0 || ch == 0 {
                continue;
            }
            pass.set_scissor_rect(x, y, cw, ch);
            pass.draw_indexed(range.clone(), 0, 0..1);
        }
    }
}
