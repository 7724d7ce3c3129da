//! The `text` layer: a string with live placeholders, shaped by cosmic-text and drawn by glyphon
//! into the layer's own texture (re-drawn only when the text changes), then composited like any
//! other texture. Fonts are bundled (`assets/fonts/`), never taken from the system.

use super::{InputMetadata, Layer, LayerError, LayerPass, PrepareContext, QuadSlot};
use crate::frame::FrameInfo;
use crate::gpu::texture::{self, Target, COLOR_FORMAT};
use crate::registry::{BuildContext, BuildError, LayerKind};
use crate::scene::{Color, LayerSpec, Rect, SceneError};
use glyphon::{
    Attrs, Buffer, ColorMode, Family, FontSystem, Metrics, Resolution, Shaping, SwashCache, TextArea, TextAtlas,
    TextBounds, TextRenderer, Viewport, Weight,
};
use serde::{Deserialize, Serialize};

/// Font families bundled with streamlib, as `font` names them.
pub const FONT_FAMILIES: [&str; 2] = ["DejaVu Sans", "DejaVu Sans Mono"];
const FONTS: [&[u8]; 3] = [
    include_bytes!("../../../assets/fonts/DejaVuSans.ttf"),
    include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf"),
    include_bytes!("../../../assets/fonts/DejaVuSansMono.ttf"),
];

/// Horizontal alignment of text lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextAlign {
    /// Lines start at the left edge.
    #[default]
    Left,
    /// Lines are centred.
    Center,
    /// Lines end at the right edge.
    Right,
}

/// Font weight.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TextWeight {
    /// Regular weight.
    #[default]
    Normal,
    /// Bold weight.
    Bold,
}

/// A drop shadow under the text.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shadow {
    /// Shadow colour; `#000000C8` when absent.
    #[serde(default = "shadow_color")]
    pub color: Color,
    /// Offset in pixels, `[x, y]`.
    #[serde(default = "shadow_offset")]
    pub offset: [f32; 2],
}

fn shadow_color() -> Color {
    Color::rgba(0, 0, 0, 200)
}
fn shadow_offset() -> [f32; 2] {
    [2.0, 2.0]
}

/// Parameters of a `text` layer. `text` may contain `{frame}`, `{timecode}`, `{pts}` and `{fps}`,
/// filled in every frame, and the metadata of an input's current frame (what a network sender
/// attached): `{meta.ID.timecode}`, `{meta.ID.revision}`, `{meta.ID.detections}` (how many) and
/// `{meta.ID.user.KEY}`; empty when the input has no such value; and a live input's sync badge
/// `{sync.ID}` (offset from the tick, rate, repeats, drops) in realtime renders.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextLayerConfig {
    /// The text to show; may contain the placeholders above.
    pub text: String,
    /// Font family, one of `FONT_FAMILIES`; `DejaVu Sans` when absent.
    #[serde(default = "default_font")]
    pub font: String,
    /// Font size in pixels.
    #[serde(default = "default_size")]
    pub size: f32,
    /// Font weight; normal when absent.
    #[serde(default)]
    pub weight: TextWeight,
    /// Text colour; white when absent.
    #[serde(default = "white")]
    pub color: Color,
    /// Horizontal alignment within the layer's rect; left when absent.
    #[serde(default)]
    pub align: TextAlign,
    /// Drop shadow under the text; none when absent.
    #[serde(default)]
    pub shadow: Option<Shadow>,
}

/// A text layer's settings with every field but `text` at its default.
impl TextLayerConfig {
    /// `text` in the default font, size, weight, colour and alignment, without a shadow.
    pub fn new(text: impl Into<String>) -> Self {
        TextLayerConfig {
            text: text.into(),
            font: default_font(),
            size: default_size(),
            weight: TextWeight::default(),
            color: white(),
            align: TextAlign::default(),
            shadow: None,
        }
    }
}

fn default_font() -> String {
    FONT_FAMILIES[0].to_string()
}
fn default_size() -> f32 {
    48.0
}
fn white() -> Color {
    Color::WHITE
}

impl TextLayerConfig {
    fn check(&self) -> Result<(), SceneError> {
        if !FONT_FAMILIES.contains(&self.font.as_str()) {
            return Err(SceneError::new(
                "font",
                format!("unknown font {:?}; bundled families: {}", self.font, FONT_FAMILIES.join(", ")),
            ));
        }
        // Shaping and layout cost grows with the text; a 900 KB text layer took the output
        // from 30 to 4.75 fps.
        if self.text.len() > MAX_TEXT_BYTES {
            return Err(SceneError::new(
                "text",
                format!("{} bytes; a text layer holds at most {MAX_TEXT_BYTES}", self.text.len()),
            ));
        }
        if !(self.size.is_finite() && self.size >= 1.0 && self.size <= 1000.0) {
            return Err(SceneError::new("size", format!("{} is not a font size in 1..=1000 px", self.size)));
        }
        Ok(())
    }
}

/// Longest text a text layer takes, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;

/// `HH:MM:SS:FF` (non-drop-frame) for frame `index` at `fps`, rounded to a whole nominal rate.
pub fn timecode(index: u64, fps: crate::scene::Fps) -> String {
    let rate = fps.as_f64().round().max(1.0) as u64;
    let seconds = index / rate;
    format!("{:02}:{:02}:{:02}:{:02}", seconds / 3600 % 100, seconds / 60 % 60, seconds % 60, index % rate)
}

/// The value `{meta.ID.FIELD}` names, empty when absent.
fn metadata_value(path: &str, metadata: &InputMetadata) -> String {
    let Some((id, field)) = path.split_once('.') else { return String::new() };
    let Some(meta) = metadata.get(id) else { return String::new() };
    match field.split_once('.') {
        Some(("user", key)) => meta.user.get(key).cloned().unwrap_or_default(),
        None if field == "timecode" => meta.timecode.clone().unwrap_or_default(),
        None if field == "revision" => meta.scene_revision.map(|r| r.to_string()).unwrap_or_default(),
        None if field == "detections" => meta.detections.len().to_string(),
        _ => String::new(),
    }
}

/// Replaces each `{PREFIX…}` (`prefix` holds the brace) with `value` of what follows the
/// prefix up to the closing brace; an unclosed one is kept as it is.
fn fill_tagged(text: &str, prefix: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(prefix) {
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        match after.find('}') {
            Some(end) => {
                out.push_str(&value(&after[..end]));
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces each `{meta.…}` with the value it names.
fn fill_metadata(text: &str, metadata: &InputMetadata) -> String {
    fill_tagged(text, "{meta.", |path| metadata_value(path, metadata))
}

/// Replaces each `{sync.ID}` with input ID's sync badge (`SyncStats::badge`): empty until a
/// realtime render has picked for it.
pub fn fill_sync(text: &str, sync: &super::InputSyncStats) -> String {
    if !text.contains("{sync.") {
        return text.to_string();
    }
    fill_tagged(text, "{sync.", |id| sync.get(id).map(|s| s.badge()).unwrap_or_default())
}

/// The text with its placeholders filled for `frame` and the inputs' `metadata`.
pub fn fill_placeholders(text: &str, frame: &FrameInfo, metadata: &InputMetadata) -> String {
    if !text.contains('{') {
        return text.to_string();
    }
    let text = if text.contains("{meta.") { fill_metadata(text, metadata) } else { text.to_string() };
    text.replace("{frame}", &frame.time.index.to_string())
        .replace("{timecode}", &timecode(frame.time.index, frame.fps))
        .replace("{pts}", &format!("{:.3}", frame.time.pts_ns as f64 / 1e9))
        .replace("{fps}", &format!("{}", (frame.fps.as_f64() * 100.0).round() / 100.0))
}

fn glyph_color(c: Color) -> glyphon::Color {
    glyphon::Color::rgba(c.r, c.g, c.b, c.a)
}

/// One block of text drawn with glyphon into an RGBA texture: fonts, shaping, glyph atlas. Used
/// by the `text` layer and the `test_card` pattern.
pub struct TextPainter {
    viewport: Viewport,
    atlas: TextAtlas,
    renderer: TextRenderer,
    buffer: Buffer,
}

impl std::fmt::Debug for TextPainter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextPainter").finish_non_exhaustive()
    }
}

/// Where and how `TextPainter::paint` sets its text.
#[derive(Clone, Debug, PartialEq)]
pub struct TextBlock<'a> {
    /// The text to set.
    pub text: &'a str,
    /// Font family name.
    pub family: &'a str,
    /// Font size in pixels.
    pub size: f32,
    /// Font weight.
    pub weight: TextWeight,
    /// Text colour.
    pub color: Color,
    /// Horizontal alignment within the area.
    pub align: TextAlign,
    /// Drop shadow under the text, if any.
    pub shadow: Option<Shadow>,
    /// Left, top, width, height of the block in target pixels (wraps at the width).
    pub area: [f32; 4],
}

/// A font system holding only the bundled fonts (`FONT_FAMILIES`): rendering never depends on the
/// fonts a machine happens to have, and cosmic-text cannot fail to find a default font.
fn bundled_font_system() -> FontSystem {
    FONT_SYSTEMS_LOADED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut db = glyphon::fontdb::Database::new();
    for font in FONTS {
        db.load_font_data(font.to_vec());
    }
    FontSystem::new_with_locale_and_db("en-US".into(), db)
}

static FONT_SYSTEMS_LOADED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The bundled fonts with their shaping and glyph-rasterising caches: loaded once per process and
/// shared by every text layer, drawing layer and test card (and the preview's HUD), rather than a
/// font database per layer. Text is prepared on the render thread, so the lock is not contended.
pub struct Fonts {
    /// The bundled fonts and cosmic-text's shaping state.
    pub system: FontSystem,
    /// The glyph rasterising cache.
    pub swash: SwashCache,
}

impl std::fmt::Debug for Fonts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fonts").finish_non_exhaustive()
    }
}

/// Locks the shared fonts (see `Fonts`). A panic while they were held leaves only caches behind,
/// so a poisoned lock is taken over rather than failing every later frame.
pub fn shared_fonts() -> std::sync::MutexGuard<'static, Fonts> {
    static FONTS_ONCE: std::sync::OnceLock<std::sync::Mutex<Fonts>> = std::sync::OnceLock::new();
    FONTS_ONCE
        .get_or_init(|| std::sync::Mutex::new(Fonts { system: bundled_font_system(), swash: SwashCache::new() }))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl TextPainter {
    /// A painter with its own glyph atlas and renderer on `gpu`.
    pub fn new(gpu: &crate::gpu::GpuContext) -> Self {
        let cache = &gpu.text_cache;
        let viewport = Viewport::new(&gpu.device, cache);
        // Web mode: our textures hold sRGB-encoded values in a linear format, like every layer.
        let mut atlas = TextAtlas::with_color_mode(&gpu.device, &gpu.queue, cache, COLOR_FORMAT, ColorMode::Web);
        let renderer = TextRenderer::new(&mut atlas, &gpu.device, wgpu::MultisampleState::default(), None);
        let buffer = Buffer::new(&mut shared_fonts().system, Metrics::new(24.0, 30.0));
        TextPainter { viewport, atlas, renderer, buffer }
    }

    /// Records a pass drawing `block` over `target` (cleared to transparent first when `clear`).
    pub fn paint(
        &mut self,
        gpu: &crate::gpu::GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        target: &Target,
        block: &TextBlock<'_>,
        clear: bool,
    ) -> Result<(), String> {
        let (tw, th) = target.size();
        let [left, top, width, height] = block.area;
        let attrs = Attrs::new().family(Family::Name(block.family)).weight(if block.weight == TextWeight::Bold {
            Weight::BOLD
        } else {
            Weight::NORMAL
        });
        let align = match block.align {
            TextAlign::Left => glyphon::cosmic_text::Align::Left,
            TextAlign::Center => glyphon::cosmic_text::Align::Center,
            TextAlign::Right => glyphon::cosmic_text::Align::Right,
        };
        self.buffer.set_metrics(Metrics::new(block.size, block.size * 1.25));
        self.buffer.set_size(Some(width), Some(height));
        let mut fonts = shared_fonts();
        let fonts = &mut *fonts;
        self.buffer.set_text(block.text, &attrs, Shaping::Advanced, Some(align));
        self.buffer.shape_until_scroll(&mut fonts.system, false);
        self.viewport.update(&gpu.queue, Resolution { width: tw, height: th });
        let bounds = TextBounds {
            left: left as i32,
            top: top as i32,
            right: (left + width).ceil() as i32,
            bottom: (top + height).ceil() as i32,
        };
        let mut areas = Vec::with_capacity(2);
        if let Some(shadow) = block.shadow {
            areas.push(TextArea {
                buffer: &self.buffer,
                left: left + shadow.offset[0],
                top: top + shadow.offset[1],
                scale: 1.0,
                bounds,
                default_color: glyph_color(shadow.color),
                custom_glyphs: &[],
            });
        }
        areas.push(TextArea {
            buffer: &self.buffer,
            left,
            top,
            scale: 1.0,
            bounds,
            default_color: glyph_color(block.color),
            custom_glyphs: &[],
        });
        self.renderer
            .prepare(
                &gpu.device,
                &gpu.queue,
                &mut fonts.system,
                &mut self.atlas,
                &self.viewport,
                areas,
                &mut fonts.swash,
            )
            .map_err(|e| e.to_string())?;
        let mut pass = texture::begin_pass(
            encoder,
            "streamlib text pass",
            &[Some(texture::color_attachment(&target.view, clear.then_some(wgpu::Color::TRANSPARENT)))],
        );
        self.renderer.render(&self.atlas, &self.viewport, &mut pass).map_err(|e| e.to_string())?;
        drop(pass);
        // Glyphs not used by this text are evicted, so changing text never grows the atlas unboundedly.
        self.atlas.trim();
        Ok(())
    }
}

/// A `text` layer: its text drawn into a texture of the layer's size, redrawn when the text changes.
pub struct TextLayer {
    config: TextLayerConfig,
    painter: TextPainter,
    target: Option<Target>,
    bound: Option<wgpu::BindGroup>,
    drawn: Option<String>,
    slot: Option<QuadSlot>,
}

impl std::fmt::Debug for TextLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextLayer").field("config", &self.config).finish()
    }
}

impl TextLayer {
    /// A text layer for `config`; it draws nothing until its first frame is prepared.
    pub fn new(gpu: &crate::gpu::GpuContext, config: TextLayerConfig) -> Self {
        TextLayer { config, painter: TextPainter::new(gpu), target: None, bound: None, drawn: None, slot: None }
    }

    fn draw(&mut self, ctx: &mut PrepareContext<'_>, text: &str, size: (u32, u32)) -> Result<(), String> {
        let c = &self.config;
        let block = TextBlock {
            text,
            family: &c.font,
            size: c.size,
            weight: c.weight,
            color: c.color,
            align: c.align,
            shadow: c.shadow,
            area: [0.0, 0.0, size.0 as f32, size.1 as f32],
        };
        let target = self.target.as_ref().ok_or("no target")?;
        self.painter.paint(ctx.gpu, ctx.encoder, target, &block, true)
    }
}

impl Layer for TextLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        let dst = ctx.dst_rect();
        let size = (
            (dst.w.round() as u32).clamp(1, ctx.gpu.max_texture_side()),
            (dst.h.round() as u32).clamp(1, ctx.gpu.max_texture_side()),
        );
        if self.target.as_ref().is_none_or(|t| t.size() != size) {
            let target = Target::color(&ctx.gpu.device, "streamlib text layer", size.0, size.1);
            self.bound = Some(ctx.pipelines.blend.texture_bind_group(&ctx.gpu.device, &target.view));
            self.target = Some(target);
            self.drawn = None;
        }
        let text = fill_sync(&fill_placeholders(&self.config.text, ctx.frame, ctx.metadata), ctx.sync);
        if self.drawn.as_deref() != Some(text.as_str()) {
            self.draw(ctx, &text, size).map_err(|e| LayerError::new(&ctx.spec.id, e))?;
            self.drawn = Some(text);
        }
        self.slot = Some(ctx.quad(Rect::new(dst.x, dst.y, size.0 as f32, size.1 as f32), [0.0, 0.0, 1.0, 1.0]));
        Ok(())
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        if let (Some(group), Some(slot)) = (&self.bound, self.slot) {
            pass.draw_quad(group, slot);
        }
    }
}

/// Registry entry for `"kind": "text"`.
#[derive(Debug, Default)]
pub struct TextLayerKind;

impl LayerKind for TextLayerKind {
    type Config = TextLayerConfig;

    fn needs_input(&self) -> bool {
        false
    }

    fn check(&self, config: &TextLayerConfig) -> Result<(), SceneError> {
        config.check()
    }

    fn build(
        &self,
        _spec: &LayerSpec,
        config: TextLayerConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Layer>, BuildError> {
        Ok(Box::new(TextLayer::new(ctx.gpu, config)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scene::Fps;

    #[test]
    fn fonts_are_loaded_once_however_many_users() {
        let threads: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| Buffer::new(&mut shared_fonts().system, Metrics::new(12.0, 15.0))))
            .collect();
        for t in threads {
            t.join().expect("buffer");
        }
        let _again = shared_fonts();
        assert_eq!(FONT_SYSTEMS_LOADED.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn placeholders_are_filled() {
        let frame = FrameInfo::new(1234, Fps::new(25, 1), 10, 10);
        assert_eq!(
            fill_placeholders("{frame} {timecode} {pts} {fps} {other}", &frame, &Default::default()),
            "1234 00:00:49:09 49.360 25 {other}"
        );
        let ntsc = FrameInfo::new(30, Fps::new(30000, 1001), 10, 10);
        assert_eq!(fill_placeholders("{fps}", &ntsc, &Default::default()), "29.97");
        let mut meta = crate::metadata::FrameMetadata { timecode: Some("01:02:03:04".into()), ..Default::default() };
        meta.user.insert("speaker".into(), "Ada".into());
        let metadata: InputMetadata = [("cam".to_string(), meta)].into_iter().collect();
        assert_eq!(
            fill_placeholders(
                "{meta.cam.user.speaker} at {meta.cam.timecode}{meta.cam.user.none}{meta.x.timecode} {meta.cam",
                &frame,
                &metadata
            ),
            "Ada at 01:02:03:04 {meta.cam"
        );
        assert_eq!(timecode(30, Fps::new(30000, 1001)), "00:00:01:00");
    }

    #[test]
    fn sync_badges_fill_in_for_inputs_that_have_one() {
        let mut sync = crate::timing::InputSync::<u32>::new(crate::timing::SyncPolicy::default(), 40_000_000);
        sync.push(0, 0);
        sync.push(40_000_000, 1);
        let _ = sync.pick(2_000_000);
        let stats: super::super::InputSyncStats = [("cam".to_string(), sync.stats().clone())].into_iter().collect();
        assert_eq!(
            fill_sync("[{sync.cam}]{sync.none} {sync.cam", &stats),
            "[-1 ms | 25.0 fps | rep 0 | drop 0] {sync.cam"
        );
    }
}
