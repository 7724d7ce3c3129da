//! `streamlib bench pacing`: how close to its deadline a paced loop wakes on this machine. The
//! engine's `FrameTimer` (absolute deadlines, sleeping through the clock), the same with the
//! last 1.5 ms of each sleep spent yielding, and a plain `sleep(period)` loop, one after another, at `fps` for `seconds`: lateness p50/p99/max per tick,
//! missed ticks, and where the plain loop ends up against the schedule (it drifts).

use anyhow::Result;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamlib::scene::Fps;
use streamlib::timing::{Clock, FrameTimer, SystemClock};

#[derive(serde::Serialize)]
struct Row {
    mode: &'static str,
    ticks: usize,
    lateness_ms_p50: f64,
    lateness_ms_p99: f64,
    lateness_ms_max: f64,
    missed_ticks: u64,
    /// Where the last tick fell against the ideal schedule (start + n / fps).
    behind_schedule_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(f64::NAN)
}

fn row(mode: &'static str, mut lateness: Vec<f64>, missed: u64, behind_ms: f64) -> Row {
    lateness.sort_by(f64::total_cmp);
    Row {
        mode,
        ticks: lateness.len(),
        lateness_ms_p50: percentile(&lateness, 0.5),
        lateness_ms_p99: percentile(&lateness, 0.99),
        lateness_ms_max: lateness.last().copied().unwrap_or(f64::NAN),
        missed_ticks: missed,
        behind_schedule_ms: behind_ms,
    }
}

/// The engine's pacing: `FrameTimer::wait_next` on the system clock (`spin`: its last part
/// yielding, `SystemClock::with_spin`).
fn frame_timer(fps: Fps, ticks: u64, spin: Option<Duration>) -> Row {
    let clock = Arc::new(spin.map_or_else(SystemClock::default, SystemClock::with_spin));
    let mut timer = FrameTimer::new(clock.clone(), fps);
    let mut lateness = Vec::with_capacity(ticks as usize);
    let mut last = 0;
    for _ in 0..ticks {
        last = timer.wait_next();
        lateness.push(timer.last_lateness_ns() as f64 / 1e6);
    }
    let behind = clock.now_ns() as f64 - fps.pts_ns(last) as f64;
    let mode = if spin.is_some() { "FrameTimer, last 1.5 ms yielding" } else { "FrameTimer (absolute deadlines)" };
    row(mode, lateness, timer.missed(), behind / 1e6)
}

/// The naive loop: sleep one period after each tick.
fn plain_sleep(fps: Fps, ticks: u64) -> Row {
    let period = Duration::from_nanos(fps.pts_ns(1));
    let start = Instant::now();
    let mut lateness = Vec::with_capacity(ticks as usize);
    for _ in 0..ticks {
        let wanted = Instant::now() + period;
        std::thread::sleep(period);
        lateness.push(wanted.elapsed().as_secs_f64() * 1000.0);
    }
    let behind = start.elapsed().as_secs_f64() * 1e9 - fps.pts_ns(ticks) as f64;
    row("plain sleep(period)", lateness, 0, behind / 1e6)
}

pub fn pacing(fps: u32, seconds: f64, json: Option<&Path>) -> Result<()> {
    let fps = Fps::new(fps, 1);
    let ticks = (seconds * fps.as_f64()).round().max(2.0) as u64;
    println!(
        "pacing: {} fps for {seconds} s ({ticks} ticks), {} CPUs, system monotonic clock",
        fps.as_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let rows = [
        frame_timer(fps, ticks, None),
        frame_timer(fps, ticks, Some(Duration::from_micros(1500))),
        plain_sleep(fps, ticks),
    ];
    println!();
    println!("| loop | ticks | lateness ms p50 | p99 | max | missed ticks | behind schedule at the end (ms) |");
    println!("|---|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {} | {:.1} |",
            r.mode,
            r.ticks,
            r.lateness_ms_p50,
            r.lateness_ms_p99,
            r.lateness_ms_max,
            r.missed_ticks,
            r.behind_schedule_ms
        );
    }
    if let Some(path) = json {
        let doc = serde_json::json!({ "fps": fps.as_f64(), "seconds": seconds, "runs": rows });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}
