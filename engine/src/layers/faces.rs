//! The `faces` layer (feature `ml`): an input's frames with the faces CenterFace (or BlazeFace,
//! `detector`) finds in them
//! boxed, their landmarks and scores drawn, or hidden (`anonymize`: pixelated or blurred).
//!
//! Each frame the input is drawn as a `video` layer does. When the inference worker is idle the
//! layer records a compute pass that turns the input (or its crop) into the model's tensor on
//! the GPU; once the frame's work is submitted it hands the tensor's buffer to the worker, which
//! maps it, runs the model and keeps the newest result, stamped with its frame.
//! Drawing uses the newest result; faces missed for a few results stay (a short track), so a
//! face the model loses for a frame is not shown. With `anonymize`, nothing is drawn until the
//! first result exists, and the layer is skipped (with the error) while the model cannot run:
//! an anonymiser fails closed.

use super::canvas::{Canvas, StrokeStyle, TextStyle};
use super::drawing::{DrawingContext, DrawingLayer};
use super::inference::{check_unit, Inference, TensorJob};
use super::video::crop_uv;
use super::{placed, AnalyzeContext, Layer, LayerError, LayerPass, PrepareContext, QuadSlot, VideoLayer};
use crate::gpu::tensor::{read_tensor, Region, TensorShape};
use crate::gpu::texture::{self, Target};
use crate::metadata::Detection;
use crate::ml::centerface::iou;
use crate::ml::{blazeface, model_path, BlazeFace, CenterFace, Face, Model};
use crate::registry::{BuildContext, BuildError, LayerKind};
use crate::scene::{Color, LayerSpec, Rect, SceneError};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// How `anonymize` hides a face.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Anonymize {
    /// Big blocks (the face at 1/16 of its resolution, nearest).
    Pixelate,
    /// Smooth (the same, filtered).
    Blur,
}

/// The face detector a `faces` layer runs.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaceDetector {
    /// CenterFace at `detect_width`: small and far faces too.
    #[default]
    Centerface,
    /// MediaPipe's BlazeFace short range (128×128): fast, for faces near the camera.
    Blazeface,
}

/// `{"kind": "faces", "input": "cam", ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacesLayerConfig {
    /// Which detector runs.
    #[serde(default)]
    pub detector: FaceDetector,
    /// The ONNX model; the detector's own from the ML directory when absent.
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Faces scoring below this are ignored, 0–1.
    #[serde(default = "default_threshold")]
    pub threshold: f32,
    /// Width of CenterFace's input in pixels (a multiple of 32; its height follows the input's
    /// aspect). Wider finds smaller faces and costs more. BlazeFace's is always 128×128.
    #[serde(default = "default_detect_width")]
    pub detect_width: u32,
    /// Hide faces instead of marking them.
    #[serde(default)]
    pub anonymize: Option<Anonymize>,
    /// Draw a box round each face (default: unless anonymizing).
    #[serde(default)]
    pub boxes: Option<bool>,
    /// Draw the landmarks (five with CenterFace, six with BlazeFace; default: as `boxes`).
    #[serde(default)]
    pub landmarks: Option<bool>,
    /// Write the score above each box (default: as `boxes`).
    #[serde(default)]
    pub labels: Option<bool>,
    /// Colour of boxes, landmarks and labels.
    #[serde(default = "default_color")]
    pub color: Color,
    /// How many results a face stays after the model last saw it.
    #[serde(default = "default_hold")]
    pub hold: u32,
    /// Hidden area around each face, as a share of its size on each side.
    #[serde(default = "default_margin")]
    pub margin: f32,
}

fn default_threshold() -> f32 {
    0.5
}
fn default_detect_width() -> u32 {
    320
}
fn default_color() -> Color {
    Color::rgba(0, 255, 102, 255)
}
fn default_hold() -> u32 {
    3
}
fn default_margin() -> f32 {
    0.15
}

/// An opened detector.
enum Detector {
    Centerface(CenterFace),
    Blazeface(BlazeFace),
}

/// A face being followed across results.
#[derive(Clone, Debug)]
struct Track {
    face: Face,
    /// Results since the model last saw it.
    missed: u32,
    /// Kept while the face is followed (the detections' `track_id`).
    id: u64,
}

type Faces = Vec<Face>;

/// The `faces` layer.
pub struct FacesLayer {
    id: String,
    input: String,
    config: FacesLayerConfig,
    video: VideoLayer,
    overlay: Option<DrawingLayer>,
    /// What the overlay draws, in the layer's rect (normalised).
    shown: Arc<Mutex<Faces>>,
    inference: Inference<Option<Letterbox>, Faces>,
    tracks: Vec<Track>,
    /// The result the tracks were last updated from (its frame).
    tracked: Option<u64>,
    /// The last track id given.
    next_track: u64,
    /// The layer's rect as fractions of the output frame (where detections are placed).
    placed: Rect,
    hider: Option<Hider>,
    hidden: Vec<QuadSlot>,
    /// Output frames between the newest result's frame and the frame being drawn.
    age: Option<u64>,
}

impl std::fmt::Debug for FacesLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacesLayer").field("id", &self.id).field("input", &self.input).finish()
    }
}

/// The input at 1/16 of its size, which faces are drawn from when hidden.
struct Hider {
    target: Target,
    bind_group: wgpu::BindGroup,
    input_group: Option<(wgpu::TextureView, wgpu::BindGroup)>,
}

/// Where BlazeFace's square tensor lies over the layer's region of the input: the region
/// (pixels) letterboxed into a square centred on it.
#[derive(Clone, Copy, Debug)]
struct Letterbox {
    /// The region's corner and size, pixels.
    origin: [f32; 2],
    size: [f32; 2],
}

impl Letterbox {
    fn side(&self) -> f32 {
        self.size[0].max(self.size[1])
    }

    fn center(&self) -> [f32; 2] {
        [self.origin[0] + self.size[0] / 2.0, self.origin[1] + self.size[1] / 2.0]
    }

    /// The tensor's point (s, t) in the region's coordinates (0–1).
    fn map(&self, s: f32, t: f32) -> [f32; 2] {
        let (c, side) = (self.center(), self.side());
        let (x, y) = (c[0] + (s - 0.5) * side, c[1] + (t - 0.5) * side);
        [(x - self.origin[0]) / self.size[0].max(1.0), (y - self.origin[1]) / self.size[1].max(1.0)]
    }
}

/// The model's tensor size for an input region of `w` × `h` pixels.
fn tensor_size(detect_width: u32, w: f32, h: f32) -> (u32, u32) {
    let height = (detect_width as f32 * h / w.max(1.0) / 32.0).round().max(1.0) as u32 * 32;
    (detect_width, height.min(4096))
}

impl FacesLayer {
    fn marks(&self) -> (bool, bool, bool) {
        let boxes = self.config.boxes.unwrap_or(self.config.anonymize.is_none());
        (boxes, self.config.landmarks.unwrap_or(boxes), self.config.labels.unwrap_or(boxes))
    }

    /// Records this frame's tensor when the worker is idle; `submitted` hands it over.
    fn run_model(&mut self, ctx: &mut PrepareContext<'_>, uv: [f32; 4]) {
        let Some(input) = ctx.inputs.get(&self.input).cloned() else { return };
        let (shape, letterbox) = self.tensor_shape(uv, (input.width, input.height));
        self.inference.record(ctx, &input.view, shape, letterbox);
    }

    /// CenterFace's tensor of the input's region `uv` (`region`: its size in pixels).
    /// The detector's tensor of the region `uv` of an input of `size` pixels, and for
    /// BlazeFace the letterbox it lies in.
    fn tensor_shape(&self, uv: [f32; 4], (w, h): (u32, u32)) -> (TensorShape, Option<Letterbox>) {
        let (fw, fh) = (w as f32, h as f32);
        let region = ((uv[2] - uv[0]) * fw, (uv[3] - uv[1]) * fh);
        if self.config.detector == FaceDetector::Blazeface {
            let letterbox = Letterbox { origin: [uv[0] * fw, uv[1] * fh], size: [region.0, region.1] };
            let side = blazeface::SIZE;
            let shape = TensorShape {
                width: side,
                height: side,
                region: Region::rotated_square(letterbox.center(), letterbox.side(), 0.0, (w, h)),
                // The letterbox's bands are black, not the picture beyond the crop.
                bounds: uv,
                scale: [2.0; 3],
                bias: [-1.0; 3],
                bgr: false,
                nhwc: true,
            };
            return (shape, Some(letterbox));
        }
        let (width, height) = tensor_size(self.config.detect_width, region.0, region.1);
        let region = Region::rect(uv);
        let shape = TensorShape {
            width,
            height,
            region,
            bounds: uv,
            scale: [255.0; 3],
            bias: [0.0; 3],
            bgr: false,
            nhwc: false,
        };
        (shape, None)
    }

    /// Follows faces across results: a new result matches tracks by overlap; unmatched tracks
    /// live on for `hold` results.
    fn update_tracks(&mut self) {
        let Some(result) = self.inference.latest() else { return };
        if self.tracked == Some(result.frame) {
            return;
        }
        self.tracked = Some(result.frame);
        let mut tracks: Vec<Track> = Vec::new();
        let mut old = std::mem::take(&mut self.tracks);
        for face in result.value {
            let id = match old.iter().position(|t| iou(&t.face.rect, &face.rect) > 0.3) {
                Some(i) => old.swap_remove(i).id,
                None => {
                    self.next_track += 1;
                    self.next_track
                }
            };
            tracks.push(Track { face, missed: 0, id });
        }
        for mut t in old {
            t.missed += 1;
            if t.missed <= self.config.hold {
                tracks.push(t);
            }
        }
        self.tracks = tracks;
    }

    fn prepare_hider(&mut self, ctx: &mut PrepareContext<'_>, uv: [f32; 4]) {
        // No face, nothing to hide: no pass.
        if self.tracks.is_empty() {
            return;
        }
        let Some(input) = ctx.inputs.get(&self.input) else { return };
        let size = ((input.width / 16).max(1), (input.height / 16).max(1));
        let blend = &ctx.pipelines.blend;
        let device = &ctx.gpu.device;
        let nearest = self.config.anonymize == Some(Anonymize::Pixelate);
        let hider = match self.hider.take() {
            Some(h) if h.target.size() == size => h,
            _ => {
                let target = Target::color(device, "streamlib faces hider", size.0, size.1);
                let bind_group = if nearest {
                    blend.texture_bind_group_nearest(device, &target.view)
                } else {
                    blend.texture_bind_group(device, &target.view)
                };
                Hider { target, bind_group, input_group: None }
            }
        };
        let mut hider = hider;
        if hider.input_group.as_ref().is_none_or(|(v, _)| *v != input.view) {
            hider.input_group = Some((input.view.clone(), blend.texture_bind_group(device, &input.view)));
        }
        if let Some((_, group)) = &hider.input_group {
            let mut pass = texture::begin_pass(
                ctx.encoder,
                "streamlib faces hider pass",
                &[Some(texture::color_attachment(&hider.target.view, None))],
            );
            pass.set_pipeline(&blend.bake_pipeline(device, 255));
            pass.set_bind_group(0, group, &[]);
            pass.draw(0..4, 0..1);
        }
        self.hider = Some(hider);
        let dst = ctx.dst_rect();
        let margin = self.config.margin.max(0.0);
        for t in &self.tracks {
            let [x0, y0, x1, y1] = t.face.rect;
            let (mw, mh) = ((x1 - x0) * margin, (y1 - y0) * margin);
            let r = [(x0 - mw).max(0.0), (y0 - mh).max(0.0), (x1 + mw).min(1.0), (y1 + mh).min(1.0)];
            let rect =
                Rect::new(dst.x + r[0] * dst.w, dst.y + r[1] * dst.h, (r[2] - r[0]) * dst.w, (r[3] - r[1]) * dst.h);
            let lerp = |a: f32, b: f32, t: f32| a + (b - a) * t;
            let src = [
                lerp(uv[0], uv[2], r[0]),
                lerp(uv[1], uv[3], r[1]),
                lerp(uv[0], uv[2], r[2]),
                lerp(uv[1], uv[3], r[3]),
            ];
            self.hidden.push(ctx.quad(rect, src));
        }
    }
}

impl Layer for FacesLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        self.hidden.clear();
        let Some(input) = ctx.inputs.get(&self.input).cloned() else {
            return self.video.prepare(ctx);
        };
        let uv = crop_uv(ctx.spec.crop, &input);
        self.placed = placed(ctx);
        self.run_model(ctx, uv);
        if let Some(e) = self.inference.error() {
            return Err(LayerError::new(&self.id, e));
        }
        self.update_tracks();
        self.age = self.tracked.map(|f| ctx.frame.time.index.saturating_sub(f));
        if self.config.anonymize.is_some() && self.tracked.is_none() {
            // Fails closed: no frame is shown before the model has looked at one.
            return Ok(());
        }
        self.video.prepare(ctx)?;
        if self.config.anonymize.is_some() {
            self.prepare_hider(ctx, uv);
        }
        if let Some(overlay) = &mut self.overlay {
            *self.shown.lock().unwrap_or_else(|p| p.into_inner()) =
                self.tracks.iter().map(|t| t.face.clone()).collect();
            overlay.prepare(ctx)?;
        }
        Ok(())
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        self.video.record(pass);
        if let Some(hider) = &self.hider {
            for slot in &self.hidden {
                pass.draw_quad(&hider.bind_group, *slot);
            }
        }
        if let Some(overlay) = &self.overlay {
            overlay.record(pass);
        }
    }

    fn opaque(&self) -> bool {
        self.video.opaque()
    }

    fn submitted(&mut self) {
        self.inference.submitted();
    }

    fn analyzes(&self) -> bool {
        true
    }

    fn analyze(&mut self, ctx: &AnalyzeContext<'_>) -> Result<(), LayerError> {
        let Some(input) = ctx.inputs.get(&self.input) else { return Ok(()) };
        let uv = crop_uv(ctx.spec.crop, input);
        let (shape, letterbox) = self.tensor_shape(uv, (input.width, input.height));
        self.inference.run_now(ctx, &input.view, shape, letterbox).map(drop).map_err(|e| LayerError::new(&self.id, e))
    }

    fn detections(&self) -> Vec<Detection> {
        let p = self.placed;
        self.tracks
            .iter()
            .map(|t| {
                let [x0, y0, x1, y1] = t.face.rect;
                Detection {
                    x: p.x + x0 * p.w,
                    y: p.y + y0 * p.h,
                    w: (x1 - x0) * p.w,
                    h: (y1 - y0) * p.h,
                    score: t.face.score,
                    class: 0,
                    track_id: Some(t.id),
                    label: "face".into(),
                }
            })
            .collect()
    }

    fn stats(&self) -> Vec<(&'static str, f64)> {
        let mut stats = self.inference.stats(self.age);
        stats.push(("faces", self.tracks.len() as f64));
        stats
    }
}

/// Draws boxes, landmarks and scores of `faces` (normalised to the canvas).
fn draw_faces(canvas: &mut Canvas, ctx: &DrawingContext<'_>, faces: &[Face], color: Color, marks: (bool, bool, bool)) {
    let (w, h) = (ctx.width as f32, ctx.height as f32);
    let line = (w.min(h) / 240.0).clamp(1.5, 6.0);
    let style = StrokeStyle::new(line);
    for face in faces {
        let [x0, y0, x1, y1] = face.rect;
        let rect = Rect::new(x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h);
        if marks.0 {
            canvas.stroke_rect(rect, 0.0, &style, color);
        }
        if marks.1 {
            for &[x, y] in &face.landmarks {
                canvas.fill_circle(x * w, y * h, line * 1.5, color);
            }
        }
        if marks.2 {
            let size = (line * 7.0).max(12.0);
            let text = TextStyle { size, color, ..TextStyle::default() };
            canvas.text(&format!("face {:.2}", face.score), rect.x, (rect.y - size * 1.3).max(0.0), &text);
        }
    }
}

/// Registry entry for `"kind": "faces"`.
#[derive(Debug, Default)]
pub struct FacesLayerKind;

impl LayerKind for FacesLayerKind {
    type Config = FacesLayerConfig;

    fn needs_input(&self) -> bool {
        true
    }

    fn path_fields(&self) -> &'static [&'static str] {
        &["model"]
    }

    fn check(&self, config: &FacesLayerConfig) -> Result<(), SceneError> {
        check_unit("threshold", config.threshold)?;
        if !config.detect_width.is_multiple_of(32) || !(64..=1920).contains(&config.detect_width) {
            return Err(SceneError::new("detect_width", "must be a multiple of 32 from 64 to 1920"));
        }
        check_unit("margin", config.margin)?;
        if config.hold > 300 {
            return Err(SceneError::new("hold", "must be at most 300 results"));
        }
        Ok(())
    }

    fn build(
        &self,
        spec: &LayerSpec,
        config: FacesLayerConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Layer>, BuildError> {
        let input = spec.input.clone().ok_or_else(|| BuildError::new(&spec.id, "a faces layer needs an input"))?;
        let detector = config.detector;
        let path = match (&config.model, detector) {
            (Some(p), _) => ctx.scene.resolve_path(p),
            (None, FaceDetector::Centerface) => model_path("centerface.onnx"),
            (None, FaceDetector::Blazeface) => model_path("face_detection_short_range.onnx"),
        };
        let threshold = config.threshold;
        // The model opens on the worker: a session takes a moment, and a missing runtime or
        // model is reported by the layer (every frame it would run) rather than failing the scene.
        let mut model: Option<Result<Detector, String>> = None;
        let inference = Inference::start(&spec.id, move |job: TensorJob<Option<Letterbox>>, stop| {
            let opened = model.get_or_insert_with(|| {
                let model = Model::open(&path).map_err(|e| e.to_string())?;
                Ok(match detector {
                    FaceDetector::Centerface => Detector::Centerface(CenterFace::new(model)),
                    FaceDetector::Blazeface => Detector::Blazeface(BlazeFace::new(model)),
                })
            });
            let opened = opened.as_mut().map_err(|e| e.clone())?;
            let tensor = read_tensor(&job.staging, stop)?;
            match (opened, job.extra) {
                (Detector::Centerface(m), _) => m.detect(tensor, job.shape.width, job.shape.height, threshold),
                (Detector::Blazeface(m), Some(letterbox)) => {
                    m.detect(tensor, threshold, |s, t| letterbox.map(s, t)).map(|mut faces| {
                        // Faces partly outside the region are cut at its edges.
                        for f in &mut faces {
                            let r = f.rect;
                            f.rect = [r[0].max(0.0), r[1].max(0.0), r[2].min(1.0), r[3].min(1.0)];
                        }
                        faces.retain(|f| f.rect[2] > f.rect[0] && f.rect[3] > f.rect[1]);
                        faces
                    })
                }
                (Detector::Blazeface(_), None) => Err(crate::ml::MlError::Inference("no letterbox".into())),
            }
            .map_err(|e| e.to_string())
        })?;
        let shown: Arc<Mutex<Faces>> = Arc::default();
        let mut layer = FacesLayer {
            id: spec.id.clone(),
            input: input.clone(),
            config,
            video: VideoLayer::new(input),
            overlay: None,
            shown: shown.clone(),
            inference,
            tracks: Vec::new(),
            tracked: None,
            next_track: 0,
            placed: Rect::new(0.0, 0.0, 1.0, 1.0),
            hider: None,
            hidden: Vec::new(),
            age: None,
        };
        let marks = layer.marks();
        if marks.0 || marks.1 || marks.2 {
            let color = layer.config.color;
            layer.overlay = Some(DrawingLayer::new(Box::new(move |canvas, ctx| {
                let faces = shown.lock().unwrap_or_else(|p| p.into_inner()).clone();
                draw_faces(canvas, ctx, &faces, color, marks);
                Ok(())
            })));
        }
        Ok(Box::new(layer))
    }
}
