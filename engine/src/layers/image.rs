//! The `image` layer: a PNG or JPEG decoded once at build time, uploaded once (straight alpha
//! converted to premultiplied on the GPU), then drawn like any other texture.

use super::{Layer, LayerError, LayerPass, OpacityBake, PrepareContext, QuadSlot};
use crate::frame::{FrameTime, PixelFormat, TimestampedFrame};
use crate::gpu::convert::{FrameUploader, YuvColorSpace};
use crate::registry::{BuildContext, BuildError, LayerKind};
use crate::scene::{LayerSpec, Rect};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Parameters of an `image` layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageLayerConfig {
    /// PNG or JPEG file; relative paths are taken from the scene file's directory.
    pub path: PathBuf,
}

/// An `image` layer: one decoded image, uploaded on its first frame and drawn every frame.
pub struct ImageLayer {
    pixels: Option<TimestampedFrame>,
    size: (u32, u32),
    uploader: FrameUploader,
    bound: Option<wgpu::BindGroup>,
    slot: Option<QuadSlot>,
    /// At an opacity below 1 the image is drawn from this (see `OpacityBake`).
    bake: OpacityBake,
    baked: bool,
    /// Every pixel has alpha 255 (always for JPEG).
    opaque: bool,
}

impl std::fmt::Debug for ImageLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageLayer").field("size", &self.size).finish()
    }
}

/// Why an image file cannot become a layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file cannot be opened or read.
    #[error("cannot open image {path}: {error}")]
    Open {
        /// The image file.
        path: String,
        /// The operating system's error.
        error: std::io::Error,
    },
    /// The file cannot be decoded as an image.
    #[error("cannot decode image {path}: {error}")]
    Decode {
        /// The image file.
        path: String,
        /// The decoder's error.
        error: image::ImageError,
    },
    /// The decoded pixels do not form a valid frame.
    #[error("image {path}: {error}")]
    Frame {
        /// The image file.
        path: String,
        /// What is wrong with the pixels.
        error: crate::frame::FrameError,
    },
}

/// Decodes the image at `path` into its width, height and straight-alpha RGBA8 pixels.
pub fn load_rgba(path: &Path) -> Result<(u32, u32, Vec<u8>), ImageError> {
    let shown = || path.display().to_string();
    let file = crate::files::open_regular(path).map_err(|error| ImageError::Open { path: shown(), error })?;
    let reader = image::ImageReader::new(std::io::BufReader::new(file))
        .with_guessed_format()
        .map_err(|error| ImageError::Open { path: shown(), error })?;
    let decoded = reader.decode().map_err(|error| ImageError::Decode { path: shown(), error })?;
    let rgba = decoded.to_rgba8();
    Ok((rgba.width(), rgba.height(), rgba.into_raw()))
}

impl ImageLayer {
    /// Decodes the image at `path` into a layer drawn at the image's size unless given a rect.
    pub fn open(path: &Path) -> Result<Self, ImageError> {
        let (width, height, rgba) = load_rgba(path)?;
        let opaque = rgba.chunks_exact(4).all(|p| p[3] == 255);
        let frame = TimestampedFrame::from_packed(PixelFormat::Rgba8, width, height, &rgba, FrameTime::default())
            .map_err(|error| ImageError::Frame { path: path.display().to_string(), error })?;
        Ok(ImageLayer {
            pixels: Some(frame),
            size: (width, height),
            uploader: FrameUploader::new(format!("image {}", path.display())),
            bound: None,
            slot: None,
            bake: OpacityBake::default(),
            baked: false,
            opaque,
        })
    }
}

impl Layer for ImageLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        if let Some(frame) = self.pixels.take() {
            self.uploader
                .upload(ctx.gpu, &ctx.pipelines.input, &frame, YuvColorSpace::default(), ctx.encoder)
                .map_err(|e| LayerError::new(&ctx.spec.id, e.to_string()))?;
            let view = self.uploader.view().ok_or_else(|| LayerError::new(&ctx.spec.id, "image upload failed"))?;
            self.bound = Some(ctx.pipelines.blend.texture_bind_group(&ctx.gpu.device, view));
        }
        self.baked = OpacityBake::applies(true, ctx.spec.opacity);
        if let (true, Some(view), Some(group)) = (self.baked, self.uploader.view(), &self.bound) {
            let view = view.clone();
            self.bake.update(ctx, &view, group, self.size);
        }
        // Without a rect the image is drawn at its own size in the top-left corner, as a logo would be.
        let (w, h) = (self.size.0 as f32, self.size.1 as f32);
        let dst = ctx.spec.rect.unwrap_or(Rect::new(0.0, 0.0, w, h));
        let uv = match ctx.spec.crop {
            Some(c) => [c.x / w, c.y / h, (c.x + c.w).min(w) / w, (c.y + c.h).min(h) / h],
            None => [0.0, 0.0, 1.0, 1.0],
        };
        self.slot = Some(ctx.quad(dst, uv));
        Ok(())
    }

    fn opaque(&self) -> bool {
        self.opaque && self.slot.is_some() && !self.baked
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        let Some(slot) = self.slot else { return };
        match (self.baked, self.bake.bind_group(), &self.bound) {
            (true, Some(baked), _) => pass.draw_baked_quad(baked, slot),
            (_, _, Some(group)) => pass.draw_quad(group, slot),
            _ => {}
        }
    }
}

/// Registry entry for `"kind": "image"`.
#[derive(Debug, Default)]
pub struct ImageLayerKind;

impl LayerKind for ImageLayerKind {
    type Config = ImageLayerConfig;

    fn path_fields(&self) -> &'static [&'static str] {
        &["path"]
    }

    fn needs_input(&self) -> bool {
        false
    }

    fn build(
        &self,
        spec: &LayerSpec,
        config: ImageLayerConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Layer>, BuildError> {
        let path = ctx.scene.resolve_path(&config.path);
        let layer = ImageLayer::open(&path).map_err(|e| BuildError::new(format!("layer {}", spec.id), e))?;
        ctx.gpu
            .check_size(&format!("image {}", path.display()), layer.size.0, layer.size.1)
            .map_err(|e| BuildError::new(format!("layer {}", spec.id), e))?;
        Ok(Box::new(layer))
    }
}
