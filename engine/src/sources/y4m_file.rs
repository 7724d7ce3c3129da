//! `y4m` input: a YUV4MPEG2 file (8-bit 4:2:0), read on its own thread. Handy for tests and for
//! piping raw video from other tools (`ffmpeg -f yuv4mpegpipe`).

use super::threaded::{FrameProducer, ThreadedSource};
use super::{Source, SourceError};
use crate::frame::{FrameTime, PixelFormat, TimestampedFrame};
use crate::gpu::convert::YuvColorSpace;
use crate::registry::{BuildContext, BuildError, InputKind};
use crate::scene::Fps;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// Parameters of a `y4m` input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Y4mSourceConfig {
    /// The `.y4m` file; a relative path is taken from the scene's base directory.
    pub path: PathBuf,
    /// Start again from the first frame at the end.
    #[serde(default, rename = "loop")]
    pub looping: bool,
    /// YUV colour space of the file; by default BT.709 for 720 lines and up, else BT.601.
    #[serde(default)]
    pub color_space: Option<YuvColorSpace>,
}

/// Reads frames from a `.y4m` file, restarting at the end when looping.
pub struct Y4mProducer {
    path: PathBuf,
    decoder: y4m::Decoder<BufReader<File>>,
    looping: bool,
    fps: Fps,
    index: u64,
    /// Frame index at which the current pass through the file started.
    pass_start: u64,
}

fn open(path: &Path) -> Result<y4m::Decoder<BufReader<File>>, SourceError> {
    let err = |message: String| SourceError::Open { path: path.display().to_string(), message };
    let file = crate::files::open_regular(path).map_err(|e| err(e.to_string()))?;
    let decoder =
        y4m::Decoder::new(BufReader::new(file)).map_err(|e| err(format!("not a valid YUV4MPEG2 file: {e}")))?;
    match decoder.get_colorspace() {
        y4m::Colorspace::C420 | y4m::Colorspace::C420jpeg | y4m::Colorspace::C420paldv | y4m::Colorspace::C420mpeg2 => {
            Ok(decoder)
        }
        other => Err(SourceError::Unsupported(format!(
            "{}: colour space {other:?} is not supported (8-bit 4:2:0 only)",
            path.display()
        ))),
    }
}

impl Y4mProducer {
    /// Opens `path` (8-bit 4:2:0 only); the frame rate falls back to the default when the header has none.
    pub fn open(path: &Path, looping: bool) -> Result<Self, SourceError> {
        let decoder = open(path)?;
        let rate = decoder.get_framerate();
        let fps = u32::try_from(rate.num)
            .ok()
            .zip(u32::try_from(rate.den).ok())
            .map(|(n, d)| Fps::new(n, d))
            .filter(|f| f.num > 0 && f.den > 0)
            .unwrap_or_default();
        Ok(Y4mProducer { path: path.to_path_buf(), decoder, looping, fps, index: 0, pass_start: 0 })
    }

    /// Frame width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.decoder.get_width() as u32, self.decoder.get_height() as u32)
    }

    /// The file's frame rate.
    pub fn fps(&self) -> Fps {
        self.fps
    }
}

impl FrameProducer for Y4mProducer {
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError> {
        let (width, height) = self.size();
        let mut bytes = Vec::with_capacity(PixelFormat::I420.frame_len(width, height));
        match self.decoder.read_frame() {
            Ok(frame) => {
                bytes.extend_from_slice(frame.get_y_plane());
                bytes.extend_from_slice(frame.get_u_plane());
                bytes.extend_from_slice(frame.get_v_plane());
            }
            // A truncated last frame reads as end of file: a clean end after the frames that decoded.
            Err(y4m::Error::EOF) => {
                // Not one whole frame: the header promises more bytes a frame than the file holds.
                if self.index == 0 {
                    return Err(SourceError::Decode(format!(
                        "{}: no whole frame: the header says {width}x{height} ({} bytes a frame); \
                         the file is truncated or its header is wrong",
                        self.path.display(),
                        PixelFormat::I420.frame_len(width, height)
                    )));
                }
                if !self.looping || self.index == self.pass_start {
                    return Ok(None);
                }
                self.decoder = open(&self.path)?;
                self.pass_start = self.index;
                return self.next_frame();
            }
            Err(e) => {
                return Err(SourceError::Decode(format!("{}: frame {}: {e}", self.path.display(), self.index)));
            }
        }
        let index = self.index;
        self.index += 1;
        TimestampedFrame::from_packed(PixelFormat::I420, width, height, &bytes, FrameTime::at(self.fps, index))
            .map(Some)
            .map_err(|e| SourceError::Decode(e.to_string()))
    }

    fn is_finite(&self) -> bool {
        !self.looping
    }
}

/// Registry entry for `"kind": "y4m"`.
#[derive(Debug, Default)]
pub struct Y4mSourceKind;

impl InputKind for Y4mSourceKind {
    type Config = Y4mSourceConfig;

    fn depends_on_scene(&self, _config: &Y4mSourceConfig) -> bool {
        true
    }

    fn path_fields(&self) -> &'static [&'static str] {
        &["path"]
    }

    fn build(&self, id: &str, config: Y4mSourceConfig, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let path = ctx.scene.resolve_path(&config.path);
        let producer = Y4mProducer::open(&path, config.looping).map_err(|e| BuildError::new(id, e))?;
        let (_, height) = producer.size();
        let color_space = config.color_space.unwrap_or(YuvColorSpace::default_for_height(height));
        // Admit input frames up to half an output frame early: nearest-pts matching.
        let max_offset = ctx.scene.fps.duration_ns(0) / 2;
        let source =
            ThreadedSource::spawn(id, producer, color_space, max_offset).map_err(|e| BuildError::new(id, e))?;
        Ok(Box::new(source))
    }
}
