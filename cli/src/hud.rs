//! The preview's heads-up display: live numbers and the key list, drawn with glyphon in the bundled
//! DejaVu Sans Mono (never a system font).

use glyphon::{
    Attrs, Buffer, Cache, Color, Family, Metrics, PrepareError, RenderError, Resolution, Shaping, TextArea, TextAtlas,
    TextBounds, TextRenderer, Viewport,
};
use streamlib::layers::shared_fonts;

/// The HUD's own atlas and renderer (its surface format is not the engine's); the fonts are the
/// engine's shared ones.
pub struct Hud {
    viewport: Viewport,
    atlas: TextAtlas,
    renderer: TextRenderer,
    buffer: Buffer,
}

impl Hud {
    pub fn new(device: &wgpu::Device, queue: &wgpu::Queue, format: wgpu::TextureFormat) -> Self {
        let cache = Cache::new(device);
        let viewport = Viewport::new(device, &cache);
        // Web mode: the surface holds sRGB-encoded bytes in a linear format.
        let mut atlas = TextAtlas::with_color_mode(device, queue, &cache, format, glyphon::ColorMode::Web);
        let renderer = TextRenderer::new(&mut atlas, device, wgpu::MultisampleState::default(), None);
        let buffer = Buffer::new(&mut shared_fonts().system, Metrics::new(14.0, 18.0));
        Hud { viewport, atlas, renderer, buffer }
    }

    /// Lays out `text` for a `size` surface at `scale` (HiDPI factor).
    pub fn prepare(
        &mut self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        text: &str,
        size: (u32, u32),
        scale: f32,
    ) -> Result<(), PrepareError> {
        let mut fonts = shared_fonts();
        let fonts = &mut *fonts;
        self.viewport.update(queue, Resolution { width: size.0, height: size.1 });
        self.buffer.set_metrics(Metrics::new(14.0 * scale, 18.0 * scale));
        self.buffer.set_size(Some(size.0 as f32), Some(size.1 as f32));
        self.buffer.set_text(text, &Attrs::new().family(Family::Monospace), Shaping::Basic, None);
        self.buffer.shape_until_scroll(&mut fonts.system, false);
        let area = TextArea {
            buffer: &self.buffer,
            left: 8.0 * scale,
            top: 6.0 * scale,
            scale: 1.0,
            bounds: TextBounds { left: 0, top: 0, right: size.0 as i32, bottom: size.1 as i32 },
            default_color: Color::rgb(255, 255, 120),
            custom_glyphs: &[],
        };
        self.renderer.prepare(
            device,
            queue,
            &mut fonts.system,
            &mut self.atlas,
            &self.viewport,
            [area],
            &mut fonts.swash,
        )
    }

    pub fn render(&self, pass: &mut wgpu::RenderPass<'_>) -> Result<(), RenderError> {
        self.renderer.render(&self.atlas, &self.viewport, pass)
    }

    /// Drops glyphs not used since the last frame, so the atlas stays bounded.
    pub fn trim(&mut self) {
        self.atlas.trim();
    }
}
