//! Adapter selection and the device/queue pair every GPU stage shares.

use std::sync::Arc;

/// Which adapter we run on, for logs, summaries and benchmark tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdapterSummary {
    /// The adapter's name, as the driver reports it.
    pub name: String,
    /// The graphics backend, e.g. `Vulkan` or `Metal`.
    pub backend: String,
    /// The kind of device, e.g. `DiscreteGpu` or `Cpu`.
    pub device_type: String,
    /// The driver's name; may be empty.
    pub driver: String,
    /// The driver's version or other details; may be empty.
    pub driver_info: String,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}, {}", self.name, self.backend, self.device_type)?;
        if !self.driver.is_empty() {
            write!(f, ", {} {}", self.driver, self.driver_info)?;
        }
        write!(f, ")")
    }
}

impl From<&wgpu::AdapterInfo> for AdapterSummary {
    fn from(info: &wgpu::AdapterInfo) -> Self {
        AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
        }
    }
}

/// Errors from bringing up the GPU or from work submitted to it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    /// No adapter was found; the text is a hint about `WGPU_BACKEND`, possibly empty.
    #[error(
        "no GPU adapter found{0}. On Debian/Ubuntu install Mesa's software Vulkan driver: \
         `apt-get install mesa-vulkan-drivers` (or a vendor GPU driver); \
         check that WGPU_BACKEND is unset or names an available backend"
    )]
    NoAdapter(String),
    /// No adapter's name contains `WGPU_ADAPTER_NAME`.
    #[error("WGPU_ADAPTER_NAME={wanted:?} matches no adapter; available: {available}")]
    AdapterNotFound {
        /// The value of `WGPU_ADAPTER_NAME`.
        wanted: String,
        /// The adapters there are, comma-separated.
        available: String,
    },
    /// The adapter refused to open a device.
    #[error("could not open the GPU device on {adapter}: {source}")]
    RequestDevice {
        /// The adapter, as `AdapterSummary` displays it.
        adapter: String,
        /// The error wgpu returned.
        #[source]
        source: wgpu::RequestDeviceError,
    },
    /// Work submitted to the GPU was invalid; `what` names the work.
    #[error("GPU validation error in {what}: {message}")]
    Validation {
        /// The work, e.g. `frame 12`.
        what: String,
        /// wgpu's validation message.
        message: String,
    },
    /// The GPU ran out of memory; `what` names the work.
    #[error("GPU out of memory in {what}")]
    OutOfMemory {
        /// The work, e.g. `frame 12`.
        what: String,
    },
    /// Polling the device or reading a frame back failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// A texture size is zero or exceeds the adapter's largest texture side.
    #[error("{what} of {width}x{height} exceeds this adapter's limit of {max}")]
    TooLarge {
        /// What was to be made, e.g. `image logo.png`.
        what: String,
        /// Asked width in pixels.
        width: u32,
        /// Asked height in pixels.
        height: u32,
        /// The adapter's `max_texture_dimension_2d`.
        max: u32,
    },
}

/// The shared GPU: cheap to clone (device and queue are reference-counted by wgpu).
#[derive(Clone)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) adapter: Arc<wgpu::Adapter>,
    pub(crate) instance: Arc<wgpu::Instance>,
    /// glyphon's shaders and pipelines, made once per device and shared by every text user
    /// (text layers, drawing layers' text, test cards); each keeps only its own glyph atlas.
    pub(crate) text_cache: glyphon::Cache,
    summary: AdapterSummary,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext").field("adapter", &self.summary).finish()
    }
}

/// Ranks adapters: real GPUs first, then the software rasterizer; ties keep enumeration order.
fn preference(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

impl GpuContext {
    /// Opens the best adapter: a real GPU when there is one, else the software Vulkan driver.
    /// `WGPU_BACKEND` limits the backends tried; `WGPU_ADAPTER_NAME` picks by a name substring.
    pub fn new() -> Result<Self, GpuError> {
        Self::new_with(wgpu::InstanceDescriptor::new_without_display_handle_from_env)
    }

    /// As `new`, with instances made by `make` (a windowed caller adds its display handle).
    pub fn new_with(make: impl Fn() -> wgpu::InstanceDescriptor) -> Result<Self, GpuError> {
        if std::env::var_os("WGPU_BACKEND").is_none() {
            // Vulkan/Metal/DX12 first: probing GL as well only adds EGL noise where a primary
            // backend (including Mesa's software Vulkan) exists.
            let mut desc = make();
            desc.backends = wgpu::Backends::PRIMARY;
            match Self::with_instance(wgpu::Instance::new(desc)) {
                Err(GpuError::NoAdapter(_)) => {}
                other => return other,
            }
        }
        Self::with_instance(wgpu::Instance::new(make()))
    }

    /// Opens an adapter on an existing instance (a windowed caller passes one with a display handle).
    pub fn with_instance(instance: wgpu::Instance) -> Result<Self, GpuError> {
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        if adapters.is_empty() {
            let hint = match std::env::var("WGPU_BACKEND") {
                Ok(b) => format!(" (WGPU_BACKEND={b:?})"),
                Err(_) => String::new(),
            };
            return Err(GpuError::NoAdapter(hint));
        }
        let adapter = match std::env::var("WGPU_ADAPTER_NAME") {
            Ok(wanted) if !wanted.is_empty() => {
                let needle = wanted.to_lowercase();
                let available = adapters.iter().map(|a| a.get_info().name).collect::<Vec<_>>().join(", ");
                adapters
                    .into_iter()
                    .find(|a| a.get_info().name.to_lowercase().contains(&needle))
                    .ok_or(GpuError::AdapterNotFound { wanted, available })?
            }
            _ => adapters
                .into_iter()
                .enumerate()
                .min_by_key(|(i, a)| (preference(a.get_info().device_type), *i))
                .map(|(_, a)| a)
                .ok_or_else(|| GpuError::NoAdapter(String::new()))?,
        };
        let info = adapter.get_info();
        let summary = AdapterSummary::from(&info);
        // Timestamps between passes let benchmarks time each GPU stage; optional everywhere.
        let timestamps = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        let required_features =
            if adapter.features().contains(timestamps) { timestamps } else { wgpu::Features::empty() };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("streamlib device"),
            required_features,
            // The adapter's own limits, so large outputs work wherever the hardware allows.
            required_limits: adapter.limits(),
            ..Default::default()
        }))
        .map_err(|source| GpuError::RequestDevice { adapter: summary.to_string(), source })?;
        device.on_uncaptured_error(Arc::new(|e| {
            tracing::error!("uncaptured GPU error: {e}");
        }));
        tracing::info!(adapter = %summary, "GPU adapter selected");
        let text_cache = glyphon::Cache::new(&device);
        Ok(GpuContext { device, queue, adapter: Arc::new(adapter), instance: Arc::new(instance), text_cache, summary })
    }

    /// The adapter in use.
    pub fn adapter_summary(&self) -> &AdapterSummary {
        &self.summary
    }

    /// The largest 2D texture side this device allows, in pixels.
    pub fn max_texture_side(&self) -> u32 {
        self.device.limits().max_texture_dimension_2d
    }

    /// Fails with a clear message when a texture of this size cannot exist on this adapter.
    pub fn check_size(&self, what: &str, width: u32, height: u32) -> Result<(), GpuError> {
        let max = self.max_texture_side();
        if width == 0 || height == 0 || width > max || height > max {
            return Err(GpuError::TooLarge { what: what.into(), width, height, max });
        }
        Ok(())
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they caught into a
    /// value, so invalid GPU work becomes an error instead of a panic or a log line.
    pub fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, GpuError> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let validation_error = pollster::block_on(validation.pop());
        let oom_error = pollster::block_on(oom.pop());
        if let Some(e) = validation_error {
            return Err(GpuError::Validation { what: what.into(), message: e.to_string() });
        }
        if oom_error.is_some() {
            return Err(GpuError::OutOfMemory { what: what.into() });
        }
        Ok(value)
    }

    /// The wgpu device, for code that shares it: configuring a window's surface, drawing an
    /// overlay into the same pass as `present::Presenter`.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The device's queue (see `device`).
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter (a window's surface capabilities are asked of it).
    pub fn adapter(&self) -> &wgpu::Adapter {
        &self.adapter
    }

    /// The instance the adapter came from (a window's surface must be made on it).
    pub fn instance(&self) -> &wgpu::Instance {
        &self.instance
    }

    /// Waits until all submitted GPU work is done.
    pub fn wait_idle(&self) -> Result<(), GpuError> {
        self.device.poll(wgpu::PollType::wait_indefinitely()).map(|_| ()).map_err(|e| GpuError::Readback(e.to_string()))
    }
}
