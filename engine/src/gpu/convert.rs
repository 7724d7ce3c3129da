//! Colour conversion on the GPU (`shaders/input_convert.wgsl`, `shaders/output_convert.wgsl`):
//! uploaded YUV or straight-alpha RGBA planes become premultiplied RGBA textures, and the composited
//! frame becomes NV12 or I420 planes before readback.

use super::texture::{self, Target, COLOR_FORMAT};
use super::{shaders, GpuContext};
use crate::frame::{FrameData, FrameError, PixelFormat, TimestampedFrame};
use bytemuck::{Pod, Zeroable};

/// The RGB↔YUV matrix coefficients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YuvMatrix {
    /// ITU-R BT.601 (SD).
    Bt601,
    /// ITU-R BT.709 (HD).
    #[default]
    Bt709,
}

/// Whether Y spans 16..235 and chroma 16..240 (limited, broadcast) or 0..255 (full, JPEG).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YuvRange {
    /// Limited (broadcast) range: Y 16..235, chroma 16..240.
    #[default]
    Limited,
    /// Full (JPEG) range: 0..255.
    Full,
}

/// A YUV colour space: matrix and range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct YuvColorSpace {
    /// The RGB↔YUV matrix.
    pub matrix: YuvMatrix,
    /// The value range of Y and chroma.
    pub range: YuvRange,
}

impl YuvColorSpace {
    /// BT.601, limited range.
    pub const BT601_LIMITED: Self = Self { matrix: YuvMatrix::Bt601, range: YuvRange::Limited };
    /// BT.601, full range.
    pub const BT601_FULL: Self = Self { matrix: YuvMatrix::Bt601, range: YuvRange::Full };
    /// BT.709, limited range.
    pub const BT709_LIMITED: Self = Self { matrix: YuvMatrix::Bt709, range: YuvRange::Limited };
    /// BT.709, full range.
    pub const BT709_FULL: Self = Self { matrix: YuvMatrix::Bt709, range: YuvRange::Full };

    /// The usual guess for untagged video: BT.709 for HD sizes, BT.601 below, limited range.
    pub fn default_for_height(height: u32) -> Self {
        if height >= 720 {
            Self::BT709_LIMITED
        } else {
            Self::BT601_LIMITED
        }
    }

    /// Rows of the affine map (y, u, v) = M · (r, g, b, 1), all values normalised to 0..=1.
    pub fn rgb_to_yuv(self) -> [[f64; 4]; 3] {
        let (kr, kb) = match self.matrix {
            YuvMatrix::Bt601 => (0.299, 0.114),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
        };
        let kg = 1.0 - kr - kb;
        let y = [kr, kg, kb, 0.0];
        let u = [-kr / (2.0 * (1.0 - kb)), -kg / (2.0 * (1.0 - kb)), 0.5, 0.5];
        let v = [0.5, -kg / (2.0 * (1.0 - kr)), -kb / (2.0 * (1.0 - kr)), 0.5];
        match self.range {
            YuvRange::Full => [y, u, v],
            YuvRange::Limited => {
                let (ys, cs) = (219.0 / 255.0, 224.0 / 255.0);
                let scale = |row: [f64; 4], s: f64, offset: f64| [row[0] * s, row[1] * s, row[2] * s, offset];
                // Chroma rows keep their 0.5 centre: 128/255 = 16/255 + 112/255.
                [scale(y, ys, 16.0 / 255.0), scale(u, cs, 128.0 / 255.0), scale(v, cs, 128.0 / 255.0)]
            }
        }
    }

    /// Rows of the inverse map (r, g, b) = M · (y, u, v, 1).
    pub fn yuv_to_rgb(self) -> [[f64; 4]; 3] {
        invert_affine(self.rgb_to_yuv())
    }
}

/// Inverts the affine map x ↦ A·x + t given as rows [A | t].
fn invert_affine(m: [[f64; 4]; 3]) -> [[f64; 4]; 3] {
    let a = |r: usize, c: usize| m[r][c];
    let det = a(0, 0) * (a(1, 1) * a(2, 2) - a(1, 2) * a(2, 1)) - a(0, 1) * (a(1, 0) * a(2, 2) - a(1, 2) * a(2, 0))
        + a(0, 2) * (a(1, 0) * a(2, 1) - a(1, 1) * a(2, 0));
    let cof = |r0: usize, r1: usize, c0: usize, c1: usize| a(r0, c0) * a(r1, c1) - a(r0, c1) * a(r1, c0);
    let inv = [
        [cof(1, 2, 1, 2) / det, -cof(0, 2, 1, 2) / det, cof(0, 1, 1, 2) / det],
        [-cof(1, 2, 0, 2) / det, cof(0, 2, 0, 2) / det, -cof(0, 1, 0, 2) / det],
        [cof(1, 2, 0, 1) / det, -cof(0, 2, 0, 1) / det, cof(0, 1, 0, 1) / det],
    ];
    let t = [m[0][3], m[1][3], m[2][3]];
    let mut out = [[0.0; 4]; 3];
    for r in 0..3 {
        out[r][..3].copy_from_slice(&inv[r]);
        out[r][3] = -(inv[r][0] * t[0] + inv[r][1] * t[1] + inv[r][2] * t[2]);
    }
    out
}

fn rows_f32<const N: usize>(rows: [[f64; 4]; 3]) -> [[f32; 4]; 3] {
    rows.map(|r| r.map(|v| v as f32))
}

/// Uniforms of `input_convert.wgsl`'s `YuvToRgb`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct YuvToRgbParams {
    pub row_r: [f32; 4],
    pub row_g: [f32; 4],
    pub row_b: [f32; 4],
}
const _: () = assert!(std::mem::size_of::<YuvToRgbParams>() == 48);

/// Uniforms of `output_convert.wgsl`'s `RgbToYuv`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct RgbToYuvParams {
    pub row_y: [f32; 4],
    pub row_u: [f32; 4],
    pub row_v: [f32; 4],
    pub size: [f32; 4],
}
const _: () = assert!(std::mem::size_of::<RgbToYuvParams>() == 64);

/// Errors from getting a source frame onto the GPU.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Gpu(#[from] super::GpuError),
}

/// Pipelines of `input_convert.wgsl`, shared by every uploader.
#[derive(Debug)]
pub struct InputConverter {
    layout: wgpu::BindGroupLayout,
    nv12: wgpu::RenderPipeline,
    i420: wgpu::RenderPipeline,
    rgba: wgpu::RenderPipeline,
    sampler: wgpu::Sampler,
    dummy: Target,
}

impl InputConverter {
    pub fn new(device: &wgpu::Device) -> Self {
        let module = texture::shader(device, "streamlib input convert shader", shaders::INPUT_CONVERT);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib input convert bind group layout"),
            entries: &[
                texture::uniform_entry(0, false, wgpu::ShaderStages::FRAGMENT),
                texture::texture_entry(1),
                texture::texture_entry(2),
                texture::texture_entry(3),
                texture::sampler_entry(4),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib input convert pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let make = |label: &str, entry: &str| {
            texture::fullscreen_pipeline(
                device,
                label,
                &pipeline_layout,
                &module,
                entry,
                &[texture::replace_target(COLOR_FORMAT)],
            )
        };
        InputConverter {
            nv12: make("streamlib nv12 to rgba pipeline", "fs_nv12"),
            i420: make("streamlib i420 to rgba pipeline", "fs_i420"),
            rgba: make("streamlib premultiply pipeline", "fs_rgba"),
            sampler: texture::linear_sampler(device, "streamlib chroma sampler"),
            dummy: Target::new(
                device,
                "streamlib unused plane",
                1,
                1,
                wgpu::TextureFormat::R8Unorm,
                wgpu::TextureUsages::TEXTURE_BINDING,
            ),
            layout,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct UploadShape {
    format: PixelFormat,
    width: u32,
    height: u32,
}

/// Per-input upload state: plane textures for the current size and format and the converted
/// premultiplied RGBA texture. Recreated only when the incoming size or format changes.
#[derive(Debug)]
pub struct FrameUploader {
    label: String,
    shape: Option<UploadShape>,
    planes: Vec<Target>,
    output: Option<Target>,
    uniform: Option<wgpu::Buffer>,
    bind_group: Option<wgpu::BindGroup>,
    color_space: Option<YuvColorSpace>,
    external: Option<wgpu::TextureView>,
}

fn plane_format(format: PixelFormat, plane: usize) -> wgpu::TextureFormat {
    match (format, plane) {
        (PixelFormat::Rgba8, _) => wgpu::TextureFormat::Rgba8Unorm,
        (PixelFormat::Bgra8, _) => wgpu::TextureFormat::Bgra8Unorm,
        (PixelFormat::Nv12, 1) => wgpu::TextureFormat::Rg8Unorm,
        _ => wgpu::TextureFormat::R8Unorm,
    }
}

impl FrameUploader {
    pub fn new(label: impl Into<String>) -> Self {
        FrameUploader {
            label: label.into(),
            shape: None,
            planes: Vec::new(),
            output: None,
            uniform: None,
            bind_group: None,
            color_space: None,
            external: None,
        }
    }

    /// The last uploaded frame had no alpha (YUV), so its texture is opaque.
    pub fn is_opaque(&self) -> bool {
        self.external.is_none() && self.shape.is_some_and(|s| s.format.is_yuv())
    }

    /// The premultiplied RGBA view of the last uploaded frame.
    pub fn view(&self) -> Option<&wgpu::TextureView> {
        self.external.as_ref().or(self.output.as_ref().map(|t| &t.view))
    }

    /// Uploads `frame` and records its conversion into `encoder`.
    pub fn upload(
        &mut self,
        gpu: &GpuContext,
        conv: &InputConverter,
        frame: &TimestampedFrame,
        color_space: YuvColorSpace,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<(), UploadError> {
        frame.check()?;
        let planes = match &frame.data {
            FrameData::Gpu(texture) => {
                self.external = Some(texture.create_view(&Default::default()));
                return Ok(());
            }
            FrameData::Cpu(planes) => planes,
        };
        self.external = None;
        let shape = UploadShape { format: frame.format, width: frame.width, height: frame.height };
        if self.shape != Some(shape) {
            gpu.check_size(&format!("input {}", self.label), frame.width, frame.height)?;
            self.allocate(gpu, conv, shape);
        }
        let (Some(uniform), Some(bind_group), Some(output)) = (&self.uniform, &self.bind_group, &self.output) else {
            return Ok(());
        };
        if frame.format.is_yuv() && self.color_space != Some(color_space) {
            let rows = rows_f32::<3>(color_space.yuv_to_rgb());
            let params = YuvToRgbParams { row_r: rows[0], row_g: rows[1], row_b: rows[2] };
            gpu.queue.write_buffer(uniform, 0, bytemuck::bytes_of(&params));
            self.color_space = Some(color_space);
        }
        for ((plane, shape), target) in
            planes.iter().zip(frame.format.planes(frame.width, frame.height)).zip(&self.planes)
        {
            gpu.queue.write_texture(
                target.texture.as_image_copy(),
                &plane.data,
                wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(plane.stride as u32),
                    rows_per_image: Some(shape.height),
                },
                target.texture.size(),
            );
        }
        let pipeline = match frame.format {
            PixelFormat::Nv12 => &conv.nv12,
            PixelFormat::I420 => &conv.i420,
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => &conv.rgba,
        };
        let mut pass = texture::begin_pass(
            encoder,
            "streamlib input convert pass",
            &[Some(texture::color_attachment(&output.view, None))],
        );
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, bind_group, &[]);
        pass.draw(0..3, 0..1);
        Ok(())
    }

    fn allocate(&mut self, gpu: &GpuContext, conv: &InputConverter, shape: UploadShape) {
        let device = &gpu.device;
        self.planes = shape
            .format
            .planes(shape.width, shape.height)
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Target::new(
                    device,
                    &format!("streamlib {} plane {i}", self.label),
                    p.width,
                    p.height,
                    plane_format(shape.format, i),
                    wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                )
            })
            .collect();
        let output = Target::color(device, &format!("streamlib {} rgba", self.label), shape.width, shape.height);
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("streamlib input convert uniforms"),
            size: std::mem::size_of::<YuvToRgbParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let view = |i: usize| self.planes.get(i).map_or(&conv.dummy.view, |t| &t.view);
        self.bind_group = Some(device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("streamlib input convert bind group"),
            layout: &conv.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: uniform.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(view(0)) },
                wgpu::BindGroupEntry { binding: 2, resource: wgpu::BindingResource::TextureView(view(1)) },
                wgpu::BindGroupEntry { binding: 3, resource: wgpu::BindingResource::TextureView(view(2)) },
                wgpu::BindGroupEntry { binding: 4, resource: wgpu::BindingResource::Sampler(&conv.sampler) },
            ],
        }));
        self.output = Some(output);
        self.uniform = Some(uniform);
        self.color_space = None;
        self.shape = Some(shape);
    }
}

/// YUV planes are rendered four bytes to a texel in this format (bytes in r, g, b, a order).
const PACKED_PLANE_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// Pipelines and targets of `output_convert.wgsl`: the composited frame as YUV planes.
#[derive(Debug)]
pub struct OutputConverter {
    luma: wgpu::RenderPipeline,
    chroma_nv12: wgpu::RenderPipeline,
    chroma_i420: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    uniform: wgpu::Buffer,
    planes: Option<OutputPlanes>,
}

#[derive(Debug)]
struct OutputPlanes {
    format: PixelFormat,
    color_space: YuvColorSpace,
    size: (u32, u32),
    source: wgpu::TextureView,
    targets: Vec<Target>,
    bind_group: wgpu::BindGroup,
}

impl OutputConverter {
    pub fn new(device: &wgpu::Device) -> Self {
        let module = texture::shader(device, "streamlib output convert shader", shaders::OUTPUT_CONVERT);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib output convert bind group layout"),
            entries: &[texture::uniform_entry(0, false, wgpu::ShaderStages::FRAGMENT), texture::texture_entry(1)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib output convert pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let packed = texture::replace_target(PACKED_PLANE_FORMAT);
        let make = |label: &str, entry: &str, targets: &[Option<wgpu::ColorTargetState>]| {
            texture::fullscreen_pipeline(device, label, &pipeline_layout, &module, entry, targets)
        };
        OutputConverter {
            luma: make("streamlib rgba to luma pipeline", "fs_luma", std::slice::from_ref(&packed)),
            chroma_nv12: make(
                "streamlib rgba to nv12 chroma pipeline",
                "fs_chroma_nv12",
                std::slice::from_ref(&packed),
            ),
            chroma_i420: make("streamlib rgba to i420 chroma pipeline", "fs_chroma_i420", &[packed.clone(), packed]),
            uniform: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("streamlib output convert uniforms"),
                size: std::mem::size_of::<RgbToYuvParams>() as u64,
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            layout,
            planes: None,
        }
    }

    /// Records the conversion of `source` (premultiplied RGBA) into YUV planes of `format` and
    /// returns the plane textures, in `PixelFormat::planes` order, for readback.
    pub fn record(
        &mut self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        source: &Target,
        format: PixelFormat,
        color_space: YuvColorSpace,
    ) -> Vec<&wgpu::Texture> {
        let size = source.size();
        let stale = self.planes.as_ref().is_none_or(|p| {
            p.format != format || p.size != size || p.color_space != color_space || p.source != source.view
        });
        if stale {
            self.planes = Some(self.allocate(gpu, source, format, color_space));
        }
        let Some(planes) = &self.planes else { return Vec::new() };
        {
            let mut pass = texture::begin_pass(
                encoder,
                "streamlib rgba to luma pass",
                &[Some(texture::color_attachment(&planes.targets[0].view, None))],
            );
            pass.set_pipeline(&self.luma);
            pass.set_bind_group(0, &planes.bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        {
            let attachments: Vec<_> =
                planes.targets[1..].iter().map(|t| Some(texture::color_attachment(&t.view, None))).collect();
            let mut pass = texture::begin_pass(encoder, "streamlib rgba to chroma pass", &attachments);
            pass.set_pipeline(if format == PixelFormat::Nv12 { &self.chroma_nv12 } else { &self.chroma_i420 });
            pass.set_bind_group(0, &planes.bind_group, &[]);
            pass.draw(0..3, 0..1);
        }
        planes.targets.iter().map(|t| &t.texture).collect()
    }

    fn allocate(
        &self,
        gpu: &GpuContext,
        source: &Target,
        format: PixelFormat,
        color_space: YuvColorSpace,
    ) -> OutputPlanes {
        let (width, height) = source.size();
        let rows = rows_f32::<3>(color_space.rgb_to_yuv());
        let params = RgbToYuvParams {
            row_y: rows[0],
            row_u: rows[1],
            row_v: rows[2],
            size: [width as f32, height as f32, 0.0, 0.0],
        };
        gpu.queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&params));
        let targets = format
            .planes(width, height)
            .iter()
            .enumerate()
            .map(|(i, p)| {
                // Four plane bytes per texel (see output_convert.wgsl).
                Target::new(
                    &gpu.device,
                    &format!("streamlib output plane {i}"),
                    (p.row_bytes() as u32).div_ceil(4),
                    p.height,
                    PACKED_PLANE_FORMAT,
                    wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
                )
            })
            .collect();
        let bind_group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("streamlib output convert bind group"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: self.uniform.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::TextureView(&source.view) },
            ],
        });
        OutputPlanes { format, color_space, size: (width, height), source: source.view.clone(), targets, bind_group }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn bt601_limited_matches_the_textbook_inverse() {
        // The familiar 8-bit decoder coefficients (e.g. ITU-R BT.601, Jack's "Video Demystified").
        let m = YuvColorSpace::BT601_LIMITED.yuv_to_rgb();
        assert!(close(m[0][0], 1.164, 1e-3), "{m:?}");
        assert!(close(m[0][2], 1.596, 1e-3), "{m:?}");
        assert!(close(m[1][1], -0.392, 1e-3), "{m:?}");
        assert!(close(m[1][2], -0.813, 1e-3), "{m:?}");
        assert!(close(m[2][1], 2.017, 1e-3), "{m:?}");
    }

    #[test]
    fn bt709_limited_matches_the_textbook_inverse() {
        let m = YuvColorSpace::BT709_LIMITED.yuv_to_rgb();
        assert!(close(m[0][2], 1.793, 1e-3), "{m:?}");
        assert!(close(m[1][1], -0.213, 1e-3), "{m:?}");
        assert!(close(m[1][2], -0.533, 1e-3), "{m:?}");
        assert!(close(m[2][1], 2.112, 1e-3), "{m:?}");
    }

    #[test]
    fn white_and_black_land_on_the_range_ends() {
        for cs in [YuvColorSpace::BT601_LIMITED, YuvColorSpace::BT709_LIMITED] {
            let m = cs.rgb_to_yuv();
            let y = |rgb: [f64; 3]| m[0][0] * rgb[0] + m[0][1] * rgb[1] + m[0][2] * rgb[2] + m[0][3];
            assert!(close(y([1.0; 3]) * 255.0, 235.0, 1e-9));
            assert!(close(y([0.0; 3]) * 255.0, 16.0, 1e-9));
            assert!(close(m[1][3] * 255.0, 128.0, 1e-9));
        }
    }

    #[test]
    fn inverse_round_trips() {
        for cs in [
            YuvColorSpace::BT601_LIMITED,
            YuvColorSpace::BT601_FULL,
            YuvColorSpace::BT709_LIMITED,
            YuvColorSpace::BT709_FULL,
        ] {
            let fwd = cs.rgb_to_yuv();
            let back = invert_affine(cs.yuv_to_rgb());
            for r in 0..3 {
                for c in 0..4 {
                    assert!(close(fwd[r][c], back[r][c], 1e-12));
                }
            }
        }
    }
}
