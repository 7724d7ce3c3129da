//! Model input tensors made on the GPU (`shaders/ml_tensor.wgsl`): a compute pass crops,
//! resizes and normalises a texture into a storage buffer, which is copied into a mappable
//! buffer; only the tensor (a few hundred KB) leaves the GPU, never the frame.

use super::shaders;
use super::texture;
use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

/// `Params` of `ml_tensor.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct TensorParams {
    pub origin_x_axis: [f32; 4],
    pub y_axis: [f32; 4],
    pub bounds: [f32; 4],
    pub scale: [f32; 4],
    pub bias: [f32; 4],
    pub size: [u32; 2],
    pub bgr: u32,
    pub nhwc: u32,
}

/// The part of a texture a tensor is made from, in texture coordinates: a parallelogram with a
/// corner at `origin` and sides `x_axis` (across the tensor's width) and `y_axis` (down its
/// height). Parts outside the texture read as black (a letterbox).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Region {
    pub origin: [f32; 2],
    pub x_axis: [f32; 2],
    pub y_axis: [f32; 2],
}

impl Region {
    /// The axis-aligned crop u0, v0, u1, v1.
    pub fn rect([u0, v0, u1, v1]: [f32; 4]) -> Self {
        Region { origin: [u0, v0], x_axis: [u1 - u0, 0.0], y_axis: [0.0, v1 - v0] }
    }

    /// A square of `side` pixels centred on `center` (pixels), turned by `angle` radians
    /// (clockwise on screen), on a `width` × `height` texture.
    pub fn rotated_square(center: [f32; 2], side: f32, angle: f32, (width, height): (u32, u32)) -> Self {
        let (w, h) = (width as f32, height as f32);
        let (sin, cos) = angle.sin_cos();
        let x_axis = [side * cos, side * sin];
        let y_axis = [-side * sin, side * cos];
        let origin = [center[0] - (x_axis[0] + y_axis[0]) / 2.0, center[1] - (x_axis[1] + y_axis[1]) / 2.0];
        Region {
            origin: [origin[0] / w, origin[1] / h],
            x_axis: [x_axis[0] / w, x_axis[1] / h],
            y_axis: [y_axis[0] / w, y_axis[1] / h],
        }
    }
}

/// What a model takes: its size, the input region and how channels are scaled.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorShape {
    /// Tensor width and height.
    pub width: u32,
    pub height: u32,
    /// The texture's region it is made from.
    pub region: Region,
    /// The part of the texture that counts (u0, v0, u1, v1; the layer's crop): outside it reads
    /// as black, as outside the texture does.
    pub bounds: [f32; 4],
    /// value = channel (0–1) × scale + bias, per channel R, G, B.
    pub scale: [f32; 3],
    pub bias: [f32; 3],
    /// Channels in B, G, R order.
    pub bgr: bool,
    /// Interleaved channels (NHWC, as TFLite models take them) rather than planes (NCHW).
    pub nhwc: bool,
}

impl TensorShape {
    /// Floats in the tensor (3 planes).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        3 * self.width as usize * self.height as usize
    }
}

/// The compute pipeline, made once per device user.
#[derive(Debug)]
pub struct TensorPipeline {
    layout: wgpu::BindGroupLayout,
    pipeline: wgpu::ComputePipeline,
    sampler: wgpu::Sampler,
}

impl TensorPipeline {
    pub fn new(device: &wgpu::Device) -> Self {
        let compute = wgpu::ShaderStages::COMPUTE;
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib tensor layout"),
            entries: &[
                wgpu::BindGroupLayoutEntry { visibility: compute, ..texture::texture_entry(0) },
                wgpu::BindGroupLayoutEntry { visibility: compute, ..texture::sampler_entry(1) },
                texture::uniform_entry(2, false, compute),
                wgpu::BindGroupLayoutEntry {
                    binding: 3,
                    visibility: compute,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                },
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib tensor pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let module = texture::shader(device, "streamlib tensor shader", shaders::ML_TENSOR);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("streamlib tensor pipeline"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        TensorPipeline { layout, pipeline, sampler: texture::linear_sampler(device, "streamlib tensor sampler") }
    }
}

/// One tensor's buffers: the compute pass writes `storage`, which is copied into `staging`
/// (mappable). Reused while the shape stays.
#[derive(Debug)]
pub struct TensorBuffers {
    shape: TensorShape,
    params: wgpu::Buffer,
    storage: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl TensorBuffers {
    pub fn new(device: &wgpu::Device, shape: TensorShape) -> Self {
        let bytes = (shape.len() * 4) as u64;
        let params = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("streamlib tensor params"),
            contents: bytemuck::bytes_of(&params_of(&shape)),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        });
        let storage = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("streamlib tensor"),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let staging = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("streamlib tensor readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        TensorBuffers { shape, params, storage, staging }
    }

    pub fn shape(&self) -> &TensorShape {
        &self.shape
    }

    /// Whether `shape` fits these buffers (same size and layout; the region and scaling may
    /// differ: `record` writes them).
    pub fn fits(&self, shape: &TensorShape) -> bool {
        (self.shape.width, self.shape.height, self.shape.nhwc) == (shape.width, shape.height, shape.nhwc)
    }

    /// The buffer to map after the encoder of `record` was submitted.
    pub fn staging(&self) -> &wgpu::Buffer {
        &self.staging
    }

    /// Records the compute pass over `input` for `shape` (which must `fit`; its region and
    /// scaling are written to the uniform, taking effect at the next submit) and the copy into
    /// the staging buffer.
    pub fn record(
        &mut self,
        (device, queue): (&wgpu::Device, &wgpu::Queue),
        pipeline: &TensorPipeline,
        encoder: &mut wgpu::CommandEncoder,
        input: &wgpu::TextureView,
        shape: TensorShape,
    ) {
        if shape != self.shape {
            queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&params_of(&shape)));
            self.shape = shape;
        }
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("streamlib tensor bind group"),
            layout: &pipeline.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(input) },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::Sampler(&pipeline.sampler) },
                wgpu::BindGroupEntry { binding: 2, resource: self.params.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 3, resource: self.storage.as_entire_binding() },
            ],
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("streamlib tensor pass"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipeline.pipeline);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(self.shape.width.div_ceil(8), self.shape.height.div_ceil(8), 1);
        }
        encoder.copy_buffer_to_buffer(&self.storage, 0, &self.staging, 0, self.staging.size());
    }
}

fn params_of(shape: &TensorShape) -> TensorParams {
    let [sr, sg, sb] = shape.scale;
    let [br, bg, bb] = shape.bias;
    let r = &shape.region;
    TensorParams {
        origin_x_axis: [r.origin[0], r.origin[1], r.x_axis[0], r.x_axis[1]],
        y_axis: [r.y_axis[0], r.y_axis[1], 0.0, 0.0],
        bounds: shape.bounds,
        scale: [sr, sg, sb, 0.0],
        bias: [br, bg, bb, 0.0],
        size: [shape.width, shape.height],
        bgr: u32::from(shape.bgr),
        nhwc: u32::from(shape.nhwc),
    }
}

/// Maps a staging buffer whose copy was submitted, waits for it (on the calling thread: a
/// worker, never the render thread) and returns its floats; unmapped again after. It does not
/// poll the device: the render thread polls after every frame it submits, which completes the
/// mapping. Polling from this thread as well (blocking, or every 0.5 or 4 ms) slowed the render
/// thread's frames on llvmpipe — p50 frame time 1.7 → 5.8–11 ms at 720p, ticks missed — for no
/// younger results (`bench ml`).
/// Gives up only when `stop` is set (the layer is going).
pub fn read_tensor(staging: &wgpu::Buffer, stop: &std::sync::atomic::AtomicBool) -> Result<Vec<f32>, String> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    staging.map_async(wgpu::MapMode::Read, .., move |r| {
        let _ = tx.send(r);
    });
    // No time limit: returning with the map pending would leave the buffer mapped and every
    // later frame that copies into it rejected. The render thread polls every frame; when the
    // layer goes, `stop` ends the wait.
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(10)) {
            Ok(Ok(())) => break,
            Ok(Err(e)) => return Err(format!("tensor readback: {e}")),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err("tensor readback dropped".into()),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if stop.load(std::sync::atomic::Ordering::Acquire) {
                    return Err("stopped".into());
                }
            }
        }
    }
    let data = match staging.slice(..).get_mapped_range() {
        Ok(view) => Ok(bytemuck::pod_collect_to_vec::<u8, f32>(&view)),
        Err(e) => Err(format!("tensor readback: {e}")),
    };
    staging.unmap();
    data
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::GpuContext;

    /// A CPU reference of the shader: bilinear at texel centres, clamped at the edges, black
    /// outside `bounds`, in f64, planar.
    fn reference(rgba: &[u8], (w, h): (u32, u32), shape: &TensorShape) -> Vec<f64> {
        let texel = |x: i64, y: i64, c: usize| -> f64 {
            let (x, y) = (x.clamp(0, w as i64 - 1) as usize, y.clamp(0, h as i64 - 1) as usize);
            f64::from(rgba[(y * w as usize + x) * 4 + c]) / 255.0
        };
        let (tw, th) = (shape.width as usize, shape.height as usize);
        let mut out = vec![0.0; 3 * tw * th];
        for ty in 0..th {
            for tx in 0..tw {
                let t = ((tx as f64 + 0.5) / tw as f64, (ty as f64 + 0.5) / th as f64);
                let r = &shape.region;
                let u = f64::from(r.origin[0]) + t.0 * f64::from(r.x_axis[0]) + t.1 * f64::from(r.y_axis[0]);
                let v = f64::from(r.origin[1]) + t.0 * f64::from(r.x_axis[1]) + t.1 * f64::from(r.y_axis[1]);
                let b = shape.bounds.map(f64::from);
                let inside = (b[0]..=b[2]).contains(&u) && (b[1]..=b[3]).contains(&v);
                let (px, py) = (u * f64::from(w) - 0.5, v * f64::from(h) - 0.5);
                let (x0, y0) = (px.floor(), py.floor());
                let (fx, fy) = (px - x0, py - y0);
                let (x0, y0) = (x0 as i64, y0 as i64);
                for c in 0..3 {
                    let top = texel(x0, y0, c) * (1.0 - fx) + texel(x0 + 1, y0, c) * fx;
                    let bottom = texel(x0, y0 + 1, c) * (1.0 - fx) + texel(x0 + 1, y0 + 1, c) * fx;
                    let value = if inside { top * (1.0 - fy) + bottom * fy } else { 0.0 };
                    out[c * tw * th + ty * tw + tx] = value * f64::from(shape.scale[c]) + f64::from(shape.bias[c]);
                }
            }
        }
        out
    }

    #[test]
    fn the_gpu_tensor_equals_a_cpu_reference_within_one_level() {
        let gpu = GpuContext::new().expect("gpu");
        let (w, h) = (97u32, 61u32);
        // Opaque colours that vary along both axes, with edges, so filtering shows.
        let rgba: Vec<u8> = (0..w * h)
            .flat_map(|i| {
                let (x, y) = (i % w, i / w);
                [(x * 255 / w) as u8, (y * 255 / h) as u8, ((x * 7 + y * 13) % 256) as u8, 255]
            })
            .collect();
        let bgra: Vec<u8> = rgba.chunks(4).flat_map(|p| [p[2], p[1], p[0], p[3]]).collect();
        let target = crate::gpu::texture::Target::color(&gpu.device, "tensor test input", w, h);
        gpu.queue.write_texture(
            wgpu::TexelCopyTextureInfo {
                texture: &target.texture,
                mip_level: 0,
                origin: wgpu::Origin3d::ZERO,
                aspect: wgpu::TextureAspect::All,
            },
            &bgra,
            wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(w * 4), rows_per_image: Some(h) },
            wgpu::Extent3d { width: w, height: h, depth_or_array_layers: 1 },
        );
        let pipeline = TensorPipeline::new(&gpu.device);
        for shape in [
            // Downscaled whole, 0–255 as CenterFace takes it.
            TensorShape {
                width: 64,
                height: 32,
                region: Region::rect([0.0, 0.0, 1.0, 1.0]),
                bounds: [0.0, 0.0, 1.0, 1.0],
                scale: [255.0; 3],
                bias: [0.0; 3],
                bgr: false,
                nhwc: false,
            },
            // A crop, upscaled, to [-1, 1] in B, G, R order.
            TensorShape {
                width: 40,
                height: 40,
                region: Region::rect([0.25, 0.1, 0.6, 0.7]),
                bounds: [0.0, 0.0, 1.0, 1.0],
                scale: [2.0; 3],
                bias: [-1.0; 3],
                bgr: true,
                nhwc: false,
            },
            // A turned square reaching past the texture's edge, interleaved, as the pose model
            // takes its crop.
            TensorShape {
                width: 48,
                height: 48,
                region: Region::rotated_square([80.0, 30.0], 50.0, 0.4, (w, h)),
                // A crop the square reaches past on every side: black there too.
                bounds: [0.3, 0.05, 0.95, 0.9],
                scale: [1.0; 3],
                bias: [0.0; 3],
                bgr: false,
                nhwc: true,
            },
        ] {
            let mut buffers = TensorBuffers::new(&gpu.device, shape);
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            buffers.record((&gpu.device, &gpu.queue), &pipeline, &mut encoder, &target.view, shape);
            gpu.queue.submit([encoder.finish()]);
            let staging = buffers.staging().clone();
            let reader = std::thread::spawn(move || read_tensor(&staging, &Default::default()));
            while !reader.is_finished() {
                gpu.device.poll(wgpu::PollType::Poll).expect("poll");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let got = reader.join().expect("reader").expect("tensor");
            let mut want = reference(&rgba, (w, h), &shape);
            let plane = want.len() / 3;
            if shape.bgr {
                let (r, rest) = want.split_at_mut(plane);
                r.swap_with_slice(&mut rest[plane..]);
            }
            if shape.nhwc {
                want = (0..want.len()).map(|i| want[(i % 3) * plane + i / 3]).collect();
            }
            assert_eq!(got.len(), want.len());
            let range = f64::from(shape.scale[0]);
            let worst = got.iter().zip(&want).map(|(g, w)| (f64::from(*g) - w).abs() / range).fold(0.0, f64::max);
            // Turned samples fall at any fraction of a texel, and llvmpipe filters 8-bit textures
            // in 8-bit fixed point: across the blue channel's 255 → 0 steps that rounds to just
            // over a level (1.15 seen).
            let allowed = if shape.region.x_axis[1] != 0.0 { 1.5 } else { 1.0 };
            assert!(worst * 255.0 <= allowed, "{shape:?}: worst difference {:.2} levels", worst * 255.0);
        }
    }
}
