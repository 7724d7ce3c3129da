//! JPEG and H.264 for the network kinds, through GStreamer, one frame in and one out: appsrc →
//! encoder or decoder → appsink, pushed and pulled on the caller's thread so no frame waits in a
//! queue. x264 runs with `tune=zerolatency` (no B-frames), slice threads, no lookahead and the
//! stream's real frame rate in its caps (with a variable rate, 0/1, x264enc held every frame back
//! by one: 33 ms at 30 fps in `bench network`); the
//! H.264 decoder uses slice threads for the same reason. Codecs see their own monotonic
//! timestamps, so a stream whose pts jump (a sender restarting) is never reordered, and every
//! output says which input it came from.

use crate::frame::{OutputFrame, PixelFormat, Plane};
use crate::gpu::convert::YuvColorSpace;
use crate::media::{bus_error, init};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use std::time::Duration;

/// The compressed codecs a network stream can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compressed {
    /// Every frame a JPEG image.
    Jpeg,
    /// H.264, Annex B access units.
    H264,
}

/// Settings of an encoder.
#[derive(Clone, Copy, Debug)]
pub struct EncoderSettings {
    /// The codec.
    pub codec: Compressed,
    /// H.264 target bitrate, kbit/s.
    pub bitrate_kbps: u32,
    /// JPEG quality, 1..=100.
    pub quality: u32,
    /// Frames between H.264 keyframes at most.
    pub keyframe_interval: u32,
}

/// A GStreamer pipeline with an appsrc named `src` and an appsink named `sink`.
struct Pipe {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    appsink: gst_app::AppSink,
    bus: gst::Bus,
}

impl Pipe {
    fn launch(description: &str) -> Result<Pipe, String> {
        init().map_err(|e| e.to_string())?;
        let pipeline = gst::parse::launch_full(description, None, gst::ParseFlags::FATAL_ERRORS)
            .map_err(|e| format!("cannot build `{description}`: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline".to_string())?;
        let appsrc = pipeline.by_name("src").and_then(|e| e.downcast::<gst_app::AppSrc>().ok());
        let appsink = pipeline.by_name("sink").and_then(|e| e.downcast::<gst_app::AppSink>().ok());
        let (Some(appsrc), Some(appsink)) = (appsrc, appsink) else {
            return Err("pipeline lacks its appsrc or appsink".into());
        };
        appsink.set_sync(false);
        let bus = pipeline.bus().ok_or("no bus")?;
        if pipeline.set_state(gst::State::Playing).is_err() {
            let why = bus_error(&bus).unwrap_or_else(|| "the pipeline refused to start".into());
            let _ = pipeline.set_state(gst::State::Null);
            return Err(why);
        }
        Ok(Pipe { pipeline, appsrc, appsink, bus })
    }

    fn push(&self, data: Vec<u8>, pts_ns: u64, duration_ns: u64) -> Result<(), String> {
        let mut buffer = gst::Buffer::from_mut_slice(data);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
            b.set_duration(gst::ClockTime::from_nseconds(duration_ns));
        }
        self.appsrc.push_buffer(buffer).map_err(|e| self.failure(&format!("push: {e:?}")))?;
        Ok(())
    }

    /// The next output, waiting up to `timeout`.
    fn pull(&self, timeout: Duration) -> Result<Option<gst::Sample>, String> {
        if let Some(e) = bus_error(&self.bus) {
            return Err(e);
        }
        Ok(self.appsink.try_pull_sample(gst::ClockTime::from_nseconds(timeout.as_nanos() as u64)))
    }

    fn failure(&self, fallback: &str) -> String {
        bus_error(&self.bus).unwrap_or_else(|| fallback.to_string())
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// How long a codec may take with one frame before we call it stuck (the first frame includes
/// negotiation).
const FIRST_FRAME: Duration = Duration::from_secs(2);
const NEXT_FRAME: Duration = Duration::from_millis(200);
/// After an older frame came out, how long to wait for the one just put in.
const CATCH_UP: Duration = Duration::from_millis(50);

/// Encodes I420 frames one at a time.
pub struct FrameEncoder {
    settings: EncoderSettings,
    pipe: Option<Pipe>,
    /// The size and colour space the pipeline was built for (rebuilt when they change).
    shape: (u32, u32, YuvColorSpace),
    info: Option<gst_video::VideoInfo>,
    frames: u64,
    inputs: u64,
    /// Inputs pushed and not yet out, oldest first (no B-frames: outputs come in input order).
    pending: std::collections::VecDeque<u64>,
}

/// One encoded frame.
#[derive(Debug)]
pub struct Encoded {
    /// Which call to `encode` (counted from 0) gave the frame.
    pub input: u64,
    /// The JPEG image or H.264 access unit.
    pub data: Vec<u8>,
    /// It decodes on its own.
    pub keyframe: bool,
}

impl FrameEncoder {
    /// An encoder; the pipeline is built at the first frame, when its size is known.
    pub fn new(settings: EncoderSettings) -> Self {
        FrameEncoder {
            settings,
            pipe: None,
            shape: (0, 0, YuvColorSpace::default()),
            info: None,
            frames: 0,
            inputs: 0,
            pending: Default::default(),
        }
    }

    fn build(&mut self, width: u32, height: u32, cs: YuvColorSpace, fps: u64) -> Result<(), String> {
        let s = self.settings;
        let encoder = match s.codec {
            Compressed::Jpeg => format!("jpegenc name=enc quality={} ! image/jpeg", s.quality.clamp(1, 100)),
            Compressed::H264 => format!(
                "x264enc name=enc tune=zerolatency speed-preset=ultrafast bitrate={} key-int-max={} \
                 byte-stream=true threads=2 sliced-threads=true rc-lookahead=0 sync-lookahead=0 ! \
                 h264parse config-interval=-1 ! video/x-h264,stream-format=byte-stream,alignment=au",
                s.bitrate_kbps.max(50),
                s.keyframe_interval.max(1)
            ),
        };
        let caps = format!(
            // A real rate: with 0/1 (variable) x264enc held every frame back by one.
            "video/x-raw,format=I420,width={width},height={height},framerate={fps}/1,colorimetry={}",
            crate::media::colorimetry(cs)
        );
        let description = format!(
            "appsrc name=src format=time is-live=true do-timestamp=false caps=\"{caps}\" ! {encoder} ! \
             appsink name=sink max-buffers=8"
        );
        // Launching initializes GStreamer, which VideoInfo needs.
        self.pipe = Some(Pipe::launch(&description)?);
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, width, height)
            .build()
            .map_err(|e| e.to_string())?;
        self.info = Some(info);
        self.shape = (width, height, cs);
        self.frames = 0;
        Ok(())
    }

    /// Encodes `frame` (I420); `keyframe` forces an H.264 IDR. Returns what the encoder gave
    /// back: at zero latency the frame itself.
    pub fn encode(&mut self, frame: &OutputFrame, keyframe: bool) -> Result<Vec<Encoded>, String> {
        if frame.format != PixelFormat::I420 {
            return Err(format!("the encoder takes I420, not {:?}", frame.format));
        }
        let cs = frame.color_space.unwrap_or_else(|| YuvColorSpace::default_for_height(frame.height));
        if self.pipe.is_none() || self.shape != (frame.width, frame.height, cs) {
            self.pipe = None;
            self.pending.clear();
            let fps = (1e9 / frame.time.duration_ns.max(1) as f64).round().clamp(1.0, 1000.0) as u64;
            self.build(frame.width, frame.height, cs, fps)?;
        }
        let (Some(pipe), Some(info)) = (&self.pipe, &self.info) else { return Err("no encoder".into()) };
        if keyframe && self.settings.codec == Compressed::H264 && self.frames > 0 {
            let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
            if let Some(pad) = pipe.pipeline.by_name("enc").and_then(|e| e.static_pad("src")) {
                pad.send_event(event);
            }
        }
        let input = self.inputs;
        self.inputs += 1;
        let duration = frame.time.duration_ns.max(1_000_000);
        pipe.push(repack(frame, info), self.frames * duration, duration)?;
        self.pending.push_back(input);
        let mut wait = if self.frames == 0 { FIRST_FRAME } else { NEXT_FRAME };
        self.frames += 1;
        let mut out = Vec::new();
        // Until this frame is out: an encoder that fell behind once (a slow first frame) would
        // otherwise hand each frame over one call late for ever.
        while !self.pending.is_empty() {
            let Some(sample) = pipe.pull(wait)? else { break };
            wait = CATCH_UP;
            let buffer = sample.buffer().ok_or("sample without buffer")?;
            let map = buffer.map_readable().map_err(|e| e.to_string())?;
            out.push(Encoded {
                input: self.pending.pop_front().unwrap_or(input),
                data: map.as_slice().to_vec(),
                keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
            });
        }
        Ok(out)
    }
}

/// The timestamps codecs see: one ms a frame, so a frame's pts says which input it was.
const TICK_NS: u64 = 1_000_000;

/// Tight I420 planes laid out as GStreamer's `info` wants (its strides are 4-byte aligned).
fn repack(frame: &OutputFrame, info: &gst_video::VideoInfo) -> Vec<u8> {
    let mut out = vec![0u8; info.size()];
    for (i, shape) in frame.format.planes(frame.width, frame.height).iter().enumerate() {
        let (src, row) = (frame.plane(i), shape.row_bytes());
        let (offset, stride) = (info.offset()[i], info.stride()[i] as usize);
        for (y, line) in src.chunks_exact(row).enumerate() {
            let at = offset + y * stride;
            out[at..at + row].copy_from_slice(line);
        }
    }
    out
}

/// A decoded picture: I420 planes with GStreamer's strides.
#[derive(Debug)]
pub struct Decoded {
    /// Which call to `decode` (counted from 0) gave the picture.
    pub input: u64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Y, U and V.
    pub planes: Vec<Plane>,
}

/// Decodes JPEG images or H.264 access units one at a time.
pub struct FrameDecoder {
    codec: Compressed,
    pipe: Option<Pipe>,
    /// Frames pushed into this pipeline.
    frames: u64,
    /// `decode` calls so far, across pipelines.
    inputs: u64,
    /// The input the pipeline's first frame was.
    base: u64,
}

impl FrameDecoder {
    /// A decoder for `codec`, started at the first frame.
    pub fn new(codec: Compressed) -> Self {
        FrameDecoder { codec, pipe: None, frames: 0, inputs: 0, base: 0 }
    }

    /// The codec it decodes.
    pub fn codec(&self) -> Compressed {
        self.codec
    }

    /// Forgets the stream (the next frame must be a keyframe).
    pub fn reset(&mut self) {
        self.pipe = None;
    }

    /// Decodes one frame; returns the pictures the decoder gave back (at zero latency, this one).
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<Decoded>, String> {
        let input = self.inputs;
        self.inputs += 1;
        if self.pipe.is_none() {
            let (caps, decoder) = match self.codec {
                Compressed::Jpeg => ("image/jpeg", "jpegdec"),
                Compressed::H264 => (
                    "video/x-h264,stream-format=byte-stream,alignment=au",
                    "h264parse ! avdec_h264 thread-type=slice max-threads=2 output-corrupt=false",
                ),
            };
            let description = format!(
                "appsrc name=src format=time is-live=true caps=\"{caps}\" ! {decoder} ! videoconvert ! \
                 video/x-raw,format=I420 ! appsink name=sink max-buffers=8"
            );
            self.pipe = Some(Pipe::launch(&description)?);
            self.frames = 0;
            self.base = input;
        }
        let Some(pipe) = &self.pipe else { return Err("no decoder".into()) };
        pipe.push(data.to_vec(), self.frames * TICK_NS, TICK_NS)?;
        let mut wait = if self.frames == 0 { FIRST_FRAME } else { NEXT_FRAME };
        self.frames += 1;
        let mut out = Vec::new();
        // Until this frame's picture is out (see `FrameEncoder::encode`).
        while out.last().is_none_or(|d: &Decoded| d.input < input) {
            let Some(sample) = pipe.pull(wait)? else { break };
            wait = CATCH_UP;
            let caps = sample.caps().ok_or("no caps")?;
            let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| e.to_string())?;
            let buffer = sample.buffer().ok_or("sample without buffer")?;
            // Never later than what went in: a decoder that shifted timestamps must not make every
            // picture belong to a frame not yet sent.
            let from = buffer.pts().map_or(input, |p| (self.base + p.nseconds() / TICK_NS).min(input));
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).map_err(|e| e.to_string())?;
            let mut planes = Vec::with_capacity(3);
            for (i, shape) in PixelFormat::I420.planes(info.width(), info.height()).iter().enumerate() {
                let stride = info.stride()[i] as usize;
                let data = frame.plane_data(i as u32).map_err(|e| e.to_string())?;
                let len = (stride * (shape.height as usize - 1) + shape.row_bytes()).min(data.len());
                planes.push(Plane { data: data[..len].to_vec(), stride });
            }
            out.push(Decoded { input: from, width: info.width(), height: info.height(), planes });
        }
        Ok(out)
    }
}

/// Elements the compressed codecs need that this machine lacks.
pub fn missing_elements(codec: Compressed) -> Vec<String> {
    let names: &[&str] = match codec {
        Compressed::Jpeg => &["jpegenc", "jpegdec"],
        Compressed::H264 => &["x264enc", "h264parse", "avdec_h264"],
    };
    if init().is_err() {
        return names.iter().map(|s| s.to_string()).collect();
    }
    names.iter().filter(|n| gst::ElementFactory::find(n).is_none()).map(|n| n.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::FrameTime;
    use crate::scene::Fps;

    fn frame(i: u64) -> OutputFrame {
        let (w, h) = (640u32, 360u32);
        let mut data = vec![100u8; (w * h * 3 / 2) as usize];
        data[(i as usize * 37) % (w * h) as usize] = 250;
        OutputFrame {
            time: FrameTime::at(Fps::new(30, 1), i),
            width: w,
            height: h,
            format: PixelFormat::I420,
            color_space: Some(YuvColorSpace::default_for_height(h)),
            data,
            meta: Default::default(),
        }
    }

    #[test]
    fn h264_frames_come_out_of_the_call_that_put_them_in() {
        if !missing_elements(Compressed::H264).is_empty() {
            return;
        }
        let mut e = FrameEncoder::new(EncoderSettings {
            codec: Compressed::H264,
            bitrate_kbps: 4000,
            quality: 85,
            keyframe_interval: 60,
        });
        let mut d = FrameDecoder::new(Compressed::H264);
        for i in 0..10 {
            let out = e.encode(&frame(i), false).expect("encode");
            assert_eq!(out.iter().map(|o| o.input).collect::<Vec<_>>(), vec![i], "encoder, frame {i}");
            let pictures = d.decode(&out[0].data).expect("decode");
            assert_eq!(pictures.iter().map(|p| p.input).collect::<Vec<_>>(), vec![i], "decoder, frame {i}");
            std::thread::sleep(Duration::from_millis(33));
        }
    }
}
