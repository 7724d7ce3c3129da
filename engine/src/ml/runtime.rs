//! ONNX Runtime, loaded once from its shared library, and models opened from the ML directory.
//!
//! Where things are found: the library at `ORT_DYLIB_PATH`, else
//! `$STREAMLIB_ML_DIR/lib/libonnxruntime.so.1.31.1`; models under `$STREAMLIB_ML_DIR/models/`.
//! `STREAMLIB_ML_DIR` defaults to the checkout's `.ml/`, where `scripts/ml/fetch.py` (run by
//! `scripts/setup.sh`) puts them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version the `api-31` bindings need.
pub const ORT_LIBRARY: &str = "libonnxruntime.so.1.31.1";

/// Why a model cannot run; the layer draws its input without it and says this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MlError {
    /// ONNX Runtime's library is missing or does not load.
    #[error(
        "ONNX Runtime is not available: {0} (run `python3 scripts/ml/fetch.py` or set ORT_DYLIB_PATH to {ORT_LIBRARY})"
    )]
    Runtime(String),
    /// The model file is missing or ONNX Runtime refuses it.
    #[error("model {path}: {message}")]
    Model {
        /// The model file.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// Running the model failed.
    #[error("inference: {0}")]
    Inference(String),
}

/// The directory holding `lib/` and `models/`.
pub fn ml_dir() -> PathBuf {
    match std::env::var_os("STREAMLIB_ML_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.ml"),
    }
}

/// A model file by name under the ML directory's `models/`.
pub fn model_path(file: &str) -> PathBuf {
    ml_dir().join("models").join(file)
}

fn library_path() -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) => PathBuf::from(path),
        None => ml_dir().join("lib").join(ORT_LIBRARY),
    }
}

/// The process's ONNX Runtime environment, loaded on first use.
fn environment() -> Result<&'static ort::environment::Environment, MlError> {
    static ENVIRONMENT: OnceLock<Result<ort::environment::Environment, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let path = library_path();
            if !path.is_file() {
                return Err(format!("{} does not exist", path.display()));
            }
            let builder = ort::init_from(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            builder.with_name("streamlib").build().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| MlError::Runtime(e.clone()))
}

/// One output of a run: its shape and its values.
pub type OutputTensor = (Vec<usize>, Vec<f32>);

/// An opened model: one session, on the best execution provider the loaded ONNX Runtime has
/// (`providers`), run on one CPU thread (intra-op 1: the compositor and encoders need the other
/// cores).
pub struct Model {
    session: ort::session::Session,
    path: PathBuf,
    provider: &'static str,
}

/// The execution provider choice of `Model::open`: `STREAMLIB_ML_PROVIDER`, `auto` when unset.
pub fn provider_choice() -> String {
    std::env::var("STREAMLIB_ML_PROVIDER").unwrap_or_else(|_| "auto".into())
}

/// The execution providers a session asks for, best first, and the name of the first, for
/// `choice`: `auto` (TensorRT, then CUDA, where the loaded ONNX Runtime has them, else the CPU),
/// `cpu`, `cuda` or `tensorrt` (then an error when it cannot be had).
fn providers(choice: &str) -> Result<(Vec<ort::ep::ExecutionProviderDispatch>, &'static str), String> {
    use ort::ep::{ExecutionProvider, TensorRT, CUDA};
    Ok(match choice {
        "auto" => {
            let mut eps = Vec::new();
            let mut first = "CPU";
            if TensorRT::is_available().unwrap_or(false) {
                eps.push(TensorRT::default().build());
                first = "TensorRT";
            }
            if CUDA::is_available().unwrap_or(false) {
                eps.push(CUDA::default().build());
                if first == "CPU" {
                    first = "CUDA";
                }
            }
            (eps, first)
        }
        "cpu" => (Vec::new(), "CPU"),
        "cuda" => (vec![CUDA::default().build().error_on_failure()], "CUDA"),
        "tensorrt" => (vec![TensorRT::default().build().error_on_failure()], "TensorRT"),
        other => return Err(format!("STREAMLIB_ML_PROVIDER={other:?}: use auto, cpu, cuda or tensorrt")),
    })
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model").field("path", &self.path).finish()
    }
}

impl Model {
    /// Opens `path` on the provider `STREAMLIB_ML_PROVIDER` picks (see `open_on`).
    pub fn open(path: &Path) -> Result<Self, MlError> {
        Self::open_on(path, &provider_choice())
    }

    /// Opens `path` on the execution provider `choice` (`auto`, `cpu`, `cuda`, `tensorrt`).
    pub fn open_on(path: &Path, choice: &str) -> Result<Self, MlError> {
        let env = environment()?;
        let model_error = |message: String| MlError::Model { path: path.display().to_string(), message };
        if !path.is_file() {
            return Err(model_error("not found (run `python3 scripts/ml/fetch.py`)".into()));
        }
        let (eps, provider) = providers(choice).map_err(&model_error)?;
        let session = ort::session::Session::builder(env)
            .map_err(|e| model_error(e.to_string()))?
            .with_execution_providers(eps)
            .map_err(|e| model_error(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| model_error(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| model_error(e.to_string()))?
            .commit_from_file(path)
            .map_err(|e| model_error(e.to_string()))?;
        // `auto` falls back to the CPU, silently, when a provider the library lists cannot be
        // registered (no GPU, missing CUDA libraries): this is what was asked for first.
        tracing::info!("{}: ONNX Runtime, {provider} asked for first", path.display());
        Ok(Model { session, path: path.to_path_buf(), provider })
    }

    /// The execution provider asked for first (`CPU`, `CUDA`, `TensorRT`); with `auto`, ONNX
    /// Runtime falls back to the CPU if it cannot register it.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// The names of the model's first input and first output.
    pub fn first_names(&self) -> (String, String) {
        let first = |outlets: &[ort::value::Outlet]| outlets.first().map_or(String::new(), |o| o.name().to_string());
        (first(self.session.inputs()), first(self.session.outputs()))
    }

    /// The names of the model's outputs, in order.
    pub fn output_names(&self) -> Vec<String> {
        self.session.outputs().iter().map(|o| o.name().to_string()).collect()
    }

    /// Runs the model on one f32 tensor of `shape` (NCHW or NHWC, as the model takes it) and returns the named outputs as (shape, data).
    pub fn run(
        &mut self,
        input: &str,
        shape: [usize; 4],
        data: Vec<f32>,
        outputs: &[&str],
    ) -> Result<Vec<OutputTensor>, MlError> {
        let err = |e: ort::Error| MlError::Inference(e.to_string());
        let tensor = ort::value::Tensor::from_array((shape.map(|d| d as i64), data)).map_err(err)?;
        let results = self.session.run(ort::inputs![input => tensor]).map_err(err)?;
        outputs
            .iter()
            .map(|name| {
                let value = results.get(name).ok_or_else(|| MlError::Inference(format!("no output {name:?}")))?;
                let (shape, data) = value.try_extract_tensor::<f32>().map_err(err)?;
                Ok((shape.iter().map(|&d| d.max(0) as usize).collect(), data.to_vec()))
            })
            .collect()
    }
}
