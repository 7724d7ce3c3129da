//! The test pattern pipeline (`shaders/test_pattern.wgsl`).

use super::texture::{self, Target, COLOR_FORMAT};
use super::{shaders, GpuContext};
use bytemuck::{Pod, Zeroable};
use std::sync::OnceLock;

/// Uniforms of `test_pattern.wgsl`'s `PatternParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct PatternParams {
    pub color: [f32; 4],
    pub size: [f32; 2],
    pub frame: u32,
    pub fps: f32,
    pub cell: f32,
    pub _pad0: f32,
    pub _pad: [f32; 2],
}
const _: () = assert!(std::mem::size_of::<PatternParams>() == 48);

/// Which branch of `test_pattern.wgsl` a pipeline draws, its override constant `PATTERN`: a
/// `sources::Pattern` (whose discriminants are these ids), or the no-layers placeholder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatternId(u32);

impl PatternId {
    pub const PLACEHOLDER: PatternId = PatternId(crate::sources::Pattern::ALL.len() as u32);
    const COUNT: usize = crate::sources::Pattern::ALL.len() + 1;

    pub fn of(pattern: crate::sources::Pattern) -> Self {
        PatternId(pattern as u32)
    }
}

/// The test pattern pipelines, one per pattern, each built on first use.
#[derive(Debug)]
pub struct PatternPipeline {
    module: wgpu::ShaderModule,
    layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    built: [OnceLock<wgpu::RenderPipeline>; PatternId::COUNT],
}

impl PatternPipeline {
    pub fn new(device: &wgpu::Device) -> Self {
        let module = texture::shader(device, "streamlib test pattern shader", shaders::TEST_PATTERN);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib test pattern bind group layout"),
            entries: &[texture::uniform_entry(0, false, wgpu::ShaderStages::FRAGMENT)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib test pattern pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        PatternPipeline { module, layout, pipeline_layout, built: Default::default() }
    }

    fn pipeline(&self, device: &wgpu::Device, id: PatternId) -> &wgpu::RenderPipeline {
        self.built[id.0 as usize].get_or_init(|| {
            texture::pipeline(
                device,
                "streamlib test pattern pipeline",
                &self.pipeline_layout,
                &self.module,
                ("fs_main", &[("PATTERN", f64::from(id.0))]),
                wgpu::PrimitiveTopology::TriangleList,
                &[texture::replace_target(COLOR_FORMAT)],
            )
        })
    }
}

/// One pattern drawer: its own uniforms, drawing into any RGBA target.
#[derive(Debug)]
pub struct PatternDrawer {
    uniform: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    last: Option<PatternParams>,
}

impl PatternDrawer {
    pub fn new(gpu: &GpuContext, pipeline: &PatternPipeline) -> Self {
        let uniform = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("streamlib test pattern uniforms"),
            size: std::mem::size_of::<PatternParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("streamlib test pattern bind group"),
            layout: &pipeline.layout,
            entries: &[wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() }],
        });
        PatternDrawer { uniform, bind_group, last: None }
    }

    /// Records a pass drawing pattern `id` over the whole of `target`.
    pub fn draw(
        &mut self,
        gpu: &GpuContext,
        pipeline: &PatternPipeline,
        encoder: &mut wgpu::CommandEncoder,
        target: &Target,
        id: PatternId,
        params: PatternParams,
    ) {
        if self.last != Some(params) {
            gpu.queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&params));
            self.last = Some(params);
        }
        let mut pass = texture::begin_pass(
            encoder,
            "streamlib test pattern pass",
            &[Some(texture::color_attachment(&target.view, None))],
        );
        pass.set_pipeline(pipeline.pipeline(&gpu.device, id));
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}
