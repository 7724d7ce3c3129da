//! Raw frames into memory, for benchmarks and library users who consume pixels themselves.

use super::{Sink, SinkError};
use crate::frame::{OutputFrame, PixelFormat};
use std::sync::{Arc, Mutex};

/// Keeps the last `keep` frames (and counts all), so memory stays bounded however long it runs.
#[derive(Clone)]
pub struct MemorySink {
    format: PixelFormat,
    keep: usize,
    frames: Arc<Mutex<std::collections::VecDeque<OutputFrame>>>,
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemorySink").field("format", &self.format).field("keep", &self.keep).finish()
    }
}

impl MemorySink {
    /// A sink that takes frames in `format` and keeps the last `keep` of them (0 keeps none).
    pub fn new(format: PixelFormat, keep: usize) -> Self {
        MemorySink { format, keep, frames: Arc::default(), bytes: Arc::default() }
    }

    /// The frames kept so far, oldest first.
    pub fn frames(&self) -> Vec<OutputFrame> {
        self.frames.lock().map(|f| f.iter().cloned().collect()).unwrap_or_default()
    }

    /// Total bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Sink for MemorySink {
    fn format(&self) -> PixelFormat {
        self.format
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        self.bytes.fetch_add(frame.data.len() as u64, std::sync::atomic::Ordering::Relaxed);
        if self.keep == 0 {
            return Ok(());
        }
        let mut frames = self.frames.lock().map_err(|_| SinkError::Encode("memory sink poisoned".into()))?;
        if frames.len() == self.keep {
            frames.pop_front();
        }
        frames.push_back(frame.clone());
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}
