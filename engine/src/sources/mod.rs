//! Sources: where input frames come from. GPU sources (test patterns) draw on the render thread;
//! CPU sources (files, network) run a producer thread feeding a bounded channel, and their frames
//! are uploaded and converted on the GPU (`ThreadedSource`).

mod test_pattern;
mod threaded;
mod y4m_file;

pub use test_pattern::{Pattern, TestPattern, TestPatternConfig, TestPatternKind};
pub use threaded::{FrameProducer, ThreadedSource};
pub use y4m_file::{Y4mProducer, Y4mSourceConfig, Y4mSourceKind};

use crate::frame::FrameInfo;
use crate::gpu::{GpuContext, Pipelines};
use crate::layers::InputView;
use crate::timing::Pacing;

/// A source failed; the input keeps showing its last frame (or nothing) and the rest renders on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// A file or device could not be opened.
    #[error("cannot open {path}: {message}")]
    Open {
        /// The file or device.
        path: String,
        /// Why it could not be opened.
        message: String,
    },
    /// The input's data could not be read or decoded.
    #[error("{0}")]
    Decode(String),
    /// The input or the operation asked of it is not supported.
    #[error("{0}")]
    Unsupported(String),
    /// A GPU operation for the input failed.
    #[error("GPU: {0}")]
    Gpu(String),
    /// Nothing decoded within the producer's poll interval (a live input between frames); the
    /// producer thread checks for stop and seek requests and asks again. Never reaches the engine.
    #[error("no frame yet")]
    NotYet,
}

/// What a source may use while updating for an output frame.
pub struct SourceContext<'a> {
    pub(crate) gpu: &'a GpuContext,
    pub(crate) pipelines: &'a Pipelines,
    pub(crate) encoder: &'a mut wgpu::CommandEncoder,
    /// The output frame being rendered.
    pub frame: &'a FrameInfo,
    /// How the render loop is paced.
    pub pacing: Pacing,
    /// The scene's latency budget (`sync.latency_ms`): `None`, live inputs show their newest
    /// frame.
    pub latency_ns: Option<u64>,
}

/// One input of the scene.
pub trait Source: Send {
    /// Brings the input's texture up to date for `ctx.frame`. Offline pacing may block until the
    /// producer delivers; realtime pacing never blocks.
    fn update(&mut self, ctx: &mut SourceContext<'_>) -> Result<(), SourceError>;
    /// The current premultiplied RGBA texture; `None` until the first frame arrives.
    fn current(&self) -> Option<InputView>;
    /// The metadata of the frame `current` shows (a network input's detections, ...).
    fn metadata(&self) -> Option<&crate::metadata::FrameMetadata> {
        None
    }
    /// True once the source will produce no more new frames.
    fn is_ended(&self) -> bool {
        false
    }
    /// True when the source ends by itself (a file that does not loop); generators and live
    /// inputs run until stopped.
    fn is_finite(&self) -> bool {
        false
    }
    /// Whether `seek` can work (files can; generators and live inputs cannot).
    fn is_seekable(&self) -> bool {
        false
    }
    /// Moves the input to `position_ns` of its own timeline; the output timeline runs on.
    fn seek(&mut self, _position_ns: u64) -> Result<(), SourceError> {
        Err(SourceError::Unsupported("this input cannot seek".into()))
    }
    /// The pts (in the input's timeline) of the frame shown now, where the input has one.
    fn position_ns(&self) -> Option<u64> {
        None
    }
    /// Holds the current frame while the rest of the scene keeps running.
    fn set_paused(&mut self, _paused: bool) {}
    /// True while the source holds its current frame (see `set_paused`).
    fn is_paused(&self) -> bool {
        false
    }
    /// A live input's state (live, holding, stale) and its link's counters; `None` for inputs
    /// that are not fed from outside.
    fn feed_status(&self) -> Option<crate::counters::FeedStatus> {
        None
    }
    /// How the input joins the output's timeline (the scene's `inputs.ID.sync`); inputs that
    /// are not live ignore it.
    fn set_sync_policy(&mut self, _policy: crate::timing::SyncPolicy) {}
    /// A live input's synchronizer counts, once a realtime render has picked for it.
    fn sync_stats(&self) -> Option<crate::timing::SyncStats> {
        None
    }
    /// When the frame shown now was captured, on the timeline less the input's known delay (a
    /// live input in a realtime render); the spread across inputs says how well they align.
    fn shown_capture_ns(&self) -> Option<u64> {
        None
    }
}
