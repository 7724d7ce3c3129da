//! Everything that talks to wgpu: adapter selection, uploads and colour conversion, the blend and
//! pattern pipelines, and readback. The rest of the engine decides what to draw; this module
//! records the commands.

pub mod blend;
mod context;
pub mod convert;
pub mod pattern;
pub mod present;
pub mod readback;
pub mod shaders;
pub mod texture;
pub mod timestamps;
pub mod vector;

pub use context::{AdapterSummary, GpuContext, GpuError};

/// Pipelines every engine needs, built once per device (shader compilation is not free on a
/// software rasterizer).
#[derive(Debug)]
pub struct Pipelines {
    pub blend: blend::BlendPipelines,
    pub pattern: pattern::PatternPipeline,
    pub input: convert::InputConverter,
    pub vector: vector::VectorPipeline,
}

impl Pipelines {
    pub fn new(gpu: &GpuContext) -> Result<Self, GpuError> {
        gpu.scoped("building the streamlib pipelines", || Pipelines {
            blend: blend::BlendPipelines::new(&gpu.device),
            pattern: pattern::PatternPipeline::new(&gpu.device),
            input: convert::InputConverter::new(&gpu.device),
            vector: vector::VectorPipeline::new(&gpu.device),
        })
    }
}
