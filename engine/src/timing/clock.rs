use std::time::Instant;

/// A monotonic time source in nanoseconds. PTP or other disciplined clocks implement this too.
pub trait Clock: Send + Sync {
    /// The current time in nanoseconds; never goes backwards.
    fn now_ns(&self) -> u64;
}

/// The system's monotonic clock, counted from when this value was made.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    start: Instant,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock { start: Instant::now() }
    }
}

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }
}
