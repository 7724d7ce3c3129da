//! A live network input's pipeline that comes back (SRT, RTP): it starts on the producer thread
//! (never at build), and when its peer goes, fails to connect or refuses us (a wrong
//! passphrase) it is torn down and started again with backoff while the compositor holds the
//! last frame. Every failure is counted and its message kept for `/events` and `/metrics`.

use super::decode::GstProducer;
use crate::counters::Counters;
use crate::frame::TimestampedFrame;
use crate::sources::{FrameProducer, SourceError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Starts the pipeline once more.
pub type StartPipeline = Box<dyn FnMut() -> Result<GstProducer, SourceError> + Send>;

/// Counts of a live input's link, shared with the server.
#[derive(Debug, Default)]
pub struct LiveStats {
    frames: AtomicU64,
    connects: AtomicU64,
    errors: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl LiveStats {
    fn failed(&self, label: &str, message: String) {
        tracing::warn!("{label}: {message}");
        self.errors.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut slot) = self.last_error.lock() {
            *slot = Some(message);
        }
    }
}

impl Counters for LiveStats {
    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            ("frames", self.frames.load(Ordering::Relaxed)),
            ("connects", self.connects.load(Ordering::Relaxed)),
            ("link_errors", self.errors.load(Ordering::Relaxed)),
        ])
    }

    fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

/// A `FrameProducer` over a pipeline that is restarted whenever it stops.
pub struct LivePipeline {
    label: String,
    start: StartPipeline,
    running: Option<GstProducer>,
    /// Set once the running pipeline has given a frame: a failure before that is a failed
    /// connection, after it a lost one.
    delivered: bool,
    next_attempt: Instant,
    backoff: Duration,
    stats: Arc<LiveStats>,
}

impl LivePipeline {
    /// A producer that calls `start` on its first frame and after every failure.
    pub fn new(label: &str, start: StartPipeline) -> Self {
        LivePipeline {
            label: label.to_string(),
            start,
            running: None,
            delivered: false,
            next_attempt: Instant::now(),
            backoff: FIRST_BACKOFF,
            stats: Arc::new(LiveStats::default()),
        }
    }

    fn retry_later(&mut self, why: String) {
        self.stats.failed(&self.label, format!("{why}; trying again in {} ms", self.backoff.as_millis()));
        self.running = None;
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

impl FrameProducer for LivePipeline {
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError> {
        if self.running.is_none() {
            if Instant::now() < self.next_attempt {
                std::thread::sleep(Duration::from_millis(50));
                return Err(SourceError::NotYet);
            }
            match (self.start)() {
                Ok(p) => {
                    self.running = Some(p);
                    self.delivered = false;
                }
                Err(e) => {
                    self.retry_later(e.to_string());
                    return Err(SourceError::NotYet);
                }
            }
        }
        let Some(p) = self.running.as_mut() else { return Err(SourceError::NotYet) };
        match p.next_frame() {
            Ok(Some(mut frame)) => {
                if !self.delivered {
                    self.delivered = true;
                    self.stats.connects.fetch_add(1, Ordering::Relaxed);
                }
                self.backoff = FIRST_BACKOFF;
                self.stats.frames.fetch_add(1, Ordering::Relaxed);
                // What the stream's caps say, as a file input does.
                frame.color_space.get_or_insert(p.color_space());
                Ok(Some(frame))
            }
            Err(SourceError::NotYet) => {
                // Still trying on its own (srtsrc reconnects): counted and said, not restarted.
                if let Some(why) = p.warning() {
                    self.stats.failed(&self.label, why);
                }
                Err(SourceError::NotYet)
            }
            Ok(None) => {
                self.retry_later("the peer ended the stream".into());
                Err(SourceError::NotYet)
            }
            Err(e) => {
                self.retry_later(e.to_string());
                Err(SourceError::NotYet)
            }
        }
    }

    fn is_finite(&self) -> bool {
        false
    }

    fn is_live(&self) -> bool {
        true
    }

    fn counters(&self) -> Option<Arc<dyn Counters>> {
        Some(self.stats.clone())
    }
}
