//! A CPU source on its own thread: the producer decodes frames into a bounded channel; the render
//! thread picks the frame for each output tick, uploads its planes and converts them on the GPU.
//!
//! The input has its own timeline (the producer's pts). It is mapped onto the output timeline by
//! an offset that seeking and pausing move, so an input can be paused or seeked while the rest of
//! the scene keeps running.

use super::{Source, SourceContext, SourceError};
use crate::frame::TimestampedFrame;
use crate::gpu::convert::{FrameUploader, YuvColorSpace};
use crate::layers::InputView;
use crate::timing::{FrameSelector, InputSync, Pacing, Pick, Pull, SyncPolicy, SyncStats};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Decoded frames, one at a time, on the producer thread.
pub trait FrameProducer: Send + 'static {
    /// The next frame; `Ok(None)` at the end of the stream.
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError>;
    /// Whether the stream ends by itself (`next_frame` eventually returns `Ok(None)`).
    fn is_finite(&self) -> bool {
        true
    }
    /// Whether `seek` can work.
    fn is_seekable(&self) -> bool {
        false
    }
    /// A live input (camera, screen): frames come at their own pace, and even an offline render
    /// shows the newest one rather than waiting for a particular timestamp.
    fn is_live(&self) -> bool {
        false
    }
    /// Moves to `position_ns` of the input's timeline; the next frame is the one shown there.
    fn seek(&mut self, _position_ns: u64) -> Result<(), SourceError> {
        Err(SourceError::Unsupported("this input cannot seek".into()))
    }
    /// Counters the producer keeps while it runs on its thread (a network link's).
    fn counters(&self) -> Option<Arc<dyn crate::counters::Counters>> {
        None
    }
}

/// A live input counts as holding once no new frame came for this long.
const HOLDING_AFTER: Duration = Duration::from_millis(250);

/// From the producer thread; the first `u64` is the seek generation the message belongs to, a
/// frame's second when it arrived on the timeline.
enum Message {
    Frame(u64, TimestampedFrame, u64),
    Error(u64, SourceError),
    End(u64),
}

enum Control {
    Seek { generation: u64, position_ns: u64 },
}

/// How long an offline render waits for a live input's first frame before rendering without it.
const LIVE_FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Frames decoded ahead of the renderer: enough to ride out jitter, small enough to bound memory.
const CHANNEL_DEPTH: usize = 4;

/// A source fed by a `FrameProducer` on its own thread; frames are uploaded and converted on the GPU.
pub struct ThreadedSource {
    id: String,
    rx: Receiver<Message>,
    control: Option<Sender<Control>>,
    selector: FrameSelector<TimestampedFrame>,
    uploader: FrameUploader,
    color_space: YuvColorSpace,
    size: Option<(u32, u32)>,
    finite: bool,
    seekable: bool,
    live: bool,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    last_error: Option<SourceError>,
    /// Frames of older generations (before the last seek) are discarded.
    generation: u64,
    /// Input pts = output pts + offset.
    offset_ns: i128,
    position_ns: Option<u64>,
    pause_requested: bool,
    /// Output pts at which the pause took effect.
    paused_at: Option<u64>,
    /// Input position the next update shows (set by `seek`).
    seek_anchor: Option<u64>,
    /// End (pts + duration) of the frame shown, and where the next output tick falls (plus
    /// half a tick, absorbing rounding), both in the input's timeline: an input that ended is
    /// over once its last frame has been shown for its whole duration.
    shown_until: u64,
    next_tick: u64,
    /// What the frame shown carries.
    metadata: crate::metadata::FrameMetadata,
    /// A live input shows its last frame this long after frames stop, then nothing.
    hold: Option<Duration>,
    last_new_frame: Option<std::time::Instant>,
    counters: Option<Arc<dyn crate::counters::Counters>>,
    /// A live input in a realtime render: which frame each tick shows (by capture time).
    sync: Option<InputSync<TimestampedFrame>>,
    policy: SyncPolicy,
    /// The synchronizer had nothing to show (no frame yet, or repeated enough).
    blank: bool,
}

/// A live input's policy until the scene sets one: never waited for, held for ever.
const LIVE_POLICY: SyncPolicy = SyncPolicy { required: false, max_repeat: u32::MAX, offset_ns: 0 };

impl std::fmt::Debug for ThreadedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedSource").field("id", &self.id).field("size", &self.size).finish()
    }
}

fn producer_loop(
    mut producer: impl FrameProducer,
    tx: Sender<Message>,
    control: Receiver<Control>,
    stop: Arc<AtomicBool>,
) {
    let mut generation = 0u64;
    let mut at_end = false;
    let live = producer.is_live();
    while !stop.load(Ordering::Relaxed) {
        // At the end (or after an error) wait for a seek rather than spinning; otherwise only peek.
        let command = if at_end {
            match control.recv_timeout(Duration::from_millis(100)) {
                Ok(c) => Some(c),
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        } else {
            control.try_recv().ok()
        };
        if let Some(Control::Seek { generation: g, position_ns }) = command {
            generation = g;
            at_end = false;
            if let Err(e) = producer.seek(position_ns) {
                at_end = true;
                if tx.send(Message::Error(generation, e)).is_err() {
                    break;
                }
            }
            continue;
        }
        let message = match producer.next_frame() {
            Err(SourceError::NotYet) => continue,
            Ok(Some(mut frame)) => {
                let arrival = crate::timing::timeline::now_ns();
                // A live input that cannot say when it captured a frame: when it arrived.
                if live {
                    frame.captured_ns.get_or_insert(arrival);
                }
                Message::Frame(generation, frame, arrival)
            }
            Ok(None) => Message::End(generation),
            Err(e) => Message::Error(generation, e),
        };
        at_end = !matches!(message, Message::Frame(..));
        // A closed channel means the engine dropped this input: stop quietly.
        if tx.send(message).is_err() {
            break;
        }
    }
}

impl ThreadedSource {
    /// Starts `producer` on a thread named after the input.
    pub fn spawn(
        id: &str,
        producer: impl FrameProducer,
        color_space: YuvColorSpace,
        max_offset_ns: u64,
    ) -> Result<Self, SourceError> {
        let (finite, seekable, live) = (producer.is_finite(), producer.is_seekable(), producer.is_live());
        let counters = producer.counters();
        let (tx, rx) = bounded(CHANNEL_DEPTH);
        let (control_tx, control_rx) = bounded(8);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("streamlib source {id}"))
            .spawn(move || producer_loop(producer, tx, control_rx, stop_flag))
            .map_err(|e| SourceError::Open { path: id.to_string(), message: format!("cannot start thread: {e}") })?;
        Ok(ThreadedSource {
            id: id.to_string(),
            rx,
            control: Some(control_tx),
            selector: FrameSelector::new(max_offset_ns),
            uploader: FrameUploader::new(id),
            color_space,
            size: None,
            finite,
            seekable,
            live,
            stop,
            thread: Some(thread),
            last_error: None,
            generation: 0,
            offset_ns: 0,
            position_ns: None,
            pause_requested: false,
            paused_at: None,
            seek_anchor: None,
            shown_until: 0,
            next_tick: 0,
            metadata: Default::default(),
            hold: None,
            last_new_frame: None,
            counters,
            sync: None,
            policy: LIVE_POLICY,
            blank: false,
        })
    }

    /// Shows nothing once no new frame has come for `hold` (a network input whose sender
    /// stopped), instead of the last frame for ever.
    pub fn with_hold(mut self, hold: Duration) -> Self {
        self.hold = Some(hold);
        self
    }

    /// False once frames stopped for longer than the hold.
    fn is_fresh(&self) -> bool {
        match (self.hold, self.last_new_frame) {
            (Some(hold), Some(t)) => t.elapsed() <= hold,
            _ => true,
        }
    }

    /// The last error the producer reported, if any.
    pub fn last_error(&self) -> Option<&SourceError> {
        self.last_error.as_ref()
    }

    /// Uploads `frame` as the one shown.
    fn show(&mut self, ctx: &mut SourceContext<'_>, frame: TimestampedFrame) -> Result<(), SourceError> {
        let color_space = frame.color_space.unwrap_or(self.color_space);
        self.uploader
            .upload(ctx.gpu, &ctx.pipelines.input, &frame, color_space, ctx.encoder)
            .map_err(|e| SourceError::Decode(format!("input {}: frame {}: {e}", self.id, frame.time.index)))?;
        self.size = Some((frame.width, frame.height));
        self.position_ns = Some(frame.time.pts_ns);
        self.shown_until = frame.time.pts_ns.saturating_add(frame.time.duration_ns);
        self.metadata = frame.meta;
        self.last_new_frame = Some(std::time::Instant::now());
        Ok(())
    }

    /// A live input in a realtime render: every frame that arrived joins the synchronizer,
    /// which picks the one captured nearest the tick less the latency budget (or the newest
    /// without a budget). A required input is waited for, half an output frame at most.
    fn update_live(&mut self, ctx: &mut SourceContext<'_>, tick_ns: u64) -> Result<(), SourceError> {
        // A paused input holds its frame (what arrives meanwhile waits in the bounded channel).
        if self.pause_requested {
            return Ok(());
        }
        let period = ctx.frame.time.duration_ns.max(1);
        let budget = ctx.latency_ns;
        // A scene update between newest and aligned starts the synchronizer afresh.
        if self.sync.as_ref().is_some_and(|s| s.is_newest() != budget.is_none()) {
            self.sync = None;
        }
        let policy = self.policy;
        let sync = self.sync.get_or_insert_with(|| match budget {
            None => InputSync::newest(policy, period),
            Some(_) => InputSync::new(policy, period),
        });
        sync.set_policy(policy);
        let target = tick_ns.saturating_sub(budget.unwrap_or(0));
        // One deadline for every required input of the tick (half a frame past it), so their
        // waits never add up.
        let wait_until = (policy.required && budget.is_some())
            .then(|| crate::timing::timeline::epoch() + Duration::from_nanos(tick_ns.saturating_add(period / 2)));
        let mut error = None;
        loop {
            let message = match self.rx.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => match wait_until {
                    Some(deadline) if !sync.ready(target) && error.is_none() => match self.rx.recv_deadline(deadline) {
                        Ok(m) => m,
                        Err(_) => break,
                    },
                    _ => break,
                },
                Err(TryRecvError::Disconnected) => {
                    sync.end();
                    break;
                }
            };
            match message {
                Message::Frame(g, f, arrival) if g == self.generation => {
                    // Frames wait in the queue for the budget: bound it by bytes too (about
                    // 256 MiB an input), not only by count (128 4K frames would be 1.6 GB).
                    let bytes = f.format.frame_len(f.width, f.height).max(1);
                    sync.set_capacity(((256 << 20) / bytes).min(128));
                    let captured = f.captured_ns.unwrap_or(arrival);
                    sync.push_arrived(captured, arrival, f);
                }
                Message::Error(g, e) if g == self.generation => error = Some(e),
                Message::End(g) if g == self.generation => sync.end(),
                _ => {}
            }
        }
        match sync.pick(target) {
            Pick::New(frame) => {
                self.blank = false;
                self.show(ctx, frame)?;
            }
            Pick::Repeat => {}
            // After a mode change the new synchronizer has shown nothing yet: the picture
            // already up stays until it does.
            Pick::Nothing => self.blank = sync.shown_pts().is_some() || self.size.is_none(),
        }
        if let Some(e) = error {
            self.last_error = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// Where this input's timeline is at output time `output_pts`.
    fn input_pts(&self, output_pts: u64) -> u64 {
        (i128::from(output_pts) + self.offset_ns).clamp(0, i128::from(u64::MAX)) as u64
    }
}

impl Source for ThreadedSource {
    fn update(&mut self, ctx: &mut SourceContext<'_>) -> Result<(), SourceError> {
        if let Some(tick) = ctx.frame.tick_ns.filter(|_| self.live) {
            return self.update_live(ctx, tick);
        }
        let output_pts = ctx.frame.time.pts_ns;
        let seeked = self.seek_anchor.take().map(|position| {
            self.offset_ns = i128::from(position) - i128::from(output_pts);
            if self.paused_at.is_some() {
                self.paused_at = Some(output_pts);
            }
        });
        if self.pause_requested {
            self.paused_at.get_or_insert(output_pts);
            // A paused input still shows where a seek took it.
            if seeked.is_none() {
                return Ok(());
            }
        } else if let Some(at) = self.paused_at.take() {
            // Resume where we paused: the input's clock did not run meanwhile.
            self.offset_ns -= i128::from(output_pts) - i128::from(at);
        }
        let target = self.input_pts(output_pts);
        self.next_tick = self.input_pts(output_pts + ctx.frame.time.duration_ns + ctx.frame.time.duration_ns / 2);
        let (rx, generation) = (&self.rx, self.generation);
        let mut error = None;
        // Offline renders wait for file frames; a live input is waited for only until its first
        // frame, and then only what has already arrived is taken.
        let mut live_wait = self.live && self.size.is_none() && ctx.pacing == Pacing::Offline;
        let pacing = if self.live { Pacing::Realtime } else { ctx.pacing };
        let chosen = self.selector.select(
            target,
            |f| f.time.pts_ns,
            || loop {
                let message = match pacing {
                    _ if std::mem::take(&mut live_wait) => match rx.recv_timeout(LIVE_FIRST_FRAME_TIMEOUT) {
                        Ok(m) => Ok(m),
                        Err(RecvTimeoutError::Timeout) => Err(TryRecvError::Empty),
                        Err(RecvTimeoutError::Disconnected) => Err(TryRecvError::Disconnected),
                    },
                    Pacing::Offline => rx.recv().map_err(|_| TryRecvError::Disconnected),
                    Pacing::Realtime => rx.try_recv(),
                };
                return match message {
                    Ok(Message::Frame(g, f, _)) if g == generation => Pull::Frame(f),
                    Ok(Message::Error(g, e)) if g == generation => {
                        error = Some(e);
                        Pull::Ended
                    }
                    Ok(Message::End(g)) if g == generation => Pull::Ended,
                    // From before the last seek.
                    Ok(_) => continue,
                    Err(TryRecvError::Empty) => Pull::Empty,
                    Err(TryRecvError::Disconnected) => Pull::Ended,
                };
            },
        );
        if let Some(frame) = chosen {
            self.show(ctx, frame)?;
        }
        if let Some(e) = error {
            self.last_error = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    fn current(&self) -> Option<InputView> {
        if self.blank || !self.is_fresh() {
            return None;
        }
        let (width, height) = self.size?;
        self.uploader.view().map(|v| InputView {
            view: v.clone(),
            width,
            height,
            still: false,
            opaque: self.uploader.is_opaque(),
        })
    }

    fn metadata(&self) -> Option<&crate::metadata::FrameMetadata> {
        self.size.filter(|_| !self.blank && self.is_fresh()).map(|_| &self.metadata)
    }

    fn set_sync_policy(&mut self, policy: SyncPolicy) {
        self.policy = policy;
    }

    fn sync_stats(&self) -> Option<SyncStats> {
        self.sync.as_ref().map(|s| s.stats().clone())
    }

    fn shown_capture_ns(&self) -> Option<u64> {
        self.sync.as_ref().filter(|_| !self.blank && self.is_fresh()).and_then(InputSync::shown_pts)
    }

    fn is_ended(&self) -> bool {
        self.selector.is_ended() && self.next_tick >= self.shown_until
    }

    fn is_finite(&self) -> bool {
        self.finite
    }

    fn is_seekable(&self) -> bool {
        self.seekable
    }

    fn seek(&mut self, position_ns: u64) -> Result<(), SourceError> {
        if !self.seekable {
            return Err(SourceError::Unsupported(format!("input {} cannot seek", self.id)));
        }
        let control = self.control.as_ref().ok_or_else(|| SourceError::Decode("input stopped".into()))?;
        let generation = self.generation + 1;
        control
            .try_send(Control::Seek { generation, position_ns })
            .map_err(|_| SourceError::Unsupported(format!("input {} is busy seeking; try again", self.id)))?;
        self.generation = generation;
        self.selector.reset();
        // The next output frame shows `position_ns`, whatever its pts.
        self.seek_anchor = Some(position_ns);
        Ok(())
    }

    fn position_ns(&self) -> Option<u64> {
        self.position_ns
    }

    fn set_paused(&mut self, paused: bool) {
        self.pause_requested = paused;
    }

    fn is_paused(&self) -> bool {
        self.pause_requested
    }

    fn feed_status(&self) -> Option<crate::counters::FeedStatus> {
        use crate::counters::{FeedState, FeedStatus};
        if !self.live {
            return None;
        }
        let since = self.last_new_frame.map(|t| t.elapsed());
        let state = match (since, self.hold) {
            (None, _) => FeedState::Waiting,
            (Some(s), Some(hold)) if s > hold => FeedState::Stale,
            (Some(s), _) if s > HOLDING_AFTER => FeedState::Holding,
            _ => FeedState::Live,
        };
        Some(FeedStatus {
            state,
            since_frame_ms: since.map(|s| s.as_millis() as u64),
            counters: self.counters.as_ref().map(|c| c.snapshot()).unwrap_or_default(),
            latency_ms: self.counters.as_ref().and_then(|c| c.latency_ms()),
            last_error: self.counters.as_ref().and_then(|c| c.last_error()),
        })
    }
}

impl Drop for ThreadedSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.control = None;
        // Unblock a producer waiting on a full channel.
        while self.rx.try_recv().is_ok() {}
        let (_, dead) = bounded::<Message>(0);
        self.rx = dead;
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(input = %self.id, "source thread panicked");
            }
        }
    }
}
