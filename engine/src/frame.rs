//! Frames as they travel between sources, the GPU and sinks.

use crate::gpu::convert::YuvColorSpace;
use std::sync::Arc;

/// When a frame is shown: its number in the stream, its presentation time and how long it lasts.
/// Every frame type (from a source, read back for a sink, being composited) carries one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FrameTime {
    /// Sequence number from the producer, starting at 0.
    pub index: u64,
    /// Presentation timestamp in nanoseconds from the start of the stream.
    pub pts_ns: u64,
    /// How long the frame is shown, in nanoseconds.
    pub duration_ns: u64,
}

impl FrameTime {
    /// Frame `index` of a stream at `fps`.
    pub fn at(fps: crate::scene::Fps, index: u64) -> Self {
        FrameTime { index, pts_ns: fps.pts_ns(index), duration_ns: fps.duration_ns(index) }
    }
}

/// Pixel layouts the engine reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// 8-bit R, G, B, A; straight alpha at the edges of the engine.
    Rgba8,
    /// 8-bit B, G, R, A; straight alpha.
    Bgra8,
    /// Y plane, then one plane of interleaved U/V at half resolution in both directions.
    Nv12,
    /// Y plane, then U and V planes at half resolution in both directions.
    I420,
}

/// Width, height and bytes per pixel of one plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneShape {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels (rows).
    pub height: u32,
    /// Bytes per pixel.
    pub bytes_per_pixel: u32,
}

impl PlaneShape {
    /// Bytes in one unpadded row.
    pub fn row_bytes(&self) -> usize {
        self.width as usize * self.bytes_per_pixel as usize
    }
    /// Bytes in the whole plane with unpadded rows.
    pub fn tight_len(&self) -> usize {
        self.row_bytes() * self.height as usize
    }
}

impl PixelFormat {
    /// The planes of a `width` x `height` image; chroma sizes round up so odd sizes keep their edge.
    pub fn planes(self, width: u32, height: u32) -> Vec<PlaneShape> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let plane = |width, height, bytes_per_pixel| PlaneShape { width, height, bytes_per_pixel };
        match self {
            PixelFormat::Rgba8 | PixelFormat::Bgra8 => vec![plane(width, height, 4)],
            PixelFormat::Nv12 => vec![plane(width, height, 1), plane(cw, ch, 2)],
            PixelFormat::I420 => vec![plane(width, height, 1), plane(cw, ch, 1), plane(cw, ch, 1)],
        }
    }

    /// Bytes of a tightly packed frame (rows unpadded, planes back to back).
    pub fn frame_len(self, width: u32, height: u32) -> usize {
        self.planes(width, height).iter().map(PlaneShape::tight_len).sum()
    }

    /// Whether this is one of the YUV layouts (NV12, I420).
    pub fn is_yuv(self) -> bool {
        matches!(self, PixelFormat::Nv12 | PixelFormat::I420)
    }
}

/// One plane of CPU pixels; `stride` is the distance between row starts in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plane {
    /// The plane's bytes, rows `stride` apart.
    pub data: Vec<u8>,
    /// Distance between the starts of consecutive rows, in bytes.
    pub stride: usize,
}

/// Where a frame's pixels live.
#[derive(Clone, Debug)]
pub enum FrameData {
    /// Planes in CPU memory, in the order `PixelFormat::planes` lists them.
    Cpu(Vec<Plane>),
    /// A premultiplied RGBA texture already on the GPU.
    Gpu(Arc<wgpu::Texture>),
}

/// A frame with its presentation time, as produced by a source or read back for a sink.
#[derive(Clone, Debug)]
pub struct TimestampedFrame {
    /// When the frame is shown.
    pub time: FrameTime,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixel layout of `data`.
    pub format: PixelFormat,
    /// The pixels, in CPU or GPU memory.
    pub data: FrameData,
    /// The YUV colour space the frame says it is in (a network frame carries it); `None`: the
    /// input's own (from its configuration or its file).
    pub color_space: Option<crate::YuvColorSpace>,
    /// What travels with the frame (detections, user values, ...).
    pub meta: crate::metadata::FrameMetadata,
    /// When a live input captured it, on the engine's timeline (`timing::timeline`); `None`
    /// for files and generated frames, whose pts is their time.
    pub captured_ns: Option<u64>,
}

/// Why a CPU frame's planes cannot be used as described.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The number of planes does not match the format.
    #[error("{format:?} frame needs {expected} planes, got {got}")]
    PlaneCount {
        /// The frame's format.
        format: PixelFormat,
        /// Planes the format has.
        expected: usize,
        /// Planes given.
        got: usize,
    },
    /// A plane's stride is shorter than one row.
    #[error("plane {plane}: stride {stride} is shorter than a row of {row} bytes")]
    Stride {
        /// Plane index.
        plane: usize,
        /// Its stride in bytes.
        stride: usize,
        /// Bytes in one row of that plane.
        row: usize,
    },
    /// A plane holds fewer bytes than its rows need.
    #[error("plane {plane}: {got} bytes is less than the {needed} that {rows} rows at stride {stride} need")]
    Truncated {
        /// Plane index.
        plane: usize,
        /// Bytes given.
        got: usize,
        /// Bytes the rows need.
        needed: usize,
        /// Rows in that plane.
        rows: u32,
        /// Its stride in bytes.
        stride: usize,
    },
    /// The width or height is zero.
    #[error("frame size {width}x{height} is empty")]
    Empty {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

impl TimestampedFrame {
    /// A CPU frame from tightly packed bytes (planes back to back, rows unpadded).
    pub fn from_packed(
        format: PixelFormat,
        width: u32,
        height: u32,
        bytes: &[u8],
        time: FrameTime,
    ) -> Result<Self, FrameError> {
        let mut planes = Vec::new();
        let mut offset = 0usize;
        for (i, shape) in format.planes(width, height).iter().enumerate() {
            let len = shape.tight_len();
            let data = bytes.get(offset..offset + len).ok_or(FrameError::Truncated {
                plane: i,
                got: bytes.len().saturating_sub(offset),
                needed: len,
                rows: shape.height,
                stride: shape.row_bytes(),
            })?;
            planes.push(Plane { data: data.to_vec(), stride: shape.row_bytes() });
            offset += len;
        }
        let frame = TimestampedFrame {
            time,
            width,
            height,
            format,
            data: FrameData::Cpu(planes),
            color_space: None,
            meta: Default::default(),
            captured_ns: None,
        };
        frame.check()?;
        Ok(frame)
    }

    /// Checks CPU planes against the format and size, so a malformed frame from a file or the
    /// network becomes an error instead of a GPU validation failure.
    pub fn check(&self) -> Result<(), FrameError> {
        if self.width == 0 || self.height == 0 {
            return Err(FrameError::Empty { width: self.width, height: self.height });
        }
        let FrameData::Cpu(planes) = &self.data else {
            return Ok(());
        };
        let shapes = self.format.planes(self.width, self.height);
        if planes.len() != shapes.len() {
            return Err(FrameError::PlaneCount { format: self.format, expected: shapes.len(), got: planes.len() });
        }
        for (i, (plane, shape)) in planes.iter().zip(&shapes).enumerate() {
            let row = shape.row_bytes();
            if plane.stride < row {
                return Err(FrameError::Stride { plane: i, stride: plane.stride, row });
            }
            let needed = plane.stride * (shape.height as usize - 1) + row;
            if plane.data.len() < needed {
                return Err(FrameError::Truncated {
                    plane: i,
                    got: plane.data.len(),
                    needed,
                    rows: shape.height,
                    stride: plane.stride,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_sizes_round_chroma_up() {
        let p = PixelFormat::I420.planes(1279, 719);
        assert_eq!((p[1].width, p[1].height), (640, 360));
        assert_eq!(PixelFormat::Nv12.frame_len(3, 3), 9 + 2 * 2 * 2);
        assert_eq!(PixelFormat::Rgba8.frame_len(3, 2), 24);
    }

    #[test]
    fn truncated_planes_are_errors() {
        let bytes = vec![0u8; PixelFormat::I420.frame_len(4, 4) - 1];
        let err = TimestampedFrame::from_packed(PixelFormat::I420, 4, 4, &bytes, FrameTime::default());
        assert!(matches!(err, Err(FrameError::Truncated { plane: 2, .. })), "{err:?}");
    }

    #[test]
    fn short_stride_is_an_error() {
        let frame = TimestampedFrame {
            time: FrameTime::default(),
            width: 4,
            height: 1,
            format: PixelFormat::Rgba8,
            data: FrameData::Cpu(vec![Plane { data: vec![0; 64], stride: 8 }]),
            color_space: None,
            meta: Default::default(),
            captured_ns: None,
        };
        assert!(matches!(frame.check(), Err(FrameError::Stride { .. })));
    }
}

/// A composited frame read back from the GPU: planes tightly packed, back to back.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputFrame {
    /// When the frame is shown.
    pub time: FrameTime,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Pixel layout of `data`.
    pub format: PixelFormat,
    /// The colour space the GPU converted a YUV frame with (sinks write it in their headers);
    /// `None` for RGB frames, which are the compositor's encoded R'G'B'.
    pub color_space: Option<YuvColorSpace>,
    /// For RGBA the colour is premultiplied, as the compositor made it.
    pub data: Vec<u8>,
    /// The metadata of the inputs shown in this frame, gathered by the engine.
    pub meta: crate::metadata::FrameMetadata,
}

impl OutputFrame {
    /// The bytes of plane `i` (see `PixelFormat::planes`).
    pub fn plane(&self, i: usize) -> &[u8] {
        let shapes = self.format.planes(self.width, self.height);
        let start: usize = shapes.iter().take(i).map(PlaneShape::tight_len).sum();
        let len = shapes.get(i).map_or(0, PlaneShape::tight_len);
        self.data.get(start..start + len).unwrap_or(&[])
    }

    /// RGBA pixel at (x, y) of an RGBA frame (premultiplied).
    pub fn rgba_at(&self, x: u32, y: u32) -> [u8; 4] {
        let i = (y as usize * self.width as usize + x as usize) * 4;
        match self.data.get(i..i + 4) {
            Some(p) => [p[0], p[1], p[2], p[3]],
            None => [0; 4],
        }
    }
}

/// The output frame being composited, as sources and layers see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameInfo {
    /// Index and timing of this output frame.
    pub time: FrameTime,
    /// Output frame rate.
    pub fps: crate::scene::Fps,
    /// Output width in pixels.
    pub width: u32,
    /// Output height in pixels.
    pub height: u32,
    /// When this tick is due on the engine's timeline (`timing::timeline`): realtime only. Live
    /// inputs show the frames captured then (less the latency budget).
    pub tick_ns: Option<u64>,
}

impl FrameInfo {
    /// Output frame `index` at `fps`, `width` x `height` pixels.
    pub fn new(index: u64, fps: crate::scene::Fps, width: u32, height: u32) -> Self {
        FrameInfo { time: FrameTime::at(fps, index), fps, width, height, tick_ns: None }
    }
}
