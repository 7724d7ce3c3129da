//! streamlib: a GPU-native, real-time video compositing engine on wgpu.
//!
//! A [`Scene`] (pure data, usually JSON) names inputs and layers. An [`Engine`] builds it on a
//! [`GpuContext`]: sources update their textures, the compositor blends layers by z, opacity and
//! blend mode, and readback rings deliver frames to sinks on their own threads ([`run`]).

#![doc(html_root_url = "https://docs.rs/streamlib")]
// Every public item says what it is for: the public API is what `lib.rs` re-exports.
#![warn(missing_docs)]

mod compositor;
pub mod counters;
mod engine;
pub mod files;
pub mod frame;
mod gpu;
pub mod layers;
#[cfg(feature = "media")]
pub mod media;
pub mod metadata;
#[cfg(feature = "ml")]
pub mod ml;
pub mod net;
mod pipeline;
pub mod registry;
mod runtime;
pub mod scene;
pub mod sinks;
pub mod sources;
pub mod timing;

/// Showing the composited frame in a window: no readback, the output texture is drawn into the
/// surface, letterboxed.
pub mod present {
    pub use crate::gpu::present::{pick_surface_format, Presenter};
}

pub use engine::{Engine, EngineError, FrameIssues, Readback, StageTimes, DEFAULT_RING_DEPTH};
pub use frame::{FrameData, FrameInfo, FrameTime, OutputFrame, PixelFormat, Plane, TimestampedFrame};
pub use gpu::convert::{YuvColorSpace, YuvMatrix, YuvRange};
pub use gpu::{AdapterSummary, GpuContext, GpuError, Pipelines};
pub use pipeline::{FrameReport, LoopStats, Pipeline, SinkSummary, TickStats};
pub use registry::Registry;
pub use runtime::{run, RunError, RunOptions, RunStats};
pub use scene::{BlendMode, Color, Fps, LayerSpec, Rect, Scene, SceneError};
pub use sinks::{Backpressure, Sink, SinkError, SinkHandle};
pub use timing::Pacing;
