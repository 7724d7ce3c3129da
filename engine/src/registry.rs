//! The plugin registry: input, layer and sink kinds by name, so a scene file can name them and
//! Rust users can add their own.

use crate::gpu::{GpuContext, Pipelines};
use crate::layers::{ImageLayerKind, Layer, TextLayerKind, VectorLayerKind, VideoLayerKind};
use crate::scene::{from_value_at, KindCatalog, LayerSpec, Params, Scene, SceneError};
use crate::sinks::{PngSinkKind, Sink, SinkError, Y4mSinkKind};
use crate::sources::{Source, TestPatternKind, Y4mSourceKind};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What building an input or a layer may use.
#[derive(Clone, Copy)]
pub struct BuildContext<'a> {
    pub(crate) gpu: &'a GpuContext,
    pub(crate) pipelines: &'a Pipelines,
    /// The scene being built: its size, rate and `base_dir` for relative paths.
    pub scene: &'a Scene,
}

/// Building a validated input or layer failed (a file that cannot be opened, a GPU limit, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
#[non_exhaustive]
pub struct BuildError {
    /// What failed to build, e.g. an input or layer id.
    pub what: String,
    /// Why it failed.
    pub message: String,
}

impl BuildError {
    /// An error building `what`.
    pub fn new(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        BuildError { what: what.into(), message: message.to_string() }
    }
}

/// Parses a kind's parameters into its typed config; errors name the field.
pub fn parse_params<T: DeserializeOwned>(params: &Params) -> Result<T, SceneError> {
    from_value_at(serde_json::Value::Object(params.clone()), "")
}

/// A file path named in a scene (see `Registry::scene_paths`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenePath {
    /// JSON path of the field, e.g. `inputs.cam.path`.
    pub at: String,
    /// The path as written in the scene.
    pub path: String,
    /// True for outputs (files written), false for files read.
    pub written: bool,
}

/// An input kind (`inputs.*.kind`). The registry parses an input's parameters (everything but
/// `kind`) into `Config`, so errors name the field and a kind never parses JSON itself.
pub trait InputKind: Send + Sync {
    /// The parameters, e.g. a `#[derive(Deserialize)]` struct with `deny_unknown_fields`;
    /// [`NoParams`] for none.
    type Config: DeserializeOwned;
    /// The parameters that name files read, so a server can confine them (see
    /// `Registry::scene_paths`).
    fn path_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// True when building with `config` reads the scene's size or frame rate (a pattern at the
    /// scene's size, a file's timing tolerance): a scene update that changes them rebuilds it.
    fn depends_on_scene(&self, _config: &Self::Config) -> bool {
        false
    }
    /// Checks what parsing cannot (ranges, combinations); errors name the field.
    fn check(&self, _config: &Self::Config) -> Result<(), SceneError> {
        Ok(())
    }
    /// Builds the source for input `id` from checked parameters.
    fn build(&self, id: &str, config: Self::Config, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError>;
}

/// A layer kind (`layers[*].kind`). Its own parameters (the layer less the common fields `id`,
/// `kind`, `input`, `z`, `opacity`, `blend`, ...) are parsed into `Config`.
pub trait LayerKind: Send + Sync {
    /// The kind's parameters; [`NoParams`] for none.
    type Config: DeserializeOwned;
    /// Whether layers of this kind must name an `input`.
    fn needs_input(&self) -> bool;
    /// The parameters that name files read (see `InputKind::path_fields`).
    fn path_fields(&self) -> &'static [&'static str] {
        &[]
    }
    /// Checks what parsing cannot; errors name the field.
    fn check(&self, _config: &Self::Config) -> Result<(), SceneError> {
        Ok(())
    }
    /// Builds a layer from its spec (common fields) and checked parameters.
    fn build(
        &self,
        spec: &LayerSpec,
        config: Self::Config,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Layer>, BuildError>;
}

/// The parameters of a kind that takes none: any field is refused by name.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// The parameters of a sink kind that takes only where it writes (`path`).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathOnly {
    /// Where the output goes.
    pub path: std::path::PathBuf,
}

/// Where a sink writes and what it is asked to write.
#[derive(Clone, Debug)]
pub struct SinkTarget<'a> {
    /// The scene output's id (empty for `--output PATH`): what a WHEP output is found by.
    pub output: &'a str,
    /// Where the sink writes.
    pub path: &'a Path,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frame rate of the output.
    pub fps: crate::scene::Fps,
}

impl<'a> SinkTarget<'a> {
    /// A target for `scene`'s size and rate. (A YUV sink learns its colour space from the frames:
    /// `OutputFrame::color_space`.)
    pub fn for_scene(path: &'a Path, scene: &Scene) -> Self {
        SinkTarget { output: "", path, width: scene.width, height: scene.height, fps: scene.fps }
    }
}

/// A sink kind: chosen by name or by output file extension. The output's options, with the
/// path field (`path_param`) set to where it writes, are parsed into `Config`.
pub trait SinkKind: Send + Sync {
    /// The options, including the path field; [`PathOnly`] for none beyond it.
    type Config: DeserializeOwned;
    /// File extensions (lower case, no dot) this kind writes.
    fn extensions(&self) -> &[&str];
    /// URL schemes this kind sends to (`tcp` for `--output tcp://...`).
    fn schemes(&self) -> &[&str] {
        &[]
    }
    /// The scene field naming where the output goes (`path`, `dir` for HLS, `url` for network).
    fn path_param(&self) -> &'static str {
        "path"
    }
    /// False for kinds whose `path_param` is not a file (a URL): the server does not confine it.
    fn writes_files(&self) -> bool {
        true
    }
    /// False for kinds that need no `path_param` (a WHEP output is found by its output id).
    fn path_required(&self) -> bool {
        true
    }
    /// Checks what parsing cannot; errors name the field.
    fn check(&self, _config: &Self::Config) -> Result<(), SceneError> {
        Ok(())
    }
    /// One sink per readback the output needs (an HLS ladder has one per rendition).
    fn build(&self, target: &SinkTarget<'_>, config: Self::Config) -> Result<Vec<Box<dyn Sink>>, SinkError>;
}

/// The registry's view of an input kind: JSON parameters in, parsed once per call into the
/// kind's `Config`.
pub(crate) trait AnyInputKind: Send + Sync {
    fn path_fields(&self) -> &'static [&'static str];
    fn depends_on_scene(&self, params: &Params) -> bool;
    fn validate(&self, params: &Params) -> Result<(), SceneError>;
    fn build(&self, id: &str, params: &Params, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError>;
}

impl<K: InputKind> AnyInputKind for K {
    fn path_fields(&self) -> &'static [&'static str] {
        InputKind::path_fields(self)
    }
    fn depends_on_scene(&self, params: &Params) -> bool {
        // A scene that fails to parse was refused before it could run: nothing to rebuild.
        parse_params(params).is_ok_and(|c| InputKind::depends_on_scene(self, &c))
    }
    fn validate(&self, params: &Params) -> Result<(), SceneError> {
        InputKind::check(self, &parse_params(params)?)
    }
    fn build(&self, id: &str, params: &Params, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let config = parse_params(params).map_err(|e| BuildError::new(format!("inputs.{id}"), e))?;
        InputKind::build(self, id, config, ctx)
    }
}

/// The registry's view of a layer kind (see `AnyInputKind`).
pub(crate) trait AnyLayerKind: Send + Sync {
    fn needs_input(&self) -> bool;
    fn path_fields(&self) -> &'static [&'static str];
    fn validate(&self, params: &Params) -> Result<(), SceneError>;
    fn build(&self, spec: &LayerSpec, ctx: &BuildContext<'_>) -> Result<Box<dyn Layer>, BuildError>;
}

impl<K: LayerKind> AnyLayerKind for K {
    fn needs_input(&self) -> bool {
        LayerKind::needs_input(self)
    }
    fn path_fields(&self) -> &'static [&'static str] {
        LayerKind::path_fields(self)
    }
    fn validate(&self, params: &Params) -> Result<(), SceneError> {
        LayerKind::check(self, &parse_params(params)?)
    }
    fn build(&self, spec: &LayerSpec, ctx: &BuildContext<'_>) -> Result<Box<dyn Layer>, BuildError> {
        let config = parse_params(&spec.params).map_err(|e| BuildError::new(format!("layer {}", spec.id), e))?;
        LayerKind::build(self, spec, config, ctx)
    }
}

/// The registry's view of a sink kind (see `AnyInputKind`).
pub(crate) trait AnySinkKind: Send + Sync {
    fn extensions(&self) -> &[&str];
    fn schemes(&self) -> &[&str];
    fn path_param(&self) -> &'static str;
    fn writes_files(&self) -> bool;
    fn validate(&self, params: &Params) -> Result<(), SceneError>;
    /// `params` are the output's options less the path field, which `target.path` replaces.
    fn build(&self, target: &SinkTarget<'_>, params: &Params) -> Result<Vec<Box<dyn Sink>>, SinkError>;
}

impl<K: SinkKind> AnySinkKind for K {
    fn extensions(&self) -> &[&str] {
        SinkKind::extensions(self)
    }
    fn schemes(&self) -> &[&str] {
        SinkKind::schemes(self)
    }
    fn path_param(&self) -> &'static str {
        SinkKind::path_param(self)
    }
    fn writes_files(&self) -> bool {
        SinkKind::writes_files(self)
    }
    fn validate(&self, params: &Params) -> Result<(), SceneError> {
        let field = SinkKind::path_param(self);
        match params.get(field) {
            Some(serde_json::Value::String(p)) if !p.is_empty() => {}
            Some(_) => return Err(SceneError::new(field, "must be a non-empty string")),
            None if !SinkKind::path_required(self) => {}
            None => return Err(SceneError::new(".", format!("missing field `{field}`"))),
        }
        SinkKind::check(self, &parse_params(params)?)
    }
    fn build(&self, target: &SinkTarget<'_>, params: &Params) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        let mut params = params.clone();
        if SinkKind::path_required(self) || !target.path.as_os_str().is_empty() {
            let path = serde_json::Value::String(target.path.to_string_lossy().into_owned());
            params.insert(SinkKind::path_param(self).into(), path);
        }
        let config = parse_params(&params).map_err(|e| SinkError::Unsupported(e.to_string()))?;
        SinkKind::check(self, &config).map_err(|e| SinkError::Unsupported(e.to_string()))?;
        SinkKind::build(self, target, config)
    }
}

/// A sink built for a run, with the name it is reported under.
pub struct NamedSink {
    /// The name the sink is reported under.
    pub name: String,
    /// The sink itself.
    pub sink: Box<dyn Sink>,
}

/// All registered kinds. `Registry::default()` holds the built-in ones.
#[derive(Clone)]
pub struct Registry {
    inputs: BTreeMap<String, Arc<dyn AnyInputKind>>,
    layers: BTreeMap<String, Arc<dyn AnyLayerKind>>,
    sinks: BTreeMap<String, Arc<dyn AnySinkKind>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("inputs", &self.inputs.keys().collect::<Vec<_>>())
            .field("layers", &self.layers.keys().collect::<Vec<_>>())
            .field("sinks", &self.sinks.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Registry::empty();
        r.register_input("test_pattern", TestPatternKind);
        r.register_input("y4m", Y4mSourceKind);
        r.register_layer("video", VideoLayerKind);
        r.register_layer("image", ImageLayerKind);
        r.register_layer("text", TextLayerKind);
        r.register_layer("vector", VectorLayerKind);
        r.register_layer("mosaic", crate::layers::MosaicLayerKind);
        #[cfg(feature = "ml")]
        r.register_layer("faces", crate::layers::FacesLayerKind);
        #[cfg(feature = "ml")]
        r.register_layer("segment", crate::layers::SegmentLayerKind);
        #[cfg(feature = "ml")]
        r.register_layer("pose", crate::layers::PoseLayerKind);
        r.register_sink("y4m", Y4mSinkKind);
        r.register_input("network", crate::net::NetworkInputKind);
        r.register_sink("network", crate::net::NetworkOutputKind);
        r.register_sink("png", PngSinkKind);
        #[cfg(feature = "media")]
        {
            use crate::media::{
                CameraKind, EncodedFileKind, FileSourceKind, HlsKind, RtmpOutputKind, RtpInputKind, RtpOutputKind,
                RtspOutputKind, ScreenKind, SrtInputKind, SrtOutputKind,
            };
            r.register_input("file", FileSourceKind);
            r.register_input("camera", CameraKind);
            r.register_input("screen", ScreenKind);
            r.register_input("live_test", crate::media::LiveTestKind);
            r.register_input("srt", SrtInputKind);
            r.register_input("rtp", RtpInputKind);
            r.register_sink("file", EncodedFileKind);
            r.register_sink("hls", HlsKind);
            r.register_sink("srt", SrtOutputKind);
            r.register_sink("rtp", RtpOutputKind);
            r.register_sink("rtmp", RtmpOutputKind);
            r.register_sink("rtsp", RtspOutputKind);
        }
        r
    }
}

impl Registry {
    /// A registry with no kinds registered.
    pub fn empty() -> Self {
        Registry { inputs: BTreeMap::new(), layers: BTreeMap::new(), sinks: BTreeMap::new() }
    }

    /// Registers (or replaces) an input kind.
    pub fn register_input(&mut self, name: &str, kind: impl InputKind + 'static) {
        self.inputs.insert(name.to_string(), Arc::new(kind));
    }

    /// Registers (or replaces) a layer kind.
    pub fn register_layer(&mut self, name: &str, kind: impl LayerKind + 'static) {
        self.layers.insert(name.to_string(), Arc::new(kind));
    }

    /// Registers (or replaces) a sink kind.
    pub fn register_sink(&mut self, name: &str, kind: impl SinkKind + 'static) {
        self.sinks.insert(name.to_string(), Arc::new(kind));
    }

    /// The input kind registered under `name`.
    pub(crate) fn input(&self, name: &str) -> Option<&Arc<dyn AnyInputKind>> {
        self.inputs.get(name)
    }

    /// The layer kind registered under `name`.
    pub(crate) fn layer(&self, name: &str) -> Option<&Arc<dyn AnyLayerKind>> {
        self.layers.get(name)
    }

    /// The sink kind registered under `name`.
    pub(crate) fn sink(&self, name: &str) -> Option<&Arc<dyn AnySinkKind>> {
        self.sinks.get(name)
    }

    /// Every file path a parsed scene names, with its JSON path and whether it is written (an
    /// output) or read, from the fields each kind declares. Paths that are not strings were
    /// refused by validation.
    pub fn scene_paths(&self, scene: &Scene) -> Vec<ScenePath> {
        let mut paths = Vec::new();
        let mut push = |at: String, params: &Params, field: &str, written: bool| {
            if let Some(serde_json::Value::String(p)) = params.get(field) {
                paths.push(ScenePath { at: format!("{at}.{field}"), path: p.clone(), written });
            }
        };
        for (id, input) in &scene.inputs {
            for field in self.input(&input.kind).map_or(&[][..], |k| k.path_fields()) {
                push(format!("inputs.{id}"), &input.params, field, false);
            }
        }
        for (i, layer) in scene.layers.iter().enumerate() {
            for field in self.layer(&layer.kind).map_or(&[][..], |k| k.path_fields()) {
                push(format!("layers[{i}]"), &layer.params, field, false);
            }
        }
        for (i, output) in scene.outputs.iter().enumerate() {
            if let Some(kind) = self.sink(&output.kind).filter(|k| k.writes_files()) {
                push(format!("outputs[{i}]"), &output.params, kind.path_param(), true);
            }
        }
        paths
    }

    /// The sink kind that writes files with `path`'s extension, or sends to its URL scheme.
    pub(crate) fn sink_for_path(&self, path: &Path) -> Result<&Arc<dyn AnySinkKind>, SinkError> {
        if let Some((scheme, _)) = path.to_str().and_then(|p| p.split_once("://")) {
            return self
                .sinks
                .values()
                .find(|k| k.schemes().contains(&scheme))
                .ok_or_else(|| SinkError::Unsupported(format!("no output kind sends to {scheme}:// URLs")));
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).unwrap_or_default();
        self.sinks.values().find(|k| k.extensions().contains(&ext.as_str())).ok_or_else(|| {
            let known: Vec<&str> = self.sinks.values().flat_map(|k| k.extensions().iter().copied()).collect();
            SinkError::Unsupported(format!(
                "no output kind writes {:?} files (known extensions: {})",
                ext,
                known.join(", ")
            ))
        })
    }

    /// Sinks for `--output PATH`, chosen by its extension.
    pub fn open_output(&self, path: &Path, scene: &Scene) -> Result<Vec<NamedSink>, SinkError> {
        let sinks = self.sink_for_path(path)?.build(&SinkTarget::for_scene(path, scene), &Params::new())?;
        Ok(name_sinks(&path.display().to_string(), sinks))
    }

    /// Sinks for every entry of the scene's `outputs`. `place` turns each output's path into
    /// the one written (relative to the working directory for the CLI; confined under a media
    /// root for the server) or refuses it.
    pub fn open_scene_outputs(
        &self,
        scene: &Scene,
        place: impl Fn(&Path) -> Result<std::path::PathBuf, SinkError>,
    ) -> Result<Vec<NamedSink>, SinkError> {
        let mut all = Vec::new();
        for output in &scene.outputs {
            all.extend(self.open_scene_output(scene, output, &place)?);
        }
        Ok(all)
    }

    /// Sinks for one entry of a scene's `outputs` (see `open_scene_outputs`).
    pub fn open_scene_output(
        &self,
        scene: &Scene,
        output: &crate::scene::OutputSpec,
        place: impl Fn(&Path) -> Result<std::path::PathBuf, SinkError>,
    ) -> Result<Vec<NamedSink>, SinkError> {
        let id = &output.id;
        let kind = self
            .sink(&output.kind)
            .ok_or_else(|| SinkError::Unsupported(format!("output {id}: unknown kind {:?}", output.kind)))?;
        let field = kind.path_param();
        let raw = output.params.get(field).and_then(|v| v.as_str()).unwrap_or_default();
        // A URL is not a file: nothing to place or confine.
        let path = if kind.writes_files() { place(Path::new(raw))? } else { Path::new(raw).to_path_buf() };
        let mut params = output.params.clone();
        params.remove(field);
        let sinks = kind.build(&SinkTarget { output: id, ..SinkTarget::for_scene(&path, scene) }, &params).map_err(
            |e| match e {
                SinkError::Unsupported(m) => SinkError::Unsupported(format!("output {id}: {m}")),
                other => other,
            },
        )?;
        Ok(name_sinks(&format!("{id} {}", path.display()), sinks))
    }

    /// Parses and validates a scene against the registered kinds.
    pub fn parse_scene(&self, json: &str) -> Result<Scene, SceneError> {
        Scene::from_json(json, self)
    }
}

impl KindCatalog for Registry {
    fn check_input(&self, kind: &str, params: &Params) -> Option<Result<(), SceneError>> {
        self.inputs.get(kind).map(|k| k.validate(params))
    }

    fn check_layer(&self, kind: &str, params: &Params) -> Option<Result<bool, SceneError>> {
        self.layers.get(kind).map(|k| k.validate(params).map(|()| k.needs_input()))
    }

    fn check_output(&self, kind: &str, params: &Params) -> Option<Result<(), SceneError>> {
        self.sinks.get(kind).map(|k| k.validate(params))
    }

    fn input_kinds(&self) -> Vec<String> {
        self.inputs.keys().cloned().collect()
    }

    fn output_kinds(&self) -> Vec<String> {
        self.sinks.keys().cloned().collect()
    }

    fn layer_kinds(&self) -> Vec<String> {
        self.layers.keys().cloned().collect()
    }
}

/// Names several sinks of one output apart (`name`, or `name [WxH]` for each rendition).
fn name_sinks(name: &str, sinks: Vec<Box<dyn Sink>>) -> Vec<NamedSink> {
    let several = sinks.len() > 1;
    sinks
        .into_iter()
        .map(|sink| {
            let name = match sink.size() {
                Some((w, h)) if several => format!("{name} [{w}x{h}]"),
                _ => name.to_string(),
            };
            NamedSink { name, sink }
        })
        .collect()
}
