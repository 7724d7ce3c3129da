//! Running an engine to sinks: pacing, delivering readbacks to each sink's thread, stop requests,
//! and the numbers a user wants at the end.

use crate::engine::{Engine, StageTimes};
use crate::gpu::GpuError;
use crate::pipeline::{Pipeline, SinkSummary};
use crate::sinks::{SinkError, SinkHandle};
use crate::timing::Pacing;
use std::borrow::BorrowMut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a run goes.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Frames to render; `None` renders until every input has ended.
    pub frames: Option<u64>,
    /// Index of the first frame (its pts is `start / fps`); offline runs only.
    pub start: u64,
    /// Set from another thread (e.g. a Ctrl-C handler) to stop after the current frame.
    pub stop: Option<Arc<AtomicBool>>,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// A GPU operation failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// A sink failed.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// No frame count was given and no input ends by itself.
    #[error("no input of the scene ends by itself (test patterns and looping files run forever): say how many frames to render")]
    Endless,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunStats {
    /// Frames rendered.
    pub frames: u64,
    /// Wall-clock time the run took.
    pub elapsed: Duration,
    /// CPU time spent in each stage, summed over the engine's frames so far.
    pub times: StageTimes,
    /// What each sink wrote and dropped.
    pub sinks: Vec<SinkSummary>,
    /// Ticks skipped because rendering was late (realtime only).
    pub missed_ticks: u64,
    /// Lateness, missed ticks and re-anchorings of the ticks (realtime only).
    pub ticks: crate::pipeline::TickStats,
    /// Input failures over the pipeline's life, counted once per input per frame.
    pub input_errors: u64,
    /// Layer failures over the pipeline's life, counted once per layer per frame.
    pub layer_errors: u64,
}

impl RunStats {
    /// Average frames rendered per second of wall-clock time.
    pub fn fps(&self) -> f64 {
        self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn finite_or_endless(engine: &Engine, frames: Option<u64>) -> Result<Option<u64>, RunError> {
    match frames {
        Some(n) => Ok(Some(n)),
        None if !engine.has_finite_input() => Err(RunError::Endless),
        None => Ok(None),
    }
}

/// Renders frames into `sinks` until the frame count is reached, every input has ended, or a stop
/// is requested; then finishes every sink (trailers written, files closed). `progress` is called
/// after each frame with its index. A convenience over [`Pipeline::run`] for one output.
pub fn run(
    engine: &mut Engine,
    sinks: Vec<SinkHandle>,
    pacing: Pacing,
    options: &RunOptions,
    progress: impl FnMut(u64),
) -> Result<RunStats, RunError> {
    let mut pipeline = Pipeline::new(engine, pacing);
    pipeline.set_output("output", sinks);
    pipeline.run(options, progress)
}

impl<E: BorrowMut<Engine>> Pipeline<E> {
    /// Renders until the frame count is reached, every input has ended, or a stop is requested;
    /// then delivers what is in flight and finishes every output's sinks, even after an error.
    pub fn run(&mut self, options: &RunOptions, mut progress: impl FnMut(u64)) -> Result<RunStats, RunError> {
        let limit = finite_or_endless(self.engine(), options.frames)?;
        let first = self.stats().rendered;
        self.start_at(options.start);
        let start = Instant::now();
        let result: Result<(), RunError> = (|| {
            loop {
                let rendered = self.stats().rendered - first;
                if limit.is_some_and(|n| rendered >= n)
                    || options.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
                {
                    break;
                }
                let index = self.wait_next();
                let report = self.render(index, &[])?;
                if let Some((_, e)) = report.sink_errors.into_iter().next() {
                    return Err(e.into());
                }
                progress(index);
                if limit.is_none() && self.engine().all_inputs_ended() {
                    break;
                }
            }
            if let Some((_, e)) = self.flush(&[])?.sink_errors.into_iter().next() {
                return Err(e.into());
            }
            Ok(())
        })();
        let elapsed = start.elapsed();
        let (sinks, first_sink_error) = self.finish_outputs();
        result?;
        if let Some(e) = first_sink_error {
            return Err(e.into());
        }
        let stats = self.stats();
        Ok(RunStats {
            frames: stats.rendered - first,
            elapsed,
            times: self.engine().times(),
            sinks,
            missed_ticks: self.missed_ticks(),
            ticks: self.tick_stats(),
            input_errors: stats.input_errors,
            layer_errors: stats.layer_errors,
        })
    }
}
