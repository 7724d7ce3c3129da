//! The server's render thread: owns the GPU, the engine and the sinks; applies updates between
//! frames, in the order they arrive, so concurrent requests never lose a write and a rejected
//! update leaves the running scene untouched.

use crossbeam_channel::{Receiver, RecvTimeoutError};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamlib::registry::NamedSink;
use streamlib::scene::OutputSpec;
use streamlib::{
    Backpressure, Engine, FrameReport, GpuContext, OutputFrame, Pacing, Pipeline, PixelFormat, Readback, Registry,
    Scene, SinkError, SinkHandle,
};
use tokio::sync::{broadcast, oneshot};

/// An API error: HTTP status, the JSON path at fault (when there is one) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub path: Option<String>,
    pub message: String,
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError { status, path: None, message: message.into() }
    }

    pub fn at(status: u16, path: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError { status, path: Some(path.into()), message: message.into() }
    }
}

/// A scene the engine could not build: the client's fault (422) unless the GPU failed.
impl From<streamlib::EngineError> for ApiError {
    fn from(e: streamlib::EngineError) -> Self {
        use streamlib::{EngineError, GpuError};
        let status = match &e {
            EngineError::Gpu(GpuError::TooLarge { .. }) => 422,
            EngineError::Gpu(GpuError::OutOfMemory { .. }) => 503,
            EngineError::Gpu(_) => 500,
            _ => 422,
        };
        ApiError::new(status, e.to_string())
    }
}

/// An output that cannot be opened: a path or option the client chose (422), or the machine
/// (an encoder that would not start: 500).
fn output_error(id: &str, e: SinkError) -> ApiError {
    let status = match &e {
        SinkError::Io { .. } | SinkError::Unsupported(_) => 422,
        _ => 500,
    };
    ApiError::at(status, format!("outputs.{id}"), e.to_string())
}

/// A change to the running scene.
#[derive(Debug)]
pub enum Update {
    SetScene(Value),
    PatchLayer { id: String, patch: Map<String, Value> },
    AddLayer(Value),
    RemoveLayer(String),
    AddInput { id: String, spec: Value },
    RemoveInput(String),
    AddOutput(Value),
    RemoveOutput(String),
}

/// What an accepted update did.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct Applied {
    /// Counts accepted updates; the scene `GET /scene` returns carries the latest.
    pub revision: u64,
    /// The first output frame rendered with it.
    pub frame: u64,
}

/// Where the render thread answers an update.
pub type UpdateReply = oneshot::Sender<Result<Applied, ApiError>>;

pub enum Command {
    Update { update: Update, at_pts_ns: Option<u64>, reply: UpdateReply },
    Snapshot { reply: oneshot::Sender<Result<OutputFrame, ApiError>> },
}

/// What the API reads without asking the render thread.
#[derive(Debug, Default)]
pub struct Status {
    pub scene: Option<Value>,
    pub revision: u64,
    pub frames: u64,
    pub fps: f64,
    pub missed_ticks: u64,
    pub stage_seconds: [f64; 4],
    pub sinks: Vec<SinkStatus>,
    /// Live inputs (network, camera): state and link counters.
    pub inputs: Vec<InputStatus>,
    /// Figures of layers that keep some (ML layers: inference time, result age, skips).
    pub layers: Vec<(String, Vec<(&'static str, f64)>)>,
    /// What layers found in the last frame (ML layers: faces, a person), by layer id.
    pub detections: Vec<(String, Vec<streamlib::metadata::Detection>)>,
    /// The pacing clock's state and figures.
    pub clock: Option<streamlib::timing::ClockStatus>,
    /// The output's ticks: lateness, missed, re-anchorings.
    pub ticks: Option<streamlib::TickStats>,
    /// The live inputs' synchronizer counts, by input id.
    pub sync: Vec<(String, streamlib::timing::SyncStats)>,
    /// The spread of the capture times of the live frames shown at one tick.
    pub spread: streamlib::timing::Summary,
    /// The scene's latency budget (`sync.latency_ms`), when it aligns live inputs.
    pub latency_ms: Option<f64>,
    pub input_errors: u64,
    pub layer_errors: u64,
    pub updates_rejected: u64,
    pub adapter: String,
    /// Why the server cannot render (no GPU, the render thread stopped); `/health` is 503 then.
    pub render_error: Option<String>,
    /// Panics caught on the render thread (a bug each): in updates, frames and sinks.
    pub panics: u64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct SinkStatus {
    pub output: String,
    pub name: String,
    pub written: u64,
    pub dropped: u64,
    pub queue: usize,
    pub error: Option<String>,
    /// The sink's own counters (a network output's receivers, resends, ...).
    pub counters: std::collections::BTreeMap<&'static str, u64>,
}

/// Turns link counters into news: a live input or a reconnecting output that fails is an
/// `input_error` / `output_error` event (with why, where known), and one that works again is an
/// `input_recovered` / `output_recovered` event.
#[derive(Debug, Default)]
struct LinkHealth {
    /// Failures seen so far, and the frame count at the last one while no frame has come since.
    inputs: std::collections::HashMap<String, (u64, Option<u64>)>,
    outputs: std::collections::HashMap<String, (u64, bool)>,
}

impl LinkHealth {
    fn update(&mut self, inputs: &[InputStatus], sinks: &[SinkStatus]) -> Vec<serde_json::Value> {
        let mut events = Vec::new();
        for input in inputs {
            let Some(&errors) = input.feed.counters.get("link_errors") else { continue };
            let frames = input.feed.counters.get("frames").copied().unwrap_or(0);
            let (seen, failed_at) = self.inputs.entry(input.input.clone()).or_default();
            if errors > *seen {
                *seen = errors;
                *failed_at = Some(frames);
                events.push(serde_json::json!({ "type": "input_error", "input": input.input, "errors": errors,
                    "message": input.feed.last_error }));
            } else if failed_at.is_some_and(|at| frames > at)
                && input.feed.state == streamlib::counters::FeedState::Live
            {
                *failed_at = None;
                events.push(serde_json::json!({ "type": "input_recovered", "input": input.input }));
            }
        }
        for sink in sinks {
            let Some(&failures) = sink.counters.get("failures") else { continue };
            let up = sink.counters.get("up").copied().unwrap_or(0) == 1;
            let (seen, failing) = self.outputs.entry(sink.name.clone()).or_default();
            if failures > *seen {
                *seen = failures;
                *failing = true;
                events.push(serde_json::json!({ "type": "output_error", "output": sink.output, "sink": sink.name,
                    "failures": failures }));
            } else if *failing && up {
                *failing = false;
                events
                    .push(serde_json::json!({ "type": "output_recovered", "output": sink.output, "sink": sink.name }));
            }
        }
        events
    }
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct InputStatus {
    pub input: String,
    #[serde(flatten)]
    pub feed: streamlib::counters::FeedStatus,
    /// The metadata of the frame shown now (a sender's detections, timecode, values).
    pub metadata: Option<streamlib::metadata::FrameMetadata>,
}

/// Where relative file paths of the scene resolve; nothing may escape it, by `..` or by a
/// symbolic link.
#[derive(Clone, Debug)]
pub struct MediaRoot(pub PathBuf);

/// Paths longer than this are refused before touching the file system.
const MAX_PATH_BYTES: usize = 1024;

impl MediaRoot {
    /// `path` under the root, or why not: absolute paths, `..`, NUL bytes and paths whose
    /// existing part resolves (through links) outside the root are refused. The root itself is
    /// canonical (see `serve::run`).
    pub fn confine(&self, path: &str) -> Result<PathBuf, String> {
        let p = Path::new(path);
        if path.is_empty() {
            return Err("must not be empty".into());
        }
        if path.len() > MAX_PATH_BYTES {
            return Err(format!("is longer than {MAX_PATH_BYTES} bytes"));
        }
        if path.contains('\0') {
            return Err("must not contain a NUL byte".into());
        }
        if p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            return Err(format!("{path:?} is outside the media root: give a relative path without `..`"));
        }
        let joined = self.0.join(p);
        // The deepest part that exists decides where the path really goes; what is below it
        // does not exist yet, so it cannot be a link.
        let mut existing = joined.as_path();
        let mut rest = Vec::new();
        let resolved = loop {
            match std::fs::canonicalize(existing) {
                Ok(real) => break rest.iter().rev().fold(real, |acc: PathBuf, part| acc.join(part)),
                Err(_) => match (existing.parent(), existing.file_name()) {
                    (Some(parent), Some(name)) => {
                        rest.push(name.to_owned());
                        existing = parent;
                    }
                    _ => return Err(format!("{path:?} cannot be resolved")),
                },
            }
        };
        if !resolved.starts_with(&self.0) {
            return Err(format!("{path:?} resolves outside the media root (through a link)"));
        }
        Ok(resolved)
    }

    /// Every file path the scene's kinds declare, checked against the root; an output that
    /// would overwrite a file the scene reads is refused.
    fn check_scene(&self, scene: &Scene, registry: &Registry) -> Result<(), ApiError> {
        let mut read = Vec::new();
        let mut written = Vec::new();
        for p in registry.scene_paths(scene) {
            let resolved = self.confine(&p.path).map_err(|m| ApiError::at(403, &p.at, m))?;
            // Opening a FIFO blocks the render thread until someone opens its other end; a
            // device is no place for a scene's output either. (Found by scripts/fuzz_api.py.)
            if let Ok(meta) = std::fs::metadata(&resolved) {
                if !meta.is_file() && !meta.is_dir() {
                    return Err(ApiError::at(422, &p.at, format!("{:?} is not a regular file", p.path)));
                }
            }
            if p.written {
                written.push((p.at, resolved))
            } else {
                read.push(resolved)
            }
        }
        for (at, out) in written {
            if read.iter().any(|r| out == *r || r.starts_with(&out)) {
                return Err(ApiError::at(422, at, "would overwrite a file this scene reads"));
            }
        }
        Ok(())
    }
}

/// A copy of the list `field` of the scene (empty when absent).
fn list(doc: &Value, field: &str) -> Vec<Value> {
    doc.get(field).and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Where the entry with `id` is in `items`.
fn find(items: &[Value], id: &str) -> Option<usize> {
    items.iter().position(|l| l.get("id").and_then(Value::as_str) == Some(id))
}

fn set_field(doc: &mut Value, field: &str, value: Value) -> Result<(), ApiError> {
    let obj = doc.as_object_mut().ok_or_else(|| ApiError::new(422, "the scene is not a JSON object"))?;
    obj.insert(field.into(), value);
    Ok(())
}

/// Applies `update` to the scene document `doc`; shape errors are 4xx with the JSON path.
fn edit(doc: &mut Value, update: Update) -> Result<(), ApiError> {
    match update {
        Update::SetScene(scene) => *doc = scene,
        Update::PatchLayer { id, patch } => {
            let mut layers = list(doc, "layers");
            let i = find(&layers, &id).ok_or_else(|| ApiError::new(404, format!("no layer {id:?}")))?;
            let Some(layer) = layers[i].as_object_mut() else {
                return Err(ApiError::new(500, "layer is not an object"));
            };
            for (k, v) in patch {
                if k == "id" {
                    return Err(ApiError::at(422, "id", "a layer's id cannot change"));
                }
                // JSON merge patch: null removes the field (back to its default).
                if v.is_null() {
                    layer.remove(&k);
                } else {
                    layer.insert(k, v);
                }
            }
            set_field(doc, "layers", Value::Array(layers))?;
        }
        Update::AddLayer(layer) => add_entry(doc, "layers", "layer", layer)?,
        Update::RemoveLayer(id) => remove_entry(doc, "layers", "layer", &id)?,
        Update::AddInput { id, spec } => {
            let inputs = doc.as_object_mut().ok_or_else(|| ApiError::new(500, "scene is not an object"))?;
            let inputs = inputs.entry("inputs").or_insert_with(|| Value::Object(Map::new()));
            let Some(inputs) = inputs.as_object_mut() else {
                return Err(ApiError::new(500, "inputs is not an object"));
            };
            if inputs.contains_key(&id) {
                return Err(ApiError::at(409, "id", format!("input {id:?} exists")));
            }
            inputs.insert(id, spec);
        }
        Update::RemoveInput(id) => {
            let removed = doc.get_mut("inputs").and_then(Value::as_object_mut).and_then(|m| m.remove(&id));
            if removed.is_none() {
                return Err(ApiError::new(404, format!("no input {id:?}")));
            }
        }
        Update::AddOutput(output) => {
            if output.get("id").and_then(Value::as_str).unwrap_or_default().is_empty() {
                return Err(ApiError::at(422, "id", "an added output needs an `id`"));
            }
            add_entry(doc, "outputs", "output", output)?;
        }
        Update::RemoveOutput(id) => remove_entry(doc, "outputs", "output", &id)?,
    }
    Ok(())
}

/// Appends `entry` to the list `field` (layers, outputs) unless one with its id exists (409).
fn add_entry(doc: &mut Value, field: &str, what: &str, entry: Value) -> Result<(), ApiError> {
    let mut entries = list(doc, field);
    let id = entry.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
    if find(&entries, &id).is_some() {
        return Err(ApiError::at(409, "id", format!("{what} {id:?} exists")));
    }
    entries.push(entry);
    set_field(doc, field, Value::Array(entries))
}

/// Removes the entry `id` from the list `field` (404 when there is none).
fn remove_entry(doc: &mut Value, field: &str, what: &str, id: &str) -> Result<(), ApiError> {
    let mut entries = list(doc, field);
    let i = find(&entries, id).ok_or_else(|| ApiError::new(404, format!("no {what} {id:?}")))?;
    entries.remove(i);
    set_field(doc, field, Value::Array(entries))
}

/// Updates waiting for a later pts (`?at_pts_ns`); more are refused rather than queued.
const MAX_DEFERRED: usize = 256;

pub struct RenderThread {
    pub registry: Registry,
    pub media_root: MediaRoot,
    pub commands: Receiver<Command>,
    pub status: Arc<Mutex<Status>>,
    pub events: broadcast::Sender<Value>,
    pub stop: Arc<AtomicBool>,
    /// The clock output frames are paced on.
    pub clock: Arc<dyn streamlib::timing::Clock>,
}

struct Running {
    pipeline: Pipeline,
    doc: Value,
    /// The spec each of the pipeline's outputs was opened from.
    output_specs: BTreeMap<String, OutputSpec>,
}

/// Marks the server unhealthy when the render thread ends other than by a stop request (a panic
/// that escaped the guards).
struct StoppedGuard {
    status: Arc<Mutex<Status>>,
    stop: Arc<AtomicBool>,
}

impl Drop for StoppedGuard {
    fn drop(&mut self) {
        if !self.stop.load(Ordering::Relaxed) || std::thread::panicking() {
            let mut s = self.status.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            s.render_error = Some("the render thread stopped".into());
        }
    }
}

fn finish_in_background(sinks: Vec<SinkHandle>) {
    // Finishing waits for encoders to drain; the render loop must not.
    std::thread::spawn(move || {
        for s in sinks {
            let name = s.name().to_string();
            if let Err(e) = s.finish() {
                tracing::error!(sink = %name, "{e}");
            }
        }
    });
}

impl RenderThread {
    fn parse(&self, doc: &Value) -> Result<Scene, ApiError> {
        let mut scene =
            Scene::from_value(doc.clone(), &self.registry).map_err(|e| ApiError::at(422, e.path, e.message))?;
        self.media_root.check_scene(&scene, &self.registry)?;
        scene.base_dir = Some(self.media_root.0.clone());
        Ok(scene)
    }

    fn open_output(&self, scene: &Scene, spec: &OutputSpec) -> Result<Vec<SinkHandle>, ApiError> {
        let root = self.media_root.clone();
        let place = move |p: &Path| -> Result<PathBuf, SinkError> {
            root.confine(&p.to_string_lossy()).map_err(SinkError::Unsupported)
        };
        let named: Vec<NamedSink> =
            self.registry.open_scene_output(scene, spec, place).map_err(|e| output_error(&spec.id, e))?;
        named
            .into_iter()
            .map(|n| SinkHandle::spawn(&n.name, n.sink, Backpressure::Drop, 8))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| output_error(&spec.id, e))
    }

    /// Validates, builds and swaps in `doc`; on any error nothing changes.
    fn apply(&self, gpu: &GpuContext, running: &mut Option<Running>, doc: Value) -> Result<(), ApiError> {
        let scene = self.parse(&doc)?;
        let old_specs = running.as_ref().map(|r| &r.output_specs);
        // New or changed outputs are opened first; unchanged ones keep running.
        let mut opened: BTreeMap<String, Vec<SinkHandle>> = BTreeMap::new();
        for spec in &scene.outputs {
            if old_specs.and_then(|o| o.get(&spec.id)).is_some_and(|o| o == spec) {
                continue;
            }
            match self.open_output(&scene, spec) {
                Ok(sinks) => {
                    opened.insert(spec.id.clone(), sinks);
                }
                Err(e) => {
                    finish_in_background(opened.into_values().flatten().collect());
                    return Err(e);
                }
            }
        }
        let r = match running {
            Some(r) => {
                if let Err(e) = r.pipeline.apply_scene(scene.clone(), &self.registry) {
                    finish_in_background(opened.into_values().flatten().collect());
                    return Err(e.into());
                }
                let gone: Vec<String> = r
                    .output_specs
                    .iter()
                    .filter(|(id, spec)| !scene.outputs.iter().any(|s| s.id == **id && s == *spec))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in gone {
                    r.output_specs.remove(&id);
                    finish_in_background(r.pipeline.remove_output(&id).unwrap_or_default());
                }
                r.doc = doc;
                r
            }
            None => {
                let engine = match Engine::new(gpu, scene.clone(), &self.registry, Pacing::Realtime) {
                    Ok(e) => e,
                    Err(e) => {
                        finish_in_background(opened.into_values().flatten().collect());
                        return Err(e.into());
                    }
                };
                running.insert(Running {
                    pipeline: Pipeline::with_clock(engine, Pacing::Realtime, self.clock.clone()),
                    doc,
                    output_specs: BTreeMap::new(),
                })
            }
        };
        for (id, sinks) in opened {
            if let Some(spec) = scene.outputs.iter().find(|s| s.id == id) {
                r.output_specs.insert(id.clone(), spec.clone());
            }
            if let Some(old) = r.pipeline.set_output(&id, sinks) {
                finish_in_background(old);
            }
        }
        Ok(())
    }

    pub fn run(self) {
        let gpu = match GpuContext::new() {
            Ok(g) => g,
            Err(e) => {
                tracing::error!("no GPU: {e}");
                if let Ok(mut s) = self.status.lock() {
                    s.render_error = Some(format!("no GPU: {e}"));
                }
                self.stop.store(true, Ordering::Relaxed);
                return;
            }
        };
        let _stopped = StoppedGuard { status: self.status.clone(), stop: self.stop.clone() };
        if let Ok(mut s) = self.status.lock() {
            s.adapter = gpu.adapter_summary().to_string();
        }
        let mut running: Option<Running> = None;
        let mut revision = 0u64;
        let mut pending: Vec<(u64, Update, UpdateReply)> = Vec::new();
        let mut snapshots: Vec<(u64, oneshot::Sender<Result<OutputFrame, ApiError>>)> = Vec::new();
        let mut reported_ended = std::collections::HashSet::new();
        let mut feed_states = std::collections::HashMap::new();
        // How many things each layer found, last we looked: a change is a `detections` event.
        let mut found_counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut link_health = LinkHealth::default();
        let mut reported_sinks = std::collections::HashSet::new();
        let (mut last_stats, mut frames_at_last) = (Instant::now(), 0u64);
        let mut rendered = 0u64;
        while !self.stop.load(Ordering::Relaxed) {
            let Some(r) = running.as_mut() else {
                // No scene yet: wait for one.
                match self.commands.recv_timeout(Duration::from_millis(100)) {
                    Ok(Command::Update { update, reply, .. }) => {
                        let _ = reply.send(self.update_guarded(&gpu, &mut running, &mut revision, update, 0));
                    }
                    Ok(Command::Snapshot { reply }) => {
                        let _ = reply.send(Err(ApiError::new(409, "no scene yet: PUT /scene first")));
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
                continue;
            };
            let index = r.pipeline.wait_next();
            let pts = r.pipeline.engine().scene().fps.pts_ns(index);
            // Updates due now, in arrival order.
            let mut due = Vec::new();
            while let Ok(c) = self.commands.try_recv() {
                match c {
                    Command::Update { at_pts_ns: Some(at), reply, .. } if at > pts && pending.len() >= MAX_DEFERRED => {
                        let _ = reply.send(Err(ApiError::new(
                            503,
                            format!("{MAX_DEFERRED} updates already wait for a later pts"),
                        )));
                    }
                    Command::Update { update, at_pts_ns: Some(at), reply } if at > pts => {
                        pending.push((at, update, reply))
                    }
                    Command::Update { update, reply, .. } => due.push((update, reply)),
                    Command::Snapshot { reply } => snapshots.push((index, reply)),
                }
            }
            let mut i = 0;
            while i < pending.len() {
                if pending[i].0 <= pts {
                    let (_, u, reply) = pending.remove(i);
                    due.push((u, reply));
                } else {
                    i += 1;
                }
            }
            for (update, reply) in due {
                let result = self.update_guarded(&gpu, &mut running, &mut revision, update, index);
                // Outputs may have been replaced under the same id: their failures are news again.
                if result.is_ok() {
                    reported_sinks.clear();
                }
                let _ = reply.send(result);
            }
            let Some(r) = running.as_mut() else { continue };
            let snapshot = [Readback::from(PixelFormat::Rgba8)];
            let extra: &[Readback] = if snapshots.is_empty() { &[] } else { &snapshot };
            let pipeline = &mut r.pipeline;
            let rendered_frame =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| pipeline.render(index, extra)));
            let report = match rendered_frame {
                Ok(Ok(report)) => report,
                Ok(Err(e)) => {
                    tracing::error!("frame {index}: {e}");
                    FrameReport::default()
                }
                Err(panic) => {
                    self.panicked(&format!("frame {index}"), &streamlib::sinks::panic_message(&panic));
                    FrameReport::default()
                }
            };
            for (input, e) in &report.issues.sources {
                let _ = self
                    .events
                    .send(serde_json::json!({ "type": "input_error", "input": input, "message": e.to_string() }));
            }
            // A failed sink refuses every later frame: say so once per output (the others run on).
            for (output, e) in &report.sink_errors {
                if reported_sinks.insert(output.clone()) {
                    tracing::error!(output = %output, "{e}");
                    let _ = self
                        .events
                        .send(serde_json::json!({ "type": "sink_error", "output": output, "message": e.to_string() }));
                }
            }
            rendered += 1;
            for frame in report.extra {
                let (ready, waiting): (Vec<_>, Vec<_>) = snapshots.drain(..).partition(|(i, _)| frame.time.index >= *i);
                snapshots = waiting;
                for (_, reply) in ready {
                    let _ = reply.send(Ok((*frame).clone()));
                }
            }
            for id in r.pipeline.engine().scene().inputs.keys() {
                if r.pipeline.engine().input_ended(id) && reported_ended.insert(id.clone()) {
                    let _ = self.events.send(serde_json::json!({ "type": "input_ended", "input": id }));
                }
            }
            if last_stats.elapsed() >= Duration::from_secs(1) {
                let fps = (rendered - frames_at_last) as f64 / last_stats.elapsed().as_secs_f64();
                (last_stats, frames_at_last) = (Instant::now(), rendered);
                let status = self.update_status(r, rendered, fps);
                for input in &status.2 {
                    // A feed that stops or comes back is news; its counters ride on `stats`.
                    if feed_states.insert(input.input.clone(), input.feed.state) != Some(input.feed.state) {
                        let _ = self.events.send(serde_json::json!({ "type": "input_state", "input": input.input,
                            "state": input.feed.state }));
                    }
                }
                for event in link_health.update(&status.2, &status.1) {
                    let _ = self.events.send(event);
                }
                let layers = self.layer_figures();
                let _ = self.events.send(serde_json::json!({ "type": "stats", "frames": rendered, "fps": fps,
                    "missed_ticks": status.0, "sinks": status.1, "inputs": status.2, "layers": layers }));
            } else if rendered.is_multiple_of(8) {
                self.update_status(r, rendered, f64::NAN);
            }
            if rendered.is_multiple_of(8) {
                self.announce_detections(r.pipeline.engine(), &mut found_counts);
            }
        }
        // Shutting down: everything still in flight reaches the sinks, then they finish.
        if let Some(mut r) = running {
            if let Err(e) = r.pipeline.flush(&[]) {
                tracing::error!("{e}");
            }
            let (_, error) = r.pipeline.finish_outputs();
            if let Some(e) = error {
                tracing::error!("{e}");
            }
        }
        for (_, reply) in snapshots {
            let _ = reply.send(Err(ApiError::new(503, "shutting down")));
        }
    }

    /// `update`, with a panic in it (a bug) reported and answered 500 instead of ending the
    /// render thread. Every part of an update is built before anything is swapped in, so the
    /// scene that ran before keeps running.
    fn update_guarded(
        &self,
        gpu: &GpuContext,
        running: &mut Option<Running>,
        revision: &mut u64,
        update: Update,
        frame: u64,
    ) -> Result<Applied, ApiError> {
        let apply = std::panic::AssertUnwindSafe(|| self.update(gpu, running, revision, update, frame));
        std::panic::catch_unwind(apply).unwrap_or_else(|panic| {
            let message = streamlib::sinks::panic_message(&panic);
            self.panicked("an update", &message);
            Err(ApiError::new(500, format!("internal error while applying the update (a bug): {message}")))
        })
    }

    fn panicked(&self, during: &str, message: &str) {
        tracing::error!("panic during {during}: {message}");
        if let Ok(mut s) = self.status.lock() {
            s.panics += 1;
        }
        let _ = self.events.send(serde_json::json!({ "type": "panic", "during": during, "message": message }));
    }

    /// Edits the running scene document with `update` and applies it; the answer for the client.
    fn update(
        &self,
        gpu: &GpuContext,
        running: &mut Option<Running>,
        revision: &mut u64,
        update: Update,
        frame: u64,
    ) -> Result<Applied, ApiError> {
        let mut doc = running.as_ref().map_or_else(|| Value::Object(Map::new()), |r| r.doc.clone());
        let result = edit(&mut doc, update).and_then(|()| self.apply(gpu, running, doc.clone()));
        if let Err(e) = result {
            if let Ok(mut s) = self.status.lock() {
                s.updates_rejected += 1;
            }
            return Err(e);
        }
        *revision += 1;
        if let Some(r) = running.as_mut() {
            r.pipeline.engine_mut().set_scene_revision(*revision);
        }
        self.publish_scene(&doc, *revision);
        let _ = self.events.send(serde_json::json!({ "type": "scene_applied", "revision": *revision, "frame": frame }));
        Ok(Applied { revision: *revision, frame })
    }

    fn publish_scene(&self, doc: &Value, revision: u64) {
        if let Ok(mut s) = self.status.lock() {
            s.scene = Some(doc.clone());
            s.revision = revision;
        }
    }

    /// Sends a `detections` event for each layer whose number of found things changed (a face
    /// appeared, the person left), with what it finds now.
    fn announce_detections(&self, engine: &Engine, counts: &mut std::collections::HashMap<String, usize>) {
        let now = engine.layer_detections();
        let mut seen = std::collections::HashSet::new();
        for (layer, found) in &now {
            seen.insert(layer.clone());
            if counts.insert(layer.clone(), found.len()) != Some(found.len()) {
                let _ = self.events.send(serde_json::json!({ "type": "detections", "layer": layer,
                    "count": found.len(), "detections": found }));
            }
        }
        for (layer, count) in counts.iter_mut() {
            if !seen.contains(layer) && *count != 0 {
                *count = 0;
                let _ = self.events.send(serde_json::json!({ "type": "detections", "layer": layer, "count": 0,
                    "detections": [] }));
            }
        }
    }

    /// Layers' figures and detections for the `stats` event.
    fn layer_figures(&self) -> Vec<Value> {
        let Ok(s) = self.status.lock() else { return Vec::new() };
        s.layers
            .iter()
            .map(|(id, figures)| {
                let figures: serde_json::Map<String, Value> =
                    figures.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
                let found = s.detections.iter().find(|(l, _)| l == id).map(|(_, d)| d.clone()).unwrap_or_default();
                serde_json::json!({ "layer": id, "figures": figures, "detections": found })
            })
            .collect()
    }

    fn update_status(&self, r: &Running, rendered: u64, fps: f64) -> (u64, Vec<SinkStatus>, Vec<InputStatus>) {
        let sinks: Vec<SinkStatus> = r
            .pipeline
            .outputs()
            .flat_map(|(id, sinks)| {
                sinks.iter().map(move |s| SinkStatus {
                    output: id.to_string(),
                    name: s.name().to_string(),
                    written: s.stats().written.load(Ordering::Relaxed),
                    dropped: s.stats().dropped.load(Ordering::Relaxed),
                    queue: s.queue_len(),
                    error: s.error(),
                    counters: s.counters(),
                })
            })
            .collect();
        let engine = r.pipeline.engine();
        let inputs: Vec<InputStatus> = engine
            .input_feeds()
            .into_iter()
            .map(|(id, feed)| InputStatus { metadata: engine.input_metadata(&id).cloned(), input: id, feed })
            .collect();
        let t = r.pipeline.engine().times();
        let missed = r.pipeline.missed_ticks();
        if let Ok(mut s) = self.status.lock() {
            s.frames = rendered;
            if fps.is_finite() {
                s.fps = fps;
            }
            s.missed_ticks = missed;
            s.stage_seconds =
                [t.sources.as_secs_f64(), t.composite.as_secs_f64(), t.submit.as_secs_f64(), t.readback.as_secs_f64()];
            s.sinks = sinks.clone();
            s.inputs = inputs.clone();
            s.layers = engine.layer_stats();
            s.clock = Some(self.clock.status());
            s.ticks = Some(r.pipeline.tick_stats());
            s.sync = engine.input_sync();
            s.spread = engine.sync_spread();
            s.latency_ms = engine.scene().sync.latency_ms;
            s.detections = engine.layer_detections();
            s.input_errors = r.pipeline.stats().input_errors;
            s.layer_errors = r.pipeline.stats().layer_errors;
        }
        (missed, sinks, inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamlib::registry::{BuildContext, BuildError, InputKind};
    use streamlib::scene::Params;

    /// A plugin's input kind whose file field has a name of its own.
    struct Slides;
    impl InputKind for Slides {
        type Config = Params;
        fn path_fields(&self) -> &'static [&'static str] {
            &["deck"]
        }
        fn build(
            &self,
            id: &str,
            _: Params,
            _: &BuildContext<'_>,
        ) -> Result<Box<dyn streamlib::sources::Source>, BuildError> {
            Err(BuildError::new(id, "not built in this test"))
        }
    }

    #[test]
    fn a_custom_kinds_own_path_field_is_confined() {
        let root = std::env::temp_dir().join(format!("streamlib-confine-{}", std::process::id()));
        std::fs::create_dir_all(&root).expect("root");
        let root = MediaRoot(std::fs::canonicalize(&root).expect("canonical root"));
        let mut registry = Registry::default();
        registry.register_input("slides", Slides);
        let scene_with = |deck: &str| {
            let doc =
                serde_json::json!({ "width": 8, "height": 8, "inputs": { "s": { "kind": "slides", "deck": deck } } });
            Scene::from_value(doc, &registry).expect("valid scene")
        };
        let refused = root.check_scene(&scene_with("/etc/passwd"), &registry).expect_err("absolute path");
        assert_eq!((refused.status, refused.path.as_deref()), (403, Some("inputs.s.deck")));
        assert!(root.check_scene(&scene_with("../outside.pdf"), &registry).is_err(), "`..`");
        root.check_scene(&scene_with("talks/deck.pdf"), &registry).expect("inside the root");
        let _ = std::fs::remove_dir_all(&root.0);
    }
}
