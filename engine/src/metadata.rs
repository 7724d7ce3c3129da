//! What travels with a frame besides its pixels: ML detections, a timecode, the sender's scene
//! revision and user values. Inputs attach it to their frames (a network input receives it), the
//! engine gathers it from the inputs into each output frame, and outputs carry it on (the
//! network output sends it; see `docs/protocol.md`).

use std::collections::BTreeMap;

/// One detected object: a box as fractions of the frame, a class and a score.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    /// Left edge, 0..=1 of the frame width.
    pub x: f32,
    /// Top edge, 0..=1 of the frame height.
    pub y: f32,
    /// Width, 0..=1 of the frame width.
    pub w: f32,
    /// Height, 0..=1 of the frame height.
    pub h: f32,
    /// Confidence, 0..=1.
    pub score: f32,
    /// The model's class index.
    pub class: u32,
    /// The tracker's id for the object across frames, if it is tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_id: Option<u64>,
    /// The class's name, when known.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub label: String,
}

/// Metadata of one frame. Empty by default; cheap to clone when empty.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FrameMetadata {
    /// Objects detected in the frame.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub detections: Vec<Detection>,
    /// The frame's timecode as its producer wrote it, e.g. `00:01:02:03`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timecode: Option<String>,
    /// The producer's scene revision when it rendered the frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scene_revision: Option<u64>,
    /// Free-form values, e.g. `{"speaker": "Ada"}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user: BTreeMap<String, String>,
    /// When the picture was first captured or rendered, ns since the Unix epoch on the origin's
    /// system clock; kept across network hops (the protocol's `capture_ns`), so the last hop
    /// measures glass-to-glass latency. After a merge, the oldest input's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_ns: Option<u64>,
}

impl FrameMetadata {
    /// True when there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.detections.is_empty()
            && self.timecode.is_none()
            && self.scene_revision.is_none()
            && self.user.is_empty()
            && self.capture_ns.is_none()
    }

    /// Adds `other`'s contents: detections are appended, user values and the rest replaced
    /// where `other` has them.
    pub fn merge(&mut self, other: &FrameMetadata) {
        self.detections.extend(other.detections.iter().cloned());
        if other.timecode.is_some() {
            self.timecode.clone_from(&other.timecode);
        }
        if other.scene_revision.is_some() {
            self.scene_revision = other.scene_revision;
        }
        self.user.extend(other.user.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.capture_ns = match (self.capture_ns, other.capture_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}
