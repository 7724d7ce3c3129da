//! Choosing which input frame is shown at each output tick, and small timestamp utilities.

/// What pulling from an input yielded.
#[derive(Debug, PartialEq, Eq)]
pub enum Pull<T> {
    Frame(T),
    /// Nothing available right now (realtime pulls do not wait).
    Empty,
    /// The input has ended; no more frames will come.
    Ended,
}

/// Sample-and-hold frame selection for one input: at output time `t`, show the newest frame whose
/// pts is at most `t + max_offset`, keeping the first later frame pending for a later tick.
#[derive(Debug)]
pub struct FrameSelector<T> {
    pending: Option<T>,
    ended: bool,
    max_offset_ns: u64,
}

impl<T> FrameSelector<T> {
    pub fn new(max_offset_ns: u64) -> Self {
        FrameSelector { pending: None, ended: false, max_offset_ns }
    }

    pub fn is_ended(&self) -> bool {
        self.ended && self.pending.is_none()
    }

    /// Forgets the pending frame and the end, e.g. after the input seeked.
    pub fn reset(&mut self) {
        self.pending = None;
        self.ended = false;
    }

    /// Returns the frame to show at `target_ns` if it differs from the last one returned.
    pub fn select(&mut self, target_ns: u64, pts: impl Fn(&T) -> u64, mut pull: impl FnMut() -> Pull<T>) -> Option<T> {
        let limit = target_ns.saturating_add(self.max_offset_ns);
        let mut chosen = None;
        loop {
            if self.pending.is_none() {
                if self.ended {
                    break;
                }
                match pull() {
                    Pull::Frame(f) => self.pending = Some(f),
                    Pull::Empty => break,
                    Pull::Ended => {
                        self.ended = true;
                        break;
                    }
                }
            }
            match self.pending.take() {
                Some(f) if pts(&f) <= limit => chosen = Some(f),
                later => {
                    self.pending = later;
                    break;
                }
            }
        }
        chosen
    }
}

/// Frames per second estimated from timestamps (ns): the median interval, robust to jitter and
/// to a few dropped frames. `None` with fewer than two distinct timestamps.
#[allow(dead_code)] // kept, tested, for the multi-stream synchronizer to come
pub fn estimate_fps(timestamps_ns: &[u64]) -> Option<f64> {
    let mut deltas: Vec<u64> = timestamps_ns.windows(2).filter(|w| w[1] > w[0]).map(|w| w[1] - w[0]).collect();
    if deltas.is_empty() {
        return None;
    }
    deltas.sort_unstable();
    let median = deltas[deltas.len() / 2];
    Some(1e9 / median as f64)
}

/// For each timestamp in `reference`, the index of the nearest timestamp in `other` when it lies
/// within `max_offset_ns`. Both lists must be sorted ascending.
#[allow(dead_code)] // kept, tested, for the multi-stream synchronizer to come
pub fn align_timestamps(reference: &[u64], other: &[u64], max_offset_ns: u64) -> Vec<Option<usize>> {
    let mut j = 0usize;
    reference
        .iter()
        .map(|&t| {
            while j + 1 < other.len() && other[j + 1] <= t {
                j += 1;
            }
            let candidates = [j, j + 1];
            candidates
                .iter()
                .filter(|&&k| k < other.len())
                .map(|&k| (k, other[k].abs_diff(t)))
                .min_by_key(|&(_, d)| d)
                .filter(|&(_, d)| d <= max_offset_ns)
                .map(|(k, _)| k)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    fn feed(frames: &[u64], end: bool) -> impl FnMut() -> Pull<u64> {
        let mut q: VecDeque<u64> = frames.iter().copied().collect();
        move || match q.pop_front() {
            Some(f) => Pull::Frame(f),
            None if end => Pull::Ended,
            None => Pull::Empty,
        }
    }

    #[test]
    fn holds_the_newest_frame_not_after_the_tick() {
        let mut sel = FrameSelector::new(0);
        let mut pull = feed(&[0, 40, 80, 120], true);
        assert_eq!(sel.select(0, |&p| p, &mut pull), Some(0));
        assert_eq!(sel.select(33, |&p| p, &mut pull), None, "frame 40 is still in the future");
        assert_eq!(sel.select(66, |&p| p, &mut pull), Some(40));
        assert_eq!(sel.select(200, |&p| p, &mut pull), Some(120), "late ticks skip to the newest");
        assert!(sel.is_ended());
    }

    #[test]
    fn max_offset_admits_slightly_early_frames() {
        let mut sel = FrameSelector::new(5);
        let mut pull = feed(&[0, 34], false);
        sel.select(0, |&p| p, &mut pull);
        assert_eq!(sel.select(33, |&p| p, &mut pull), Some(34));
        assert!(!sel.is_ended());
    }

    #[test]
    fn estimates_fps_from_jittery_timestamps() {
        let ts: Vec<u64> = (0..30).map(|i| i * 33_333_333 + (i % 3) * 100_000).collect();
        let fps = estimate_fps(&ts).unwrap_or(0.0);
        assert!((fps - 30.0).abs() < 0.2, "{fps}");
        assert_eq!(estimate_fps(&[5]), None);
    }

    #[test]
    fn aligns_to_nearest_within_offset() {
        let a = [0, 40, 80, 120];
        let b = [1, 38, 100, 300];
        assert_eq!(align_timestamps(&a, &b, 10), vec![Some(0), Some(1), None, None]);
        assert_eq!(align_timestamps(&a, &b, 25), vec![Some(0), Some(1), Some(2), Some(2)]);
    }
}
