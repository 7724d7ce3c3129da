//! The scene: pure data describing what to composite. No GPU types live here, so the scene and its
//! validation are tested on the CPU and shared by the CLI, the server and the benchmarks.

mod color;
mod fps;
mod sync;

pub use color::{Color, ColorParseError};
pub use fps::Fps;
pub use sync::{InputSyncSpec, SceneSync, MAX_LATENCY_MS, MAX_OFFSET_MS};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};

/// Largest output side we accept; real adapters top out at 8192 or 16384.
pub const MAX_DIMENSION: u32 = 16384;
/// Largest output (and generated input) area: 8K UHD fits. A frame costs 4 bytes a pixel on the
/// GPU and again per readback in flight; 16384x16384 made one snapshot peak at 5.4 GB.
pub const MAX_PIXELS: u64 = 8192 * 4320;
/// Most inputs, layers and outputs a scene may have. Each input and layer holds GPU textures;
/// a 450 000-layer scene took 5 GB before it rendered a frame.
pub const MAX_INPUTS: usize = 64;
/// Most layers a scene may have.
pub const MAX_LAYERS: usize = 256;
/// Most outputs a scene may have.
pub const MAX_OUTPUTS: usize = 16;

/// `width` x `height` within the side and area limits, or why not.
pub(crate) fn check_size(width: u32, height: u32) -> Result<(), String> {
    for v in [width, height] {
        if v == 0 || v > MAX_DIMENSION {
            return Err(format!("{v} is not in 1..={MAX_DIMENSION}"));
        }
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(format!("{width}x{height} is over the limit of {MAX_PIXELS} pixels (8192x4320)"));
    }
    Ok(())
}

/// A JSON object of kind-specific parameters, validated by the kind's registry entry.
pub type Params = Map<String, Value>;

/// How a layer's premultiplied colour combines with what is below it. The maths works on the
/// encoded (non-linear) 8-bit values, as GStreamer's `compositor` and OBS do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlendMode {
    /// src·α + dst·(1−α)
    #[default]
    Normal,
    /// src·α + dst (clamped)
    Add,
    /// src·dst + src·(1−αd) + dst·(1−αs), the premultiplied form of multiply
    Multiply,
    /// src + dst − src·dst
    Screen,
}

impl BlendMode {
    /// Every blend mode, in declaration order.
    pub const ALL: [BlendMode; 4] = [Self::Normal, Self::Add, Self::Multiply, Self::Screen];

    /// The mode's name as written in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Add => "add",
            Self::Multiply => "multiply",
            Self::Screen => "screen",
        }
    }
}

/// An axis-aligned rectangle in pixels, written `[x, y, w, h]` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "[f32; 4]", into = "[f32; 4]")]
pub struct Rect {
    /// Left edge in pixels.
    pub x: f32,
    /// Top edge in pixels.
    pub y: f32,
    /// Width in pixels.
    pub w: f32,
    /// Height in pixels.
    pub h: f32,
}

impl Rect {
    /// A rectangle with its top-left at (x, y), `w` x `h` pixels.
    pub const fn new(x: f32, y: f32, w: f32, h: f32) -> Self {
        Rect { x, y, w, h }
    }

    fn is_valid(&self) -> bool {
        [self.x, self.y, self.w, self.h].iter().all(|v| v.is_finite()) && self.w > 0.0 && self.h > 0.0
    }
}

impl From<[f32; 4]> for Rect {
    fn from([x, y, w, h]: [f32; 4]) -> Self {
        Rect { x, y, w, h }
    }
}

impl From<Rect> for [f32; 4] {
    fn from(r: Rect) -> Self {
        [r.x, r.y, r.w, r.h]
    }
}

/// One input: a source of frames, named by its id in `Scene::inputs`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InputSpec {
    /// The registered input kind, e.g. `test_pattern`.
    pub kind: String,
    /// Everything but `kind` and `sync`, validated by the registered kind.
    #[serde(flatten)]
    pub params: Params,
    /// How the input joins the output's timeline (live inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<InputSyncSpec>,
}

impl InputSpec {
    /// How the synchronizer treats this input (the defaults when `sync` is absent).
    pub fn sync_policy(&self) -> crate::timing::SyncPolicy {
        self.sync.clone().unwrap_or_default().policy()
    }
}

/// One output of the scene (`outputs[i]`): a sink kind and its options, validated by the kind.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutputSpec {
    /// Names the output for updates (`output0`, `output1`, … when not given).
    pub id: String,
    /// The registered output (sink) kind, e.g. `y4m`.
    pub kind: String,
    /// Everything but `kind` and `id`, validated by the registered kind.
    #[serde(flatten)]
    pub params: Params,
}

/// One layer: something drawn into the output, with the fields every kind shares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Unique layer id: 1-64 characters of A-Z, a-z, 0-9, `_` or `-`.
    pub id: String,
    /// The registered layer kind, e.g. `video`.
    pub kind: String,
    /// Id of the input this layer draws, from `Scene::inputs`; kinds that need one require it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Stacking order: higher `z` is drawn later (on top); equal `z` keeps file order.
    #[serde(default)]
    pub z: i32,
    /// Opacity in 0..=1; 1 when absent.
    #[serde(default = "one")]
    pub opacity: f32,
    /// How the layer combines with what is below it; `normal` when absent.
    #[serde(default)]
    pub blend: BlendMode,
    /// Whether the layer is drawn; true when absent.
    #[serde(default = "yes")]
    pub visible: bool,
    /// Destination in output pixels; the whole frame when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rect: Option<Rect>,
    /// Source region in input pixels; the whole input when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<Rect>,
    /// Kind-specific fields, validated by the registered kind.
    #[serde(flatten, default, skip_deserializing)]
    pub params: Params,
}

fn one() -> f32 {
    1.0
}
fn yes() -> bool {
    true
}

/// The field names `LayerSpec` itself owns; all others belong to the layer's kind.
const COMMON_LAYER_FIELDS: &[&str] = &["id", "kind", "input", "z", "opacity", "blend", "visible", "rect", "crop"];

/// A whole composition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Scene {
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// Output frame rate.
    pub fps: Fps,
    /// Background colour under all layers.
    pub background: Color,
    /// Inputs by id.
    pub inputs: BTreeMap<String, InputSpec>,
    /// Layers in file order (see `draw_order` for the drawing order).
    pub layers: Vec<LayerSpec>,
    /// Where the composition goes besides `--output` (encoded files, HLS, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputSpec>,
    /// How live inputs are aligned (the latency budget).
    #[serde(default, skip_serializing_if = "SceneSync::is_default")]
    pub sync: SceneSync,
    /// Directory that relative file paths in the scene are resolved against (the scene file's
    /// directory when loaded from a file); the working directory when `None`.
    #[serde(skip)]
    pub base_dir: Option<std::path::PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScene {
    width: u32,
    height: u32,
    #[serde(default = "Fps::default")]
    fps: Fps,
    #[serde(default = "black")]
    background: Color,
    #[serde(default)]
    inputs: BTreeMap<String, Map<String, Value>>,
    #[serde(default)]
    layers: Vec<Map<String, Value>>,
    #[serde(default)]
    outputs: Vec<Map<String, Value>>,
    #[serde(default)]
    sync: SceneSync,
}

fn black() -> Color {
    Color::BLACK
}

/// A rejected scene: the JSON path of the offending value and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {message}")]
#[non_exhaustive]
pub struct SceneError {
    /// Dotted JSON path, e.g. `layers[2].opacity` (`.` for the document itself).
    pub path: String,
    /// What is wrong with the value.
    pub message: String,
}

impl SceneError {
    /// An error at `path`; an empty path stands for the document itself (`.`).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        let path = path.into();
        SceneError { path: if path.is_empty() { ".".into() } else { path }, message: message.into() }
    }
}

/// What a scene needs to know about registered kinds to validate their parameters. The plugin
/// registry implements it; tests may use a stub.
pub trait KindCatalog {
    /// `None` when no input kind of that name is registered.
    fn check_input(&self, kind: &str, params: &Params) -> Option<Result<(), SceneError>>;
    /// `None` when no layer kind of that name is registered; `Some(Ok(needs_input))` otherwise.
    fn check_layer(&self, kind: &str, params: &Params) -> Option<Result<bool, SceneError>>;
    /// Names of the registered input kinds.
    fn input_kinds(&self) -> Vec<String>;
    /// Names of the registered layer kinds.
    fn layer_kinds(&self) -> Vec<String>;
    /// `None` when no output kind of that name is registered.
    fn check_output(&self, _kind: &str, _params: &Params) -> Option<Result<(), SceneError>> {
        None
    }
    /// Names of the registered output kinds; none by default.
    fn output_kinds(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Deserializes `value` into `T`, reporting the path of a failure below `prefix`.
pub(crate) fn from_value_at<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, SceneError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = join_path(prefix, if inner == "." { "" } else { &inner });
        SceneError::new(path, e.into_inner().to_string())
    })
}

/// What kind of JSON value `v` is, for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn join_path(prefix: &str, inner: &str) -> String {
    match (prefix.is_empty(), inner.is_empty()) {
        (true, _) => inner.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if inner.starts_with('[') => format!("{prefix}{inner}"),
        (false, false) => format!("{prefix}.{inner}"),
    }
}

impl Scene {
    /// Parses and validates a scene document. Every failure names the JSON path at fault.
    pub fn from_json(text: &str, kinds: &dyn KindCatalog) -> Result<Scene, SceneError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            SceneError::new(".", format!("invalid JSON at line {} column {}: {e}", e.line(), e.column()))
        })?;
        Self::from_value(value, kinds)
    }

    /// Parses and validates a scene from an already parsed JSON value (see `from_json`).
    pub fn from_value(value: Value, kinds: &dyn KindCatalog) -> Result<Scene, SceneError> {
        // serde takes a struct from a JSON array too (`[320, 180]`); a scene is an object.
        if !value.is_object() {
            return Err(SceneError::new(".", format!("a scene is a JSON object, not {}", json_kind(&value))));
        }
        let raw: RawScene = from_value_at(value, "")?;
        let mut inputs = BTreeMap::new();
        for (id, mut obj) in raw.inputs {
            let path = format!("inputs.{id}");
            let kind = match obj.remove("kind") {
                Some(Value::String(k)) => k,
                Some(_) => return Err(SceneError::new(format!("{path}.kind"), "must be a string")),
                None => return Err(SceneError::new(path, "missing field `kind`")),
            };
            let sync = match obj.remove("sync") {
                Some(v) => Some(from_value_at(v, &format!("{path}.sync"))?),
                None => None,
            };
            inputs.insert(id, InputSpec { kind, params: obj, sync });
        }
        let mut layers = Vec::with_capacity(raw.layers.len());
        for (i, obj) in raw.layers.into_iter().enumerate() {
            let (common, params): (Map<_, _>, Map<_, _>) =
                obj.into_iter().partition(|(k, _)| COMMON_LAYER_FIELDS.contains(&k.as_str()));
            let mut layer: LayerSpec = from_value_at(Value::Object(common), &format!("layers[{i}]"))?;
            layer.params = params;
            layers.push(layer);
        }
        let mut outputs = Vec::with_capacity(raw.outputs.len());
        for (i, mut obj) in raw.outputs.into_iter().enumerate() {
            let kind = match obj.remove("kind") {
                Some(Value::String(k)) => k,
                Some(_) => return Err(SceneError::new(format!("outputs[{i}].kind"), "must be a string")),
                None => return Err(SceneError::new(format!("outputs[{i}]"), "missing field `kind`")),
            };
            let id = match obj.remove("id") {
                Some(Value::String(id)) => id,
                Some(_) => return Err(SceneError::new(format!("outputs[{i}].id"), "must be a string")),
                None => format!("output{i}"),
            };
            outputs.push(OutputSpec { id, kind, params: obj });
        }
        let scene = Scene {
            outputs,
            width: raw.width,
            height: raw.height,
            fps: raw.fps,
            background: raw.background,
            inputs,
            layers,
            sync: raw.sync,
            base_dir: None,
        };
        scene.validate(kinds)?;
        Ok(scene)
    }

    /// Checks everything the types alone cannot: sizes, ranges, unique ids, references, and each
    /// kind's own parameters.
    pub fn validate(&self, kinds: &dyn KindCatalog) -> Result<(), SceneError> {
        for (field, v) in [("width", self.width), ("height", self.height)] {
            if v == 0 || v > MAX_DIMENSION {
                return Err(SceneError::new(field, format!("{v} is not in 1..={MAX_DIMENSION}")));
            }
        }
        check_size(self.width, self.height).map_err(|m| SceneError::new("width", m))?;
        for (field, n, max) in [
            ("inputs", self.inputs.len(), MAX_INPUTS),
            ("layers", self.layers.len(), MAX_LAYERS),
            ("outputs", self.outputs.len(), MAX_OUTPUTS),
        ] {
            if n > max {
                return Err(SceneError::new(field, format!("{n} {field}; a scene may have at most {max}")));
            }
        }
        self.fps.validate().map_err(|m| SceneError::new("fps", m))?;
        self.sync.check()?;
        for (id, input) in &self.inputs {
            let path = format!("inputs.{id}");
            check_id(id).map_err(|m| SceneError::new(&path, m))?;
            if let Some(sync) = &input.sync {
                sync.check(&path)?;
            }
            kind_checked(&path, "input", &input.kind, kinds.check_input(&input.kind, &input.params), || {
                kinds.input_kinds()
            })?;
        }
        let mut output_ids = HashSet::new();
        for (i, output) in self.outputs.iter().enumerate() {
            let path = format!("outputs[{i}]");
            check_id(&output.id).map_err(|m| SceneError::new(format!("{path}.id"), m))?;
            if !output_ids.insert(output.id.as_str()) {
                return Err(SceneError::new(format!("{path}.id"), format!("duplicate output id {:?}", output.id)));
            }
            kind_checked(&path, "output", &output.kind, kinds.check_output(&output.kind, &output.params), || {
                kinds.output_kinds()
            })?;
        }
        let mut seen = HashSet::new();
        for (i, layer) in self.layers.iter().enumerate() {
            let path = format!("layers[{i}]");
            check_id(&layer.id).map_err(|m| SceneError::new(format!("{path}.id"), m))?;
            if !seen.insert(layer.id.as_str()) {
                return Err(SceneError::new(format!("{path}.id"), format!("duplicate layer id {:?}", layer.id)));
            }
            if !(0.0..=1.0).contains(&layer.opacity) {
                return Err(SceneError::new(format!("{path}.opacity"), format!("{} is not in 0..=1", layer.opacity)));
            }
            for (name, rect) in [("rect", layer.rect), ("crop", layer.crop)] {
                if let Some(r) = rect.filter(|r| !r.is_valid()) {
                    return Err(SceneError::new(
                        format!("{path}.{name}"),
                        format!("{:?} must be finite with positive width and height", <[f32; 4]>::from(r)),
                    ));
                }
            }
            let needs_input = match kinds.check_layer(&layer.kind, &layer.params) {
                None => {
                    return Err(SceneError::new(
                        format!("{path}.kind"),
                        format!("unknown layer kind {:?} (known: {})", layer.kind, kinds.layer_kinds().join(", ")),
                    ))
                }
                Some(r) => r.map_err(|e| SceneError::new(join_path(&path, trim_root(&e.path)), e.message))?,
            };
            match (&layer.input, needs_input) {
                (Some(input), _) if !self.inputs.contains_key(input) => {
                    return Err(SceneError::new(
                        format!("{path}.input"),
                        format!("no input named {input:?} in `inputs`"),
                    ))
                }
                (None, true) => {
                    return Err(SceneError::new(&path, format!("a {:?} layer needs an `input`", layer.kind)))
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `path` as the scene means it: relative paths are taken from `base_dir`.
    pub fn resolve_path(&self, path: &std::path::Path) -> std::path::PathBuf {
        match &self.base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path.to_path_buf(),
        }
    }

    /// Layers in drawing order: by `z`, and in file order for equal `z`.
    pub fn draw_order(&self) -> Vec<&LayerSpec> {
        let mut layers: Vec<&LayerSpec> = self.layers.iter().collect();
        layers.sort_by_key(|l| l.z); // stable sort keeps file order for equal z
        layers
    }

    /// The scene as pretty-printed JSON.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// A kind's verdict on its parameters, with paths below `path`; an unknown kind lists the known.
fn kind_checked<T>(
    path: &str,
    what: &str,
    kind: &str,
    verdict: Option<Result<T, SceneError>>,
    known: impl FnOnce() -> Vec<String>,
) -> Result<T, SceneError> {
    match verdict {
        None => Err(SceneError::new(
            format!("{path}.kind"),
            format!("unknown {what} kind {kind:?} (known: {})", known().join(", ")),
        )),
        Some(r) => r.map_err(|e| SceneError::new(join_path(path, trim_root(&e.path)), e.message)),
    }
}

fn trim_root(path: &str) -> &str {
    if path == "." {
        ""
    } else {
        path
    }
}

fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(format!("id {id:?} must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'"))
    }
}

#[cfg(test)]
mod tests;
