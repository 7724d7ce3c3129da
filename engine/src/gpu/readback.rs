//! The readback ring: GPU textures copied into a ring of staging buffers and mapped without a
//! blocking wait per frame, so several frames are in flight while the CPU consumes older ones.

use super::{GpuContext, GpuError};
use crate::frame::{OutputFrame, PixelFormat, PlaneShape};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

const PENDING: u8 = 0;
const MAPPED: u8 = 1;
const FAILED: u8 = 2;

/// How long a finished submission's map callback may take to report before we give up.
const MAP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Timing and shape of the frame a slot holds.
#[derive(Clone, Debug, PartialEq)]
pub struct FrameMeta {
    pub time: crate::frame::FrameTime,
    pub color_space: Option<super::convert::YuvColorSpace>,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    pub metadata: crate::metadata::FrameMetadata,
}

#[derive(Debug)]
struct PlaneCopy {
    offset: u64,
    padded_row: u32,
    /// The plane as the consumer sees it; the texture may be wider (YUV planes are packed four
    /// bytes to a texel) and the bytes past `shape.row_bytes()` are dropped while unpadding.
    shape: PlaneShape,
    extent: wgpu::Extent3d,
    /// A BGRA texture read back as RGBA: red and blue are swapped while unpadding.
    swap_red_blue: bool,
}

#[derive(Debug)]
struct Slot {
    buffer: wgpu::Buffer,
    planes: Vec<PlaneCopy>,
    meta: FrameMeta,
    state: Arc<AtomicU8>,
    submission: Option<wgpu::SubmissionIndex>,
}

/// Rows copied out of a texture must start on 256-byte boundaries.
pub fn padded_row_bytes(row_bytes: u32) -> u32 {
    row_bytes.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT
}

/// Copies padded rows into a tightly packed buffer.
pub fn unpad_rows(padded: &[u8], padded_row: usize, row: usize, rows: usize, out: &mut Vec<u8>) {
    for r in 0..rows {
        out.extend_from_slice(&padded[r * padded_row..r * padded_row + row]);
    }
}

/// `unpad_rows` for 4-byte pixels, swapping bytes 0 and 2 of each (BGRA ↔ RGBA).
pub fn unpad_rows_swapping_red_blue(padded: &[u8], padded_row: usize, row: usize, rows: usize, out: &mut Vec<u8>) {
    let swap = |x: u32| (x & 0xff00_ff00) | ((x >> 16) & 0xff) | ((x & 0xff) << 16);
    out.reserve(row * rows);
    for r in 0..rows {
        let src = &padded[r * padded_row..r * padded_row + row];
        // As whole words this runs at memcpy speed (byte by byte it took four times as long).
        // Mapped buffers are aligned, so the cast succeeds; the byte loop is only a fallback.
        match bytemuck::try_cast_slice::<u8, u32>(src) {
            Ok(words) => out.extend(words.iter().flat_map(|&x| swap(u32::from_le(x)).to_le_bytes())),
            Err(_) => out.extend(src.chunks_exact(4).flat_map(|p| [p[2], p[1], p[0], p[3]])),
        }
    }
}

/// A fixed number of staging buffers; `depth` frames may be in flight at once.
#[derive(Debug)]
pub struct ReadbackRing {
    depth: usize,
    idle: Vec<Slot>,
    in_flight: VecDeque<Slot>,
    recorded: Option<Slot>,
}

impl ReadbackRing {
    pub fn new(depth: usize) -> Self {
        ReadbackRing { depth: depth.max(1), idle: Vec::new(), in_flight: VecDeque::new(), recorded: None }
    }

    /// True when every slot is in flight and `record` would have to wait.
    pub fn is_full(&self) -> bool {
        self.in_flight.len() >= self.depth
    }

    /// Records copies of `planes` (in `meta.format`'s plane order) into a free slot. The caller
    /// collects a frame first when `is_full()`; then submits and calls `submitted`.
    pub fn record(
        &mut self,
        gpu: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        planes: &[&wgpu::Texture],
        meta: FrameMeta,
    ) -> Result<(), GpuError> {
        if self.is_full() {
            return Err(GpuError::Readback("readback ring full: collect a frame first".into()));
        }
        let shapes = meta.format.planes(meta.width, meta.height);
        let mut copies = Vec::with_capacity(shapes.len());
        let mut offset = 0u64;
        for (shape, texture) in shapes.iter().zip(planes) {
            let texel_bytes = texture.format().block_copy_size(None).unwrap_or(4);
            let texture_row = texture.width() * texel_bytes;
            if (texture_row as usize) < shape.row_bytes() || texture.height() < shape.height {
                return Err(GpuError::Readback(format!(
                    "plane texture {}x{} cannot hold a {}x{} plane",
                    texture.width(),
                    texture.height(),
                    shape.width,
                    shape.height
                )));
            }
            let padded_row = padded_row_bytes(texture_row);
            let swap_red_blue = matches!(
                (texture.format(), meta.format),
                (wgpu::TextureFormat::Bgra8Unorm, PixelFormat::Rgba8)
                    | (wgpu::TextureFormat::Rgba8Unorm, PixelFormat::Bgra8)
            );
            copies.push(PlaneCopy { offset, padded_row, shape: *shape, extent: texture.size(), swap_red_blue });
            offset += u64::from(padded_row) * u64::from(texture.height());
            offset = offset.div_ceil(256) * 256;
        }
        let size = offset;
        // Reuse an idle buffer of the right size; otherwise make one (only while the ring fills or
        // after the output size changed).
        let buffer = match self.idle.iter().position(|s| s.buffer.size() == size) {
            Some(i) => self.idle.swap_remove(i).buffer,
            None => {
                self.idle.clear();
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("streamlib readback buffer"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            }
        };
        for (texture, copy) in planes.iter().zip(&copies) {
            encoder.copy_texture_to_buffer(
                texture.as_image_copy(),
                wgpu::TexelCopyBufferInfo {
                    buffer: &buffer,
                    layout: wgpu::TexelCopyBufferLayout {
                        offset: copy.offset,
                        bytes_per_row: Some(copy.padded_row),
                        rows_per_image: Some(copy.extent.height),
                    },
                },
                copy.extent,
            );
        }
        self.recorded =
            Some(Slot { buffer, planes: copies, meta, state: Arc::new(AtomicU8::new(PENDING)), submission: None });
        Ok(())
    }

    /// Starts mapping the slot recorded last, once its commands were submitted as `submission`.
    pub fn submitted(&mut self, submission: wgpu::SubmissionIndex) {
        if let Some(mut slot) = self.recorded.take() {
            let state = slot.state.clone();
            slot.buffer.map_async(wgpu::MapMode::Read, .., move |r| {
                state.store(if r.is_ok() { MAPPED } else { FAILED }, Ordering::Release);
            });
            slot.submission = Some(submission);
            self.in_flight.push_back(slot);
        }
    }

    /// Frames whose copies have finished, oldest first, without waiting.
    pub fn try_collect(&mut self, gpu: &GpuContext) -> Result<Vec<OutputFrame>, GpuError> {
        gpu.device.poll(wgpu::PollType::Poll).map_err(|e| GpuError::Readback(e.to_string()))?;
        let mut out = Vec::new();
        while self.in_flight.front().is_some_and(|s| s.state.load(Ordering::Acquire) != PENDING) {
            out.push(self.finish_front()?);
        }
        Ok(out)
    }

    /// Waits for the oldest frame in flight.
    pub fn wait_oldest(&mut self, gpu: &GpuContext) -> Result<Option<OutputFrame>, GpuError> {
        let Some(front) = self.in_flight.front() else { return Ok(None) };
        let started = std::time::Instant::now();
        while front.state.load(Ordering::Acquire) == PENDING {
            let submission_index = front.submission.clone();
            gpu.device
                .poll(wgpu::PollType::Wait { submission_index, timeout: None })
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            // When several threads share the device, another thread's poll may be the one running
            // our map callback: the submission is done but the callback has not stored its result
            // yet. Wait for it rather than calling the mapping failed.
            if front.state.load(Ordering::Acquire) != PENDING {
                break;
            }
            if started.elapsed() > MAP_TIMEOUT {
                return Err(GpuError::Readback(format!("mapping frame {} timed out", front.meta.time.index)));
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        self.finish_front().map(Some)
    }

    /// Waits for every frame in flight.
    pub fn flush(&mut self, gpu: &GpuContext) -> Result<Vec<OutputFrame>, GpuError> {
        let mut out = Vec::new();
        while let Some(frame) = self.wait_oldest(gpu)? {
            out.push(frame);
        }
        Ok(out)
    }

    fn finish_front(&mut self) -> Result<OutputFrame, GpuError> {
        let slot = self.in_flight.pop_front().ok_or_else(|| GpuError::Readback("nothing in flight".into()))?;
        if slot.state.load(Ordering::Acquire) != MAPPED {
            return Err(GpuError::Readback(format!("mapping frame {} failed", slot.meta.time.index)));
        }
        let mut slot = slot;
        let metadata = std::mem::take(&mut slot.meta.metadata);
        let meta = slot.meta.clone();
        let mut data = Vec::with_capacity(meta.format.frame_len(meta.width, meta.height));
        {
            let view = slot.buffer.get_mapped_range(..).map_err(|e| GpuError::Readback(e.to_string()))?;
            for p in &slot.planes {
                let start = p.offset as usize;
                let end = start + p.padded_row as usize * p.shape.height as usize;
                let unpad = if p.swap_red_blue { unpad_rows_swapping_red_blue } else { unpad_rows };
                unpad(
                    &view[start..end],
                    p.padded_row as usize,
                    p.shape.row_bytes(),
                    p.shape.height as usize,
                    &mut data,
                );
            }
        }
        slot.buffer.unmap();
        self.idle.push(slot);
        Ok(OutputFrame {
            time: meta.time,
            width: meta.width,
            height: meta.height,
            format: meta.format,
            color_space: meta.color_space,
            data,
            meta: metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pad_to_256() {
        assert_eq!(padded_row_bytes(1), 256);
        assert_eq!(padded_row_bytes(256), 256);
        assert_eq!(padded_row_bytes(1279 * 4), 5120);
        assert_eq!(padded_row_bytes(1920 * 4), 7680);
    }

    #[test]
    fn unpadding_drops_the_padding() {
        let padded: Vec<u8> = (0..3).flat_map(|r| (0..8u8).map(move |c| r * 10 + c)).collect();
        let mut out = Vec::new();
        unpad_rows(&padded, 8, 3, 3, &mut out);
        assert_eq!(out, vec![0, 1, 2, 10, 11, 12, 20, 21, 22]);
    }

    #[test]
    fn swapping_unpad_swaps_red_and_blue_and_drops_the_padding() {
        let padded = [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 11, 12, 13, 14, 15, 16, 17, 18, 0, 0];
        let mut out = vec![9];
        unpad_rows_swapping_red_blue(&padded, 10, 8, 2, &mut out);
        assert_eq!(out, vec![9, 3, 2, 1, 4, 7, 6, 5, 8, 13, 12, 11, 14, 17, 16, 15, 18]);
    }
}
