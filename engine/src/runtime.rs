//! Running an engine to sinks: pacing, delivering readbacks to each sink's thread, stop requests,
//! and the numbers a user wants at the end.

use crate::engine::{Engine, Readback, StageTimes};
use crate::gpu::GpuError;
use crate::sinks::{SinkError, SinkHandle};
use crate::timing::{FrameTimer, Pacing, SystemClock};
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

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("no input of the scene ends by itself (test patterns and looping files run forever): say how many frames to render")]
    Endless,
}

/// Per-sink outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSummary {
    pub name: String,
    pub written: u64,
    pub dropped: u64,
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct RunStats {
    pub frames: u64,
    pub elapsed: Duration,
    pub times: StageTimes,
    pub sinks: Vec<SinkSummary>,
    pub missed_ticks: u64,
    pub input_errors: u64,
    pub layer_errors: u64,
}

impl RunStats {
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
/// after each frame with its index.
pub fn run(
    engine: &mut Engine,
    sinks: Vec<SinkHandle>,
    pacing: Pacing,
    options: &RunOptions,
    mut progress: impl FnMut(u64),
) -> Result<RunStats, RunError> {
    let limit = finite_or_endless(engine, options.frames)?;
    let output = (engine.scene().width, engine.scene().height);
    let mut formats: Vec<Readback> = Vec::new();
    for sink in &sinks {
        let r = Readback { format: sink.format(), size: sink.size().filter(|&s| s != output) };
        if !formats.contains(&r) {
            formats.push(r);
        }
    }
    let mut timer =
        (pacing == Pacing::Realtime).then(|| FrameTimer::new(Arc::new(SystemClock::default()), engine.scene().fps));
    let start = Instant::now();
    let mut rendered = 0u64;
    let (mut input_errors, mut layer_errors) = (0u64, 0u64);
    let deliver = |frames: Vec<crate::frame::OutputFrame>| -> Result<(), SinkError> {
        for frame in frames {
            let frame = Arc::new(frame);
            for sink in sinks.iter().filter(|s| s.wants(&frame, output)) {
                sink.push(frame.clone())?;
            }
        }
        Ok(())
    };
    let result: Result<(), RunError> = (|| {
        let mut next = options.start;
        loop {
            if limit.is_some_and(|n| rendered >= n) || options.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
            {
                break;
            }
            let index = match &mut timer {
                Some(t) => t.wait_next(),
                None => next,
            };
            let (done, issues) = engine.render(index, &formats)?;
            input_errors += issues.sources.len() as u64;
            layer_errors += issues.layers.len() as u64;
            deliver(done)?;
            rendered += 1;
            next = index + 1;
            progress(index);
            if limit.is_none() && engine.all_inputs_ended() {
                break;
            }
        }
        deliver(engine.flush()?)?;
        Ok(())
    })();
    let elapsed = start.elapsed();
    // Finish every sink even after an error, so files are closed properly.
    let mut summaries = Vec::new();
    let mut first_sink_error = None;
    for sink in sinks {
        let stats = sink.stats().clone();
        let name = sink.name().to_string();
        if let Err(e) = sink.finish() {
            first_sink_error.get_or_insert(e);
        }
        summaries.push(SinkSummary {
            name,
            written: stats.written.load(Ordering::Relaxed),
            dropped: stats.dropped.load(Ordering::Relaxed),
        });
    }
    result?;
    if let Some(e) = first_sink_error {
        return Err(e.into());
    }
    Ok(RunStats {
        frames: rendered,
        elapsed,
        times: engine.times(),
        sinks: summaries,
        missed_ticks: timer.map_or(0, |t| t.missed()),
        input_errors,
        layer_errors,
    })
}
