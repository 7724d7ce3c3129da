//! What every ML layer does alike: when its worker is idle, record the model's input tensor
//! from a texture during `prepare`; hand the tensor to the worker once the frame's work is
//! submitted (`submitted`), so the worker only waits for a mapping the GPU is already doing;
//! report the worker's figures. Offline (`Layer::analyze`), `run_now` does the same at once and
//! waits for the result.

use super::{AnalyzeContext, PrepareContext};
use crate::gpu::tensor::{TensorBuffers, TensorPipeline, TensorShape};
use crate::ml::{Stamped, Worker};
use crate::registry::BuildError;
use std::sync::atomic::AtomicBool;

/// A request a worker takes: the tensor's mappable buffer, filled by work already submitted,
/// its shape, and what the layer attached (`extra`: e.g. the crop it was made from).
pub struct TensorJob<J> {
    pub staging: wgpu::Buffer,
    pub shape: TensorShape,
    pub extra: J,
}

/// A layer's inference worker with its tensor.
pub struct Inference<J, T> {
    worker: Worker<TensorJob<J>, T>,
    tensor: Option<(TensorPipeline, TensorBuffers)>,
    /// A tensor recorded this frame (pts, index, extra), handed over once submitted.
    pending: Option<(u64, u64, J)>,
    /// The frame `run_now` analysed: `record` leaves it alone.
    analyzed: Option<u64>,
}

/// How long `run_now` waits for one result before calling the model stuck.
const RUN_NOW_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

impl<J: Send + 'static, T: Send + Clone + 'static> Inference<J, T> {
    /// Starts the worker thread of layer `id`, running `work` on each tensor.
    pub fn start(
        id: &str,
        work: impl FnMut(TensorJob<J>, &AtomicBool) -> Result<T, String> + Send + 'static,
    ) -> Result<Self, BuildError> {
        let worker = Worker::start(id, work)
            .map_err(|e| BuildError::new(id, format!("cannot start the inference thread: {e}")))?;
        Ok(Inference { worker, tensor: None, pending: None, analyzed: None })
    }

    fn encode(
        &mut self,
        (device, queue): (&wgpu::Device, &wgpu::Queue),
        encoder: &mut wgpu::CommandEncoder,
        view: &wgpu::TextureView,
        shape: TensorShape,
    ) {
        let (pipeline, buffers) =
            self.tensor.get_or_insert_with(|| (TensorPipeline::new(device), TensorBuffers::new(device, shape)));
        // New buffers only for a new size: the pose layer's square moves every run.
        if !buffers.fits(&shape) {
            *buffers = TensorBuffers::new(device, shape);
        }
        buffers.record((device, queue), pipeline, encoder, view, shape);
    }

    /// Waits until the worker has finished its run, polling the GPU so its mapping completes.
    fn wait_idle(&self, gpu: &crate::gpu::GpuContext, deadline: std::time::Instant) -> Result<(), String> {
        while !self.worker.idle() {
            if std::time::Instant::now() > deadline {
                return Err(format!("the model did not finish in {} s", RUN_NOW_LIMIT.as_secs()));
            }
            let _ = gpu.device.poll(wgpu::PollType::Poll);
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        Ok(())
    }

    /// Offline: makes the tensor of `view` now, runs the model on it and waits for the result,
    /// stamped with this frame (polling the GPU meanwhile, which completes the mapping).
    pub fn run_now(
        &mut self,
        ctx: &AnalyzeContext<'_>,
        view: &wgpu::TextureView,
        shape: TensorShape,
        extra: J,
    ) -> Result<Stamped<T>, String> {
        let gpu = ctx.gpu;
        let (pts, frame) = (ctx.frame.time.pts_ns, ctx.frame.time.index);
        self.analyzed = Some(frame);
        let deadline = std::time::Instant::now() + RUN_NOW_LIMIT;
        self.wait_idle(gpu, deadline)?;
        let mut encoder = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("streamlib analysis encoder") });
        self.encode((&gpu.device, &gpu.queue), &mut encoder, view, shape);
        gpu.queue.submit([encoder.finish()]);
        let Some((_, buffers)) = &self.tensor else { return Err("no tensor".into()) };
        let job = TensorJob { staging: buffers.staging().clone(), shape, extra };
        if !self.worker.offer(pts, frame, job) {
            return Err("the inference thread has stopped".into());
        }
        self.wait_idle(gpu, deadline)?;
        match self.worker.latest() {
            Some(result) if result.frame == frame && self.worker.error().is_none() => Ok(result),
            _ => Err(self.worker.error().unwrap_or_else(|| "the model gave no result".into())),
        }
    }

    /// Records this frame's tensor of `view` when the worker is idle (else counts a skipped
    /// frame). True when recorded.
    pub fn record(
        &mut self,
        ctx: &mut PrepareContext<'_>,
        view: &wgpu::TextureView,
        shape: TensorShape,
        extra: J,
    ) -> bool {
        if self.analyzed == Some(ctx.frame.time.index) {
            return false;
        }
        if !self.worker.idle() {
            self.worker.skip();
            return false;
        }
        self.encode((&ctx.gpu.device, &ctx.gpu.queue), ctx.encoder, view, shape);
        self.pending = Some((ctx.frame.time.pts_ns, ctx.frame.time.index, extra));
        true
    }

    /// Hands a tensor recorded this frame to the worker (the layer's `Layer::submitted`).
    pub fn submitted(&mut self) {
        if let (Some((pts, frame, extra)), Some((_, buffers))) = (self.pending.take(), &self.tensor) {
            let job = TensorJob { staging: buffers.staging().clone(), shape: *buffers.shape(), extra };
            self.worker.offer(pts, frame, job);
        }
    }

    /// The newest result, stamped with its frame.
    pub fn latest(&self) -> Option<Stamped<T>> {
        self.worker.latest()
    }

    /// The last run's error, until a run succeeds.
    pub fn error(&self) -> Option<String> {
        self.worker.error()
    }

    /// The worker's figures for `/metrics`, with `result_age_frames` when `age` is known.
    pub fn stats(&self, age: Option<u64>) -> Vec<(&'static str, f64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.worker.stats();
        let runs = s.runs.load(Relaxed) + s.failures.load(Relaxed);
        let mut stats = vec![
            ("inference_runs_total", s.runs.load(Relaxed) as f64),
            ("inference_failures_total", s.failures.load(Relaxed) as f64),
            ("frames_skipped_total", s.skipped.load(Relaxed) as f64),
            ("inference_ms", s.last_us.load(Relaxed) as f64 / 1000.0),
            ("inference_ms_mean", s.total_us.load(Relaxed) as f64 / 1000.0 / runs.max(1) as f64),
            ("tensor_bytes", self.tensor.as_ref().map_or(0, |(_, b)| b.shape().len() * 4) as f64),
        ];
        if let Some(age) = age {
            stats.push(("result_age_frames", age as f64));
        }
        stats
    }
}

/// A scene value that must lie in 0–1 (thresholds, shares).
pub fn check_unit(field: &str, value: f32) -> Result<(), crate::scene::SceneError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(crate::scene::SceneError::new(field, "must be between 0 and 1"))
    }
}
