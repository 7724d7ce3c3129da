//! Clocks, frame pacing, and picking input frames for each output tick.

mod clock;
mod frame_timer;
mod histogram;
mod multisync;
#[cfg(feature = "ptp")]
mod ptp;
mod sync;
pub mod timeline;

pub use clock::{Clock, ClockState, ClockStatus, ManualClock, SystemClock, Timescale};
pub use frame_timer::FrameTimer;
pub use histogram::{Histogram, Summary};
pub use multisync::{InputSync, Pick, SyncPolicy, SyncStats, HISTOGRAM_BINS};
#[cfg(feature = "ptp")]
pub use ptp::{PtpClock, PtpError};
#[allow(unused_imports)]
pub(crate) use sync::{align_timestamps, estimate_fps, FrameSelector, Pull};

/// How the render loop is paced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as possible; every input frame is waited for, so output is deterministic.
    #[default]
    Offline,
    /// At the scene's frame rate on the clock; inputs contribute whatever frame is current.
    Realtime,
}
