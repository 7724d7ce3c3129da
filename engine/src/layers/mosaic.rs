//! The `mosaic` layer: a multiviewer. Inputs tiled in a grid inside the layer's rect, each fitted
//! to its cell with its aspect kept, named, and with its sync badge (offset from the tick, rate,
//! repeats, drops; see `SyncStats::badge`) once a realtime render picks for it. Each cell is a
//! `video` layer and two `text` layers drawn under the mosaic's opacity and blend mode.

use super::text::{Shadow, TextLayer, TextLayerConfig};
use super::{Layer, LayerError, LayerPass, PrepareContext, VideoLayer};
use crate::registry::{BuildContext, BuildError, LayerKind};
use crate::scene::{Color, LayerSpec, Rect, SceneError};
use serde::{Deserialize, Serialize};

/// Most inputs one mosaic tiles.
pub const MAX_MOSAIC_INPUTS: usize = 16;

/// `"kind": "mosaic"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MosaicConfig {
    /// The inputs to tile, in reading order.
    pub inputs: Vec<String>,
    /// Columns of the grid; the smallest square grid that holds them when absent.
    #[serde(default)]
    pub columns: Option<u32>,
    /// Space between and around cells, in output pixels.
    #[serde(default = "default_gap")]
    pub gap: f32,
    /// Each cell's input id at its top left.
    #[serde(default = "yes")]
    pub labels: bool,
    /// Each cell's sync badge at its bottom left (realtime renders).
    #[serde(default = "yes")]
    pub badges: bool,
}

fn default_gap() -> f32 {
    8.0
}
fn yes() -> bool {
    true
}

impl MosaicConfig {
    fn check(&self) -> Result<(), SceneError> {
        if self.inputs.is_empty() || self.inputs.len() > MAX_MOSAIC_INPUTS {
            return Err(SceneError::new("inputs", format!("1 to {MAX_MOSAIC_INPUTS} input ids")));
        }
        if self.columns.is_some_and(|c| c == 0 || c as usize > MAX_MOSAIC_INPUTS) {
            return Err(SceneError::new("columns", format!("must be in 1..={MAX_MOSAIC_INPUTS}")));
        }
        if !(self.gap.is_finite() && (0.0..=1000.0).contains(&self.gap)) {
            return Err(SceneError::new("gap", format!("{} is not in 0..=1000 px", self.gap)));
        }
        Ok(())
    }

    fn grid(&self) -> (u32, u32) {
        let n = self.inputs.len() as u32;
        let columns = self.columns.unwrap_or_else(|| (n as f64).sqrt().ceil() as u32).clamp(1, n.max(1));
        (columns, n.div_ceil(columns))
    }
}

/// One tile: the input's picture, its name and its badge, each a layer of its own spec.
struct Cell {
    video: (LayerSpec, VideoLayer),
    label: Option<(LayerSpec, Box<dyn Layer>)>,
    badge: Option<(LayerSpec, Box<dyn Layer>)>,
}

/// A `mosaic` layer.
pub struct MosaicLayer {
    config: MosaicConfig,
    cells: Vec<Cell>,
    label_size: f32,
    badge_size: f32,
}

impl std::fmt::Debug for MosaicLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MosaicLayer").field("inputs", &self.config.inputs).finish()
    }
}

impl MosaicLayer {
    /// The cell rects inside `area`, in reading order.
    fn cells_in(&self, area: Rect) -> Vec<Rect> {
        let (columns, rows) = self.config.grid();
        let gap = self.config.gap;
        let w = ((area.w - gap * (columns + 1) as f32) / columns as f32).max(1.0);
        let h = ((area.h - gap * (rows + 1) as f32) / rows as f32).max(1.0);
        (0..self.config.inputs.len() as u32)
            .map(|i| {
                let (c, r) = (i % columns, i / columns);
                Rect::new(area.x + gap + c as f32 * (w + gap), area.y + gap + r as f32 * (h + gap), w, h)
            })
            .collect()
    }
}

/// `inner` (w × h) scaled to fit `cell`, centred.
fn fit(cell: Rect, w: u32, h: u32) -> Rect {
    let scale = (cell.w / w.max(1) as f32).min(cell.h / h.max(1) as f32);
    let (fw, fh) = (w as f32 * scale, h as f32 * scale);
    Rect::new(cell.x + (cell.w - fw) / 2.0, cell.y + (cell.h - fh) / 2.0, fw, fh)
}

/// Prepares `layer` as if it were a layer of `spec` (the mosaic's opacity and blend).
fn prepare_as(
    ctx: &mut PrepareContext<'_>,
    spec: &mut LayerSpec,
    rect: Rect,
    layer: &mut dyn Layer,
) -> Result<(), LayerError> {
    spec.rect = Some(rect);
    spec.opacity = ctx.spec.opacity;
    spec.blend = ctx.spec.blend;
    let mut sub = PrepareContext {
        gpu: ctx.gpu,
        pipelines: ctx.pipelines,
        encoder: &mut *ctx.encoder,
        frame: ctx.frame,
        inputs: ctx.inputs,
        metadata: ctx.metadata,
        sync: ctx.sync,
        spec,
        quads: &mut *ctx.quads,
    };
    layer.prepare(&mut sub).map_err(|e| LayerError::new(&ctx.spec.id, e.message))
}

impl Layer for MosaicLayer {
    fn prepare(&mut self, ctx: &mut PrepareContext<'_>) -> Result<(), LayerError> {
        let rects = self.cells_in(ctx.dst_rect());
        let (label_h, badge_h) = (self.label_size * 1.4, self.badge_size * 1.4);
        for (cell, rect) in self.cells.iter_mut().zip(rects) {
            let (spec, video) = &mut cell.video;
            let picture = match spec.input.as_ref().and_then(|id| ctx.inputs.get(id)) {
                Some(input) => fit(rect, input.width, input.height),
                None => rect,
            };
            prepare_as(ctx, spec, picture, video)?;
            // Name and badge sit on the picture itself.
            let rect = picture;
            let inset = (rect.w * 0.02).max(4.0);
            let text_w = (rect.w - 2.0 * inset).max(1.0);
            if let Some((spec, label)) = &mut cell.label {
                let at = Rect::new(rect.x + inset, rect.y + inset, text_w, label_h.min(rect.h));
                prepare_as(ctx, spec, at, label.as_mut())?;
            }
            if let Some((spec, badge)) = &mut cell.badge {
                let y = (rect.y + rect.h - inset - badge_h).max(rect.y);
                prepare_as(ctx, spec, Rect::new(rect.x + inset, y, text_w, badge_h.min(rect.h)), badge.as_mut())?;
            }
        }
        Ok(())
    }

    fn record(&self, pass: &mut LayerPass<'_, '_>) {
        for cell in &self.cells {
            cell.video.1.record(pass);
            for (_, text) in cell.label.iter().chain(&cell.badge) {
                text.record(pass);
            }
        }
    }
}

/// Registry entry for `"kind": "mosaic"`.
#[derive(Debug, Default)]
pub struct MosaicLayerKind;

impl LayerKind for MosaicLayerKind {
    type Config = MosaicConfig;

    fn needs_input(&self) -> bool {
        false
    }

    fn check(&self, config: &MosaicConfig) -> Result<(), SceneError> {
        config.check()
    }

    fn build(
        &self,
        spec: &LayerSpec,
        config: MosaicConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Layer>, BuildError> {
        if let Some(missing) = config.inputs.iter().find(|id| !ctx.scene.inputs.contains_key(*id)) {
            return Err(BuildError::new(format!("layers.{}.inputs", spec.id), format!("no input named {missing:?}")));
        }
        // Text sizes follow the first layout's cell height (a later rect keeps them).
        let area = spec.rect.unwrap_or(Rect::new(0.0, 0.0, ctx.scene.width as f32, ctx.scene.height as f32));
        let (_, rows) = config.grid();
        let cell_h = (area.h - config.gap * (rows + 1) as f32) / rows as f32;
        let label_size = (cell_h / 12.0).clamp(12.0, 48.0);
        let badge_size = (label_size * 0.75).max(10.0);
        let text = |id: &str, text: String, size: f32, color: Color| -> (LayerSpec, Box<dyn Layer>) {
            let config = TextLayerConfig {
                size,
                color,
                shadow: Some(Shadow { color: Color::rgba(0, 0, 0, 220), offset: [1.5, 1.5] }),
                ..TextLayerConfig::new(text)
            };
            let sub = LayerSpec { id: format!("{}-{id}", spec.id), kind: "text".into(), input: None, ..spec.clone() };
            (sub, Box::new(TextLayer::new(ctx.gpu, config)))
        };
        let mut cells = Vec::with_capacity(config.inputs.len());
        for id in &config.inputs {
            let video_spec = LayerSpec { kind: "video".into(), input: Some(id.clone()), crop: None, ..spec.clone() };
            cells.push(Cell {
                video: (video_spec, VideoLayer::new(id.clone())),
                label: config.labels.then(|| text(&format!("{id}-label"), id.clone(), label_size, Color::WHITE)),
                badge: config.badges.then(|| {
                    text(&format!("{id}-badge"), format!("{{sync.{id}}}"), badge_size, Color::rgba(255, 235, 120, 255))
                }),
            });
        }
        Ok(Box::new(MosaicLayer { config, cells, label_size, badge_size }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: usize, columns: Option<u32>) -> MosaicConfig {
        MosaicConfig {
            inputs: (0..n).map(|i| format!("i{i}")).collect(),
            columns,
            gap: 10.0,
            labels: true,
            badges: true,
        }
    }

    #[test]
    fn grids_hold_every_input() {
        assert_eq!(config(4, None).grid(), (2, 2));
        assert_eq!(config(5, None).grid(), (3, 2));
        assert_eq!(config(3, Some(1)).grid(), (1, 3));
        assert!(config(0, None).check().is_err());
        assert!(config(17, None).check().is_err());
    }

    #[test]
    fn pictures_keep_their_aspect_in_their_cell() {
        let r = fit(Rect::new(10.0, 10.0, 200.0, 200.0), 1920, 1080);
        assert_eq!((r.x, r.w), (10.0, 200.0));
        assert!((r.h - 112.5).abs() < 1e-3 && (r.y - 53.75).abs() < 1e-3, "{r:?}");
    }
}
