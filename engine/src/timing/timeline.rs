//! The one timeline every live input's frames are stamped on: nanoseconds of the system's
//! monotonic clock since this process first asked. GStreamer's live pipelines run on the same
//! monotonic clock with their base time at this epoch (`media::timeline`), so a buffer's running
//! time is its capture time here; inputs that cannot say when they captured a frame are stamped
//! when it arrives. The render loop maps each output tick onto it (`Pipeline`), so frames
//! captured together are shown together whatever each input's delay.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The instant the timeline counts from.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Now on the timeline.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// `t` on the timeline (0 for instants before its epoch).
pub fn at(t: Instant) -> u64 {
    t.saturating_duration_since(epoch()).as_nanos() as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn runs_forward_from_its_epoch() {
        let a = super::now_ns();
        let b = super::at(std::time::Instant::now());
        assert!(b >= a);
        assert_eq!(super::at(super::epoch()), 0);
    }
}
