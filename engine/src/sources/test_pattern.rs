//! Generated test patterns, drawn by `shaders/test_pattern.wgsl` each frame.

use super::{Source, SourceContext, SourceError};
use crate::gpu::pattern::{PatternDrawer, PatternId, PatternParams};
use crate::gpu::texture::Target;
use crate::layers::text::{timecode, TextBlock, TextPainter};
use crate::layers::{InputView, TextAlign, TextWeight};
use crate::registry::{BuildContext, BuildError, InputKind};
use crate::scene::{Color, SceneError};
use serde::{Deserialize, Serialize};

/// The patterns a `test_pattern` input can draw. The discriminants are the shader's `PATTERN`
/// ids (`shaders/test_pattern.wgsl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u32)]
pub enum Pattern {
    /// SMPTE colour bars.
    SmpteBars = 0,
    /// A single flat colour.
    Solid = 1,
    /// A colour ramp.
    Gradient = 2,
    /// A checkerboard of square cells.
    Checkerboard = 3,
    /// A box that moves each frame.
    MovingBox = 4,
    /// A test card with a running timecode.
    TestCard = 5,
}

impl Pattern {
    /// Every pattern, in discriminant order.
    pub const ALL: [Pattern; 6] = [
        Pattern::SmpteBars,
        Pattern::Solid,
        Pattern::Gradient,
        Pattern::Checkerboard,
        Pattern::MovingBox,
        Pattern::TestCard,
    ];

    /// The pattern's name as written in scenes (`snake_case`).
    pub fn name(self) -> &'static str {
        match self {
            Pattern::SmpteBars => "smpte_bars",
            Pattern::Solid => "solid",
            Pattern::Gradient => "gradient",
            Pattern::Checkerboard => "checkerboard",
            Pattern::MovingBox => "moving_box",
            Pattern::TestCard => "test_card",
        }
    }
}

/// Parameters of a `test_pattern` input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestPatternConfig {
    /// Which pattern to draw.
    pub pattern: Pattern,
    /// Colour of `solid`, the ramp end of `gradient`, the light cells of `checkerboard` and the box.
    #[serde(default = "white")]
    pub color: Color,
    /// Size in pixels; the scene's size when absent.
    #[serde(default)]
    pub width: Option<u32>,
    /// Height in pixels; the scene's height when absent.
    #[serde(default)]
    pub height: Option<u32>,
    /// Checkerboard cell side in pixels.
    #[serde(default = "default_cell")]
    pub cell: u32,
}

fn white() -> Color {
    Color::WHITE
}
fn default_cell() -> u32 {
    32
}

impl TestPatternConfig {
    /// A config for `pattern` with the default colour (white), size and cell.
    pub fn new(pattern: Pattern) -> Self {
        TestPatternConfig { pattern, color: Color::WHITE, width: None, height: None, cell: default_cell() }
    }
}

/// A GPU-generated input.
#[derive(Debug)]
pub struct TestPattern {
    config: TestPatternConfig,
    target: Target,
    drawer: PatternDrawer,
    last_frame: Option<u64>,
    /// The test card's timecode text.
    text: Option<TextPainter>,
}

/// The test card's black timecode box (left, top, width, height), as `test_pattern.wgsl` draws it.
fn timecode_box(width: u32, height: u32) -> [f32; 4] {
    let unit = height as f32 / 9.0;
    let (cx, cy) = (width as f32 * 0.5, height as f32 * 0.5);
    [cx - unit * 3.3, cy + unit * 0.9, unit * 6.6, unit * 1.2]
}

impl TestPattern {
    /// Creates the pattern's texture at the configured size, or the scene's.
    pub fn new(ctx: &BuildContext<'_>, config: TestPatternConfig) -> Result<Self, BuildError> {
        let width = config.width.unwrap_or(ctx.scene.width);
        let height = config.height.unwrap_or(ctx.scene.height);
        ctx.gpu.check_size("test pattern", width, height).map_err(|e| BuildError::new("test pattern", e))?;
        Ok(TestPattern {
            target: Target::color(
                &ctx.gpu.device,
                &format!("streamlib {} pattern", config.pattern.name()),
                width,
                height,
            ),
            drawer: PatternDrawer::new(ctx.gpu, &ctx.pipelines.pattern),
            text: (config.pattern == Pattern::TestCard).then(|| TextPainter::new(ctx.gpu)),
            config,
            last_frame: None,
        })
    }
}

impl TestPattern {
    fn animated(&self) -> bool {
        matches!(self.config.pattern, Pattern::MovingBox | Pattern::TestCard)
    }

    /// Bars and the test card are always opaque; the others use the colour's alpha.
    fn opaque(&self) -> bool {
        matches!(self.config.pattern, Pattern::SmpteBars | Pattern::TestCard) || self.config.color.a == 255
    }
}

impl Source for TestPattern {
    fn update(&mut self, ctx: &mut SourceContext<'_>) -> Result<(), SourceError> {
        // Static patterns are drawn once; animated ones every frame.
        if self.last_frame.is_some() && (!self.animated() || self.last_frame == Some(ctx.frame.time.index)) {
            return Ok(());
        }
        let (w, h) = self.target.size();
        let c = self.config.color.premultiplied();
        let params = PatternParams {
            color: c.map(|v| v as f32),
            size: [w as f32, h as f32],
            frame: ctx.frame.time.index as u32,
            fps: ctx.frame.fps.as_f64() as f32,
            cell: self.config.cell.max(1) as f32,
            _pad0: 0.0,
            _pad: [0.0; 2],
        };
        let id = PatternId::of(self.config.pattern);
        self.drawer.draw(ctx.gpu, &ctx.pipelines.pattern, ctx.encoder, &self.target, id, params);
        if let Some(painter) = &mut self.text {
            let [left, top, width, height] = timecode_box(w, h);
            let size = height / 1.2 * 0.85;
            let text = timecode(ctx.frame.time.index, ctx.frame.fps);
            let block = TextBlock {
                text: &text,
                family: "DejaVu Sans Mono",
                size,
                weight: TextWeight::Bold,
                color: Color::WHITE,
                align: TextAlign::Center,
                shadow: None,
                area: [left, top + (height - size * 1.25) / 2.0, width, size * 1.25],
            };
            painter.paint(ctx.gpu, ctx.encoder, &self.target, &block, false).map_err(SourceError::Gpu)?;
        }
        self.last_frame = Some(ctx.frame.time.index);
        Ok(())
    }

    fn current(&self) -> Option<InputView> {
        let (width, height) = self.target.size();
        self.last_frame.map(|_| InputView {
            view: self.target.view.clone(),
            width,
            height,
            still: !self.animated(),
            opaque: self.opaque(),
        })
    }
}

/// Registry entry for `"kind": "test_pattern"`.
#[derive(Debug, Default)]
pub struct TestPatternKind;

impl InputKind for TestPatternKind {
    type Config = TestPatternConfig;

    fn depends_on_scene(&self, config: &TestPatternConfig) -> bool {
        // Drawn at the scene's size unless both sides are given.
        !(config.width.is_some() && config.height.is_some())
    }

    fn check(&self, config: &TestPatternConfig) -> Result<(), SceneError> {
        for (name, v) in [("width", config.width), ("height", config.height)] {
            if let Some(v) = v.filter(|&v| v == 0 || v > crate::scene::MAX_DIMENSION) {
                return Err(SceneError::new(name, format!("{v} is not in 1..={}", crate::scene::MAX_DIMENSION)));
            }
        }
        if let (Some(w), Some(h)) = (config.width, config.height) {
            crate::scene::check_size(w, h).map_err(|m| SceneError::new("width", m))?;
        }
        if config.cell == 0 {
            return Err(SceneError::new("cell", "must be at least 1"));
        }
        Ok(())
    }

    fn build(
        &self,
        _id: &str,
        config: TestPatternConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Source>, BuildError> {
        Ok(Box::new(TestPattern::new(ctx, config)?))
    }
}
