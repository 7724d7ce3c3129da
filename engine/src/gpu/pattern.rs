//! The test pattern pipeline (`shaders/test_pattern.wgsl`).

use super::texture::{self, Target, COLOR_FORMAT};
use super::{shaders, GpuContext};
use bytemuck::{Pod, Zeroable};

/// Uniforms of `test_pattern.wgsl`'s `PatternParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq)]
pub struct PatternParams {
    pub color: [f32; 4],
    pub size: [f32; 2],
    pub frame: u32,
    pub pattern: u32,
    pub fps: f32,
    pub cell: f32,
    pub _pad: [f32; 2],
}
const _: () = assert!(std::mem::size_of::<PatternParams>() == 48);

/// The shader's pattern ids, in `PatternParams::pattern`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum PatternId {
    SmpteBars = 0,
    Solid = 1,
    Gradient = 2,
    Checkerboard = 3,
    MovingBox = 4,
    TestCard = 5,
    Placeholder = 6,
}

#[derive(Debug)]
pub struct PatternPipeline {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
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
        let pipeline = texture::fullscreen_pipeline(
            device,
            "streamlib test pattern pipeline",
            &pipeline_layout,
            &module,
            "fs_main",
            &[texture::replace_target(COLOR_FORMAT)],
        );
        PatternPipeline { pipeline, layout }
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

    /// Records a pass drawing the pattern over the whole of `target`.
    pub fn draw(
        &mut self,
        gpu: &GpuContext,
        pipeline: &PatternPipeline,
        encoder: &mut wgpu::CommandEncoder,
        target: &Target,
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
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.draw(0..3, 0..1);
    }
}
