use super::Clock;
use crate::scene::Fps;
use std::sync::Arc;

/// Paces frames on absolute deadlines (start + index / fps), so sleep jitter never accumulates
/// into drift. A frame that is late is not waited for; `missed` counts the ticks skipped. It
/// sleeps through the clock (`Clock::sleep_until`), and when the clock steps by more than a
/// frame (a PTP correction) it re-anchors: the next frame is due at once and the rest follow
/// at the rate, rather than a burst of catch-up frames (a step back) or a run of skipped ticks
/// (a step forward) counted as the caller's lateness.
pub struct FrameTimer {
    clock: Arc<dyn Clock>,
    fps: Fps,
    /// Frame `anchor_index` is due at `anchor_ns` on the clock; later frames follow at the rate.
    /// (An anchor rather than "frame 0 was due at": after a restart at frame N the time frame 0
    /// would have been due can lie before the clock's own start.)
    anchor_ns: u64,
    anchor_index: u64,
    next_index: u64,
    missed: u64,
    /// The clock's step count last seen.
    steps_seen: u64,
    /// Re-anchorings after clock steps.
    reanchors: u64,
    /// How late the last frame returned by `wait_next` woke, ns.
    last_lateness_ns: u64,
    /// Frames fall on whole frame periods of the clock's time (SMPTE ST 2059-1's phase).
    phase_aligned: bool,
}

impl std::fmt::Debug for FrameTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameTimer")
            .field("fps", &self.fps)
            .field("next_index", &self.next_index)
            .field("missed", &self.missed)
            .finish()
    }
}

impl FrameTimer {
    /// A timer whose frame 0 is due now on `clock`, at `fps`.
    pub fn new(clock: Arc<dyn Clock>, fps: Fps) -> Self {
        let anchor_ns = clock.now_ns();
        let steps_seen = clock.steps().0;
        FrameTimer {
            clock,
            fps,
            anchor_ns,
            anchor_index: 0,
            next_index: 0,
            missed: 0,
            steps_seen,
            reanchors: 0,
            last_lateness_ns: 0,
            phase_aligned: false,
        }
    }

    /// A timer whose frames fall on whole frame periods of the clock's time: frame 0 is due at
    /// the first `k · period` after now (SMPTE ST 2059-1's alignment point at the clock's epoch),
    /// and so are the frames after a re-anchoring. Two machines following one PTP leader then
    /// render their ticks at the same instants (genlock over the network).
    pub fn phase_aligned(clock: Arc<dyn Clock>, fps: Fps) -> Self {
        let mut timer = Self::new(clock, fps);
        timer.phase_aligned = true;
        timer.anchor_ns = timer.anchor_at(timer.clock.now_ns());
        timer
    }

    /// Whether frames fall on whole frame periods of the clock's time.
    pub fn is_phase_aligned(&self) -> bool {
        self.phase_aligned
    }

    /// Where a schedule starting at `now` anchors: now, or the next frame boundary.
    fn anchor_at(&self, now: u64) -> u64 {
        if !self.phase_aligned {
            return now;
        }
        // k = ceil(now · num / (den · 1e9)); boundary = k · den · 1e9 / num, in integers.
        let (num, den) = (u128::from(self.fps.num.max(1)), u128::from(self.fps.den.max(1)));
        let k = (u128::from(now) * num).div_ceil(den * 1_000_000_000);
        (k * den * 1_000_000_000).div_ceil(num).min(u128::from(u64::MAX)) as u64
    }

    /// After the clock stepped by more than a frame: the next frame is due now.
    fn follow_steps(&mut self) {
        let (steps, last) = self.clock.steps();
        if steps == self.steps_seen {
            return;
        }
        self.steps_seen = steps;
        let period = self.fps.pts_ns(1);
        if last.unsigned_abs() > period {
            self.anchor_ns = self.anchor_at(self.clock.now_ns());
            self.anchor_index = self.next_index;
            self.reanchors += 1;
        }
    }

    /// The deadline of frame `index`, on the clock (the anchor's for frames before it).
    pub fn deadline_ns(&self, index: u64) -> u64 {
        let since = self.fps.pts_ns(index).saturating_sub(self.fps.pts_ns(self.anchor_index));
        self.anchor_ns + since
    }

    /// Sleeps until the next frame is due and returns its index. When the caller has fallen more
    /// than a frame behind, the late ticks are skipped (and counted) instead of rendered in a burst.
    pub fn wait_next(&mut self) -> u64 {
        self.follow_steps();
        let now = self.clock.now_ns();
        let due_index = self.fps_index_at(now);
        if due_index > self.next_index {
            self.missed += due_index - self.next_index;
            self.next_index = due_index;
        }
        let deadline = self.deadline_ns(self.next_index);
        if deadline > now {
            self.clock.sleep_until(deadline);
        }
        self.last_lateness_ns = self.clock.now_ns().saturating_sub(deadline);
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    /// Without sleeping: the next frame's index when it is due now (late ticks skipped and
    /// counted as in `wait_next`), else `None`. For event loops that wait on their own.
    pub fn poll_due(&mut self) -> Option<u64> {
        self.follow_steps();
        let now = self.clock.now_ns();
        if self.deadline_ns(self.next_index) > now {
            return None;
        }
        let due_index = self.fps_index_at(now);
        if due_index > self.next_index {
            self.missed += due_index - self.next_index;
            self.next_index = due_index;
        }
        let index = self.next_index;
        self.next_index += 1;
        Some(index)
    }

    /// The index `wait_next` or `poll_due` returns next.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// The index of the frame whose slot contains time `t_ns`.
    fn fps_index_at(&self, t_ns: u64) -> u64 {
        let elapsed = u128::from(t_ns.saturating_sub(self.anchor_ns)) + u128::from(self.fps.pts_ns(self.anchor_index));
        let index = elapsed * u128::from(self.fps.num) / (1_000_000_000u128 * u128::from(self.fps.den));
        (index as u64).max(self.anchor_index)
    }

    /// The frame rate the timer paces at.
    pub fn fps(&self) -> Fps {
        self.fps
    }

    /// Ticks skipped because the caller was late.
    pub fn missed(&self) -> u64 {
        self.missed
    }

    /// Times the schedule re-anchored after the clock stepped by more than a frame.
    pub fn reanchors(&self) -> u64 {
        self.reanchors
    }

    /// How late (ns) the frame `wait_next` last returned woke after its deadline.
    pub fn last_lateness_ns(&self) -> u64 {
        self.last_lateness_ns
    }

    /// Restarts the schedule so that frame `index` was due now and `index + 1` comes next.
    pub fn reset_after(&mut self, index: u64) {
        self.reset_to(index);
        self.next_index = index + 1;
    }

    /// Restarts the schedule so that frame `index` is due now.
    pub fn reset_to(&mut self, index: u64) {
        self.anchor_ns = self.anchor_at(self.clock.now_ns());
        self.anchor_index = index;
        self.next_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::super::ManualClock;
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[derive(Debug)]
    struct FakeClock(AtomicU64);
    impl Clock for FakeClock {
        fn now_ns(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
        fn status(&self) -> super::super::ClockStatus {
            super::super::ClockStatus::free_running("fake", super::super::Timescale::Manual)
        }
    }

    #[test]
    fn deadlines_are_absolute() {
        let clock = Arc::new(FakeClock(AtomicU64::new(1_000)));
        let timer = FrameTimer::new(clock, Fps::new(30000, 1001));
        // 1000 frames later the deadline is exactly start + 1000 * 1001/30000 s.
        assert_eq!(timer.deadline_ns(1000), 1_000 + 33_366_666_666);
    }

    #[test]
    fn late_ticks_are_skipped_and_counted() {
        let clock = Arc::new(FakeClock(AtomicU64::new(0)));
        let mut timer = FrameTimer::new(clock.clone(), Fps::new(10, 1));
        assert_eq!(timer.wait_next(), 0);
        // Jump 350 ms ahead: frames 1 and 2 are missed, frame 3 is due.
        clock.0.store(350_000_000, Ordering::SeqCst);
        assert_eq!(timer.wait_next(), 3);
        assert_eq!(timer.missed(), 2);
    }

    #[test]
    fn restarting_at_a_late_frame_is_due_now_however_young_the_clock() {
        // Frame 2000 at 1 fps has pts 2000 s; the clock is 5 s old. It used to be due in 1995 s.
        let clock = Arc::new(FakeClock(AtomicU64::new(5_000_000_000)));
        let mut timer = FrameTimer::new(clock.clone(), Fps::new(1, 1));
        timer.reset_to(2000);
        assert_eq!(timer.poll_due(), Some(2000));
        assert_eq!(timer.deadline_ns(2001), 6_000_000_000);
        clock.0.store(6_000_000_000, Ordering::SeqCst);
        assert_eq!(timer.wait_next(), 2001);
        assert_eq!(timer.missed(), 0);
    }

    #[test]
    fn on_a_stepped_clock_lateness_is_zero_and_missed_ticks_exact() {
        let clock = Arc::new(ManualClock::new(0));
        let mut timer = FrameTimer::new(clock.clone(), Fps::new(50, 1));
        for i in 0..100 {
            assert_eq!(timer.wait_next(), i);
            assert_eq!(timer.last_lateness_ns(), 0, "frame {i} woke exactly on its deadline");
            assert_eq!(clock.now_ns(), i * 20_000_000);
        }
        // The caller takes 70 ms over frame 99: frames 100–102 are due by then; 100 and 101 are
        // skipped, 102 is rendered (late by 10 ms).
        clock.advance(70_000_000);
        assert_eq!(timer.wait_next(), 102);
        assert_eq!(timer.missed(), 2);
        assert_eq!(timer.last_lateness_ns(), 10_000_000);
        assert_eq!(timer.wait_next(), 103);
        assert_eq!((timer.missed(), timer.last_lateness_ns()), (2, 0));
    }

    #[test]
    fn a_clock_step_of_a_second_re_anchors_instead_of_skipping_or_bursting() {
        let clock = Arc::new(ManualClock::new(5_000_000_000));
        let mut timer = FrameTimer::new(clock.clone(), Fps::new(25, 1));
        for i in 0..10 {
            assert_eq!(timer.wait_next(), i);
        }
        // +1 s: without re-anchoring 25 ticks would be "missed".
        clock.step(1_000_000_000);
        let after = clock.now_ns();
        assert_eq!(timer.wait_next(), 10);
        assert_eq!((timer.missed(), timer.reanchors()), (0, 1));
        assert_eq!(clock.now_ns(), after, "frame 10 is due at once");
        assert_eq!(timer.wait_next(), 11);
        assert_eq!(clock.now_ns(), after + 40_000_000, "then at the rate");
        // −1 s: without re-anchoring frame 12 would wait a second (then the rest burst).
        clock.step(-1_000_000_000);
        let after = clock.now_ns();
        assert_eq!(timer.wait_next(), 12);
        assert_eq!(clock.now_ns(), after);
        assert_eq!((timer.missed(), timer.reanchors()), (0, 2));
        // A step smaller than a frame keeps the schedule.
        clock.step(5_000_000);
        assert_eq!(timer.wait_next(), 13);
        assert_eq!(timer.reanchors(), 2);
        assert_eq!(clock.now_ns(), after + 40_000_000);
    }

    #[test]
    fn real_clock_pacing_does_not_drift() {
        let clock = Arc::new(super::super::SystemClock::default());
        let mut timer = FrameTimer::new(clock.clone(), Fps::new(200, 1));
        for _ in 0..20 {
            timer.wait_next();
        }
        // 20 frames at 200 fps: the 20th tick is due at 95 ms; we must not be early.
        assert!(clock.now_ns() >= 95_000_000);
    }

    #[test]
    fn phase_aligned_frames_fall_on_whole_periods_of_the_clock() {
        // 1.000000123 s at 30 fps: the next boundary is frame 31 of the clock's epoch.
        let clock = Arc::new(ManualClock::new(1_000_000_123));
        let mut timer = FrameTimer::phase_aligned(clock.clone(), Fps::new(30, 1));
        assert_eq!(timer.wait_next(), 0);
        assert_eq!(clock.now_ns(), 1_033_333_334, "31 / 30 s, rounded up to a whole ns");
        assert_eq!(timer.wait_next(), 1);
        assert_eq!(clock.now_ns(), 1_066_666_667);
        // A step of a second re-anchors on a boundary again, whatever the step's phase.
        clock.step(1_000_000_500);
        timer.wait_next();
        let period_ns = 1e9 / 30.0;
        let phase = clock.now_ns() as f64 % period_ns;
        assert!(phase < 1.0 || period_ns - phase < 1.0, "phase {phase} ns");
        // NTSC rates too: 30000/1001 from 0 is due at 0.
        let mut ntsc = FrameTimer::phase_aligned(Arc::new(ManualClock::new(0)), Fps::new(30000, 1001));
        assert_eq!((ntsc.wait_next(), ntsc.deadline_ns(1)), (0, 33_366_666));
    }
}
