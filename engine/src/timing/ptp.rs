//! A PTP (IEEE 1588) follower clock (feature `ptp`): GStreamer's `GstPtpClock`, an ordinary
//! clock in slave-only mode, whose privileged socket work runs in `gst-ptp-helper` (shipped
//! with `libgstreamer1.0-0`, with the capabilities it needs). The follower computes PTP time
//! from the local clock and its measurements; it never sets or slews the system clock.
//!
//! Its statistics callback gives, per update, the mean path delay, the estimated PTP time's
//! bounds (the error), the rate against the local clock, R² of its regression and the
//! discontinuity applied; `status()` reports them.

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

/// The last update's figures, shared with GStreamer's statistics thread.
#[derive(Debug, Default, Clone)]
struct Figures {
    path_delay_ns: Option<u64>,
    error_ns: Option<u64>,
    rate: Option<f64>,
    r_squared: Option<f64>,
    updated: Option<Instant>,
    synced: bool,
}

/// A follower of the PTP leader of one domain.
pub struct PtpClock {
    clock: gstreamer_net::PtpClock,
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
            if let Ok(jump) = stats.get::<i64>("discontinuity") {
                if jump.abs() > STEP_NS {
                    l.store(jump, Ordering::SeqCst);
                    s.fetch_add(1, Ordering::SeqCst);
                }
            }
            gstreamer::glib::ControlFlow::Continue
        });
        let clock = gstreamer_net::PtpClock::new(Some(&format!("streamlib-ptp-{domain}")), u32::from(domain))
            .map_err(|e| PtpError::Unavailable(e.to_string()))?;
        Ok(PtpClock { clock, domain, figures, steps, last_step })
    }

    /// Waits until the clock has synchronised to a leader, `timeout` at most.
    pub fn wait_for_lock(&self, timeout: Duration) -> Result<(), PtpError> {
        let timeout_ct = gstreamer::ClockTime::from_nseconds(timeout.as_nanos() as u64);
        if self.clock.wait_for_sync(Some(timeout_ct)).is_ok() {
            Ok(())
        } else {
            Err(PtpError::NoLeader { domain: self.domain, seconds: timeout.as_secs() })
        }
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
    /// PTP time (TAI, ns since 1970); 0 until synchronised.
    fn now_ns(&self) -> u64 {
        self.clock.time().nseconds()
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
            frequency_ppm: f.rate.map(|r| (r - 1.0) * 1e6),
            estimated_error_ns: f.error_ns,
            steps,
            last_step_ns,
        }
    }

    fn steps(&self) -> (u64, i64) {
        (self.steps.load(Ordering::SeqCst), self.last_step.load(Ordering::SeqCst))
    }
}
