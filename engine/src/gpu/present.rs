//! Presenting the composited frame in a window (`shaders/present.wgsl`): no readback, the output
//! texture is drawn straight into the surface, letterboxed to keep its aspect.

use super::texture::{self, Target};
use super::{shaders, GpuContext};

/// The largest rect of `src`'s aspect that fits `dst`, centred: (x, y, w, h) in pixels.
pub fn letterbox(src: (u32, u32), dst: (u32, u32)) -> (f32, f32, f32, f32) {
    let (sw, sh) = (src.0.max(1) as f32, src.1.max(1) as f32);
    let (dw, dh) = (dst.0.max(1) as f32, dst.1.max(1) as f32);
    let scale = (dw / sw).min(dh / sh);
    // Whole pixels, so a 1:1 window shows the frame unfiltered.
    let (w, h) = ((sw * scale).round(), (sh * scale).round());
    (((dw - w) / 2.0).floor(), ((dh - h) / 2.0).floor(), w, h)
}

/// Picks a surface format that stores our bytes unchanged (non-sRGB 8-bit), else the first.
pub fn pick_surface_format(formats: &[wgpu::TextureFormat]) -> Option<wgpu::TextureFormat> {
    let plain = [wgpu::TextureFormat::Bgra8Unorm, wgpu::TextureFormat::Rgba8Unorm];
    formats.iter().copied().find(|f| plain.contains(f)).or(formats.first().copied())
}

/// Draws the composited frame into a window's surface, letterboxed to keep its aspect.
#[derive(Debug)]
pub struct Presenter {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    bound: Option<(wgpu::TextureView, wgpu::BindGroup)>,
}

impl Presenter {
    /// Builds the present pipeline for surfaces of `surface_format`.
    pub fn new(gpu: &GpuContext, surface_format: wgpu::TextureFormat) -> Self {
        let device = &gpu.device;
        let module = texture::shader(device, "streamlib present shader", shaders::PRESENT);
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("streamlib present bind group layout"),
            entries: &[texture::texture_entry(0), texture::sampler_entry(1)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("streamlib present pipeline layout"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = texture::fullscreen_pipeline(
            device,
            "streamlib present pipeline",
            &pipeline_layout,
            &module,
            "fs_main",
            &[texture::replace_target(surface_format)],
        );
        Presenter {
            pipeline,
            layout,
            sampler: texture::linear_sampler(device, "streamlib present sampler"),
            bound: None,
        }
    }

    /// Records `engine`'s last composited frame into `pass` (begun on the surface and cleared),
    /// letterboxed into a `surface_size` target.
    pub fn draw_output(&mut self, pass: &mut wgpu::RenderPass<'_>, engine: &crate::Engine, surface_size: (u32, u32)) {
        self.draw(engine.gpu(), pass, engine.output(), surface_size);
    }

    /// Records the frame into `pass` (already begun on the surface and cleared), letterboxed
    /// into a `surface_size` target. Resets the viewport to the whole surface afterwards.
    pub(crate) fn draw(
        &mut self,
        gpu: &GpuContext,
        pass: &mut wgpu::RenderPass<'_>,
        frame: &Target,
        surface_size: (u32, u32),
    ) {
        if self.bound.as_ref().is_none_or(|(v, _)| *v != frame.view) {
            let group = gpu.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("streamlib present bind group"),
                layout: &self.layout,
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::TextureView(&frame.view) },
                    wgpu::BindGroupEntry { binding: 1, resource: wgpu::BindingResource::Sampler(&self.sampler) },
                ],
            });
            self.bound = Some((frame.view.clone(), group));
        }
        let Some((_, group)) = &self.bound else { return };
        let (x, y, w, h) = letterbox(frame.size(), surface_size);
        pass.set_viewport(x, y, w, h, 0.0, 1.0);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, group, &[]);
        pass.draw(0..3, 0..1);
        pass.set_viewport(0.0, 0.0, surface_size.0 as f32, surface_size.1 as f32, 0.0, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letterbox_keeps_aspect() {
        assert_eq!(letterbox((1920, 1080), (1920, 1080)), (0.0, 0.0, 1920.0, 1080.0));
        assert_eq!(letterbox((1920, 1080), (1000, 1000)), (0.0, 218.0, 1000.0, 563.0));
        assert_eq!(letterbox((1080, 1920), (1000, 1000)), (218.0, 0.0, 563.0, 1000.0));
        assert_eq!(letterbox((320, 180), (640, 720)), (0.0, 180.0, 640.0, 360.0));
    }

    #[test]
    fn prefers_formats_that_keep_bytes() {
        use wgpu::TextureFormat::*;
        assert_eq!(pick_surface_format(&[Bgra8UnormSrgb, Bgra8Unorm]), Some(Bgra8Unorm));
        assert_eq!(pick_surface_format(&[Rgba16Float]), Some(Rgba16Float));
        assert_eq!(pick_surface_format(&[]), None);
    }
}
