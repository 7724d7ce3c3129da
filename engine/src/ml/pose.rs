//! BlazePose (MediaPipe Pose 0.5, Apache-2.0; converted from TFLite by
//! `scripts/ml/tflite_to_onnx.py`): a person detector (224×224, run only when tracking is lost)
//! and a landmark model (lite, 256×256) that runs on a turned square around the person and
//! gives 33 body landmarks plus two that place the next frame's square.
//!
//! The decoding follows MediaPipe's graphs (`pose_detection_cpu`, `pose_landmark_by_roi_cpu`,
//! `pose_detection_to_roi`, `pose_landmarks_to_roi`): SSD anchors, the first two keypoints
//! (hips centre, a point on the body's circle) turned into a square 1.25× the body's diameter,
//! turned so the body is upright.

use super::runtime::{MlError, Model};
use super::sigmoid;

/// Detector input side.
pub const DETECTOR_SIZE: u32 = 224;
/// Landmark model input side.
pub const LANDMARK_SIZE: u32 = 256;
/// Body landmarks (the model gives 39: these plus alignment points).
pub const LANDMARKS: usize = 33;

/// The bones of the skeleton, as pairs of landmark indices (MediaPipe's POSE_CONNECTIONS).
pub const CONNECTIONS: [(usize, usize); 35] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (0, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 17),
    (15, 19),
    (15, 21),
    (17, 19),
    (12, 14),
    (14, 16),
    (16, 18),
    (16, 20),
    (16, 22),
    (18, 20),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (28, 30),
    (29, 31),
    (30, 32),
    (27, 31),
    (28, 32),
];

/// A turned square of an image, in that image's pixels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Roi {
    /// Centre, image pixels.
    pub center: [f32; 2],
    /// Side, image pixels.
    pub side: f32,
    /// Radians, clockwise on screen.
    pub angle: f32,
}

impl Roi {
    /// The square around the body whose hips centre is `center` and whose circle passes through
    /// `edge` (MediaPipe: rotation to 90°, ×1.25, square).
    pub fn from_alignment(center: [f32; 2], edge: [f32; 2]) -> Self {
        let (dx, dy) = (edge[0] - center[0], edge[1] - center[1]);
        let radius = (dx * dx + dy * dy).sqrt();
        let angle = normalize_angle(std::f32::consts::FRAC_PI_2 - (-dy).atan2(dx));
        Roi { center, side: 2.0 * radius * 1.25, angle }
    }

    /// The image point of (s, t) of the square, each 0–1 (s across, t down, in the turned frame).
    pub fn point(&self, s: f32, t: f32) -> [f32; 2] {
        let (sin, cos) = self.angle.sin_cos();
        let (x, y) = ((s - 0.5) * self.side, (t - 0.5) * self.side);
        [self.center[0] + x * cos - y * sin, self.center[1] + x * sin + y * cos]
    }
}

fn normalize_angle(a: f32) -> f32 {
    let tau = std::f32::consts::TAU;
    a - tau * ((a + std::f32::consts::PI) / tau).floor()
}

/// One landmark in image pixels, with its visibility and presence (0–1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Landmark {
    /// Image pixels.
    pub x: f32,
    /// Image pixels.
    pub y: f32,
    /// How likely it is in view (not hidden), 0–1.
    pub visibility: f32,
    /// How likely it is inside the picture, 0–1.
    pub presence: f32,
}

/// A detected person: score, the box (x0, y0, x1, y1, image pixels) and where to look next.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// 0–1.
    pub score: f32,
    /// x0, y0, x1, y1, image pixels.
    pub rect: [f32; 4],
    /// The square the landmark model looks at.
    pub roi: Roi,
}

/// A landmark run's result: the body's presence (0–1), its landmarks and the next square.
#[derive(Clone, Debug, PartialEq)]
pub struct Body {
    /// How likely a body is there, 0–1.
    pub presence: f32,
    /// The 33 body landmarks.
    pub landmarks: Vec<Landmark>,
    /// The square the next run looks at.
    pub next: Roi,
}

/// The detector's 2254 SSD anchor centres (0–1): strides 8, 16 then 32 (three layers sharing one
/// grid), two anchors per cell per layer.
pub fn detector_anchors() -> Vec<[f32; 2]> {
    let cells = |stride: u32| DETECTOR_SIZE.div_ceil(stride);
    super::ssd_anchor_centres(&[(cells(8), 2), (cells(16), 2), (cells(32), 6)])
}

/// The pose models.
#[derive(Debug)]
pub struct BlazePose {
    detector: Model,
    landmarks: Model,
    anchors: Vec<[f32; 2]>,
}

impl BlazePose {
    /// Over the opened detector and landmark models.
    pub fn new(detector: Model, landmarks: Model) -> Self {
        BlazePose { detector, landmarks, anchors: detector_anchors() }
    }

    /// The best-scoring person (≥ `threshold`) in a 224×224 NHWC tensor (−1–1) made from the
    /// square `map` of the image (tensor point (s, t) → image pixels).
    pub fn detect(
        &mut self,
        tensor: Vec<f32>,
        threshold: f32,
        map: impl Fn(f32, f32) -> [f32; 2],
    ) -> Result<Option<Detection>, MlError> {
        let n = DETECTOR_SIZE as usize;
        let out = self.detector.run("input_1", [1, n, n, 3], tensor, &["Identity", "Identity_1"])?;
        let [(_, boxes), (_, scores)] = &out[..] else {
            return Err(MlError::Inference("the pose detector gave unexpected outputs".into()));
        };
        if boxes.len() != self.anchors.len() * 12 || scores.len() != self.anchors.len() {
            return Err(MlError::Inference("the pose detector's outputs do not match its anchors".into()));
        }
        let best = (0..self.anchors.len()).max_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let Some(i) = best.filter(|&i| sigmoid(scores[i]) >= threshold) else { return Ok(None) };
        let raw = &boxes[i * 12..(i + 1) * 12];
        let a = self.anchors[i];
        let size = DETECTOR_SIZE as f32;
        let point = |k: usize| map(raw[k] / size + a[0], raw[k + 1] / size + a[1]);
        let (cx, cy, w, h) = (raw[0] / size + a[0], raw[1] / size + a[1], raw[2] / size, raw[3] / size);
        let (p0, p1) = (map(cx - w / 2.0, cy - h / 2.0), map(cx + w / 2.0, cy + h / 2.0));
        Ok(Some(Detection {
            score: sigmoid(scores[i]),
            rect: [p0[0].min(p1[0]), p0[1].min(p1[1]), p0[0].max(p1[0]), p0[1].max(p1[1])],
            roi: Roi::from_alignment(point(4), point(6)),
        }))
    }

    /// The body in a 256×256 NHWC tensor (0–1) made from `roi`.
    pub fn landmarks(&mut self, tensor: Vec<f32>, roi: &Roi) -> Result<Body, MlError> {
        let n = LANDMARK_SIZE as usize;
        let out = self.landmarks.run("input_1", [1, n, n, 3], tensor, &["Identity", "Identity_1"])?;
        let [(_, raw), (_, flag)] = &out[..] else {
            return Err(MlError::Inference("the pose landmark model gave unexpected outputs".into()));
        };
        if raw.len() < 35 * 5 || flag.is_empty() {
            return Err(MlError::Inference("the pose landmark model's outputs are too short".into()));
        }
        let size = LANDMARK_SIZE as f32;
        let at = |k: usize| roi.point(raw[k * 5] / size, raw[k * 5 + 1] / size);
        let landmarks = (0..LANDMARKS)
            .map(|k| {
                let [x, y] = at(k);
                Landmark { x, y, visibility: sigmoid(raw[k * 5 + 3]), presence: sigmoid(raw[k * 5 + 4]) }
            })
            .collect();
        Ok(Body { presence: flag[0].clamp(0.0, 1.0), landmarks, next: Roi::from_alignment(at(33), at(34)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_detector_has_mediapipes_2254_anchors() {
        let anchors = detector_anchors();
        assert_eq!(anchors.len(), 2254);
        assert_eq!(anchors[0], [0.5 / 28.0, 0.5 / 28.0]);
        assert_eq!(anchors[1], anchors[0]);
        assert_eq!(anchors[2253], [6.5 / 7.0, 6.5 / 7.0]);
    }

    #[test]
    fn an_upright_body_gives_an_unturned_square_and_a_lying_one_a_quarter_turn() {
        let upright = Roi::from_alignment([100.0, 200.0], [100.0, 120.0]);
        assert!(upright.angle.abs() < 1e-6);
        assert!((upright.side - 200.0).abs() < 1e-3);
        // The top of the square's middle is above the centre.
        let top = upright.point(0.5, 0.0);
        assert!((top[0] - 100.0).abs() < 1e-3 && (top[1] - 100.0).abs() < 1e-3);
        // Head to the right: the square's top points right.
        let lying = Roi::from_alignment([100.0, 200.0], [180.0, 200.0]);
        assert!((lying.angle - std::f32::consts::FRAC_PI_2).abs() < 1e-5);
        let top = lying.point(0.5, 0.0);
        assert!((top[0] - 200.0).abs() < 1e-3 && (top[1] - 200.0).abs() < 1e-3, "{top:?}");
    }
}
