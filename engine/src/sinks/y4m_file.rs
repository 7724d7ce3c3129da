//! `.y4m` output: YUV4MPEG2, I420 (4:2:0), readable by ffmpeg, ffplay, x264 and GStreamer.

use super::{Sink, SinkError};
use crate::frame::{OutputFrame, PixelFormat};
use crate::gpu::convert::YuvRange;
use crate::registry::{SinkKind, SinkTarget};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

pub struct Y4mSink {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl Y4mSink {
    /// Writes the stream header. The y4m crate's encoder cannot hand its writer back for a checked
    /// flush, so the (tiny) format is written here; the crate still reads it back in the tests.
    pub fn create(target: &SinkTarget<'_>) -> Result<Self, SinkError> {
        let io = |source| SinkError::Io { path: target.path.display().to_string(), error: source };
        let mut writer = BufWriter::new(File::create(target.path).map_err(io)?);
        writeln!(
            writer,
            "YUV4MPEG2 W{} H{} F{}:{} Ip A1:1 C420jpeg XYSCSS=420JPEG XCOLORRANGE={}",
            target.width,
            target.height,
            target.fps.num,
            target.fps.den,
            match target.color_space.range {
                YuvRange::Limited => "LIMITED",
                YuvRange::Full => "FULL",
            }
        )
        .map_err(io)?;
        Ok(Y4mSink { path: target.path.to_path_buf(), writer: Some(writer) })
    }

    fn io(&self, source: std::io::Error) -> SinkError {
        SinkError::Io { path: self.path.display().to_string(), error: source }
    }
}

impl Sink for Y4mSink {
    fn format(&self) -> PixelFormat {
        PixelFormat::I420
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        let Some(writer) = self.writer.as_mut() else {
            return Err(SinkError::Stopped(format!("{}: stopped after an earlier error", self.path.display())));
        };
        let result = writer.write_all(b"FRAME\n").and_then(|()| writer.write_all(&frame.data));
        result.map_err(|e| self.io(e))
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        match self.writer.take() {
            Some(mut writer) => writer.flush().map_err(|e| self.io(e)),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Default)]
pub struct Y4mSinkKind;

impl SinkKind for Y4mSinkKind {
    fn extensions(&self) -> &[&str] {
        &["y4m"]
    }

    fn build(&self, target: &SinkTarget<'_>) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(vec![Box::new(Y4mSink::create(target)?)])
    }
}
