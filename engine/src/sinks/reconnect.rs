//! A network output that comes back: when its peer goes (an RTMP server restarts, an SRT
//! listener is not up yet) the inner sink is dropped, frames are counted as lost while it is
//! down, and it is built again with backoff. The other outputs never notice.

use super::{Sink, SinkError};
use crate::counters::Counters;
use crate::frame::{OutputFrame, PixelFormat};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// First wait after a failure; it doubles up to `MAX_BACKOFF` and starts over once connected.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// Builds the inner sink; called again after every failure.
pub type Connect = Box<dyn FnMut() -> Result<Box<dyn Sink>, SinkError> + Send>;

/// What a reconnecting output reports in `/metrics` and `/events`.
#[derive(Debug, Default)]
pub struct ReconnectStats {
    connects: AtomicU64,
    failures: AtomicU64,
    frames_lost_while_down: AtomicU64,
    up: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ReconnectStats {
    /// The latest failure's message, kept after the link comes back.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }
}

impl Counters for ReconnectStats {
    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            ("connects", self.connects.load(Ordering::Relaxed)),
            ("failures", self.failures.load(Ordering::Relaxed)),
            ("frames_lost_while_down", self.frames_lost_while_down.load(Ordering::Relaxed)),
            ("up", self.up.load(Ordering::Relaxed)),
        ])
    }

    fn last_error(&self) -> Option<String> {
        ReconnectStats::last_error(self)
    }
}

/// A sink rebuilt by `connect` whenever it fails.
pub struct Reconnecting {
    label: String,
    format: PixelFormat,
    connect: Connect,
    inner: Option<Box<dyn Sink>>,
    next_attempt: Instant,
    backoff: Duration,
    /// When the current connection was made: the backoff starts over once it has lasted.
    connected_at: Instant,
    stats: Arc<ReconnectStats>,
}

/// A connection that lasts this long was a real one (an RTMP client's connect fails after the
/// first frames are accepted).
const LASTED: Duration = Duration::from_secs(2);

impl Reconnecting {
    /// Connects once now: an error that retrying cannot mend (bad settings, missing elements)
    /// is returned at once; a peer that is not there yet is retried on later frames.
    pub fn start(label: &str, format: PixelFormat, mut connect: Connect) -> Result<Self, SinkError> {
        let stats = Arc::new(ReconnectStats::default());
        let mut sink = Reconnecting {
            label: label.to_string(),
            format,
            inner: None,
            next_attempt: Instant::now(),
            backoff: FIRST_BACKOFF,
            connected_at: Instant::now(),
            stats,
            connect: Box::new(|| Err(SinkError::Stopped("not started".into()))),
        };
        match connect() {
            Ok(inner) => sink.connected(inner),
            Err(e @ SinkError::Unsupported(_)) => return Err(e),
            Err(e) => sink.failed(e),
        }
        sink.connect = connect;
        Ok(sink)
    }

    /// The counters, shared with the server.
    pub fn stats(&self) -> Arc<ReconnectStats> {
        self.stats.clone()
    }

    fn connected(&mut self, inner: Box<dyn Sink>) {
        self.inner = Some(inner);
        self.connected_at = Instant::now();
        self.stats.connects.fetch_add(1, Ordering::Relaxed);
        self.stats.up.store(1, Ordering::Relaxed);
    }

    fn failed(&mut self, e: SinkError) {
        tracing::warn!("{}: {e}; connecting again in {} ms", self.label, self.backoff.as_millis());
        if let Ok(mut slot) = self.stats.last_error.lock() {
            *slot = Some(e.to_string());
        }
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        self.stats.up.store(0, Ordering::Relaxed);
        // Closed here, its error already reported: dropping it would report it again.
        if let Some(mut inner) = self.inner.take() {
            let _ = inner.finish();
        }
        self.next_attempt = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

impl Sink for Reconnecting {
    fn format(&self) -> PixelFormat {
        self.format
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        if self.inner.is_none() && Instant::now() >= self.next_attempt {
            match (self.connect)() {
                Ok(inner) => self.connected(inner),
                Err(e) => self.failed(e),
            }
        }
        let Some(inner) = self.inner.as_mut() else {
            self.stats.frames_lost_while_down.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        };
        match inner.write(frame) {
            Ok(()) => {
                if self.connected_at.elapsed() >= LASTED {
                    self.backoff = FIRST_BACKOFF;
                }
                Ok(())
            }
            Err(e) => {
                self.stats.frames_lost_while_down.fetch_add(1, Ordering::Relaxed);
                self.failed(e);
                Ok(())
            }
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        match self.inner.take() {
            Some(mut inner) => inner.finish(),
            None => Ok(()),
        }
    }

    fn counters(&self) -> Option<Arc<dyn Counters>> {
        Some(self.stats.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameTime;

    struct Flaky(Arc<AtomicU64>);
    impl Sink for Flaky {
        fn format(&self) -> PixelFormat {
            PixelFormat::Rgba8
        }
        fn write(&mut self, _: &OutputFrame) -> Result<(), SinkError> {
            // Every third frame written fails, as a peer that hangs up would.
            if self.0.fetch_add(1, Ordering::Relaxed) % 3 == 2 {
                return Err(SinkError::Encode("peer went away".into()));
            }
            Ok(())
        }
        fn finish(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_peer_is_connected_again_and_frames_meanwhile_are_counted() {
        let writes = Arc::new(AtomicU64::new(0));
        let w = writes.clone();
        let mut sink = Reconnecting::start(
            "test",
            PixelFormat::Rgba8,
            Box::new(move || Ok(Box::new(Flaky(w.clone())) as Box<dyn Sink>)),
        )
        .expect("starts");
        let frame = OutputFrame {
            time: FrameTime::default(),
            width: 1,
            height: 1,
            format: PixelFormat::Rgba8,
            color_space: None,
            data: vec![0; 4],
            meta: Default::default(),
        };
        for _ in 0..3 {
            sink.write(&frame).expect("never fails");
        }
        let stats = sink.stats();
        assert_eq!(stats.snapshot()["failures"], 1);
        assert_eq!(stats.snapshot()["up"], 0);
        assert_eq!(stats.last_error().as_deref(), Some("peer went away"));
        std::thread::sleep(FIRST_BACKOFF + Duration::from_millis(20));
        sink.write(&frame).expect("never fails");
        assert_eq!(stats.snapshot()["connects"], 2);
        assert_eq!(stats.snapshot()["up"], 1);
    }

    #[test]
    fn settings_that_retrying_cannot_mend_fail_at_once() {
        let result = Reconnecting::start(
            "test",
            PixelFormat::Rgba8,
            Box::new(|| Err(SinkError::Unsupported("no such encoder".into()))),
        );
        assert!(result.is_err());
    }
}
