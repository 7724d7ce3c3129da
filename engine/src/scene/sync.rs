//! How live inputs join the output's timeline: the scene's latency budget and each input's
//! policy (see `timing::InputSync`).

use super::SceneError;
use serde::{Deserialize, Serialize};

/// Longest latency budget: frames wait this long at most, in a queue of at most 128 (a
/// second at 120 fps).
pub const MAX_LATENCY_MS: f64 = 1000.0;
/// Largest known delay an input may declare.
pub const MAX_OFFSET_MS: f64 = 10_000.0;

/// `"sync"` at the top of a scene.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SceneSync {
    /// The latency budget: tick `t` shows, of every live input, the frame captured nearest
    /// `t − latency_ms` (within half the input's frame period). Absent: each live input shows
    /// the newest frame that has arrived — the lowest latency, not aligned across inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

impl SceneSync {
    /// True when nothing is set (the field is left out of the scene's JSON).
    pub fn is_default(&self) -> bool {
        *self == SceneSync::default()
    }

    pub(crate) fn check(&self) -> Result<(), SceneError> {
        if let Some(l) = self.latency_ms {
            if !(l.is_finite() && (0.0..=MAX_LATENCY_MS).contains(&l)) {
                return Err(SceneError::new("sync.latency_ms", format!("{l} is not in 0..={MAX_LATENCY_MS}")));
            }
        }
        Ok(())
    }
}

/// `"sync"` in an input: how it joins the timeline.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSyncSpec {
    /// Ticks wait for this input's frame (until half an output frame past the deadline when
    /// live); an optional input is never waited for.
    #[serde(default)]
    pub required: bool,
    /// Ticks in a row its last frame may be shown again when no new one qualifies, then
    /// nothing; absent: for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_repeat: Option<u32>,
    /// Its known delay: its frames' capture times run this much later than the truth (a
    /// camera's pipeline delay), so they are shown this much earlier. Signed, ms.
    #[serde(default)]
    pub offset_ms: f64,
}

impl InputSyncSpec {
    pub(crate) fn check(&self, path: &str) -> Result<(), SceneError> {
        let o = self.offset_ms;
        if !(o.is_finite() && o.abs() <= MAX_OFFSET_MS) {
            return Err(SceneError::new(format!("{path}.sync.offset_ms"), format!("{o} is not in ±{MAX_OFFSET_MS}")));
        }
        Ok(())
    }

    /// The synchronizer's policy for it.
    pub fn policy(&self) -> crate::timing::SyncPolicy {
        crate::timing::SyncPolicy {
            required: self.required,
            max_repeat: self.max_repeat.unwrap_or(u32::MAX),
            offset_ns: (self.offset_ms * 1e6) as i64,
        }
    }
}
