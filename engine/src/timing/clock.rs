//! Clocks: where the render loop's time comes from, and how good that time is.
//!
//! The engine never sets or slews the system clock. A disciplined clock (PTP) is a clock of its
//! own that the engine reads; its `status` says how well it follows its reference.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How well a clock follows its reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// Its own reference, disciplined by nothing (the system's monotonic clock, a test clock).
    FreeRunning,
    /// Following a reference, not yet within its error bound (PTP before lock).
    Unlocked,
    /// Following its reference within the estimated error.
    Locked,
    /// Lost its reference; running on from the last known rate.
    Holdover,
}

/// What a clock's time counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Timescale {
    /// Nanoseconds since an arbitrary start (this process's monotonic clock).
    Monotonic,
    /// International Atomic Time (PTP's timescale).
    Tai,
    /// A test's virtual time.
    Manual,
}

/// A clock's state and figures (`Clock::status`); unknown figures are `None`.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ClockStatus {
    /// Which clock ("system", "manual", "ptp domain 0").
    pub name: String,
    /// How well it follows its reference.
    pub state: ClockState,
    /// What its time counts.
    pub timescale: Timescale,
    /// Measured offset from the reference (ns; PTP's offset from master).
    pub offset_ns: Option<i64>,
    /// Mean path delay to the reference (ns).
    pub path_delay_ns: Option<u64>,
    /// Rate difference from the local oscillator, parts per million.
    pub frequency_ppm: Option<f64>,
    /// Bound on the error of `now_ns` against the reference (ns).
    pub estimated_error_ns: Option<u64>,
    /// Discontinuities: times the clock jumped instead of running on.
    pub steps: u64,
    /// The size of the last discontinuity (ns, signed).
    pub last_step_ns: i64,
}

impl ClockStatus {
    /// A clock that is its own reference.
    pub fn free_running(name: &str, timescale: Timescale) -> Self {
        ClockStatus {
            name: name.to_string(),
            state: ClockState::FreeRunning,
            timescale,
            offset_ns: None,
            path_delay_ns: None,
            frequency_ppm: None,
            estimated_error_ns: Some(0),
            steps: 0,
            last_step_ns: 0,
        }
    }
}

/// A time source in nanoseconds. The render loop paces on it (`FrameTimer`), sleeping through
/// `sleep_until`, never `thread::sleep` directly, so a test clock makes pacing deterministic.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time in nanoseconds. Moves forward except across a step (`status().steps`).
    fn now_ns(&self) -> u64;

    /// Returns once `now_ns() >= deadline_ns` (at once when it has passed), or early when the
    /// clock steps meanwhile (the caller re-plans: a step back must not stretch the wait by its
    /// size). The default sleeps in slices of at most 20 ms and checks again, so a clock running
    /// slightly off the system's still wakes on its own time.
    fn sleep_until(&self, deadline_ns: u64) {
        let steps = self.steps().0;
        loop {
            let now = self.now_ns();
            if now >= deadline_ns || self.steps().0 != steps {
                return;
            }
            std::thread::sleep(Duration::from_nanos((deadline_ns - now).min(20_000_000)));
        }
    }

    /// The clock's state and figures.
    fn status(&self) -> ClockStatus;

    /// The number of discontinuities so far and the size of the last one (ns); cheap, read every
    /// frame.
    fn steps(&self) -> (u64, i64) {
        let s = self.status();
        (s.steps, s.last_step_ns)
    }
}

/// The system's monotonic clock, counted from when this value was made.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    start: Instant,
    /// The last part of each sleep spent yielding instead of sleeping (see `with_spin`).
    spin_ns: u64,
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock { start: Instant::now(), spin_ns: 0 }
    }
}

impl SystemClock {
    /// A clock whose `sleep_until` sleeps until `spin` before the deadline, then yields the CPU
    /// until it: the wake-up's tail (the scheduler's timer latency, milliseconds on a busy
    /// host) goes, at the price of up to `spin` of a core each sleep.
    pub fn with_spin(spin: Duration) -> Self {
        SystemClock { start: Instant::now(), spin_ns: spin.as_nanos() as u64 }
    }
}

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn sleep_until(&self, deadline_ns: u64) {
        let now = self.now_ns();
        if deadline_ns > now + self.spin_ns {
            std::thread::sleep(Duration::from_nanos(deadline_ns - now - self.spin_ns));
        }
        while self.now_ns() < deadline_ns {
            if self.spin_ns == 0 {
                std::thread::sleep(Duration::from_nanos(deadline_ns.saturating_sub(self.now_ns())));
            } else {
                std::thread::yield_now();
            }
        }
    }

    fn status(&self) -> ClockStatus {
        ClockStatus::free_running("system", Timescale::Monotonic)
    }

    fn steps(&self) -> (u64, i64) {
        (0, 0)
    }
}

/// A clock that moves only when told: `advance` is time passing, `step` a discontinuity (as a
/// PTP follower's correction). `sleep_until` moves it to the deadline at once, so a paced loop
/// runs as fast as it can and exactly on time: deterministic tests of pacing.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: AtomicU64,
    steps: AtomicU64,
    last_step: AtomicI64,
}

impl ManualClock {
    /// A clock reading `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        ManualClock { now: AtomicU64::new(start_ns), ..Default::default() }
    }

    /// Time passes by `ns` (the caller was busy).
    pub fn advance(&self, ns: u64) {
        self.now.fetch_add(ns, Ordering::SeqCst);
    }

    /// The clock jumps by `ns` (forwards or back) and counts a step.
    pub fn step(&self, ns: i64) {
        let now = self.now.load(Ordering::SeqCst);
        self.now.store(now.saturating_add_signed(ns), Ordering::SeqCst);
        self.last_step.store(ns, Ordering::SeqCst);
        self.steps.fetch_add(1, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn sleep_until(&self, deadline_ns: u64) {
        self.now.fetch_max(deadline_ns, Ordering::SeqCst);
    }

    fn status(&self) -> ClockStatus {
        let (steps, last_step_ns) = self.steps();
        ClockStatus { steps, last_step_ns, ..ClockStatus::free_running("manual", Timescale::Manual) }
    }

    fn steps(&self) -> (u64, i64) {
        (self.steps.load(Ordering::SeqCst), self.last_step.load(Ordering::SeqCst))
    }
}
