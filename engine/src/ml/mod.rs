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
