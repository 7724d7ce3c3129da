//! Sinks: where composited frames go. Each sink runs on its own thread behind a bounded channel;
//! a sink that cannot keep up either makes the renderer wait (offline renders, nothing lost) or
//! loses frames and counts them (live output, the compositor never stalls).

mod png_file;
mod raw;
mod reconnect;
mod y4m_file;

pub use png_file::{write_png, PngSink, PngSinkKind};
pub use raw::MemorySink;
pub use reconnect::{Connect, ReconnectStats, Reconnecting};
pub use y4m_file::{Y4mSink, Y4mSinkKind};

use crate::frame::{OutputFrame, PixelFormat};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A sink could not be created or failed while writing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The cause is in the message, not a `source()`: printed as a chain it said the same
    /// thing twice ("Read-only file system: Read-only file system").
    #[error("cannot write {path}: {error}")]
    Io {
        /// The file or directory written.
        path: String,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The output cannot be made as asked (unknown kind, bad parameters, unavailable codec).
    #[error("{0}")]
    Unsupported(String),
    /// The sink failed other than by I/O: encoding, a mid-stream change, a panic, or its thread.
    #[error("{0}")]
    Encode(String),
    /// A sink that failed earlier: the message names it and says why.
    #[error("{0}")]
    Stopped(String),
}

/// A consumer of composited frames, driven on its own thread.
pub trait Sink: Send {
    /// The pixel format this sink wants the readback in.
    fn format(&self) -> PixelFormat;
    /// The size it wants, when not the output's: the frame is scaled on the GPU first.
    fn size(&self) -> Option<(u32, u32)> {
        None
    }
    /// Consumes one frame, in the format (and size) the sink asked for.
    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError>;
    /// Flushes and closes the output (trailers, playlists); called once at the end.
    fn finish(&mut self) -> Result<(), SinkError>;
    /// Counters the sink keeps beyond frames written (a network output's receivers and drops).
    fn counters(&self) -> Option<Arc<dyn crate::counters::Counters>> {
        None
    }
}

/// What happens when a sink's queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backpressure {
    /// The renderer waits: every frame reaches the sink (offline renders).
    Block,
    /// The frame is dropped for this sink and counted (live output).
    Drop,
}

/// Counters a running sink exposes.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Frames the sink has written so far.
    pub written: AtomicU64,
    /// Frames dropped because the queue was full (`Backpressure::Drop` only).
    pub dropped: AtomicU64,
}

/// A sink on its own thread, fed through a bounded channel.
pub struct SinkHandle {
    name: String,
    format: PixelFormat,
    size: Option<(u32, u32)>,
    tx: Option<Sender<Arc<OutputFrame>>>,
    policy: Backpressure,
    stats: Arc<SinkStats>,
    error: Arc<Mutex<Option<String>>>,
    counters: Option<Arc<dyn crate::counters::Counters>>,
    thread: Option<JoinHandle<Result<(), SinkError>>>,
}

impl std::fmt::Debug for SinkHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinkHandle").field("name", &self.name).field("policy", &self.policy).finish()
    }
}

impl SinkHandle {
    /// Starts `sink` on a thread with a queue of `depth` frames.
    pub fn spawn(name: &str, mut sink: Box<dyn Sink>, policy: Backpressure, depth: usize) -> Result<Self, SinkError> {
        let (format, size, counters) = (sink.format(), sink.size(), sink.counters());
        let (tx, rx): (Sender<Arc<OutputFrame>>, Receiver<Arc<OutputFrame>>) = bounded(depth.max(1));
        let stats = Arc::new(SinkStats::default());
        let error = Arc::new(Mutex::new(None));
        let (thread_stats, thread_error) = (stats.clone(), error.clone());
        // Thread names cannot hold NUL bytes (the name comes from a user's path).
        let thread_name: String = format!("streamlib sink {name}").chars().filter(|&c| c != '\0').collect();
        let thread = std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                // A sink that panics (our bug or a plugin's) ends with an error like one that
                // fails: the render thread and the other sinks run on.
                let run = std::panic::AssertUnwindSafe(|| {
                    for frame in rx {
                        sink.write(&frame)?;
                        thread_stats.written.fetch_add(1, Ordering::Relaxed);
                    }
                    sink.finish()
                });
                let result = std::panic::catch_unwind(run).unwrap_or_else(|panic| {
                    Err(SinkError::Encode(format!("sink panicked: {}", panic_message(&panic))))
                });
                if let Err(e) = &result {
                    if let Ok(mut slot) = thread_error.lock() {
                        *slot = Some(e.to_string());
                    }
                }
                result
            })
            .map_err(|e| SinkError::Encode(format!("cannot start sink thread: {e}")))?;
        Ok(SinkHandle {
            name: name.to_string(),
            format,
            size,
            tx: Some(tx),
            policy,
            stats,
            error,
            counters,
            thread: Some(thread),
        })
    }

    /// The name the sink was started with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pixel format the sink wants the readback in.
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// The size the sink wants when it is not the output's (a scaled readback).
    pub fn size(&self) -> Option<(u32, u32)> {
        self.size
    }

    /// The sink's written and dropped frame counters.
    pub fn stats(&self) -> &Arc<SinkStats> {
        &self.stats
    }

    /// The sink's own counters, by name (empty for sinks that keep none).
    pub fn counters(&self) -> std::collections::BTreeMap<&'static str, u64> {
        self.counters.as_ref().map(|c| c.snapshot()).unwrap_or_default()
    }

    /// Why the sink stopped, once it has failed.
    pub fn error(&self) -> Option<String> {
        self.error.lock().ok().and_then(|e| e.clone())
    }

    /// Frames waiting in the queue.
    pub fn queue_len(&self) -> usize {
        self.tx.as_ref().map_or(0, Sender::len)
    }

    /// Hands a frame to the sink. Errs only once the sink has failed; then its message says why.
    pub fn push(&self, frame: Arc<OutputFrame>) -> Result<(), SinkError> {
        let stopped = || {
            let why = self.error.lock().ok().and_then(|e| e.clone()).unwrap_or_else(|| "stopped".into());
            // The reason often starts with the sink's own name (an encoder's label is its path).
            if why.starts_with(&self.name) {
                SinkError::Stopped(format!("sink stopped: {why}"))
            } else {
                SinkError::Stopped(format!("sink {} stopped: {why}", self.name))
            }
        };
        let Some(tx) = &self.tx else { return Err(stopped()) };
        match self.policy {
            Backpressure::Block => tx.send(frame).map_err(|_| stopped()),
            Backpressure::Drop => match tx.try_send(frame) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    Ok(())
                }
                Err(TrySendError::Disconnected(_)) => Err(stopped()),
            },
        }
    }

    /// Closes the queue, lets the sink drain and finish, and returns its result.
    pub fn finish(mut self) -> Result<(), SinkError> {
        self.close()
    }

    fn close(&mut self) -> Result<(), SinkError> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().unwrap_or_else(|_| Err(SinkError::Encode(format!("sink {} panicked", self.name)))),
            None => Ok(()),
        }
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::error!(sink = %self.name, "{e}");
        }
    }
}

/// Premultiplied RGBA to straight alpha, in place (opaque pixels are untouched).
pub fn unpremultiply(rgba: &mut [u8]) {
    for px in rgba.chunks_exact_mut(4) {
        let a = px[3];
        if a != 255 && a != 0 {
            for c in &mut px[..3] {
                *c = ((u32::from(*c) * 255 + u32::from(a) / 2) / u32::from(a)).min(255) as u8;
            }
        }
    }
}

/// The message of a caught panic, when it carried one.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Slow(Arc<AtomicU64>);
    impl Sink for Slow {
        fn format(&self) -> PixelFormat {
            PixelFormat::Rgba8
        }
        fn write(&mut self, _: &OutputFrame) -> Result<(), SinkError> {
            std::thread::sleep(std::time::Duration::from_millis(20));
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        fn finish(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn frame(index: u64) -> Arc<OutputFrame> {
        Arc::new(OutputFrame {
            time: crate::frame::FrameTime { index, ..Default::default() },
            width: 1,
            height: 1,
            format: PixelFormat::Rgba8,
            color_space: None,
            data: vec![0; 4],
            meta: Default::default(),
        })
    }

    #[test]
    fn a_slow_sink_drops_and_counts_instead_of_queueing() {
        let written = Arc::new(AtomicU64::new(0));
        let handle = SinkHandle::spawn("slow", Box::new(Slow(written.clone())), Backpressure::Drop, 2).expect("spawn");
        for i in 0..50 {
            handle.push(frame(i)).expect("push");
        }
        let stats = handle.stats().clone();
        assert!(handle.queue_len() <= 2);
        handle.finish().expect("finish");
        let dropped = stats.dropped.load(Ordering::Relaxed);
        assert_eq!(written.load(Ordering::Relaxed) + dropped, 50);
        assert!(dropped > 40, "only {dropped} dropped");
    }

    #[test]
    fn a_blocking_sink_gets_every_frame() {
        let written = Arc::new(AtomicU64::new(0));
        let handle = SinkHandle::spawn("slow", Box::new(Slow(written.clone())), Backpressure::Block, 2).expect("spawn");
        for i in 0..10 {
            handle.push(frame(i)).expect("push");
        }
        handle.finish().expect("finish");
        assert_eq!(written.load(Ordering::Relaxed), 10);
    }

    #[test]
    fn unpremultiply_restores_straight_alpha() {
        let mut px = [64, 32, 0, 128, 10, 20, 30, 255, 0, 0, 0, 0];
        unpremultiply(&mut px);
        assert_eq!(px, [128, 64, 0, 128, 10, 20, 30, 255, 0, 0, 0, 0]);
    }
}
