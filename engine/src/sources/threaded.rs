//! A CPU source on its own thread: the producer decodes frames into a bounded channel; the render
//! thread picks the frame for each output tick, uploads its planes and converts them on the GPU.

use super::{Source, SourceContext, SourceError};
use crate::frame::TimestampedFrame;
use crate::gpu::convert::{FrameUploader, YuvColorSpace};
use crate::layers::InputView;
use crate::timing::{FrameSelector, Pacing, Pull};
use crossbeam_channel::{bounded, Receiver, TryRecvError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Decoded frames, one at a time, on the producer thread.
pub trait FrameProducer: Send + 'static {
    /// The next frame; `Ok(None)` at the end of the stream.
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError>;
    /// Whether the stream ends by itself (`next_frame` eventually returns `Ok(None)`).
    fn is_finite(&self) -> bool {
        true
    }
}

enum Message {
    Frame(TimestampedFrame),
    Error(SourceError),
}

/// Frames decoded ahead of the renderer: enough to ride out jitter, small enough to bound memory.
const CHANNEL_DEPTH: usize = 4;

pub struct ThreadedSource {
    id: String,
    rx: Receiver<Message>,
    selector: FrameSelector<TimestampedFrame>,
    uploader: FrameUploader,
    color_space: YuvColorSpace,
    size: Option<(u32, u32)>,
    finite: bool,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    last_error: Option<SourceError>,
}

impl std::fmt::Debug for ThreadedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThreadedSource").field("id", &self.id).field("size", &self.size).finish()
    }
}

impl ThreadedSource {
    /// Starts `producer` on a thread named after the input.
    pub fn spawn(
        id: &str,
        mut producer: impl FrameProducer,
        color_space: YuvColorSpace,
        max_offset_ns: u64,
    ) -> Result<Self, SourceError> {
        let finite = producer.is_finite();
        let (tx, rx) = bounded(CHANNEL_DEPTH);
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("streamlib source {id}"))
            .spawn(move || {
                while !stop_flag.load(Ordering::Relaxed) {
                    let message = match producer.next_frame() {
                        Ok(Some(frame)) => Message::Frame(frame),
                        Ok(None) => break,
                        Err(e) => Message::Error(e),
                    };
                    let is_error = matches!(message, Message::Error(_));
                    // A closed channel means the engine dropped this input: stop quietly.
                    if tx.send(message).is_err() || is_error {
                        break;
                    }
                }
            })
            .map_err(|e| SourceError::Open { path: id.to_string(), message: format!("cannot start thread: {e}") })?;
        Ok(ThreadedSource {
            id: id.to_string(),
            rx,
            selector: FrameSelector::new(max_offset_ns),
            uploader: FrameUploader::new(id),
            color_space,
            size: None,
            finite,
            stop,
            thread: Some(thread),
            last_error: None,
        })
    }
}

impl Source for ThreadedSource {
    fn update(&mut self, ctx: &mut SourceContext<'_>) -> Result<(), SourceError> {
        let rx = &self.rx;
        let mut error = None;
        let pacing = ctx.pacing;
        let chosen = self.selector.select(
            ctx.frame.pts_ns,
            |f| f.pts_ns,
            || {
                let message = match pacing {
                    Pacing::Offline => rx.recv().map_err(|_| TryRecvError::Disconnected),
                    Pacing::Realtime => rx.try_recv(),
                };
                match message {
                    Ok(Message::Frame(f)) => Pull::Frame(f),
                    Ok(Message::Error(e)) => {
                        error = Some(e);
                        Pull::Ended
                    }
                    Err(TryRecvError::Empty) => Pull::Empty,
                    Err(TryRecvError::Disconnected) => Pull::Ended,
                }
            },
        );
        if let Some(frame) = chosen {
            self.uploader
                .upload(ctx.gpu, &ctx.pipelines.input, &frame, self.color_space, ctx.encoder)
                .map_err(|e| SourceError::Decode(format!("input {}: frame {}: {e}", self.id, frame.index)))?;
            self.size = Some((frame.width, frame.height));
        }
        if let Some(e) = error {
            self.last_error = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    fn current(&self) -> Option<InputView> {
        let (width, height) = self.size?;
        self.uploader.view().map(|v| InputView { view: v.clone(), width, height })
    }

    fn is_ended(&self) -> bool {
        self.selector.is_ended()
    }

    fn is_finite(&self) -> bool {
        self.finite
    }
}

impl Drop for ThreadedSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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
