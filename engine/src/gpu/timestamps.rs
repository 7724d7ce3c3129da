//! GPU time per render stage from timestamp queries written between the passes of each frame
//! (where the adapter has them: `TIMESTAMP_QUERY_INSIDE_ENCODERS`). Stamps of up to `capacity`
//! frames are resolved into one buffer and read once, at the end of a benchmark, so timing never
//! adds a wait per frame.

use super::GpuContext;
use std::time::Duration;

/// Stamps per frame: start, after the inputs, after the composite, after conversion and copies.
pub const STAMPS: u32 = 4;

/// Each frame's stamps start on a resolve-buffer alignment boundary.
const FRAME_STRIDE: u64 = wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;

/// GPU time per stage, summed over the frames timed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GpuStageTimes {
    pub frames: u64,
    /// Input conversion (uploaded planes to RGBA) and generated patterns.
    pub inputs: Duration,
    /// Layer blending into the output.
    pub composite: Duration,
    /// Output YUV conversion, scaling and the copies into readback buffers.
    pub readback: Duration,
}

#[derive(Debug)]
pub struct GpuTimestamps {
    queries: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readable: wgpu::Buffer,
    capacity: u32,
    frame: u64,
    period_ns: f64,
}

impl GpuTimestamps {
    /// `None` when the device cannot write timestamps inside an encoder.
    pub fn new(gpu: &GpuContext, capacity: u32) -> Option<Self> {
        let needed = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
        if !gpu.device.features().contains(needed) {
            return None;
        }
        // wgpu caps a query set at 4096 queries.
        let capacity = capacity.clamp(1, 4096 / STAMPS);
        let count = capacity * STAMPS;
        let size = u64::from(capacity) * FRAME_STRIDE;
        let buffer = |label, usage| {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(GpuTimestamps {
            queries: gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("streamlib stage timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count,
            }),
            resolved: buffer(
                "streamlib resolved timestamps",
                wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            ),
            readable: buffer(
                "streamlib readable timestamps",
                wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            ),
            capacity,
            frame: 0,
            period_ns: f64::from(gpu.queue.get_timestamp_period()),
        })
    }

    fn frame_slot(&self) -> u32 {
        (self.frame % u64::from(self.capacity)) as u32
    }

    fn slot(&self) -> u32 {
        self.frame_slot() * STAMPS
    }

    /// Writes stamp `i` (0..STAMPS) of the current frame.
    pub fn stamp(&self, encoder: &mut wgpu::CommandEncoder, i: u32) {
        encoder.write_timestamp(&self.queries, self.slot() + i);
    }

    /// Resolves this frame's stamps; call after the last stamp, before `finish`.
    pub fn end_frame(&mut self, encoder: &mut wgpu::CommandEncoder) {
        let first = self.slot();
        let offset = u64::from(self.frame_slot()) * FRAME_STRIDE;
        encoder.resolve_query_set(&self.queries, first..first + STAMPS, &self.resolved, offset);
        encoder.copy_buffer_to_buffer(&self.resolved, offset, &self.readable, offset, u64::from(STAMPS) * 8);
        self.frame += 1;
    }

    /// Sums the stages over the last `capacity` frames (waits for the GPU).
    pub fn read(&self, gpu: &GpuContext) -> Option<GpuStageTimes> {
        let frames = self.frame.min(u64::from(self.capacity));
        if frames == 0 {
            return None;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        self.readable.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r.is_ok());
        });
        gpu.device.poll(wgpu::PollType::Wait { submission_index: None, timeout: None }).ok()?;
        if !rx.recv().unwrap_or(false) {
            return None;
        }
        let mut times = GpuStageTimes { frames, ..Default::default() };
        {
            let data = self.readable.get_mapped_range(..).ok()?;
            let stamps: Vec<u64> =
                data.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
            let ns = |a: u64, b: u64| Duration::from_nanos((b.saturating_sub(a) as f64 * self.period_ns) as u64);
            let per_frame = (FRAME_STRIDE / 8) as usize;
            for f in 0..frames as usize {
                let s = &stamps[f * per_frame..f * per_frame + STAMPS as usize];
                times.inputs += ns(s[0], s[1]);
                times.composite += ns(s[1], s[2]);
                times.readback += ns(s[2], s[3]);
            }
        }
        self.readable.unmap();
        Some(times)
    }
}
