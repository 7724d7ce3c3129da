//! ML layers' machinery (feature `ml`): ONNX Runtime loaded at run time (`runtime`), models'
//! decoding (`blazeface`, `centerface`, `pose`), and the inference worker that keeps models off the render thread
//! (`worker`). Input tensors are made on the GPU (`gpu::tensor`); see `docs/ml.md`.

pub mod blazeface;
pub mod centerface;
pub mod pose;
pub mod runtime;
pub mod worker;

pub use blazeface::BlazeFace;
pub use centerface::{CenterFace, Face};
pub use pose::BlazePose;
pub use runtime::{ml_dir, model_path, provider_choice, MlError, Model};
pub use worker::{InferenceStats, Stamped, Worker};

/// SSD anchor centres (0–1) over square grids, row by row, `per_cell` anchors in each cell, for
/// each `(cells per side, per_cell)` in turn (MediaPipe's `SsdAnchorsCalculator` with fixed-size
/// anchors, layers sharing a grid folded into one entry).
pub(crate) fn ssd_anchor_centres(grids: &[(u32, usize)]) -> Vec<[f32; 2]> {
    let mut anchors = Vec::new();
    for &(cells, per_cell) in grids {
        for y in 0..cells {
            for x in 0..cells {
                let c = [(x as f32 + 0.5) / cells as f32, (y as f32 + 0.5) / cells as f32];
                anchors.extend(std::iter::repeat_n(c, per_cell));
            }
        }
    }
    anchors
}

/// The logistic function, its input clipped as MediaPipe clips scores.
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-100.0, 100.0)).exp())
}
