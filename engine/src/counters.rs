//! Named counters a running input or output exposes (a network link's frames, losses and
//! resends), read by the render server for `/metrics` and `/events` while the producer or sink
//! thread keeps counting.

use serde::Serialize;
use std::collections::BTreeMap;

/// Something that counts, shared with the thread that does the work.
pub trait Counters: Send + Sync {
    /// The counters now, by name (`frames`, `lost`, ...).
    fn snapshot(&self) -> BTreeMap<&'static str, u64>;
    /// The latest measured latency, ms, where the link measures one.
    fn latency_ms(&self) -> Option<f64> {
        None
    }
    /// Why the link last failed (a peer that refused, a wrong passphrase), kept after it recovers.
    fn last_error(&self) -> Option<String> {
        None
    }
}

/// How a live input's pictures are doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedState {
    /// No frame has arrived yet.
    #[default]
    Waiting,
    /// New frames are arriving.
    Live,
    /// Frames stopped: the last one is still shown (within the input's hold).
    Holding,
    /// Frames stopped longer than the hold: nothing is shown.
    Stale,
}

/// A live input's state and counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FeedStatus {
    /// Live, holding or stale.
    pub state: FeedState,
    /// Since the last new frame, ms.
    pub since_frame_ms: Option<u64>,
    /// The link's counters (empty for inputs that keep none).
    pub counters: BTreeMap<&'static str, u64>,
    /// The link's latest latency, ms.
    pub latency_ms: Option<f64>,
    /// Why the link last failed, if it ever did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}
