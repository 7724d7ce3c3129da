//! GStreamer's side of the engine's timeline (`timing::timeline`): every live pipeline runs on
//! the monotonic system clock with its base time at the timeline's epoch, so a buffer's running
//! time is its capture time on the timeline, the same for every input (GStreamer's own way of
//! syncing pipelines: one clock, one base time).

use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::OnceLock;

/// The system clock's reading at the timeline's epoch.
fn base_time(clock: &gst::Clock) -> gst::ClockTime {
    static BASE: OnceLock<u64> = OnceLock::new();
    let base = *BASE.get_or_init(|| {
        // Both read CLOCK_MONOTONIC: the difference is the epoch, to the nanoseconds between reads.
        let now = clock.time().nseconds();
        now.saturating_sub(crate::timing::timeline::now_ns())
    });
    gst::ClockTime::from_nseconds(base)
}

/// Puts `pipeline` on the timeline (before it starts playing); false when it cannot.
pub(crate) fn join(pipeline: &gst::Pipeline) -> bool {
    let clock = gst::SystemClock::obtain();
    if clock.property::<gst::ClockType>("clock-type") != gst::ClockType::Monotonic {
        // Another part of the process changed the shared clock's type: capture times would be
        // on another timescale. Keep the pipeline's own timing rather than mix them.
        tracing::warn!("GStreamer's system clock is not monotonic; live inputs are stamped on arrival");
        return false;
    }
    pipeline.use_clock(Some(&clock));
    pipeline.set_start_time(gst::ClockTime::NONE);
    pipeline.set_base_time(base_time(&clock));
    true
}

/// The running time of `sample`'s buffer: its capture time on the timeline once the pipeline
/// has joined it.
pub(crate) fn running_time(sample: &gst::Sample) -> Option<u64> {
    let pts = sample.buffer()?.pts()?;
    let segment = sample.segment()?.downcast_ref::<gst::ClockTime>()?.clone();
    segment.to_running_time(pts).map(gst::ClockTime::nseconds)
}
