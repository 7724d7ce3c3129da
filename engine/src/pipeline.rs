//! The one render loop: pace a frame, render it, read back what the outputs want, deliver the
//! frames to their sinks, count what happened. `streamlib render`, `preview` and `serve` all drive
//! a `Pipeline`; they differ only in what they do between frames (present a window, apply HTTP
//! updates). Whatever the next features add per frame (network sinks, audio, sync statistics)
//! goes here once.

use crate::engine::{Engine, EngineError, FrameIssues, Readback};
use crate::frame::OutputFrame;
use crate::gpu::GpuError;
use crate::registry::Registry;
use crate::scene::Scene;
use crate::sinks::{SinkError, SinkHandle};
use crate::timing::{Clock, FrameTimer, Pacing, SystemClock};
use std::borrow::BorrowMut;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one frame did besides reaching the sinks.
#[derive(Debug, Default)]
pub struct FrameReport {
    /// Index of the frame rendered.
    pub index: u64,
    /// Inputs and layers that failed this frame (they were skipped; the rest rendered).
    pub issues: FrameIssues,
    /// Frames read back for the extra readbacks the caller asked for (a snapshot, say), possibly
    /// of earlier frames; the outputs' frames went to their sinks.
    pub extra: Vec<Arc<OutputFrame>>,
    /// Sinks that refused a frame: the output's id and why.
    pub sink_errors: Vec<(String, SinkError)>,
}

/// Counts over the loop's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Frames rendered.
    pub rendered: u64,
    /// Input failures, counted once per input per frame.
    pub input_errors: u64,
    /// Layer failures, counted once per layer per frame.
    pub layer_errors: u64,
    /// Frames a sink refused.
    pub sink_errors: u64,
}

/// Per-sink outcome once a pipeline has finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSummary {
    /// Id of the output the sink belonged to.
    pub output: String,
    /// The sink's name.
    pub name: String,
    /// Frames the sink wrote.
    pub written: u64,
    /// Frames dropped because the sink's queue was full.
    pub dropped: u64,
    /// The sink's own counters (a network output's receivers, drops, resends).
    pub counters: std::collections::BTreeMap<&'static str, u64>,
}

/// What a sink asks to be read back: its format and size, in the engine's output colour space.
fn sink_readback(sink: &SinkHandle) -> Readback {
    Readback { format: sink.format(), size: sink.size(), color_space: None }
}

/// The first frame index at `fps` whose pts is at or after `pts_ns`.
fn first_index_at(fps: crate::scene::Fps, pts_ns: u64) -> u64 {
    let scaled = u128::from(pts_ns) * u128::from(fps.num);
    let per = 1_000_000_000u128 * u128::from(fps.den);
    scaled.div_ceil(per.max(1)) as u64
}

/// An engine (owned, or borrowed for one run), its outputs' sinks and its pacing.
pub struct Pipeline<E: BorrowMut<Engine> = Engine> {
    engine: E,
    outputs: BTreeMap<String, Vec<SinkHandle>>,
    clock: Arc<dyn Clock>,
    /// Realtime pacing only.
    timer: Option<FrameTimer>,
    /// Offline: the next index to render.
    next: u64,
    stats: LoopStats,
    /// How late each realtime tick was taken up (0.05 ms bins up to 20 ms).
    lateness: crate::timing::Histogram,
}

/// How the realtime ticks went.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TickStats {
    /// How late ticks were taken up after their deadline.
    pub lateness: crate::timing::Summary,
    /// Ticks skipped because rendering was late.
    pub missed: u64,
    /// Times the schedule re-anchored after the clock stepped.
    pub reanchors: u64,
}

impl<E: BorrowMut<Engine>> std::fmt::Debug for Pipeline<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("engine", self.engine.borrow())
            .field("outputs", &self.outputs.keys().collect::<Vec<_>>())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<E: BorrowMut<Engine>> Pipeline<E> {
    /// A pipeline paced on the system clock (realtime) or as fast as it renders (offline).
    pub fn new(engine: E, pacing: Pacing) -> Self {
        Self::with_clock(engine, pacing, Arc::new(SystemClock::default()))
    }

    /// As `new`, with realtime pacing on `clock` instead of the system clock. On a clock of
    /// atomic time (PTP) frames fall on whole frame periods of it (SMPTE ST 2059-1), so every
    /// machine following the same leader renders its ticks at the same instants.
    pub fn with_clock(engine: E, pacing: Pacing, clock: Arc<dyn Clock>) -> Self {
        let fps = engine.borrow().scene().fps;
        let timer = (pacing == Pacing::Realtime).then(|| Self::timer(&clock, fps));
        Pipeline {
            engine,
            outputs: BTreeMap::new(),
            clock,
            timer,
            next: 0,
            stats: LoopStats::default(),
            lateness: crate::timing::Histogram::new(50_000, 400),
        }
    }

    fn timer(clock: &Arc<dyn Clock>, fps: crate::scene::Fps) -> FrameTimer {
        match clock.status().timescale {
            crate::timing::Timescale::Tai => FrameTimer::phase_aligned(clock.clone(), fps),
            _ => FrameTimer::new(clock.clone(), fps),
        }
    }

    /// The engine being driven.
    pub fn engine(&self) -> &Engine {
        self.engine.borrow()
    }

    /// The engine being driven, mutably.
    pub fn engine_mut(&mut self) -> &mut Engine {
        self.engine.borrow_mut()
    }

    /// Counts since the pipeline was made.
    pub fn stats(&self) -> LoopStats {
        self.stats
    }

    /// Ticks skipped because rendering was late (realtime only).
    pub fn missed_ticks(&self) -> u64 {
        self.timer.as_ref().map_or(0, FrameTimer::missed)
    }

    /// Lateness, missed ticks and re-anchorings of the realtime ticks.
    pub fn tick_stats(&self) -> TickStats {
        TickStats {
            lateness: self.lateness.summary(),
            missed: self.missed_ticks(),
            reanchors: self.timer.as_ref().map_or(0, FrameTimer::reanchors),
        }
    }

    /// The clock the realtime ticks are paced on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Counts how late tick `index` is taken up.
    fn took_up(&mut self, index: u64) -> u64 {
        if let Some(t) = &self.timer {
            self.lateness.record(self.clock.now_ns().saturating_sub(t.deadline_ns(index)));
        }
        index
    }

    /// Sets the sinks of output `id`, returning the ones it replaces (to be finished).
    pub fn set_output(&mut self, id: &str, sinks: Vec<SinkHandle>) -> Option<Vec<SinkHandle>> {
        self.outputs.insert(id.to_string(), sinks)
    }

    /// Takes output `id` out of the loop; its sinks are the caller's to finish.
    pub fn remove_output(&mut self, id: &str) -> Option<Vec<SinkHandle>> {
        self.outputs.remove(id)
    }

    /// The outputs and their sinks, by id.
    pub fn outputs(&self) -> impl Iterator<Item = (&str, &[SinkHandle])> {
        self.outputs.iter().map(|(id, s)| (id.as_str(), s.as_slice()))
    }

    /// Moves to `next` at this frame boundary (see `Engine::apply_scene`). At a new frame rate
    /// the timeline goes on: the next frame is the first at the new rate whose pts is not
    /// before the one that was coming, due now, so timestamps never go back.
    pub fn apply_scene(&mut self, next: Scene, registry: &Registry) -> Result<(), EngineError> {
        let (old, fps) = (self.engine().scene().fps, next.fps);
        self.engine_mut().apply_scene(next, registry)?;
        if old != fps {
            let coming = match &self.timer {
                Some(t) => t.next_index(),
                None => self.next,
            };
            let index = first_index_at(fps, old.pts_ns(coming));
            match &mut self.timer {
                Some(timer) => {
                    *timer = Self::timer(&self.clock, fps);
                    timer.reset_to(index);
                }
                None => self.next = index,
            }
        }
        Ok(())
    }

    /// Offline: the first index `wait_next` returns (a render starting at frame N).
    pub fn start_at(&mut self, index: u64) {
        match &mut self.timer {
            Some(t) => t.reset_to(index),
            None => self.next = index,
        }
    }

    /// The index of the next frame: waits for its deadline when realtime (late ticks are skipped
    /// and counted), counts on when offline.
    pub fn wait_next(&mut self) -> u64 {
        match &mut self.timer {
            Some(t) => {
                let index = t.wait_next();
                self.took_up(index)
            }
            None => {
                let index = self.next;
                self.next += 1;
                index
            }
        }
    }

    /// For event loops that cannot sleep in `wait_next` (a window): the index due now, if one is
    /// (late ticks skipped and counted). Offline, every call is due.
    pub fn poll_due(&mut self) -> Option<u64> {
        match &mut self.timer {
            Some(t) => {
                let index = t.poll_due()?;
                Some(self.took_up(index))
            }
            None => Some(self.wait_next()),
        }
    }

    /// When the next frame is due (now, offline).
    pub fn next_deadline(&self) -> Instant {
        let wait = self.timer.as_ref().map_or(0, |t| t.deadline_ns(t.next_index()).saturating_sub(self.clock.now_ns()));
        Instant::now() + Duration::from_nanos(wait)
    }

    /// Frame `index` is on screen now (after a pause, a seek or a step): the next one comes a
    /// frame period later.
    pub fn shown(&mut self, index: u64) {
        match &mut self.timer {
            Some(t) => t.reset_after(index),
            None => self.next = index + 1,
        }
    }

    /// Renders frame `index`, reading back what every output's sinks want plus `extra`, and
    /// delivers the finished frames (possibly of earlier frames) to the sinks that want them.
    pub fn render(&mut self, index: u64, extra: &[Readback]) -> Result<FrameReport, GpuError> {
        let mut readbacks: Vec<Readback> = Vec::new();
        for s in self.outputs.values().flatten() {
            let r = sink_readback(s);
            if !readbacks.contains(&r) {
                readbacks.push(r);
            }
        }
        for r in extra {
            if !readbacks.contains(r) {
                readbacks.push(*r);
            }
        }
        // Live inputs show what was captured at the tick's time on the timeline.
        let tick = self.timer.as_ref().map(|t| {
            let due = t.deadline_ns(index);
            let now = self.clock.now_ns();
            crate::timing::timeline::now_ns().saturating_add(due).saturating_sub(now)
        });
        self.engine_mut().set_tick(tick);
        let (done, issues) = self.engine_mut().render(index, &readbacks)?;
        self.stats.rendered += 1;
        self.stats.input_errors += issues.sources.len() as u64;
        self.stats.layer_errors += issues.layers.len() as u64;
        let mut report = FrameReport { index, issues, ..Default::default() };
        self.deliver(done, extra, &mut report);
        Ok(report)
    }

    /// Waits for every readback still in flight and delivers it.
    pub fn flush(&mut self, extra: &[Readback]) -> Result<FrameReport, GpuError> {
        let done = self.engine_mut().flush()?;
        let mut report = FrameReport::default();
        self.deliver(done, extra, &mut report);
        Ok(report)
    }

    fn deliver(&mut self, done: Vec<OutputFrame>, extra: &[Readback], report: &mut FrameReport) {
        let engine = self.engine.borrow();
        let wanted = |r: Readback, frame: &OutputFrame| {
            let r = engine.resolve(r);
            let size = r.size.unwrap_or((engine.scene().width, engine.scene().height));
            r.format == frame.format && size == (frame.width, frame.height) && r.color_space == frame.color_space
        };
        for frame in done {
            let frame = Arc::new(frame);
            for (id, sinks) in &self.outputs {
                for s in sinks.iter().filter(|s| wanted(sink_readback(s), &frame)) {
                    if let Err(e) = s.push(frame.clone()) {
                        self.stats.sink_errors += 1;
                        report.sink_errors.push((id.clone(), e));
                    }
                }
            }
            if extra.iter().any(|&r| wanted(r, &frame)) {
                report.extra.push(frame);
            }
        }
    }

    /// Finishes every sink (trailers written, files closed), even after an error elsewhere, and
    /// returns what each wrote with the first sink error. The outputs are gone afterwards.
    pub fn finish_outputs(&mut self) -> (Vec<SinkSummary>, Option<SinkError>) {
        let mut summaries = Vec::new();
        let mut first_error = None;
        for (output, sinks) in std::mem::take(&mut self.outputs) {
            for sink in sinks {
                let stats = sink.stats().clone();
                let name = sink.name().to_string();
                let counters = sink.counters();
                if let Err(e) = sink.finish() {
                    first_error.get_or_insert(e);
                }
                summaries.push(SinkSummary {
                    output: output.clone(),
                    name,
                    written: stats.written.load(Ordering::Relaxed),
                    dropped: stats.dropped.load(Ordering::Relaxed),
                    counters,
                });
            }
        }
        (summaries, first_error)
    }
}

#[cfg(test)]
mod tests {
    use super::first_index_at;
    use crate::scene::Fps;

    #[test]
    fn a_new_rate_continues_the_timeline_without_going_back() {
        // Frame 60 at 30 fps is 2 s: at 1 fps that is frame 2; at 25 fps frame 50.
        assert_eq!(first_index_at(Fps::new(1, 1), Fps::new(30, 1).pts_ns(60)), 2);
        assert_eq!(first_index_at(Fps::new(25, 1), Fps::new(30, 1).pts_ns(60)), 50);
        // Between frames, the next one at or after it.
        let pts = Fps::new(30, 1).pts_ns(61);
        let index = first_index_at(Fps::new(25, 1), pts);
        assert!(Fps::new(25, 1).pts_ns(index) >= pts && Fps::new(25, 1).pts_ns(index - 1) < pts);
    }
}
