//! `streamlib preview`: the composition in a window, presented straight from the GPU (no
//! readback), paced at the scene's frame rate, driven from the keyboard. It can record beside it
//! (`--output`). State changes are printed on stdout, one line each, so scripts can follow them.

use crate::hud::Hud;
use anyhow::{anyhow, Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use streamlib::present::{pick_surface_format, Presenter};
use streamlib::{Backpressure, Engine, GpuContext, Pacing, Pipeline, PixelFormat, Registry, Scene, SinkHandle};
use winit::application::ApplicationHandler;
use winit::dpi::LogicalSize;
use winit::event::{ElementState, KeyEvent, WindowEvent};
use winit::event_loop::{ActiveEventLoop, ControlFlow, EventLoop};
use winit::keyboard::{Key, NamedKey};
use winit::window::{Fullscreen, Window, WindowId};

pub const KEYS: &str = "keys: Space pause/resume | Left/Right seek -/+5 s | , . step a frame (paused) | \
Home restart | F fullscreen | H HUD | S save PNG | Q/Esc quit";

/// The output id of `--output`'s sinks in the loop.
const RECORDING: &str = "recording";

pub struct PreviewArgs {
    pub scene: Scene,
    pub registry: Registry,
    pub output: Option<PathBuf>,
    pub snapshot_dir: PathBuf,
    pub hud: bool,
    /// The clock frames are paced on (a PTP clock); the system's when `None`.
    pub clock: Option<std::sync::Arc<dyn streamlib::timing::Clock>>,
}

/// Opens the window and runs until the user quits. No display is a clear error, not a panic.
pub fn run(args: PreviewArgs) -> Result<()> {
    let event_loop = EventLoop::new().map_err(|e| {
        anyhow!(
            "no display to open a window on ({e}); set DISPLAY (X11) or run under Xvfb, \
             or use `streamlib render` for headless output"
        )
    })?;
    let mut app = App { args, state: None, error: None };
    event_loop.run_app(&mut app).context("window event loop")?;
    match app.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

struct App {
    args: PreviewArgs,
    state: Option<State>,
    error: Option<anyhow::Error>,
}

struct State {
    gpu: GpuContext,
    surface: wgpu::Surface<'static>,
    config: wgpu::SurfaceConfiguration,
    presenter: Presenter,
    hud: Hud,
    /// The render loop; the window adds presenting.
    pipeline: Pipeline,
    /// Frame shown now.
    index: u64,
    paused: bool,
    hud_on: bool,
    ready_printed: bool,
    last_frame_ms: f64,
    fps_window: std::collections::VecDeque<Instant>,
    // Dropped last: the surface refers to it.
    window: Arc<Window>,
}

impl ApplicationHandler for App {
    fn resumed(&mut self, event_loop: &ActiveEventLoop) {
        if self.state.is_some() {
            return;
        }
        match State::new(event_loop, &self.args) {
            Ok(state) => {
                println!("{KEYS}");
                state.window.request_redraw();
                self.state = Some(state);
            }
            Err(e) => {
                self.error = Some(e);
                event_loop.exit();
            }
        }
    }

    fn window_event(&mut self, event_loop: &ActiveEventLoop, _: WindowId, event: WindowEvent) {
        let Some(state) = &mut self.state else { return };
        let result = match event {
            WindowEvent::CloseRequested => {
                event_loop.exit();
                Ok(())
            }
            WindowEvent::Resized(size) => {
                state.resize(size.width, size.height);
                Ok(())
            }
            // Synthetic presses are winit replaying keys held while focus arrived, not new input.
            WindowEvent::KeyboardInput { event, is_synthetic: false, .. } => state.key(event_loop, &event, &self.args),
            WindowEvent::RedrawRequested => state.present(),
            _ => Ok(()),
        };
        if let Err(e) = result {
            self.error = Some(e);
            event_loop.exit();
        }
    }

    fn about_to_wait(&mut self, event_loop: &ActiveEventLoop) {
        let Some(state) = &mut self.state else { return };
        if state.paused {
            event_loop.set_control_flow(ControlFlow::Wait);
            return;
        }
        match state.tick() {
            Ok(next_due) => event_loop.set_control_flow(ControlFlow::WaitUntil(next_due)),
            Err(e) => {
                self.error = Some(e);
                event_loop.exit();
            }
        }
    }

    fn exiting(&mut self, _: &ActiveEventLoop) {
        if let Some(mut state) = self.state.take() {
            if let Err(e) = state.pipeline.flush(&[]) {
                self.error.get_or_insert(e.into());
            }
            if let (_, Some(e)) = state.pipeline.finish_outputs() {
                self.error.get_or_insert(e.into());
            }
        }
    }
}

impl State {
    fn new(event_loop: &ActiveEventLoop, args: &PreviewArgs) -> Result<Self> {
        let scene = &args.scene;
        let attributes = Window::default_attributes()
            .with_title("streamlib preview")
            .with_inner_size(LogicalSize::new(scene.width, scene.height));
        let window = Arc::new(event_loop.create_window(attributes).context("cannot create the window")?);
        let display = event_loop.owned_display_handle();
        let gpu = GpuContext::new_with(|| {
            wgpu::InstanceDescriptor::new_with_display_handle_from_env(Box::new(display.clone()))
        })?;
        let surface = gpu.instance().create_surface(window.clone()).context("cannot create a GPU surface")?;
        let caps = surface.get_capabilities(gpu.adapter());
        let format =
            pick_surface_format(&caps.formats).ok_or_else(|| anyhow!("the adapter cannot present to this window"))?;
        let size = window.inner_size();
        let config = wgpu::SurfaceConfiguration {
            usage: wgpu::TextureUsages::RENDER_ATTACHMENT,
            format,
            width: size.width.max(1),
            height: size.height.max(1),
            present_mode: wgpu::PresentMode::Fifo,
            alpha_mode: wgpu::CompositeAlphaMode::Opaque,
            view_formats: vec![],
            desired_maximum_frame_latency: 2,
            color_space: wgpu::SurfaceColorSpace::Auto,
        };
        surface.configure(gpu.device(), &config);
        let engine = Engine::new(&gpu, scene.clone(), &args.registry, Pacing::Realtime)?;
        let mut sinks = Vec::new();
        if let Some(path) = &args.output {
            for named in args.registry.open_output(path, scene)? {
                // Live output: a slow disk drops frames rather than stalling the window.
                sinks.push(SinkHandle::spawn(&named.name, named.sink, Backpressure::Drop, 8)?);
            }
        }
        let mut pipeline = Self::pipeline(engine, args);
        pipeline.set_output(RECORDING, sinks);
        Ok(State {
            presenter: Presenter::new(&gpu, format),
            hud: Hud::new(gpu.device(), gpu.queue(), format),
            surface,
            config,
            pipeline,
            index: 0,
            paused: false,
            hud_on: args.hud,
            ready_printed: false,
            last_frame_ms: 0.0,
            fps_window: Default::default(),
            gpu,
            window,
        })
    }

    /// Renders the frame that is due now (late ones are skipped) and returns when the next is due.
    fn tick(&mut self) -> Result<Instant> {
        if let Some(index) = self.pipeline.poll_due() {
            self.render(index)?;
        }
        Ok(self.pipeline.next_deadline())
    }

    fn render(&mut self, index: u64) -> Result<()> {
        let t = Instant::now();
        let report = self.pipeline.render(index, &[])?;
        if let Some((_, e)) = report.sink_errors.into_iter().next() {
            return Err(e.into());
        }
        self.last_frame_ms = t.elapsed().as_secs_f64() * 1e3;
        self.index = index;
        self.fps_window.push_back(Instant::now());
        while self.fps_window.len() > 60 {
            self.fps_window.pop_front();
        }
        self.window.request_redraw();
        Ok(())
    }

    fn resize(&mut self, width: u32, height: u32) {
        self.config.width = width.max(1);
        self.config.height = height.max(1);
        self.surface.configure(self.gpu.device(), &self.config);
        self.window.request_redraw();
    }

    fn pipeline(engine: Engine, args: &PreviewArgs) -> Pipeline {
        match &args.clock {
            Some(clock) => Pipeline::with_clock(engine, Pacing::Realtime, clock.clone()),
            None => Pipeline::new(engine, Pacing::Realtime),
        }
    }

    fn hud_text(&self) -> String {
        let fps = match (self.fps_window.front(), self.fps_window.back()) {
            (Some(a), Some(b)) if self.fps_window.len() > 1 => {
                (self.fps_window.len() - 1) as f64 / b.duration_since(*a).as_secs_f64().max(1e-9)
            }
            _ => 0.0,
        };
        let dropped: u64 = self
            .pipeline
            .outputs()
            .flat_map(|(_, sinks)| sinks)
            .map(|s| s.stats().dropped.load(std::sync::atomic::Ordering::Relaxed))
            .sum();
        let pts = self.pipeline.engine().scene().fps.pts_ns(self.index) as f64 / 1e9;
        let clock = self.pipeline.clock().status();
        let ticks = self.pipeline.tick_stats();
        let mut sync =
            format!("clock {} {:?} | tick lateness p99 {:.2} ms", clock.name, clock.state, ticks.lateness.p99_ms);
        let engine = self.pipeline.engine();
        if let Some(l) = engine.scene().sync.latency_ms {
            let spread = engine.sync_spread();
            sync += &format!(" | latency {l:.0} ms | spread p95 {:.1} ms", spread.p95_ms);
        }
        for (id, stats) in engine.input_sync() {
            sync += &format!("\n  {id}: {}", stats.badge());
        }
        format!(
            "{:.1} fps | frame time {:.1} ms | frame {} | pts {:.3} s | late ticks {} | dropped {}{}\n{sync}\n{}\n{}",
            fps,
            self.last_frame_ms,
            self.index,
            pts,
            self.pipeline.missed_ticks(),
            dropped,
            if self.paused { " | PAUSED" } else { "" },
            self.gpu.adapter_summary(),
            KEYS.replace(" | ", "\n")
        )
    }

    fn present(&mut self) -> Result<()> {
        let frame = match self.surface.get_current_texture() {
            wgpu::CurrentSurfaceTexture::Success(f) => f,
            wgpu::CurrentSurfaceTexture::Suboptimal(_) | wgpu::CurrentSurfaceTexture::Outdated => {
                self.surface.configure(self.gpu.device(), &self.config);
                self.window.request_redraw();
                return Ok(());
            }
            wgpu::CurrentSurfaceTexture::Timeout | wgpu::CurrentSurfaceTexture::Occluded => return Ok(()),
            wgpu::CurrentSurfaceTexture::Lost => {
                self.surface = self.gpu.instance().create_surface(self.window.clone())?;
                self.surface.configure(self.gpu.device(), &self.config);
                self.window.request_redraw();
                return Ok(());
            }
            other => return Err(anyhow!("the window surface failed: {other:?}")),
        };
        let size = (self.config.width, self.config.height);
        if self.hud_on {
            let text = self.hud_text();
            let scale = self.window.scale_factor() as f32;
            self.hud
                .prepare(self.gpu.device(), self.gpu.queue(), &text, size, scale)
                .map_err(|e| anyhow!("HUD: {e}"))?;
        }
        let view = frame.texture.create_view(&Default::default());
        let mut encoder = self
            .gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("streamlib present encoder") });
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                label: Some("streamlib present pass"),
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations {
                        load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                        store: wgpu::StoreOp::Store,
                    },
                })],
                ..Default::default()
            });
            self.presenter.draw_output(&mut pass, self.pipeline.engine(), size);
            if self.hud_on {
                self.hud.render(&mut pass).map_err(|e| anyhow!("HUD: {e}"))?;
            }
        }
        self.gpu.queue().submit([encoder.finish()]);
        self.window.pre_present_notify();
        self.gpu.queue().present(frame);
        if self.hud_on {
            self.hud.trim();
        }
        if !self.ready_printed {
            self.ready_printed = true;
            println!("ready: window {}x{}", size.0, size.1);
        }
        Ok(())
    }

    fn key(&mut self, event_loop: &ActiveEventLoop, event: &KeyEvent, args: &PreviewArgs) -> Result<()> {
        if event.state != ElementState::Pressed {
            return Ok(());
        }
        // Auto-repeat may step and seek, but must not flip toggles back and forth.
        let repeatable =
            matches!(&event.logical_key, Key::Named(NamedKey::ArrowLeft | NamedKey::ArrowRight) | Key::Character(_))
                && matches!(event.logical_key.to_text(), None | Some("," | "."));
        if event.repeat && !repeatable {
            return Ok(());
        }
        let fps = self.pipeline.engine().scene().fps;
        let five_seconds = (5 * u64::from(fps.num)).div_ceil(u64::from(fps.den));
        match &event.logical_key {
            Key::Named(NamedKey::Escape) => event_loop.exit(),
            Key::Named(NamedKey::Space) => {
                self.paused = !self.paused;
                if self.paused {
                    println!("paused at frame {} (pts {} ns)", self.index, fps.pts_ns(self.index));
                } else {
                    self.pipeline.shown(self.index);
                    println!("resumed at frame {}", self.index);
                }
                self.window.request_redraw();
            }
            Key::Named(NamedKey::ArrowLeft) | Key::Named(NamedKey::ArrowRight) => {
                let target = if event.logical_key == Key::Named(NamedKey::ArrowLeft) {
                    self.index.saturating_sub(five_seconds)
                } else {
                    self.index + five_seconds
                };
                // Generated inputs are functions of time and follow the output; files seek.
                let delta = fps.pts_ns(five_seconds);
                let engine = self.pipeline.engine_mut();
                for id in engine.seekable_inputs() {
                    let at = engine.input_position(&id).unwrap_or(0);
                    let to = if target < self.index { at.saturating_sub(delta) } else { at + delta };
                    if let Err(e) = engine.seek_input(&id, to) {
                        eprintln!("input {id}: {e}");
                    }
                }
                self.render(target)?;
                self.pipeline.shown(target);
                println!("seek to frame {target}");
            }
            Key::Named(NamedKey::Home) => {
                // Rebuilding restarts every input from its beginning.
                let engine = Engine::with_pipelines(
                    &self.gpu,
                    self.pipeline.engine().pipelines().clone(),
                    args.scene.clone(),
                    &args.registry,
                    Pacing::Realtime,
                )?;
                // The recording goes on into the restarted loop.
                let recording = self.pipeline.remove_output(RECORDING).unwrap_or_default();
                self.pipeline = Self::pipeline(engine, args);
                self.pipeline.set_output(RECORDING, recording);
                self.render(0)?;
                self.pipeline.shown(0);
                println!("restart");
            }
            Key::Character(c) => match c.to_lowercase().as_str() {
                "q" => event_loop.exit(),
                "f" => {
                    let full = self.window.fullscreen().is_some();
                    self.window.set_fullscreen(if full { None } else { Some(Fullscreen::Borderless(None)) });
                }
                "h" => {
                    self.hud_on = !self.hud_on;
                    self.window.request_redraw();
                }
                "s" => {
                    let path = save_png(self.pipeline.engine_mut(), self.index, &args.snapshot_dir)?;
                    println!("saved {} (frame {})", path.display(), self.index);
                }
                "," | "." if self.paused => {
                    let target = if c == "," { self.index.saturating_sub(1) } else { self.index + 1 };
                    self.render(target)?;
                    self.pipeline.shown(target);
                    println!("frame {target}");
                }
                _ => {}
            },
            _ => {}
        }
        Ok(())
    }
}

/// Reads back frame `index` (re-rendered: the same index gives the same picture) as a PNG.
fn save_png(engine: &mut Engine, index: u64, dir: &Path) -> Result<PathBuf> {
    let frame = engine.render_and_read(index, PixelFormat::Rgba8)?;
    let mut rgba = frame.data;
    streamlib::sinks::unpremultiply(&mut rgba);
    let path = dir.join(format!("streamlib-frame-{index:06}.png"));
    streamlib::sinks::write_png(&path, frame.width, frame.height, &rgba)?;
    Ok(path)
}
