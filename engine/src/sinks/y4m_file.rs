//! `.y4m` output: YUV4MPEG2, I420 (4:2:0), readable by ffmpeg, ffplay, x264 and GStreamer.

use super::{Sink, SinkError};
use crate::frame::{OutputFrame, PixelFormat};
use crate::gpu::convert::YuvRange;
use crate::registry::{PathOnly, SinkKind, SinkTarget};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Writes frames as a YUV4MPEG2 (I420) stream to a file.
pub struct Y4mSink {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    /// `W.. H.. F..` of the stream header, written with the first frame: the colour range it
    /// names is the one that frame was converted with.
    stream: String,
    /// The range in the header once written.
    range: Option<YuvRange>,
}

impl Y4mSink {
    /// Creates the file. The y4m crate's encoder cannot hand its writer back for a checked flush,
    /// so the (tiny) format is written here; the crate still reads it back in the tests.
    pub fn create(target: &SinkTarget<'_>) -> Result<Self, SinkError> {
        let io = |source| SinkError::Io { path: target.path.display().to_string(), error: source };
        let writer = BufWriter::new(File::create(target.path).map_err(io)?);
        let stream = format!("W{} H{} F{}:{}", target.width, target.height, target.fps.num, target.fps.den);
        Ok(Y4mSink { path: target.path.to_path_buf(), writer: Some(writer), stream, range: None })
    }

    fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io { path: self.path.display().to_string(), error: source }
    }

    /// Writes the header for frames in `range` once; a later frame in another range is an error
    /// (a y4m stream has one).
    fn header(&mut self, range: YuvRange) -> Result<(), SinkError> {
        match self.range {
            Some(r) if r == range => return Ok(()),
            Some(r) => {
                return Err(SinkError::Encode(format!(
                    "{}: the output colour range changed from {r:?} to {range:?} mid-stream",
                    self.path.display()
                )))
            }
            None => {}
        }
        let name = match range {
            YuvRange::Limited => "LIMITED",
            YuvRange::Full => "FULL",
        };
        let line = format!("YUV4MPEG2 {} Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE={name}\n", self.stream);
        let result = self.writer.as_mut().map_or(Ok(()), |w| w.write_all(line.as_bytes()));
        result.map_err(|e| self.io(e))?;
        self.range = Some(range);
        Ok(())
    }
}

impl Sink for Y4mSink {
    fn format(&self) -> PixelFormat {
        PixelFormat::I420
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        if self.writer.is_none() {
            return Err(SinkError::Stopped(format!("{}: stopped after an earlier error", self.path.display())));
        }
        self.header(frame.color_space.map_or(YuvRange::Limited, |cs| cs.range))?;
        let Some(writer) = self.writer.as_mut() else { return Ok(()) };
        let result = writer.write_all(b"FRAME\n").and_then(|()| writer.write_all(&frame.data));
        result.map_err(|e| self.io(e))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        // A stream with no frames still gets its header.
        if self.range.is_none() {
            self.header(YuvRange::Limited)?;
        }
        match self.writer.take() {
            Some(mut writer) => writer.flush().map_err(|e| self.io(e)),
            None => Ok(()),
        }
    }
}

/// Registry entry for `.y4m` outputs.
#[derive(Debug, Default)]
pub struct Y4mSinkKind;

impl SinkKind for Y4mSinkKind {
    type Config = PathOnly;

    fn extensions(&self) -> &[&str] {
        &["y4m"]
    }

    fn build(&self, target: &SinkTarget<'_>, _: PathOnly) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(vec![Box::new(Y4mSink::create(target)?)])
    }
}
