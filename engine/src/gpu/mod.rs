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
#[cfg(feature = "ml")]
pub mod tensor;
pub mod texture;
pub mod timestamps;
pub mod vector;

pub use context::{AdapterSummary, GpuContext, GpuError};

#[cfg(test)]
mod shader_validation;

/// Pipelines every engine needs, built once per device (shader compilation is not free on a
/// software rasterizer).
/// Share one between engines on the same `GpuContext` (`Engine::with_pipelines`).
#[derive(Debug)]
pub struct Pipelines {
    pub(crate) blend: blend::BlendPipelines,
    pub(crate) pattern: pattern::PatternPipeline,
    pub(crate) input: convert::InputConverter,
    pub(crate) vector: vector::VectorPipeline,
}

impl Pipelines {
    /// Compiles every pipeline for `gpu`'s device.
    pub fn new(gpu: &GpuContext) -> Result<Self, GpuError> {
        gpu.scoped("building the streamlib pipelines", || Pipelines {
            blend: blend::BlendPipelines::new(&gpu.device),
            pattern: pattern::PatternPipeline::new(&gpu.device),
            input: convert::InputConverter::new(&gpu.device),
            vector: vector::VectorPipeline::new(&gpu.device),
        })
    }
}
