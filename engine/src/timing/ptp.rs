//! A PTP (IEEE 1588) follower clock (feature `ptp`): GStreamer's `GstPtpClock`, an ordinary
//! clock in slave-only mode, whose privileged socket work runs in `gst-ptp-helper` (shipped
//! with `libgstreamer1.0-0`, with the capabilities it needs). The follower computes PTP time
//! from the local clock and its measurements; it never sets or slews the system clock.
//!
//! Its statistics callback gives, per sync, the observation (local monotonic time → PTP time,
//! corrected by the path delay), the mean path delay, the rate, R² and the discontinuity
//! applied. The time this clock reads comes from a line of our own through the last 32
//! observations, fitted again without the outliers (farther than three MADs, and 20 µs, from
//! a first fit): GStreamer's own regression now and then takes in one bad observation (a sync
//! delayed by the scheduler) and runs off by a couple of milliseconds for a second.

use super::{Clock, ClockState, ClockStatus, Timescale};
use gstreamer::prelude::*;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A correction bigger than this is a step (`ClockStatus::steps`), not a servo adjustment.
const STEP_NS: i64 = 1_000_000;

/// Without an update for this long the follower is in holdover.
const HOLDOVER_AFTER: Duration = Duration::from_secs(5);

/// Why a PTP clock cannot be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PtpError {
    /// GStreamer or its PTP support cannot start (no `gst-ptp-helper`, no capabilities).
    #[error("PTP is not available: {0} (GStreamer's gst-ptp-helper comes with libgstreamer1.0-0)")]
    Unavailable(String),
    /// No leader was heard within the time given.
    #[error("no PTP leader in domain {domain} within {seconds} s")]
    NoLeader {
        /// The PTP domain.
        domain: u8,
        /// How long it listened.
        seconds: u64,
    },
}

/// Observations the line is fitted through.
const WINDOW: usize = 32;

/// PTP time as a line through local time: `ptp + slope · (t − local)`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Line {
    local: u64,
    ptp: u64,
    slope: f64,
}

impl Line {
    fn at(&self, local_ns: u64) -> u64 {
        let dt = (i128::from(local_ns) - i128::from(self.local)) as f64;
        (i128::from(self.ptp) + (dt * self.slope) as i128).max(0) as u64
    }
}

/// Least squares through (x, y): (intercept, slope).
fn least_squares(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let (mx, my) = points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (sxx, sxy) =
        points.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + (x - mx) * (x - mx), b + (x - mx) * (y - my)));
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    Some((my - slope * mx, slope))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// The line through `observations` (local, PTP), refitted without outliers; relative to the
/// newest observation so that f64 keeps nanoseconds.
fn fit(observations: &std::collections::VecDeque<(u64, u64)>) -> Option<Line> {
    let &(l0, p0) = observations.back()?;
    if observations.len() < 4 {
        return None;
    }
    let points: Vec<(f64, f64)> = observations
        .iter()
        .map(|&(l, p)| ((i128::from(l) - i128::from(l0)) as f64, (i128::from(p) - i128::from(p0)) as f64))
        .collect();
    let (a, b) = least_squares(&points)?;
    let residuals: Vec<f64> = points.iter().map(|(x, y)| y - (a + b * x)).collect();
    let centre = median(residuals.clone());
    let mad = median(residuals.iter().map(|r| (r - centre).abs()).collect());
    let limit = (3.0 * 1.4826 * mad).max(20_000.0);
    let inliers: Vec<(f64, f64)> =
        points.iter().zip(&residuals).filter(|(_, r)| (*r - centre).abs() <= limit).map(|(p, _)| *p).collect();
    let (a, b) = least_squares(&inliers).unwrap_or((a, b));
    Some(Line { local: l0, ptp: (i128::from(p0) + a as i128).max(0) as u64, slope: b })
}

/// The last update's figures, shared with GStreamer's statistics thread.
#[derive(Debug, Default, Clone)]
struct Figures {
    path_delay_ns: Option<u64>,
    error_ns: Option<u64>,
    rate: Option<f64>,
    r_squared: Option<f64>,
    updated: Option<Instant>,
    synced: bool,
    observations: std::collections::VecDeque<(u64, u64)>,
    line: Option<Line>,
}

/// A follower of the PTP leader of one domain.
pub struct PtpClock {
    clock: gstreamer_net::PtpClock,
    /// The local clock the follower's observations are taken on.
    local: gstreamer::Clock,
    domain: u8,
    figures: Arc<Mutex<Figures>>,
    steps: Arc<AtomicU64>,
    last_step: Arc<AtomicI64>,
}

impl std::fmt::Debug for PtpClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PtpClock").field("domain", &self.domain).finish()
    }
}

/// Starts GStreamer's PTP support once per process, on `interfaces` (all when empty).
fn init(interfaces: &[&str]) -> Result<(), PtpError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        gstreamer::init().map_err(|e| e.to_string())?;
        if !gstreamer_net::PtpClock::is_supported() {
            return Err("this GStreamer has no PTP support".into());
        }
        gstreamer_net::PtpClock::init(None, interfaces).map_err(|e| e.to_string())
    })
    .clone()
    .map_err(PtpError::Unavailable)
}

impl PtpClock {
    /// Follows the leader of `domain`, heard on `interfaces` (all when empty; the first call in
    /// a process decides). Returns at once; `wait_for_lock` waits for the first sync.
    pub fn start(domain: u8, interfaces: &[&str]) -> Result<Self, PtpError> {
        init(interfaces)?;
        let figures: Arc<Mutex<Figures>> = Arc::default();
        let steps = Arc::new(AtomicU64::new(0));
        let last_step = Arc::new(AtomicI64::new(0));
        let (f, s, l) = (figures.clone(), steps.clone(), last_step.clone());
        // The callback lives as long as the process's PTP support: it holds only shared cells.
        let _callback = gstreamer_net::PtpClock::add_statistics_callback(move |from, stats| {
            if from != domain || stats.name() != "GstPtpStatisticsTimeUpdated" {
                return gstreamer::glib::ControlFlow::Continue;
            }
            let mut figures = f.lock().unwrap_or_else(|p| p.into_inner());
            figures.updated = Some(Instant::now());
            figures.synced = stats.get::<bool>("synced").unwrap_or(false);
            figures.path_delay_ns = stats.get::<u64>("mean-path-delay-avg").ok();
            figures.rate = stats.get::<f64>("rate").ok();
            figures.r_squared = stats.get::<f64>("r-squared").ok();
            if let (Ok(lo), Ok(hi)) =
                (stats.get::<u64>("estimated-ptp-time-min"), stats.get::<u64>("estimated-ptp-time-max"))
            {
                figures.error_ns = Some(hi.saturating_sub(lo) / 2);
            }
            if let (Ok(local), Ok(ptp)) = (stats.get::<u64>("local-time"), stats.get::<u64>("ptp-time")) {
                if figures.observations.len() == WINDOW {
                    figures.observations.pop_front();
                }
                figures.observations.push_back((local, ptp));
                let next = fit(&figures.observations);
                // A new line far from the last one where they meet is a step.
                if let (Some(old), Some(new)) = (figures.line, next) {
                    let jump = new.at(local) as i64 - old.at(local) as i64;
                    if jump.abs() > STEP_NS {
                        l.store(jump, Ordering::SeqCst);
                        s.fetch_add(1, Ordering::SeqCst);
                    }
                }
                figures.line = next.or(figures.line);
            }
            gstreamer::glib::ControlFlow::Continue
        });
        let clock = gstreamer_net::PtpClock::new(Some(&format!("streamlib-ptp-{domain}")), u32::from(domain))
            .map_err(|e| PtpError::Unavailable(e.to_string()))?;
        Ok(PtpClock { clock, local: gstreamer::SystemClock::obtain(), domain, figures, steps, last_step })
    }

    /// Waits until the clock has synchronised to a leader, `timeout` at most.
    pub fn wait_for_lock(&self, timeout: Duration) -> Result<(), PtpError> {
        let deadline = Instant::now() + timeout;
        let timeout_ct = gstreamer::ClockTime::from_nseconds(timeout.as_nanos() as u64);
        if self.clock.wait_for_sync(Some(timeout_ct)).is_ok() {
            // And our line through the first observations.
            while Instant::now() < deadline {
                if self.figures.lock().unwrap_or_else(|p| p.into_inner()).line.is_some() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(PtpError::NoLeader { domain: self.domain, seconds: timeout.as_secs() })
    }

    /// The PTP domain followed.
    pub fn domain(&self) -> u8 {
        self.domain
    }

    /// R² of the follower's last regression of PTP against local time (1 is a perfect fit).
    pub fn r_squared(&self) -> Option<f64> {
        self.figures.lock().unwrap_or_else(|p| p.into_inner()).r_squared
    }
}

impl Clock for PtpClock {
    /// PTP time (ns since 1970 on the leader's timescale) from our line through the follower's
    /// observations; GStreamer's own estimate until there are enough; 0 before sync.
    fn now_ns(&self) -> u64 {
        let line = self.figures.lock().unwrap_or_else(|p| p.into_inner()).line;
        match line {
            // GStreamer's system clock (monotonic), which the observations' local times are on.
            Some(line) => line.at(self.local.time().nseconds()),
            None => self.clock.time().nseconds(),
        }
    }

    fn status(&self) -> ClockStatus {
        let f = self.figures.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let state = match (self.clock.is_synced(), f.updated) {
            (true, Some(at)) if at.elapsed() > HOLDOVER_AFTER => ClockState::Holdover,
            (true, _) => ClockState::Locked,
            (false, _) => ClockState::Unlocked,
        };
        let (steps, last_step_ns) = self.steps();
        ClockStatus {
            name: format!("ptp domain {}", self.domain),
            state,
            timescale: Timescale::Tai,
            // GStreamer's follower reports its estimate's bounds, not a servo offset: the
            // offset is within ± the estimated error.
            offset_ns: None,
            path_delay_ns: f.path_delay_ns,
            frequency_ppm: f.line.map(|l| (l.slope - 1.0) * 1e6).or(f.rate.map(|r| (r - 1.0) * 1e6)),
            estimated_error_ns: f.error_ns,
            steps,
            last_step_ns,
        }
    }

    fn steps(&self) -> (u64, i64) {
        (self.steps.load(Ordering::SeqCst), self.last_step.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_ignores_an_outlier_observation() {
        // PTP runs 20 ppm fast against local time, 10 µs of noise; one sync delayed by 2 ms.
        let mut obs = std::collections::VecDeque::new();
        for k in 0..32u64 {
            let local = 1_000_000_000 + k * 125_000_000;
            let noise = ((k * 7919) % 21) as i64 * 1000 - 10_000;
            let delayed = if k == 20 { 2_000_000 } else { 0 };
            let ptp = (5_000_000_000_000 + local as i64 + (local as f64 * 20e-6) as i64 + noise + delayed) as u64;
            obs.push_back((local, ptp));
        }
        let line = fit(&obs).expect("a line");
        assert!((line.slope - 1.000_020).abs() < 2e-6, "slope {}", line.slope);
        let t = 1_000_000_000 + 31 * 125_000_000 + 62_500_000;
        let truth = 5_000_000_000_000 + t + (t as f64 * 20e-6) as u64;
        let error = line.at(t) as i64 - truth as i64;
        assert!(error.abs() < 15_000, "error {error} ns: the delayed sync is not in the line");
        assert_eq!(fit(&obs.iter().take(3).copied().collect()), None, "too few to fit");
    }
}
