//! `streamlib ptp`: follows a PTP leader and reports how well: time to lock, then for
//! `--seconds` the follower's PTP time against this machine's system clock (sampled every
//! 100 ms) and the clock's status. Where leader and follower share one kernel clock (network
//! namespaces on one machine, as in the tests) that difference is the follower's error; across
//! machines it is the two clocks' offset plus the error.

use anyhow::{Context, Result};
use clap::Args;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use streamlib::timing::{Clock, PtpClock};

#[derive(Args)]
pub struct PtpArgs {
    /// The PTP domain to follow.
    #[arg(long, default_value_t = 0)]
    domain: u8,
    /// Network interfaces to listen on (all when none are given).
    #[arg(long = "interface")]
    interfaces: Vec<String>,
    /// How long to wait for the first sync.
    #[arg(long, default_value_t = 10.0)]
    lock_timeout: f64,
    /// How long to sample after lock.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// `--ptp-domain` and its companions, for the commands that pace output (`render --realtime`,
/// `preview`, `serve`).
#[derive(Args, Clone, Debug, Default)]
pub struct PacingClockArgs {
    /// Pace output frames on the PTP leader of this domain (waits for lock first); frames fall
    /// on whole frame periods of PTP time (SMPTE ST 2059-1).
    #[arg(long)]
    pub ptp_domain: Option<u8>,
    /// With --ptp-domain: the interfaces to hear PTP on (all when none are given).
    #[arg(long = "ptp-interface")]
    pub ptp_interfaces: Vec<String>,
    /// With --ptp-domain: how long to wait for lock before giving up.
    #[arg(long, default_value_t = 10.0)]
    pub ptp_lock_timeout: f64,
}

impl PacingClockArgs {
    /// The PTP clock asked for, locked; `None` for the system clock.
    pub fn clock(&self) -> Result<Option<std::sync::Arc<dyn Clock>>> {
        let Some(domain) = self.ptp_domain else { return Ok(None) };
        let interfaces: Vec<&str> = self.ptp_interfaces.iter().map(String::as_str).collect();
        let clock = PtpClock::start(domain, &interfaces)?;
        clock.wait_for_lock(
            Duration::try_from_secs_f64(self.ptp_lock_timeout)
                .map_err(|_| anyhow::anyhow!("--ptp-lock-timeout must be a number of seconds"))?,
        )?;
        tracing::info!("pacing on the PTP leader of domain {domain}");
        Ok(Some(std::sync::Arc::new(clock)))
    }
}

fn system_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(f64::NAN)
}

pub fn run(args: PtpArgs) -> Result<()> {
    let interfaces: Vec<&str> = args.interfaces.iter().map(String::as_str).collect();
    let start = Instant::now();
    let clock = PtpClock::start(args.domain, &interfaces)?;
    clock.wait_for_lock(
        Duration::try_from_secs_f64(args.lock_timeout)
            .map_err(|_| anyhow::anyhow!("--lock-timeout must be a number of seconds"))?,
    )?;
    let lock_seconds = start.elapsed().as_secs_f64();
    println!("ptp: domain {} locked in {lock_seconds:.2} s", args.domain);
    // PTP runs on TAI; a leader may or may not add the UTC offset to its system time: the whole
    // seconds between the two timescales are measured once and taken off.
    // A read pre-empted between the two system-clock reads is taken again (the difference would
    // be the scheduler's, not the clock's).
    let raw = |clock: &PtpClock| {
        let mut best = (i128::MAX, 0);
        for _ in 0..5 {
            let before = system_ns();
            let ptp = i128::from(clock.now_ns());
            let after = system_ns();
            if after - before < best.0 {
                best = (after - before, ptp - (before + after) / 2);
            }
            if after - before < 20_000 {
                break;
            }
        }
        best.1
    };
    let timescale_s = (raw(&clock) as f64 / 1e9).round() as i128;
    let mut errors_us = Vec::new();
    let end = Instant::now()
        + Duration::try_from_secs_f64(args.seconds)
            .map_err(|_| anyhow::anyhow!("--seconds must be a number of seconds"))?;
    let mut next = Instant::now();
    while Instant::now() < end {
        errors_us.push((raw(&clock) - timescale_s * 1_000_000_000) as f64 / 1000.0);
        next += Duration::from_millis(100);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    let mut abs: Vec<f64> = errors_us.iter().map(|e| e.abs()).collect();
    abs.sort_by(f64::total_cmp);
    let status = clock.status();
    println!(
        "ptp: {} samples over {} s: |PTP − system − {timescale_s} s| p50 {:.1} µs, p95 {:.1} µs, max {:.1} µs; \
         path delay {:?} ns, estimated error {:?} ns, rate {:?} ppm, R² {:?}, steps {}, state {:?}",
        abs.len(),
        args.seconds,
        percentile(&abs, 0.5),
        percentile(&abs, 0.95),
        abs.last().copied().unwrap_or(f64::NAN),
        status.path_delay_ns,
        status.estimated_error_ns,
        status.frequency_ppm,
        clock.r_squared(),
        status.steps,
        status.state,
    );
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "domain": args.domain,
            "lock_seconds": lock_seconds,
            "timescale_offset_s": timescale_s as i64,
            "samples": abs.len(),
            "error_us_p50": percentile(&abs, 0.5),
            "error_us_p95": percentile(&abs, 0.95),
            "error_us_max": abs.last(),
            "r_squared": clock.r_squared(),
            "status": status,
            "errors_us": errors_us,
        });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?).with_context(|| format!("{}", path.display()))?;
    }
    Ok(())
}
