//! The render thread's state: a scene built into sources, layers, a compositor and readback rings.
//! `Engine::render` records and submits one output frame; `run` drives it to sinks.

use crate::compositor::{Compositor, LayerEntry};
use crate::frame::{FrameInfo, OutputFrame, PixelFormat};
use crate::gpu::convert::{OutputConverter, YuvColorSpace};
use crate::gpu::present::Presenter;
use crate::gpu::readback::{FrameMeta, ReadbackRing};
use crate::gpu::texture::{self, Target};
use crate::gpu::timestamps::{GpuStageTimes, GpuTimestamps};
use crate::gpu::{GpuContext, GpuError, Pipelines};
use crate::layers::{InputMetadata, InputViews, LayerError};
use crate::registry::{BuildContext, BuildError, Registry};
use crate::scene::{LayerSpec, Scene};
use crate::sources::{Source, SourceContext, SourceError};
use crate::timing::Pacing;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One readback a frame is asked for: a pixel format, at the output's size or scaled (on the
/// GPU, aspect kept with black bars) to another, e.g. an HLS rendition, and for YUV formats the
/// colour space to convert with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Readback {
    /// The pixel format to read back in.
    pub format: PixelFormat,
    /// `None`: the output's size.
    pub size: Option<(u32, u32)>,
    /// `None`: the engine's output colour space (`Engine::set_output_color_space`). Ignored for
    /// RGB formats.
    pub color_space: Option<YuvColorSpace>,
}

impl From<PixelFormat> for Readback {
    fn from(format: PixelFormat) -> Self {
        Readback { format, size: None, color_space: None }
    }
}

/// Frames in flight between submit and readback; three lets the GPU, the copy and the CPU overlap.
pub const DEFAULT_RING_DEPTH: usize = 3;

/// Why an engine could not be built or moved to a new scene.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A GPU operation failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// An input or layer could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The scene names an input or layer kind the registry does not have.
    #[error("unknown {what} kind {kind:?}")]
    UnknownKind {
        /// `input` or `layer`.
        what: &'static str,
        /// The kind the scene names.
        kind: String,
    },
}

/// CPU time spent in each stage, summed over the frames rendered.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageTimes {
    /// Source updates: uploads, conversions, pattern draws recorded.
    pub sources: Duration,
    /// Layer preparation and composite pass recording.
    pub composite: Duration,
    /// YUV conversion and readback copies recorded, plus submit.
    pub submit: Duration,
    /// Waiting for the GPU to finish frames (rendering and copies) and unpadding rows.
    pub readback: Duration,
}

/// Errors of one frame that did not stop it: failed inputs and layers.
#[derive(Debug, Default)]
pub struct FrameIssues {
    /// Inputs that failed this frame: the input's id and why.
    pub sources: Vec<(String, SourceError)>,
    /// Layers that failed this frame.
    pub layers: Vec<LayerError>,
}

/// A scene built on a GPU: its inputs, layers, compositor and readback rings.
pub struct Engine {
    gpu: GpuContext,
    pipelines: Arc<Pipelines>,
    scene: Scene,
    sources: BTreeMap<String, Box<dyn Source>>,
    layers: Vec<LayerEntry>,
    compositor: Compositor,
    converters: HashMap<Readback, OutputConverter>,
    rings: HashMap<Readback, ReadbackRing>,
    /// GPU time per stage, when a benchmark asked for it and the adapter can.
    timestamps: Option<GpuTimestamps>,
    /// Scaled copies of the output, by size, for scaled readbacks.
    scalers: HashMap<(u32, u32), (Presenter, Target)>,
    ring_depth: usize,
    output_color_space: YuvColorSpace,
    pacing: Pacing,
    /// Stamped on output frames' metadata (see `set_scene_revision`).
    scene_revision: Option<u64>,
    times: StageTimes,
    reported: HashSet<String>,
    /// When the next frame's tick is due on the timeline (realtime; see `FrameInfo::tick_ns`).
    tick_ns: Option<u64>,
    /// The spread of the live inputs' capture times shown at one tick.
    spread: crate::timing::Histogram,
}

/// Spread histogram: 0.5 ms bins up to 200 ms.
fn spread_histogram() -> crate::timing::Histogram {
    crate::timing::Histogram::new(500_000, 400)
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("scene", &(self.scene.width, self.scene.height, self.scene.fps))
            .field("layers", &self.layers)
            .finish()
    }
}

impl Engine {
    /// Builds every input and layer of a validated scene.
    pub fn new(gpu: &GpuContext, scene: Scene, registry: &Registry, pacing: Pacing) -> Result<Self, EngineError> {
        let pipelines = Arc::new(Pipelines::new(gpu)?);
        Self::with_pipelines(gpu, pipelines, scene, registry, pacing)
    }

    /// As `new`, sharing pipelines already built for this device.
    pub fn with_pipelines(
        gpu: &GpuContext,
        pipelines: Arc<Pipelines>,
        scene: Scene,
        registry: &Registry,
        pacing: Pacing,
    ) -> Result<Self, EngineError> {
        gpu.check_size("output", scene.width, scene.height)?;
        let ctx = BuildContext { gpu, pipelines: &pipelines, scene: &scene };
        let mut sources = BTreeMap::new();
        for (id, spec) in &scene.inputs {
            let kind = registry
                .input(&spec.kind)
                .ok_or_else(|| EngineError::UnknownKind { what: "input", kind: spec.kind.clone() })?;
            let mut source = kind.build(id, &spec.params, &ctx)?;
            source.set_sync_policy(spec.sync_policy());
            sources.insert(id.clone(), source);
        }
        let mut layers = Vec::new();
        for spec in scene.draw_order() {
            let kind = registry
                .layer(&spec.kind)
                .ok_or_else(|| EngineError::UnknownKind { what: "layer", kind: spec.kind.clone() })?;
            layers.push(LayerEntry { spec: spec.clone(), layer: kind.build(spec, &ctx)? });
        }
        let compositor = Compositor::new(gpu, &pipelines, scene.width, scene.height, scene.background);
        Ok(Engine {
            gpu: gpu.clone(),
            output_color_space: YuvColorSpace::default_for_height(scene.height),
            pipelines,
            scene,
            sources,
            layers,
            compositor,
            converters: HashMap::new(),
            rings: HashMap::new(),
            scalers: HashMap::new(),
            timestamps: None,
            ring_depth: DEFAULT_RING_DEPTH,
            pacing,
            scene_revision: None,
            times: StageTimes::default(),
            reported: HashSet::new(),
            tick_ns: None,
            spread: spread_histogram(),
        })
    }

    /// The scene being rendered.
    pub fn scene(&self) -> &Scene {
        &self.scene
    }

    /// The GPU context the engine renders on.
    pub fn gpu(&self) -> &GpuContext {
        &self.gpu
    }

    /// The render pipelines built for this device, to share with another engine.
    pub fn pipelines(&self) -> &Arc<Pipelines> {
        &self.pipelines
    }

    /// CPU time spent in each stage so far, summed over the frames rendered.
    pub fn times(&self) -> StageTimes {
        self.times
    }

    /// Times each GPU stage of the next `frames` frames with timestamp queries. False when the
    /// adapter cannot (then only CPU times exist).
    pub fn enable_gpu_timing(&mut self, frames: u32) -> bool {
        self.timestamps = GpuTimestamps::new(&self.gpu, frames);
        self.timestamps.is_some()
    }

    /// GPU time per stage over the frames timed (waits for the GPU).
    pub fn gpu_times(&self) -> Option<GpuStageTimes> {
        self.timestamps.as_ref().and_then(|t| t.read(&self.gpu))
    }

    /// The colour space YUV readbacks are converted into (BT.709 limited for HD by default).
    pub fn set_output_color_space(&mut self, cs: YuvColorSpace) {
        self.output_color_space = cs;
    }

    /// The colour space YUV readbacks are converted into.
    pub fn output_color_space(&self) -> YuvColorSpace {
        self.output_color_space
    }

    /// Frames that may be in flight per readback format (takes effect for new rings).
    pub fn set_ring_depth(&mut self, depth: usize) {
        self.ring_depth = depth.max(1);
    }

    /// The composited output texture (premultiplied RGBA), e.g. for a preview window.
    pub(crate) fn output(&self) -> &crate::gpu::texture::Target {
        self.compositor.output()
    }

    /// True when every input that ends by itself has ended (and there is at least one).
    pub fn all_inputs_ended(&self) -> bool {
        self.has_finite_input() && self.sources.values().filter(|s| s.is_finite()).all(|s| s.is_ended())
    }

    /// Moves the running engine to `next` (validated against the same registry) at this frame
    /// boundary. Unchanged inputs keep running (a file keeps its position); a layer whose kind,
    /// input and kind fields are unchanged keeps its state and takes the new z, opacity, blend,
    /// visibility, rect and crop; everything else is built anew, and removed ones are dropped.
    /// Inputs built from the scene's size or rate (`InputKind::depends_on_scene`) are rebuilt
    /// when those change.
    /// All new parts are built before anything is replaced: on error the running scene is
    /// untouched.
    pub fn apply_scene(&mut self, next: Scene, registry: &Registry) -> Result<(), EngineError> {
        let gpu = self.gpu.clone();
        gpu.check_size("output", next.width, next.height)?;
        let ctx = BuildContext { gpu: &gpu, pipelines: &self.pipelines, scene: &next };
        let format_changed = (next.width, next.height, next.fps, &next.base_dir)
            != (self.scene.width, self.scene.height, self.scene.fps, &self.scene.base_dir);
        let mut new_sources = BTreeMap::new();
        for (id, spec) in &next.inputs {
            let kind = registry
                .input(&spec.kind)
                .ok_or_else(|| EngineError::UnknownKind { what: "input", kind: spec.kind.clone() })?;
            let stale = format_changed && kind.depends_on_scene(&spec.params);
            // A new sync policy alone does not restart the input (set below).
            let same =
                self.scene.inputs.get(id).is_some_and(|old| (&old.kind, &old.params) == (&spec.kind, &spec.params));
            if !same || stale {
                new_sources.insert(id.clone(), kind.build(id, &spec.params, &ctx)?);
            }
        }
        enum Planned {
            Keep(usize, LayerSpec),
            New(LayerEntry),
        }
        let mut planned = Vec::new();
        for spec in next.draw_order() {
            let same = self.layers.iter().position(|e| {
                e.spec.id == spec.id
                    && e.spec.kind == spec.kind
                    && e.spec.input == spec.input
                    && e.spec.params == spec.params
            });
            planned.push(match same {
                Some(i) => Planned::Keep(i, spec.clone()),
                None => {
                    let kind = registry
                        .layer(&spec.kind)
                        .ok_or_else(|| EngineError::UnknownKind { what: "layer", kind: spec.kind.clone() })?;
                    Planned::New(LayerEntry { spec: spec.clone(), layer: kind.build(spec, &ctx)? })
                }
            });
        }
        // Nothing can fail from here on.
        self.sources.retain(|id, _| next.inputs.contains_key(id));
        self.sources.extend(new_sources);
        for (id, source) in &mut self.sources {
            if let Some(spec) = next.inputs.get(id) {
                source.set_sync_policy(spec.sync_policy());
            }
        }
        let mut old: Vec<Option<LayerEntry>> = std::mem::take(&mut self.layers).into_iter().map(Some).collect();
        for p in planned {
            match p {
                Planned::Keep(i, spec) => {
                    if let Some(mut entry) = old.get_mut(i).and_then(Option::take) {
                        entry.spec = spec;
                        self.layers.push(entry);
                    }
                }
                Planned::New(entry) => self.layers.push(entry),
            }
        }
        if (next.width, next.height) != (self.scene.width, self.scene.height) {
            self.compositor = Compositor::new(&gpu, &self.pipelines, next.width, next.height, next.background);
            self.converters.clear();
            self.scalers.clear();
        }
        self.compositor.set_background(next.background);
        self.scene = next;
        Ok(())
    }

    /// Seeks input `id` to `position_ns` of its own timeline (files); the output runs on.
    pub fn seek_input(&mut self, id: &str, position_ns: u64) -> Result<(), SourceError> {
        self.source_mut(id)?.seek(position_ns)
    }

    /// Pauses or resumes input `id`: it holds its frame while the rest of the scene runs.
    pub fn set_input_paused(&mut self, id: &str, paused: bool) -> Result<(), SourceError> {
        self.source_mut(id)?.set_paused(paused);
        Ok(())
    }

    /// The pts, in its own timeline, of the frame input `id` shows now.
    pub fn input_position(&self, id: &str) -> Option<u64> {
        self.sources.get(id).and_then(|s| s.position_ns())
    }

    /// Whether input `id` ends by itself and has ended.
    pub fn input_ended(&self, id: &str) -> bool {
        self.sources.get(id).is_some_and(|s| s.is_finite() && s.is_ended())
    }

    /// The live inputs' synchronizer counts (realtime renders), by input id.
    pub fn input_sync(&self) -> Vec<(String, crate::timing::SyncStats)> {
        self.sources.iter().filter_map(|(id, s)| Some((id.clone(), s.sync_stats()?))).collect()
    }

    /// How far apart the capture times of the live inputs' frames shown at one tick lay.
    pub fn sync_spread(&self) -> crate::timing::Summary {
        self.spread.summary()
    }

    /// The next frame's tick is due at `tick_ns` on the timeline (`timing::timeline`); `None`
    /// for offline renders. The render loop sets it.
    pub(crate) fn set_tick(&mut self, tick_ns: Option<u64>) {
        self.tick_ns = tick_ns;
    }

    /// The live inputs' feed states and link counters, by input id.
    pub fn input_feeds(&self) -> Vec<(String, crate::counters::FeedStatus)> {
        self.sources.iter().filter_map(|(id, s)| Some((id.clone(), s.feed_status()?))).collect()
    }

    /// What each visible layer found in the last frame (ML layers), by layer id; layers that
    /// found nothing are absent.
    pub fn layer_detections(&self) -> Vec<(String, Vec<crate::metadata::Detection>)> {
        self.layers
            .iter()
            .filter(|e| e.spec.visible && e.spec.opacity > 0.0)
            .map(|e| (e.spec.id.clone(), e.layer.detections()))
            .filter(|(_, d)| !d.is_empty())
            .collect()
    }

    /// The figures of the layers that keep some (see `Layer::stats`), by layer id.
    pub fn layer_stats(&self) -> Vec<(String, Vec<(&'static str, f64)>)> {
        self.layers
            .iter()
            .map(|e| (e.spec.id.clone(), e.layer.stats()))
            .filter(|(_, stats)| !stats.is_empty())
            .collect()
    }

    /// The metadata of the frame input `id` shows now (what a network sender attached).
    pub fn input_metadata(&self, id: &str) -> Option<&crate::metadata::FrameMetadata> {
        self.sources.get(id).and_then(|s| s.metadata())
    }

    /// The revision of the scene (a server counts its edits) that output frames carry in their
    /// metadata, so a receiver downstream knows which edit a frame shows.
    pub fn set_scene_revision(&mut self, revision: u64) {
        self.scene_revision = Some(revision);
    }

    /// Ids of the inputs that can seek.
    pub fn seekable_inputs(&self) -> Vec<String> {
        self.sources.iter().filter(|(_, s)| s.is_seekable()).map(|(id, _)| id.clone()).collect()
    }

    fn source_mut(&mut self, id: &str) -> Result<&mut Box<dyn Source>, SourceError> {
        self.sources.get_mut(id).ok_or_else(|| SourceError::Unsupported(format!("no input named {id:?}")))
    }

    /// True when some input ends by itself, so a run without a frame count terminates.
    pub fn has_finite_input(&self) -> bool {
        self.sources.values().any(|s| s.is_finite())
    }

    /// Records and submits output frame `index`, queueing a readback in each of `formats`.
    /// Returns the readbacks that completed meanwhile (possibly of earlier frames), oldest first,
    /// and the inputs and layers that failed this frame (they were skipped; the rest rendered).
    ///
    /// Invalid GPU work anywhere in the frame is caught in an error scope and returned as
    /// `GpuError::Validation`; the engine stays usable for the next frame.
    pub fn render<R: Copy + Into<Readback>>(
        &mut self,
        index: u64,
        readbacks: &[R],
    ) -> Result<(Vec<OutputFrame>, FrameIssues), GpuError> {
        let mut formats: Vec<Readback> = Vec::with_capacity(readbacks.len());
        for r in readbacks {
            let r = self.resolve((*r).into());
            if let Some((w, h)) = r.size {
                self.gpu.check_size("scaled readback", w, h)?;
            }
            if !formats.contains(&r) {
                formats.push(r);
            }
        }
        let gpu = self.gpu.clone();
        gpu.scoped(&format!("frame {index}"), || self.render_unscoped(index, &formats))?
    }

    /// `r` as it is read back: the output's own size is the unscaled readback, and a YUV
    /// readback names its colour space, so the frame (and a sink's header) says what the pixels are.
    pub fn resolve(&self, mut r: Readback) -> Readback {
        r.size = r.size.filter(|&s| s != (self.scene.width, self.scene.height));
        r.color_space = match r.format.is_yuv() {
            true => Some(r.color_space.unwrap_or(self.output_color_space)),
            false => None,
        };
        r
    }

    fn render_unscoped(
        &mut self,
        index: u64,
        formats: &[Readback],
    ) -> Result<(Vec<OutputFrame>, FrameIssues), GpuError> {
        let mut frame = FrameInfo::new(index, self.scene.fps, self.scene.width, self.scene.height);
        frame.tick_ns = self.tick_ns.take();
        let latency_ns = self.scene.sync.latency_ms.map(|ms| (ms * 1e6) as u64);
        let mut done = Vec::new();
        // Make room first, so recording never waits with a half-built encoder.
        let t0 = Instant::now();
        for &readback in formats {
            let depth = self.ring_depth;
            let ring = self.rings.entry(readback).or_insert_with(|| ReadbackRing::new(depth));
            if ring.is_full() {
                done.extend(ring.wait_oldest(&self.gpu)?);
            }
        }
        self.times.readback += t0.elapsed();

        let gpu = &self.gpu;
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("streamlib frame encoder") });
        if let Some(t) = &self.timestamps {
            t.stamp(&mut encoder, 0);
        }
        let t1 = Instant::now();
        // What a frame made here counts as its capture time downstream (glass-to-glass latency).
        let rendered_at_ns =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut issues = FrameIssues::default();
        let mut inputs = InputViews::new();
        let mut metadata = InputMetadata::new();
        for (id, source) in &mut self.sources {
            let mut ctx = SourceContext {
                gpu,
                pipelines: &self.pipelines,
                encoder: &mut encoder,
                frame: &frame,
                pacing: self.pacing,
                latency_ns,
            };
            if let Err(e) = source.update(&mut ctx) {
                let message = format!("input {id}: {e}");
                if self.reported.len() < 1024 && self.reported.insert(message.clone()) {
                    tracing::warn!("{message} (it keeps its last frame)");
                }
                issues.sources.push((id.clone(), e));
            }
            if let Some(view) = source.current() {
                inputs.insert(id.clone(), view);
            }
            if let Some(meta) = source.metadata().filter(|m| !m.is_empty()) {
                metadata.insert(id.clone(), meta.clone());
            }
        }
        let sync: crate::layers::InputSyncStats =
            self.sources.iter().filter_map(|(id, s)| Some((id.clone(), s.sync_stats()?))).collect();
        if frame.tick_ns.is_some() {
            let shown: Vec<u64> = self.sources.values().filter_map(|s| s.shown_capture_ns()).collect();
            if let (Some(lo), Some(hi), true) = (shown.iter().min(), shown.iter().max(), shown.len() > 1) {
                self.spread.record(hi - lo);
            }
        }
        if let Some(t) = &self.timestamps {
            t.stamp(&mut encoder, 1);
        }
        let t2 = Instant::now();
        // Offline, analysing layers (ML) see this frame's inputs and wait for their results
        // before drawing: the inputs' uploads go to the GPU first.
        let analyzing = self.pacing == Pacing::Offline
            && self.layers.iter().any(|e| e.spec.visible && e.spec.opacity > 0.0 && e.layer.analyzes());
        if analyzing {
            let uploads = std::mem::replace(
                &mut encoder,
                gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                    label: Some("streamlib frame encoder (after analysis)"),
                }),
            );
            gpu.queue.submit([uploads.finish()]);
            issues.layers = self.compositor.analyze(gpu, &frame, &mut self.layers, &inputs);
        }
        let errors = self.compositor.render(
            gpu,
            &self.pipelines,
            &mut encoder,
            &frame,
            &mut self.layers,
            (&inputs, &metadata, &sync),
        );
        // An analysis error is also the layer's error in prepare: report it once.
        for e in errors {
            if !issues.layers.contains(&e) {
                issues.layers.push(e);
            }
        }
        if let Some(t) = &self.timestamps {
            t.stamp(&mut encoder, 2);
        }
        let t3 = Instant::now();

        // Each scaled size is drawn once per frame, however many formats are read back from it.
        let mut scaled: Vec<(u32, u32)> = Vec::new();
        for size in formats.iter().filter_map(|r| r.size) {
            if scaled.contains(&size) {
                continue;
            }
            scaled.push(size);
            let (presenter, target) = self.scalers.entry(size).or_insert_with(|| {
                let target = Target::color(&gpu.device, "streamlib scaled output", size.0, size.1);
                (Presenter::new(gpu, texture::COLOR_FORMAT), target)
            });
            let mut pass = texture::begin_pass(
                &mut encoder,
                "streamlib scale pass",
                &[Some(texture::color_attachment(&target.view, Some(wgpu::Color::BLACK)))],
            );
            presenter.draw(gpu, &mut pass, self.compositor.output(), size);
        }
        // What the inputs' frames carry travels on with the output (in input id order); the
        // origin's timecode is kept, and the revision is this engine's scene's when it has one.
        let mut metadata = crate::metadata::FrameMetadata::default();
        for source in self.sources.values() {
            if let Some(m) = source.metadata() {
                metadata.merge(m);
            }
        }
        // What layers found (faces, a person) in this frame travels with it too.
        for entry in self.layers.iter().filter(|e| e.spec.visible && e.spec.opacity > 0.0) {
            metadata.detections.extend(entry.layer.detections());
        }
        metadata.timecode.get_or_insert_with(|| crate::layers::text::timecode(frame.time.index, frame.fps));
        metadata.capture_ns.get_or_insert(rendered_at_ns);
        if self.scene_revision.is_some() {
            metadata.scene_revision = self.scene_revision;
        }
        for &readback in formats {
            let format = readback.format;
            let source = match readback.size.and_then(|size| self.scalers.get(&size)) {
                Some((_, target)) => target,
                None => self.compositor.output(),
            };
            let (width, height) = source.size();
            let color_space = readback.color_space;
            let meta = FrameMeta { time: frame.time, color_space, width, height, format, metadata: metadata.clone() };
            let planes: Vec<&wgpu::Texture> = match color_space {
                Some(cs) => {
                    let conv = self.converters.entry(readback).or_insert_with(|| OutputConverter::new(&gpu.device));
                    conv.record(gpu, &mut encoder, source, format, cs)
                }
                None => vec![&source.texture],
            };
            if let Some(ring) = self.rings.get_mut(&readback) {
                ring.record(gpu, &mut encoder, &planes, meta)?;
            }
            // The ring records one frame at a time: submit per format is not needed because
            // `submitted` below maps every ring's recorded slot.
        }
        if let Some(t) = &mut self.timestamps {
            t.stamp(&mut encoder, 3);
            t.end_frame(&mut encoder);
        }
        let submission = gpu.queue.submit([encoder.finish()]);
        for entry in &mut self.layers {
            entry.layer.submitted();
        }
        // Finished submissions free their resources only when the device is polled; with no
        // readback nothing else polls (an idle server, a preview), and memory grows each frame.
        gpu.device.poll(wgpu::PollType::Poll).map_err(|e| GpuError::Readback(e.to_string()))?;
        for &format in formats {
            if let Some(ring) = self.rings.get_mut(&format) {
                ring.submitted(submission.clone());
            }
        }
        let t4 = Instant::now();
        for &format in formats {
            if let Some(ring) = self.rings.get_mut(&format) {
                done.extend(ring.try_collect(gpu)?);
            }
        }
        let t5 = Instant::now();
        self.times.sources += t2 - t1;
        self.times.composite += t3 - t2;
        self.times.submit += t4 - t3;
        self.times.readback += t5 - t4;
        Ok((done, issues))
    }

    /// Waits for every readback still in flight.
    pub fn flush(&mut self) -> Result<Vec<OutputFrame>, GpuError> {
        let t = Instant::now();
        let mut done = Vec::new();
        for ring in self.rings.values_mut() {
            done.extend(ring.flush(&self.gpu)?);
        }
        done.sort_by_key(|f| f.time.index);
        self.times.readback += t.elapsed();
        Ok(done)
    }

    /// Renders frame `index` and waits for its readback: simple, for stills and tests.
    pub fn render_and_read(&mut self, index: u64, format: PixelFormat) -> Result<OutputFrame, GpuError> {
        let (mut done, _) = self.render(index, &[format])?;
        done.extend(self.flush()?);
        done.into_iter()
            .rfind(|f| f.time.index == index && f.format == format)
            .ok_or_else(|| GpuError::Readback(format!("frame {index} was not read back")))
    }
}
