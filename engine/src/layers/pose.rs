//! The `pose` layer (feature `ml`): an input with the body BlazePose finds in it drawn over it —
//! skeleton, keypoints, optionally the person's box and score.
//!
//! The detector runs only while no body is tracked: its result places a turned square around
//! the person, the landmark model runs on that square (cut out on the GPU, `Inference`), and
//! each landmark result places the next square. When the body's presence falls below
//! `presence`, tracking is lost and the detector runs again. Drawing uses the newest result.

use super::drawing::{DrawingContext, DrawingLayer};
use super::inference::{check_unit, Inference, TensorJob};
use super::video::crop_uv;
use super::{placed, AnalyzeContext, Layer, LayerError, LayerPass, PrepareContext, VideoLayer};
use crate::gpu::tensor::{read_tensor, Region, TensorShape};
use crate::layers::canvas::{Canvas, PathBuilder, StrokeStyle, TextStyle};
use crate::metadata;
use crate::ml::pose::{Body, Detection, Roi, CONNECTIONS, DETECTOR_SIZE, LANDMARK_SIZE};
use crate::ml::{model_path, BlazePose, Model};
use crate::registry::{BuildContext, BuildError, LayerKind};
use crate::scene::{Color, LayerSpec, Rect, SceneError};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// `{"kind": "pose", "input": "cam", ...}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoseLayerConfig {
    /// Detector score (0–1) a person needs.
    #[serde(default = "half")]
    pub threshold: f32,
    /// Body presence (0–1) below which tracking is lost and the detector runs again.
    #[serde(default = "half")]
    pub presence: f32,
    /// Landmarks less visible than this (0–1) are not drawn.
    #[serde(default = "half")]
    pub visibility: f32,
    /// Draw the bones.
    #[serde(default = "yes")]
    pub skeleton: bool,
    /// Draw the 33 keypoints.
    #[serde(default = "yes")]
    pub keypoints: bool,
    /// Draw a box round the person, with its presence as a label.
    #[serde(default)]
    pub boxes: bool,
    /// Colour of what is drawn.
    #[serde(default = "default_color")]
    pub color: Color,
    /// The detector model; BlazePose's from the ML directory when absent.
    #[serde(default)]
    pub detector: Option<PathBuf>,
    /// The landmark model; BlazePose lite's from the ML directory when absent.
    #[serde(default)]
    pub landmarks: Option<PathBuf>,
}

fn half() -> f32 {
    0.5
}
fn yes() -> bool {
    true
}
fn default_color() -> Color {
    Color::rgba(255, 204, 0, 255)
}

/// What a worker run does.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// Find a person in this square (a letterbox round the input).
    Detect(Roi),
    /// Landmarks of the body in this square.
    Landmarks(Roi),
}

/// One run's result.
#[derive(Clone, Debug)]
enum Found {
    Detected(Option<Detection>),
    Body(Body),
}

/// What the overlay draws, in the layer's rect (normalised 0–1).
#[derive(Clone, Debug, Default)]
struct Shown {
    /// (x, y, visible) per landmark.
    points: Vec<(f32, f32, bool)>,
    rect: Option<[f32; 4]>,
    presence: f32,
}

/// The `pose` layer.
pub struct PoseLayer {
    id: String,
    input: String,
    config: PoseLayerConfig,
    video: VideoLayer,
    overlay: DrawingLayer,
    shown: Arc<Mutex<Shown>>,
    inference: Inference<Stage, Found>,
    /// The square the landmark model looks at next; none while no body is tracked.
    roi: Option<Roi>,
    /// The result last taken in (its frame).
    taken: Option<u64>,
    presence: f32,
    /// The layer's rect as fractions of the output frame (where detections are placed).
    placed: Rect,
    /// Counts bodies found after tracking was lost (the detections' `track_id`).
    track: u64,
    detector_runs: u64,
    landmark_runs: u64,
    age: Option<u64>,
}

impl std::fmt::Debug for PoseLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoseLayer").field("id", &self.id).field("input", &self.input).finish()
    }
}

impl PoseLayer {
    /// Takes in the newest result when it is new.
    fn take_latest(&mut self, uv: [f32; 4], size: (f32, f32)) {
        if let Some(result) = self.inference.latest().filter(|r| self.taken != Some(r.frame)) {
            self.take(result.value, result.frame, uv, size);
        }
    }

    /// Takes in a result of `frame`: tracking starts, goes on or is lost.
    fn take(&mut self, found: Found, frame: u64, uv: [f32; 4], size: (f32, f32)) {
        self.taken = Some(frame);
        // Image pixels → the layer's rect, 0–1.
        let (u0, v0, u1, v1) = (uv[0] * size.0, uv[1] * size.1, uv[2] * size.0, uv[3] * size.1);
        let norm = |x: f32, y: f32| ((x - u0) / (u1 - u0).max(1.0), (y - v0) / (v1 - v0).max(1.0));
        let mut shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        match found {
            Found::Detected(Some(d)) => {
                self.detector_runs += 1;
                self.track += 1;
                self.roi = Some(d.roi);
            }
            Found::Detected(None) => {
                self.detector_runs += 1;
                self.roi = None;
                *shown = Shown::default();
            }
            Found::Body(body) => {
                self.landmark_runs += 1;
                self.presence = body.presence;
                if body.presence < self.config.presence {
                    self.roi = None;
                    *shown = Shown::default();
                    return;
                }
                self.roi = Some(body.next);
                let visible = self.config.visibility;
                shown.points = body
                    .landmarks
                    .iter()
                    .map(|l| {
                        let (x, y) = norm(l.x, l.y);
                        (x, y, l.visibility >= visible)
                    })
                    .collect();
                let seen: Vec<_> = shown.points.iter().filter(|p| p.2).collect();
                // The visible landmarks' bounds, within the layer (legs may be placed below it).
                shown.rect = (!seen.is_empty()).then(|| {
                    let r = seen.iter().fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |r, p| {
                        [r[0].min(p.0), r[1].min(p.1), r[2].max(p.0), r[3].max(p.1)]
                    });
                    r.map(|v| v.clamp(0.0, 1.0))
                });
                shown.presence = body.presence;
            }
        }
    }
}

impl PoseLayer {
    /// What runs next on the input's region `uv` of a `width` × `height` input: the landmark
    /// model on the tracked square, or the detector on the region letterboxed into a square.
    fn next_run(&self, uv: [f32; 4], (width, height): (u32, u32)) -> (Stage, TensorShape) {
        let (w, h) = (width as f32, height as f32);
        let (stage, side) = match self.roi {
            Some(roi) => (Stage::Landmarks(roi), LANDMARK_SIZE),
            None => {
                let (x0, y0, x1, y1) = (uv[0] * w, uv[1] * h, uv[2] * w, uv[3] * h);
                let roi = Roi { center: [(x0 + x1) / 2.0, (y0 + y1) / 2.0], side: (x1 - x0).max(y1 - y0), angle: 0.0 };
                (Stage::Detect(roi), DETECTOR_SIZE)
            }
        };
        let (Stage::Detect(roi) | Stage::Landmarks(roi)) = stage;
        let (scale, bias) = match stage {
            // The detector takes −1–1, the landmark model 0–1.
            Stage::Detect(_) => ([2.0; 3], [-1.0; 3]),
            Stage::Landmarks(_) => ([1.0; 3], [0.0; 3]),
        };
        let shape = TensorShape {
            width: side,
            height: side,
            region: Region::rotated_square(roi.center, roi.side, roi.angle, (width, height)),
            // Beyond the crop is black, as MediaPipe pads: nobody outside the layer is followed.
            bounds: uv,
            scale,
            bias,
            bgr: false,
            nhwc: true,
        };
        (stage, shape)
    }
}

impl Layer for PoseLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        self.placed = placed(ctx);
        self.video.prepare(ctx)?;
        let Some(input) = ctx.inputs.get(&self.input).cloned() else { return Ok(()) };
        let uv = crop_uv(ctx.spec.crop, &input);
        let size = (input.width as f32, input.height as f32);
        self.take_latest(uv, size);
        let (stage, shape) = self.next_run(uv, (input.width, input.height));
        self.inference.record(ctx, &input.view, shape, stage);
        if let Some(e) = self.inference.error() {
            return Err(LayerError::new(&self.id, e));
        }
        self.age = self.taken.map(|f| ctx.frame.time.index.saturating_sub(f));
        self.overlay.prepare(ctx)
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        self.video.record(pass);
        self.overlay.record(pass);
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
        let size = (input.width as f32, input.height as f32);
        self.take_latest(uv, size);
        // Landmarks on the tracked square; when there is none or the body is lost, the
        // detector, then landmarks on what it found: at most three runs for one frame.
        for _ in 0..3 {
            let (stage, shape) = self.next_run(uv, (input.width, input.height));
            let result =
                self.inference.run_now(ctx, &input.view, shape, stage).map_err(|e| LayerError::new(&self.id, e))?;
            self.take(result.value, result.frame, uv, size);
            let tracked = self.roi.is_some();
            if tracked == matches!(stage, Stage::Landmarks(_)) {
                break;
            }
        }
        Ok(())
    }

    fn detections(&self) -> Vec<metadata::Detection> {
        let shown = self.shown.lock().unwrap_or_else(|p| p.into_inner());
        let (Some([x0, y0, x1, y1]), true) = (shown.rect, self.roi.is_some()) else { return Vec::new() };
        let p = self.placed;
        vec![metadata::Detection {
            x: p.x + x0 * p.w,
            y: p.y + y0 * p.h,
            w: (x1 - x0) * p.w,
            h: (y1 - y0) * p.h,
            score: shown.presence,
            class: 0,
            track_id: Some(self.track),
            label: "person".into(),
        }]
    }

    fn stats(&self) -> Vec<(&'static str, f64)> {
        let mut stats = self.inference.stats(self.age);
        stats.extend([
            ("pose_presence", f64::from(self.presence)),
            ("tracking", f64::from(u8::from(self.roi.is_some()))),
            ("detector_runs_total", self.detector_runs as f64),
            ("landmark_runs_total", self.landmark_runs as f64),
        ]);
        stats
    }
}

/// Draws the skeleton, keypoints and box of `shown` (normalised to the canvas).
fn draw_pose(canvas: &mut Canvas, ctx: &DrawingContext<'_>, shown: &Shown, config: &PoseLayerConfig) {
    let (w, h) = (ctx.width as f32, ctx.height as f32);
    let line = (w.min(h) / 200.0).clamp(1.5, 6.0);
    let style = StrokeStyle::new(line);
    let color = config.color;
    let at = |i: usize| shown.points.get(i).filter(|p| p.2).map(|p| (p.0 * w, p.1 * h));
    if config.skeleton {
        for (a, b) in CONNECTIONS {
            if let (Some(p), Some(q)) = (at(a), at(b)) {
                canvas.stroke(&PathBuilder::new().move_to(p.0, p.1).line_to(q.0, q.1).build(), &style, color);
            }
        }
    }
    if config.keypoints {
        for i in 0..shown.points.len() {
            if let Some((x, y)) = at(i) {
                canvas.fill_circle(x, y, line * 1.6, color);
            }
        }
    }
    if let (true, Some([x0, y0, x1, y1])) = (config.boxes, shown.rect) {
        let rect = Rect::new(x0 * w, y0 * h, (x1 - x0) * w, (y1 - y0) * h);
        canvas.stroke_rect(rect, 0.0, &style, color);
        let size = (line * 7.0).max(12.0);
        let text = TextStyle { size, color, ..TextStyle::default() };
        canvas.text(&format!("person {:.2}", shown.presence), rect.x, (rect.y - size * 1.3).max(0.0), &text);
    }
}

/// Registry entry for `"kind": "pose"`.
#[derive(Debug, Default)]
pub struct PoseLayerKind;

impl LayerKind for PoseLayerKind {
    type Config = PoseLayerConfig;

    fn needs_input(&self) -> bool {
        true
    }

    fn path_fields(&self) -> &'static [&'static str] {
        &["detector", "landmarks"]
    }

    fn check(&self, config: &PoseLayerConfig) -> Result<(), SceneError> {
        check_unit("threshold", config.threshold)?;
        check_unit("presence", config.presence)?;
        check_unit("visibility", config.visibility)
    }

    fn build(
        &self,
        spec: &LayerSpec,
        config: PoseLayerConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Layer>, BuildError> {
        let input = spec.input.clone().ok_or_else(|| BuildError::new(&spec.id, "a pose layer needs an input"))?;
        let path = |p: &Option<PathBuf>, default: &str| match p {
            Some(p) => ctx.scene.resolve_path(p),
            None => model_path(default),
        };
        let detector_path = path(&config.detector, "pose_detection.onnx");
        let landmarks_path = path(&config.landmarks, "pose_landmark_lite.onnx");
        let threshold = config.threshold;
        let mut models: Option<Result<BlazePose, String>> = None;
        let inference = Inference::start(&spec.id, move |job: TensorJob<Stage>, stop| {
            let pose = models.get_or_insert_with(|| {
                let open = |p: &PathBuf| Model::open(p).map_err(|e| e.to_string());
                Ok(BlazePose::new(open(&detector_path)?, open(&landmarks_path)?))
            });
            let pose = pose.as_mut().map_err(|e| e.clone())?;
            let tensor = read_tensor(&job.staging, stop)?;
            match job.extra {
                Stage::Detect(roi) => pose.detect(tensor, threshold, |s, t| roi.point(s, t)).map(Found::Detected),
                Stage::Landmarks(roi) => pose.landmarks(tensor, &roi).map(Found::Body),
            }
            .map_err(|e| e.to_string())
        })?;
        let shown: Arc<Mutex<Shown>> = Arc::default();
        let drawn = shown.clone();
        let style = config.clone();
        let overlay = DrawingLayer::new(Box::new(move |canvas, ctx| {
            let shown = drawn.lock().unwrap_or_else(|p| p.into_inner()).clone();
            draw_pose(canvas, ctx, &shown, &style);
            Ok(())
        }));
        Ok(Box::new(PoseLayer {
            id: spec.id.clone(),
            input: input.clone(),
            config,
            video: VideoLayer::new(input),
            overlay,
            shown,
            inference,
            roi: None,
            taken: None,
            presence: 0.0,
            placed: Rect::new(0.0, 0.0, 1.0, 1.0),
            track: 0,
            detector_runs: 0,
            landmark_runs: 0,
            age: None,
        }))
    }
}
