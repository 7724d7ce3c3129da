//! `.png` output: each frame as an 8-bit RGBA PNG with straight alpha. A path containing `%d`
//! (or `%05d`, ...) writes a numbered sequence; a plain path keeps the last frame written.

use super::{unpremultiply, Sink, SinkError};
use crate::frame::{OutputFrame, PixelFormat};
use crate::registry::{PathOnly, SinkKind, SinkTarget};
use std::path::{Path, PathBuf};

/// Writes each frame as a PNG, to a numbered file when the path has a `%d` pattern.
pub struct PngSink {
    path: PathBuf,
}

/// Writes straight-alpha RGBA pixels as a PNG.
pub fn write_png(path: &Path, width: u32, height: u32, rgba: &[u8]) -> Result<(), SinkError> {
    let io = |source| SinkError::Io { path: path.display().to_string(), error: source };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let encode = |e: png::EncodingError| SinkError::Encode(format!("{}: {e}", path.display()));
    let mut writer = encoder.write_header().map_err(encode)?;
    writer.write_image_data(rgba).map_err(encode)?;
    writer.finish().map_err(encode)
}

/// Expands a printf-style `%d` / `%0Nd` in `pattern` with `index`.
fn numbered(pattern: &Path, index: u64) -> PathBuf {
    let s = pattern.to_string_lossy();
    let Some(start) = s.find('%') else { return pattern.to_path_buf() };
    let rest = &s[start + 1..];
    let Some(d) = rest.find('d') else { return pattern.to_path_buf() };
    let width: usize = rest[..d].trim_start_matches('0').parse().unwrap_or(0);
    if !rest[..d].chars().all(|c| c.is_ascii_digit()) {
        return pattern.to_path_buf();
    }
    PathBuf::from(format!("{}{:0width$}{}", &s[..start], index, &rest[d + 1..]))
}

impl Sink for PngSink {
    fn format(&self) -> PixelFormat {
        PixelFormat::Rgba8
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        let mut rgba = frame.data.clone();
        unpremultiply(&mut rgba);
        write_png(&numbered(&self.path, frame.time.index), frame.width, frame.height, &rgba)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Registry entry for `.png` outputs.
#[derive(Debug, Default)]
pub struct PngSinkKind;

impl SinkKind for PngSinkKind {
    type Config = PathOnly;

    fn extensions(&self) -> &[&str] {
        &["png"]
    }

    fn build(&self, target: &SinkTarget<'_>, _: PathOnly) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        if let Some(dir) = target.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(SinkError::Io {
                    path: target.path.display().to_string(),
                    error: std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
                });
            }
        }
        // Fail now, not silently at the first frame: can we create files there?
        let dir = target.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let probe = dir.join(format!(".streamlib-write-test-{}", std::process::id()));
        std::fs::File::create(&probe)
            .map_err(|error| SinkError::Io { path: target.path.display().to_string(), error })?;
        let _ = std::fs::remove_file(&probe);
        Ok(vec![Box::new(PngSink { path: target.path.to_path_buf() })])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering() {
        assert_eq!(numbered(Path::new("out/f%05d.png"), 42), PathBuf::from("out/f00042.png"));
        assert_eq!(numbered(Path::new("f%d.png"), 7), PathBuf::from("f7.png"));
        assert_eq!(numbered(Path::new("still.png"), 7), PathBuf::from("still.png"));
    }
}
