//! The multi-stream synchronizer: which frame of each input an output tick shows, when inputs
//! run at their own rates, with their own delays, clocks drifting apart and frames missing.
//!
//! Tick `t` shows, of every input, the frame whose pts is nearest `t − L + offset` (`L` the
//! latency budget, `offset` the input's known delay), within half the input's frame period.
//! Inputs run on one timeline (their pts are capture times on the engine's clock), so frames
//! captured together are shown together. Against flapping between repeat and drop when an
//! input's phase sits near half a period (a drifting clock takes minutes to cross it, jittery
//! pts cross it back and forth), the frame after the one last shown keeps its place until the
//! nearest-frame rule has disagreed for `DWELL` ticks in a row, while it lies within three
//! quarters of a period: a slip costs at most `DWELL − 1` ticks a little off, never a flap. A
//! frame a whole period off (the one after a lost frame) is not kept: the tick repeats.
//! Where no frame qualifies the last one is shown again, `max_repeat` times at most, then
//! nothing. A `required` input is waited for (`ready`): offline that makes every tick
//! deterministic; an optional one is never waited for, as a live input must not hold the output.
//!
//! With no latency budget (`InputSync::newest`) a tick shows the newest frame that has arrived,
//! whatever its pts: the lowest latency, no alignment, the same counts.
//!
//! Anchors: GStreamer's aggregator (latency, live/non-live, repeat last buffer), Smelter's queue
//! (required and optional inputs), NDI's frame sync.

use std::collections::VecDeque;

/// How one input joins the output timeline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncPolicy {
    /// Ticks wait for this input (see `InputSync::ready`).
    pub required: bool,
    /// How many ticks in a row the last frame may be shown again.
    pub max_repeat: u32,
    /// The input's known delay: its pts run this much later than capture (ns, signed).
    pub offset_ns: i64,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy { required: false, max_repeat: 30, offset_ns: 0 }
    }
}

/// What a tick shows of one input.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick<T> {
    /// A frame not shown before.
    New(T),
    /// The frame shown at the last tick, again.
    Repeat,
    /// Nothing (no frame yet, or repeated `max_repeat` times).
    Nothing,
}

/// Ticks the nearest-frame rule must disagree in a row before the sequence slips.
pub const DWELL: u32 = 3;

/// Offsets of shown frames from their tick's target, in 1 ms bins: bin k holds offsets in
/// [k − 50, k − 49) ms (the outer bins hold everything beyond).
pub const HISTOGRAM_BINS: usize = 101;

/// What an input's synchronizer counted.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SyncStats {
    /// New frames shown.
    pub shown: u64,
    /// Ticks that showed the last frame again.
    pub repeats: u64,
    /// Frames passed over without being shown.
    pub drops: u64,
    /// Ticks that showed nothing.
    pub missing: u64,
    /// Frames that arrived after the tick that should have shown them.
    pub late: u64,
    /// Frames queued now.
    pub queue: usize,
    /// Frame rate estimated from the pts.
    pub fps: Option<f64>,
    /// The input's rate against the nearest standard rate (24, 25, 30, 50, 60 and their
    /// NTSC variants), parts per million over every frame so far; positive: faster.
    pub drift_ppm: Option<f64>,
    /// How long the latest frame took from capture to arrival (ms): the latency budget must
    /// cover it, or frames come late.
    pub transit_ms: Option<f64>,
    /// Signed offsets (pts − target) of shown frames, 1 ms bins from −50 ms.
    pub offset_histogram_ms: Vec<u64>,
}

impl SyncStats {
    /// A one-line summary for a HUD or a badge over the input: its median offset from the
    /// tick, rate, and what it repeated, dropped and missed.
    pub fn badge(&self) -> String {
        let offset = self.offset_percentile_ms(0.5).map_or("--".into(), |o| format!("{o:+.0} ms"));
        let fps = self.fps.map_or("--".into(), |f| format!("{f:.1} fps"));
        let mut line = format!("{offset} | {fps} | rep {} | drop {}", self.repeats, self.drops);
        if self.missing > 0 {
            line += &format!(" | miss {}", self.missing);
        }
        if self.late > 0 {
            line += &format!(" | late {}", self.late);
        }
        line
    }

    /// The offset (ms) of shown frames from their tick's target that a share `q` (0..=1) of them
    /// were at most: the upper edge of its 1 ms bin (±50 ms at the ends); `None` before any.
    pub fn offset_percentile_ms(&self, q: f64) -> Option<f64> {
        let total: u64 = self.offset_histogram_ms.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        let bin = self.offset_histogram_ms.iter().position(|&c| {
            seen += c;
            seen >= rank
        })?;
        Some(bin as f64 - 49.0)
    }
}

/// One input's queue and choice. Frames are pushed as they arrive (in pts order), ticks pick.
#[derive(Debug)]
pub struct InputSync<T> {
    policy: SyncPolicy,
    queue: VecDeque<(u64, T)>,
    /// The most frames queued; older ones are dropped (counted) beyond it.
    capacity: usize,
    /// Recent pts, for the period estimate.
    recent: VecDeque<u64>,
    /// Used until the input's own period is known.
    default_period_ns: u64,
    /// The pts of the frame shown last, and ticks it has been repeated.
    shown: Option<u64>,
    repeated: u32,
    /// Ticks in a row the successor lay beyond half a period.
    slip_votes: u32,
    /// The shown frame's pts minus its target at the last new pick (ns).
    last_phase: Option<i64>,
    /// The last target picked for (pts shifted by the offset), for counting late frames.
    last_target: Option<u64>,
    ended: bool,
    /// Shows the newest frame at every tick (no latency budget).
    newest: bool,
    /// Time and frames (lost ones included) between the first and latest pts, for the drift.
    span_ns: u64,
    span_frames: u64,
    stats: SyncStats,
}

/// Standard frame rates a measured one is compared with for its drift.
const NOMINAL_RATES: [f64; 16] = [
    5.0,
    10.0,
    12.5,
    15.0,
    20.0,
    24000.0 / 1001.0,
    24.0,
    25.0,
    30000.0 / 1001.0,
    30.0,
    48.0,
    50.0,
    60000.0 / 1001.0,
    60.0,
    100.0,
    120.0,
];

/// Beyond this a rate is not a standard one running off, and no drift is reported.
const MAX_DRIFT_PPM: f64 = 2000.0;

impl<T> InputSync<T> {
    /// A synchronizer that shows the newest frame that has arrived at every tick (no latency
    /// budget), counting as `new` does.
    pub fn newest(policy: SyncPolicy, default_period_ns: u64) -> Self {
        InputSync { newest: true, ..Self::new(policy, default_period_ns) }
    }

    /// Whether it shows the newest frame rather than aligning by pts.
    pub fn is_newest(&self) -> bool {
        self.newest
    }

    /// Holds at most `frames` frames (at least 2); older ones are dropped (counted).
    pub fn set_capacity(&mut self, frames: usize) {
        self.capacity = frames.max(2);
    }

    /// Changes the policy (required, repeats, offset) from the next frame on.
    pub fn set_policy(&mut self, policy: SyncPolicy) {
        self.policy = policy;
    }

    /// A synchronizer for an input under `policy`; `default_period_ns` (the output's frame
    /// period) stands in for the input's until two frames have come.
    pub fn new(policy: SyncPolicy, default_period_ns: u64) -> Self {
        InputSync {
            policy,
            queue: VecDeque::new(),
            capacity: 128,
            recent: VecDeque::with_capacity(17),
            default_period_ns: default_period_ns.max(1),
            shown: None,
            repeated: 0,
            slip_votes: 0,
            last_phase: None,
            last_target: None,
            ended: false,
            newest: false,
            span_ns: 0,
            span_frames: 0,
            stats: SyncStats {
                shown: 0,
                repeats: 0,
                drops: 0,
                missing: 0,
                late: 0,
                queue: 0,
                fps: None,
                drift_ppm: None,
                transit_ms: None,
                offset_histogram_ms: vec![0; HISTOGRAM_BINS],
            },
        }
    }

    /// The input's frame period: the median interval of its recent pts.
    pub fn period_ns(&self) -> u64 {
        let pts: Vec<u64> = self.recent.iter().copied().collect();
        super::estimate_fps(&pts).map_or(self.default_period_ns, |fps| (1e9 / fps) as u64)
    }

    /// A frame arrived. One older than what was already shown, or than the last tick's target
    /// by more than half a period, came too late to be shown: counted and dropped.
    pub fn push(&mut self, pts_ns: u64, frame: T) {
        let pts = self.aligned(pts_ns);
        let half = self.period_ns() / 2;
        // Every frame queued or shown is in `recent` (or older than what was shown).
        let behind = self.shown.is_some_and(|s| pts <= s) || self.recent.back().is_some_and(|&r| pts <= r);
        // Without a budget every frame is older than its tick: only order counts.
        let behind_tick = !self.newest && self.last_target.is_some_and(|t| pts.saturating_add(half) < t);
        if behind || behind_tick {
            self.stats.late += 1;
            return;
        }
        if let Some(&last) = self.recent.back() {
            let period = self.period_ns().max(1);
            let delta = pts - last;
            // A lost frame counts as a frame: the drift is the clock's, not the link's.
            self.span_frames += ((delta + period / 2) / period).max(1);
            self.span_ns += delta;
            if self.span_frames >= 2 {
                let fps = self.span_frames as f64 * 1e9 / self.span_ns as f64;
                let nominal = NOMINAL_RATES.iter().copied().min_by(|a, b| (a - fps).abs().total_cmp(&(b - fps).abs()));
                self.stats.drift_ppm = nominal.map(|n| (fps / n - 1.0) * 1e6).filter(|ppm| ppm.abs() <= MAX_DRIFT_PPM);
            }
        }
        if self.recent.len() == 16 {
            self.recent.pop_front();
        }
        self.recent.push_back(pts);
        if self.queue.len() == self.capacity {
            self.queue.pop_front();
            self.stats.drops += 1;
        }
        self.queue.push_back((pts, frame));
    }

    /// `push`, for a frame that arrived at `arrival_ns` on the same timeline as its pts.
    pub fn push_arrived(&mut self, pts_ns: u64, arrival_ns: u64, frame: T) {
        self.stats.transit_ms = Some(arrival_ns.saturating_sub(pts_ns) as f64 / 1e6);
        self.push(pts_ns, frame);
    }

    /// No more frames will come (a file's end): `ready` holds from now on.
    pub fn end(&mut self) {
        self.ended = true;
    }

    /// The pts on the output's timeline: minus the input's known delay.
    fn aligned(&self, pts_ns: u64) -> u64 {
        pts_ns.saturating_add_signed(-self.policy.offset_ns)
    }

    /// Whether the choice for `target_ns` is final: a frame at or past the end of its window is
    /// queued, or the input ended. A required input's tick waits for this.
    pub fn ready(&self, target_ns: u64) -> bool {
        let half = self.period_ns() / 2;
        self.ended || self.queue.back().is_some_and(|(p, _)| *p >= target_ns.saturating_add(half))
    }

    /// The frame tick `target_ns` (its time minus the latency budget) shows.
    pub fn pick(&mut self, target_ns: u64) -> Pick<T> {
        self.last_target = Some(target_ns);
        let period = self.period_ns();
        if self.newest {
            let last = self.queue.len().checked_sub(1);
            return self.show(last, target_ns, period);
        }
        let half = period / 2;
        let distance = |p: u64| p.abs_diff(target_ns);
        // The successor of the frame shown last keeps its place within half a period, and
        // within three quarters until the nearest-frame rule has disagreed DWELL ticks running;
        // otherwise the nearest frame within half a period.
        let phase = |p: u64| p as i64 - target_ns as i64;
        let successor = self.shown.and(self.queue.front()).map(|(p, _)| (distance(*p), phase(*p)));
        // Only a phase that drifted there dwells: one that jumped (a frame lost before it) is
        // judged at once.
        let drifted = |ph: i64| self.last_phase.is_some_and(|last| ph.abs_diff(last) <= period / 8);
        let keep = match successor {
            Some((d, _)) if d <= half => {
                self.slip_votes = 0;
                true
            }
            Some((d, ph)) if d <= half + period / 4 && drifted(ph) && self.slip_votes + 1 < DWELL => {
                self.slip_votes += 1;
                true
            }
            _ => {
                self.slip_votes = 0;
                false
            }
        };
        let chosen = if keep {
            Some(0)
        } else {
            let nearest = (0..self.queue.len()).min_by_key(|&i| distance(self.queue[i].0));
            nearest.filter(|&i| distance(self.queue[i].0) <= half)
        };
        // Frames before the chosen one, or already in the past, are passed over.
        self.show(chosen, target_ns, period)
    }

    /// Shows queue entry `chosen` (frames before it are passed over), or repeats the last.
    fn show(&mut self, chosen: Option<usize>, target_ns: u64, period: u64) -> Pick<T> {
        let half = period / 2;
        let keep_from =
            chosen.unwrap_or_else(|| self.queue.partition_point(|(p, _)| p.saturating_add(half) < target_ns));
        for _ in 0..keep_from {
            self.queue.pop_front();
            self.stats.drops += 1;
        }
        self.stats.queue = self.queue.len();
        self.stats.fps = (period > 0).then(|| 1e9 / period as f64);
        if chosen.is_some() {
            if let Some((pts, frame)) = self.queue.pop_front() {
                self.shown = Some(pts);
                self.last_phase = Some(pts as i64 - target_ns as i64);
                self.repeated = 0;
                self.stats.shown += 1;
                let bin =
                    ((pts as i128 - target_ns as i128).div_euclid(1_000_000) + 50).clamp(0, HISTOGRAM_BINS as i128 - 1);
                self.stats.offset_histogram_ms[bin as usize] += 1;
                self.stats.queue = self.queue.len();
                return Pick::New(frame);
            }
        }
        if self.shown.is_some() && self.repeated < self.policy.max_repeat {
            self.repeated += 1;
            self.stats.repeats += 1;
            return Pick::Repeat;
        }
        self.stats.missing += 1;
        Pick::Nothing
    }

    /// The pts (on the output's timeline) of the frame shown last.
    pub fn shown_pts(&self) -> Option<u64> {
        self.shown
    }

    /// What it counted so far.
    pub fn stats(&self) -> &SyncStats {
        &self.stats
    }

    /// Its policy.
    pub fn policy(&self) -> SyncPolicy {
        self.policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64*: a seeded, repeatable generator with no dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// Normal, by Box–Muller.
        fn gauss(&mut self, sigma: f64) -> f64 {
            let (u, v) = (self.unit().max(1e-12), self.unit());
            sigma * (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
        }
    }

    struct Camera {
        fps: f64,
        /// The camera's clock against the engine's: pts = capture + skew (compensated by
        /// `offset_ns`).
        skew_ms: f64,
        drift_ppm: f64,
        /// Network and processing time before a frame arrives.
        transit_ms: f64,
    }

    /// One simulated frame: capture time (true, engine clock), pts, arrival, missing.
    struct SimFrame {
        capture_ns: u64,
        pts_ns: u64,
        arrival_ns: u64,
        missing: bool,
    }

    fn frames(cam: &Camera, seconds: f64, rng: &mut Rng) -> Vec<SimFrame> {
        let period = 1e9 / cam.fps * (1.0 + cam.drift_ppm * 1e-6);
        let phase = rng.unit() * period;
        let n = (seconds * 1e9 / period) as u64 + 2;
        (0..n)
            .map(|k| {
                let capture = 1e9 + phase + k as f64 * period;
                let arrival = capture + cam.transit_ms * 1e6 + rng.gauss(2e6).abs();
                SimFrame {
                    capture_ns: capture as u64,
                    pts_ns: (capture + cam.skew_ms * 1e6) as u64,
                    arrival_ns: arrival as u64,
                    missing: rng.unit() < 0.01,
                }
            })
            .collect()
    }

    /// What one run gave: (per input: shown within half a frame / ticks that had such a frame,
    /// repeats, drops, flaps), the worst cross-input spread, and a digest of every choice.
    struct Outcome {
        inputs: Vec<(u64, u64, SyncStats, u64, u64)>,
        worst_spread_ns: u64,
        digest: u64,
    }

    fn simulate(seed: u64) -> Outcome {
        let mut rng = Rng(seed);
        let cameras = [
            Camera { fps: 30.0, skew_ms: 200.0, drift_ppm: 100.0, transit_ms: 40.0 },
            Camera { fps: 30.0, skew_ms: -150.0, drift_ppm: -100.0, transit_ms: 25.0 },
            Camera { fps: 60.0, skew_ms: 50.0, drift_ppm: 60.0, transit_ms: 15.0 },
            Camera { fps: 60.0, skew_ms: -200.0, drift_ppm: -80.0, transit_ms: 55.0 },
        ];
        let seconds = 1200.0;
        let tick = 1e9 / 30.0;
        let latency_ns = 100_000_000u64;
        let feeds: Vec<Vec<SimFrame>> = cameras.iter().map(|c| frames(c, seconds, &mut rng)).collect();
        let mut syncs: Vec<InputSync<u64>> = cameras
            .iter()
            .map(|c| {
                let policy = SyncPolicy { offset_ns: (c.skew_ms * 1e6) as i64, ..SyncPolicy::default() };
                InputSync::new(policy, tick as u64)
            })
            .collect();
        let mut next = vec![0usize; cameras.len()];
        let mut good = vec![(0u64, 0u64); cameras.len()];
        // Flaps: a repeat and a drop (not explained by a missing frame) within 30 ticks.
        let mut last_slip: Vec<Option<(u64, bool)>> = vec![None; cameras.len()];
        let mut flaps = vec![0u64; cameras.len()];
        let mut shown_capture: Vec<Option<u64>> = vec![None; cameras.len()];
        let (mut worst_spread, mut digest) = (0u64, 0xcbf2_9ce4_8422_2325u64);
        // The first tick passes over what arrived before it (the backlog): not counted.
        let mut backlog = vec![0u64; cameras.len()];
        let ticks = ((seconds - 1.0) * 30.0) as u64;
        for n in 30..ticks {
            let t = (1e9 + n as f64 * tick) as u64;
            let target = t - latency_ns;
            let mut offsets = Vec::new();
            for (i, sync) in syncs.iter_mut().enumerate() {
                let feed = &feeds[i];
                while next[i] < feed.len() && feed[next[i]].arrival_ns <= t {
                    let f = &feed[next[i]];
                    if !f.missing {
                        sync.push(f.pts_ns, f.capture_ns);
                    }
                    next[i] += 1;
                }
                // The ideal: a frame that exists, captured within the synchronizer's window (half
                // the input's period, at most half a tick) of the target.
                let window = (1e9 / cameras[i].fps).min(tick) / 2.0;
                let k = feed.partition_point(|f| f.capture_ns < target);
                let ideal = [k.wrapping_sub(1), k]
                    .iter()
                    .filter_map(|&j| feed.get(j))
                    .any(|f| !f.missing && f.capture_ns.abs_diff(target) as f64 <= window);
                let before = sync.stats().clone();
                let pick = sync.pick(target);
                if n == 30 {
                    backlog[i] = sync.stats().drops;
                }
                let capture = match pick {
                    Pick::New(c) => {
                        shown_capture[i] = Some(c);
                        Some(c)
                    }
                    Pick::Repeat => shown_capture[i],
                    Pick::Nothing => None,
                };
                digest = (digest ^ capture.unwrap_or(0)).wrapping_mul(0x100_0000_01b3);
                if ideal {
                    good[i].1 += 1;
                    if matches!(pick, Pick::New(_)) && capture.is_some_and(|c| c.abs_diff(target) as f64 <= tick / 2.0)
                    {
                        good[i].0 += 1;
                    }
                }
                // The spread is that of the frames picked for this tick (a repeat shows an older
                // one on purpose, and is counted as such).
                if let (Pick::New(_), Some(c)) = (&pick, capture) {
                    offsets.push(c as i64 - target as i64);
                }
                // Same-rate inputs: a repeat that no missing frame explains, or a drop.
                if cameras[i].fps == 30.0 {
                    let s = sync.stats();
                    let repeated = s.repeats > before.repeats && ideal;
                    let dropped = s.drops > before.drops;
                    if repeated || dropped {
                        if let Some((at, was_repeat)) = last_slip[i] {
                            if n - at < 30 && was_repeat != repeated {
                                flaps[i] += 1;
                            }
                        }
                        last_slip[i] = Some((n, repeated));
                    }
                }
            }
            if let (Some(lo), Some(hi)) = (offsets.iter().min(), offsets.iter().max()) {
                worst_spread = worst_spread.max((hi - lo) as u64);
            }
        }
        Outcome {
            inputs: (0..cameras.len())
                .map(|i| {
                    let mut stats = syncs[i].stats().clone();
                    stats.drops -= backlog[i];
                    (good[i].0, good[i].1, stats, flaps[i], feeds[i].iter().filter(|f| f.missing).count() as u64)
                })
                .collect(),
            worst_spread_ns: worst_spread,
            digest,
        }
    }

    #[test]
    fn four_drifting_skewed_jittery_inputs_stay_in_sync() {
        let out = simulate(2026);
        let tick_ns = 1e9 / 30.0;
        for (i, (good, chances, stats, flaps, missing)) in out.inputs.iter().enumerate() {
            let share = *good as f64 / *chances as f64;
            println!(
                "input {i}: {good}/{chances} ticks on a frame within half a tick ({:.4} %), shown {}, repeats {}, drops {}, late {}, missing {} (of {missing} lost), flaps {flaps}",
                share * 100.0,
                stats.shown,
                stats.repeats,
                stats.drops,
                stats.late,
                stats.missing
            );
            assert!(share >= 0.999, "input {i}: {share}");
            assert_eq!(*flaps, 0, "input {i} flapped between repeating and dropping");
            assert_eq!(stats.late, 0, "input {i}: the latency budget covers transit and jitter");
        }
        // A camera whose frames come 100 ppm further apart runs 100 ppm slow.
        for (i, drift_ppm) in [100.0f64, -100.0, 60.0, -80.0].into_iter().enumerate() {
            let measured = out.inputs[i].2.drift_ppm.unwrap_or(f64::NAN);
            assert!((measured + drift_ppm).abs() < 2.0, "input {i}: drift {measured:.1} ppm, simulated {drift_ppm}");
        }
        println!("worst cross-input spread {:.1} ms", out.worst_spread_ns as f64 / 1e6);
        assert!((out.worst_spread_ns as f64) <= tick_ns, "spread {} ns", out.worst_spread_ns);
        // Same-rate inputs: over 1200 s, ±100 ppm is 120 ms = 3.6 frames slipped; each lost
        // frame is one repeat more (its tick shows the one before).
        for (i, drift_ppm) in [(0usize, 100.0f64), (1, -100.0)] {
            let (_, _, stats, _, missing) = &out.inputs[i];
            let slip = 1200.0 * drift_ppm.abs() * 1e-6 * 30.0;
            let (repeats, drops) = (stats.repeats as f64, stats.drops as f64);
            if drift_ppm > 0.0 {
                // A slower camera: its frames come further apart, ticks repeat to wait.
                assert!((repeats - *missing as f64 - slip).abs() <= 1.0 + 0.5, "input {i}: repeats {repeats}");
                assert!(drops <= 1.0, "input {i}: drops {drops}");
            } else {
                // A faster camera: a frame is passed over now and then.
                assert!((drops - slip).abs() <= 1.5, "input {i}: drops {drops} against {slip:.1}");
                assert!((repeats - *missing as f64).abs() <= 1.0, "input {i}: repeats {repeats}");
            }
        }
    }

    #[test]
    fn the_simulation_is_repeatable_bit_for_bit() {
        assert_eq!(simulate(7).digest, simulate(7).digest);
        assert_ne!(simulate(7).digest, simulate(8).digest);
    }

    #[test]
    fn a_required_input_is_ready_only_once_its_window_is_closed() {
        let mut sync: InputSync<u32> = InputSync::new(SyncPolicy { required: true, ..Default::default() }, 40);
        sync.push(0, 0);
        sync.push(40, 1);
        assert!(!sync.ready(40), "a frame after 40 + 20 may still come and be nearer");
        sync.push(80, 2);
        assert!(sync.ready(40));
        assert_eq!(sync.pick(0), Pick::New(0));
        assert_eq!(sync.pick(40), Pick::New(1));
        sync.end();
        assert!(sync.ready(1000));
    }

    #[test]
    fn an_input_that_stops_repeats_its_last_frame_then_shows_nothing() {
        let mut sync: InputSync<u32> = InputSync::new(SyncPolicy { max_repeat: 2, ..Default::default() }, 40);
        for k in 0..3 {
            sync.push(k * 40, k as u32);
        }
        assert_eq!(sync.pick(0), Pick::New(0));
        assert_eq!(sync.pick(40), Pick::New(1));
        assert_eq!(sync.pick(80), Pick::New(2));
        assert_eq!(sync.pick(120), Pick::Repeat);
        assert_eq!(sync.pick(160), Pick::Repeat);
        assert_eq!(sync.pick(200), Pick::Nothing);
        assert_eq!((sync.stats().repeats, sync.stats().missing), (2, 1));
        // A frame for a tick already past is late, not shown out of order.
        sync.push(100, 9);
        assert_eq!(sync.stats().late, 1);
    }

    #[test]
    fn without_a_budget_the_newest_frame_is_shown() {
        let mut sync: InputSync<u32> = InputSync::newest(SyncPolicy { max_repeat: 1, ..Default::default() }, 40);
        sync.push_arrived(0, 30, 0);
        sync.push_arrived(40, 70, 1);
        assert_eq!(sync.pick(100), Pick::New(1), "the newest, though 60 ms old");
        assert_eq!((sync.stats().drops, sync.stats().late), (1, 0));
        assert_eq!(sync.stats().transit_ms, Some(30e-6));
        assert_eq!(sync.stats().offset_percentile_ms(0.5), Some(0.0), "60 ns old: the bin [-1, 0) ms");
        assert_eq!(sync.pick(140), Pick::Repeat);
        assert_eq!(sync.pick(180), Pick::Nothing);
        sync.push(80, 2);
        assert_eq!(sync.pick(220), Pick::New(2));
    }
}
