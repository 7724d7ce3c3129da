//! BlazeFace short range (MediaPipe Face Detection 0.4, Apache-2.0; converted from TFLite by
//! `scripts/ml/tflite_to_onnx.py`): 128×128 NHWC input (−1–1, the picture letterboxed), 896 SSD
//! anchors, a box and six keypoints per anchor. Fast (about a millisecond) and made for faces
//! near the camera; CenterFace finds small faces.
//!
//! Decoding follows MediaPipe's `face_detection_short_range` graph: anchors at strides 8 and 16
//! (three layers sharing the second grid), coordinates in input pixels relative to the anchor,
//! sigmoid scores, overlapping boxes suppressed.

use super::centerface::suppress_overlaps;
use super::runtime::{MlError, Model};
use super::Face;

/// Input side.
pub const SIZE: u32 = 128;

/// The 896 anchor centres (0–1): stride 8 (16 × 16 cells, 2 anchors), stride 16 (8 × 8, 6).
pub fn anchors() -> Vec<[f32; 2]> {
    super::ssd_anchor_centres(&[(16, 2), (8, 6)])
}

/// The detector.
#[derive(Debug)]
pub struct BlazeFace {
    model: Model,
    anchors: Vec<[f32; 2]>,
}

impl BlazeFace {
    /// Over an opened BlazeFace model.
    pub fn new(model: Model) -> Self {
        BlazeFace { model, anchors: anchors() }
    }

    /// Faces scoring at least `threshold` in a 128×128 tensor; `map` takes tensor coordinates
    /// (0–1) to the coordinates faces are given in.
    pub fn detect(
        &mut self,
        tensor: Vec<f32>,
        threshold: f32,
        map: impl Fn(f32, f32) -> [f32; 2],
    ) -> Result<Vec<Face>, MlError> {
        let n = SIZE as usize;
        let out = self.model.run("input", [1, n, n, 3], tensor, &["regressors", "classificators"])?;
        let [(_, boxes), (_, scores)] = &out[..] else {
            return Err(MlError::Inference("BlazeFace gave unexpected outputs".into()));
        };
        decode(boxes, scores, &self.anchors, threshold, map)
    }
}

/// Faces from BlazeFace's raw outputs, strongest first.
pub fn decode(
    boxes: &[f32],
    scores: &[f32],
    anchors: &[[f32; 2]],
    threshold: f32,
    map: impl Fn(f32, f32) -> [f32; 2],
) -> Result<Vec<Face>, MlError> {
    if boxes.len() != anchors.len() * 16 || scores.len() != anchors.len() {
        return Err(MlError::Inference("BlazeFace's outputs do not match its anchors".into()));
    }
    let size = SIZE as f32;
    let mut faces = Vec::new();
    for (i, a) in anchors.iter().enumerate() {
        let score = super::sigmoid(scores[i]);
        if score < threshold {
            continue;
        }
        let r = &boxes[i * 16..(i + 1) * 16];
        let (cx, cy) = (r[0] / size + a[0], r[1] / size + a[1]);
        let (w, h) = (r[2] / size, r[3] / size);
        let (p0, p1) = (map(cx - w / 2.0, cy - h / 2.0), map(cx + w / 2.0, cy + h / 2.0));
        let rect = [p0[0].min(p1[0]), p0[1].min(p1[1]), p0[0].max(p1[0]), p0[1].max(p1[1])];
        let landmarks = (0..6).map(|k| map(r[4 + 2 * k] / size + a[0], r[5 + 2 * k] / size + a[1])).collect();
        faces.push(Face { rect, score, landmarks });
    }
    Ok(suppress_overlaps(faces))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_896_anchors_in_mediapipes_order() {
        let a = anchors();
        assert_eq!(a.len(), 896);
        assert_eq!(a[0], [0.5 / 16.0, 0.5 / 16.0]);
        assert_eq!(a[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert_eq!(a[895], [7.5 / 8.0, 7.5 / 8.0]);
    }

    #[test]
    fn one_confident_anchor_decodes_to_its_box_and_weak_ones_are_dropped() {
        let a = anchors();
        let mut boxes = vec![0.0; 896 * 16];
        let mut scores = vec![-10.0; 896];
        // Anchor 0 (centre 4, 4 px), moved 12 px right, 32 px wide and high.
        scores[0] = 3.0;
        boxes[..4].copy_from_slice(&[12.0, 0.0, 32.0, 32.0]);
        let faces = decode(&boxes, &scores, &a, 0.5, |s, t| [s, t]).expect("decode");
        assert_eq!(faces.len(), 1);
        let f = &faces[0];
        let c = (4.0 + 12.0) / 128.0;
        assert!((f.rect[0] - (c - 0.125)).abs() < 1e-6 && (f.rect[2] - (c + 0.125)).abs() < 1e-6, "{:?}", f.rect);
        assert_eq!(f.landmarks.len(), 6);
        assert!(decode(&boxes[..10], &scores, &a, 0.5, |s, t| [s, t]).is_err(), "short outputs are an error");
    }
}
