//! Durations counted in fixed bins: percentiles of a long run in bounded memory (tick lateness,
//! the spread of the inputs' frames across one tick).

/// Counts of durations in `bins` bins of `bin_ns` each; longer ones are counted past the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Histogram {
    bin_ns: u64,
    counts: Vec<u64>,
    beyond: u64,
    count: u64,
    max_ns: u64,
    last_ns: u64,
}

/// What a histogram says, in milliseconds (percentiles to the upper edge of their bin).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Durations counted.
    pub count: u64,
    /// The latest one.
    pub last_ms: f64,
    /// Half were at most this.
    pub p50_ms: f64,
    /// 95 % were at most this.
    pub p95_ms: f64,
    /// 99 % were at most this.
    pub p99_ms: f64,
    /// The longest.
    pub max_ms: f64,
}

impl Histogram {
    /// `bins` bins of `bin_ns` each.
    pub fn new(bin_ns: u64, bins: usize) -> Self {
        Histogram { bin_ns: bin_ns.max(1), counts: vec![0; bins.max(1)], beyond: 0, count: 0, max_ns: 0, last_ns: 0 }
    }

    /// Counts one duration.
    pub fn record(&mut self, ns: u64) {
        match self.counts.get_mut((ns / self.bin_ns) as usize) {
            Some(c) => *c += 1,
            None => self.beyond += 1,
        }
        self.count += 1;
        self.max_ns = self.max_ns.max(ns);
        self.last_ns = ns;
    }

    /// The duration `q` (0..=1) of the counted ones were at most: the upper edge of its bin,
    /// the longest seen beyond the last bin; 0 when empty.
    pub fn percentile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return ((i as u64 + 1) * self.bin_ns).min(self.max_ns);
            }
        }
        self.max_ns
    }

    /// Durations counted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The summary in milliseconds.
    pub fn summary(&self) -> Summary {
        let ms = |ns: u64| ns as f64 / 1e6;
        Summary {
            count: self.count,
            last_ms: ms(self.last_ns),
            p50_ms: ms(self.percentile_ns(0.50)),
            p95_ms: ms(self.percentile_ns(0.95)),
            p99_ms: ms(self.percentile_ns(0.99)),
            max_ms: ms(self.max_ns),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_bin_edges_and_the_tail_is_the_maximum() {
        let mut h = Histogram::new(1_000, 10);
        for ns in [100, 200, 1_500, 2_500, 50_000] {
            h.record(ns);
        }
        assert_eq!(h.percentile_ns(0.4), 1_000);
        assert_eq!(h.percentile_ns(0.6), 2_000);
        assert_eq!(h.percentile_ns(1.0), 50_000, "beyond the bins: the longest seen");
        let s = h.summary();
        assert_eq!((s.count, s.last_ms, s.max_ms), (5, 0.05, 0.05));
        assert_eq!(Histogram::new(1, 1).summary(), Summary::default());
    }
}
