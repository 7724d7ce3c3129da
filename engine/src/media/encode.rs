//! Encoded outputs: NV12 readback → appsrc → x264 / x265 / VP9 → mp4 / mov / mkv / webm. The
//! pipeline is bounded (appsrc blocks), so a slow encoder slows an offline render instead of
//! growing a queue; `finish` sends end-of-stream and waits for the muxer to write its trailer.

use super::{bus_error, clock_time, init, missing_elements};
use crate::frame::{OutputFrame, PixelFormat};
use crate::gpu::convert::{YuvColorSpace, YuvMatrix, YuvRange};
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::{Fps, SceneError};
use crate::sinks::{Sink, SinkError};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long finishing may take (the encoder drains its lookahead, the muxer writes its index).
const FINISH_TIMEOUT: Duration = Duration::from_secs(300);
/// An encoder that takes no frame for this long has stalled (a slow x265 frame takes seconds).
const STALL_TIMEOUT: Duration = Duration::from_secs(120);

/// The video codec of an encoded output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Codec {
    /// H.264 (AVC), encoded by x264.
    H264,
    /// H.265 (HEVC), encoded by x265.
    H265,
    /// VP9, encoded by libvpx.
    Vp9,
}

impl Codec {
    /// The codec's name as written in scenes (`h264`, `h265`, `vp9`).
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Vp9 => "vp9",
        }
    }

    fn element(self) -> &'static str {
        match self {
            Codec::H264 => "x264enc",
            Codec::H265 => "x265enc",
            Codec::Vp9 => "vp9enc",
        }
    }

    /// The readback the encoder takes as it is: x264 works in NV12 internally, x265 and libvpx
    /// want planar I420.
    pub fn input_format(self) -> PixelFormat {
        if self == Codec::H264 {
            PixelFormat::Nv12
        } else {
            PixelFormat::I420
        }
    }

    /// 4:2:0 in x264 and x265 needs even sizes; libvpx handles odd ones.
    fn needs_even_size(self) -> bool {
        matches!(self, Codec::H264 | Codec::H265)
    }
}

/// x264's preset names; x265 takes the same, VP9 maps them onto `cpu-used`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// Fastest encoding, largest files (VP9 `cpu-used` 8).
    Ultrafast,
    /// x264's `superfast` (VP9 `cpu-used` 7).
    Superfast,
    /// x264's `veryfast`, the default (VP9 `cpu-used` 6).
    #[default]
    Veryfast,
    /// x264's `faster` (VP9 `cpu-used` 5).
    Faster,
    /// x264's `fast` (VP9 `cpu-used` 4).
    Fast,
    /// x264's `medium` (VP9 `cpu-used` 3).
    Medium,
    /// x264's `slow` (VP9 `cpu-used` 2).
    Slow,
    /// x264's `slower` (VP9 `cpu-used` 1).
    Slower,
    /// Slowest encoding, smallest files (VP9 `cpu-used` 0).
    Veryslow,
}

impl Preset {
    fn name(self) -> &'static str {
        match self {
            Preset::Ultrafast => "ultrafast",
            Preset::Superfast => "superfast",
            Preset::Veryfast => "veryfast",
            Preset::Faster => "faster",
            Preset::Fast => "fast",
            Preset::Medium => "medium",
            Preset::Slow => "slow",
            Preset::Slower => "slower",
            Preset::Veryslow => "veryslow",
        }
    }

    /// libvpx speed (0 slowest, 8 fastest) for the same intent.
    fn vpx_cpu_used(self) -> u32 {
        8 - self as u32
    }
}

/// What every encoded output lets the user choose.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncoderSettings {
    /// The codec; the output's default when absent.
    pub codec: Option<Codec>,
    /// Target bitrate in kbit/s; without it the encoder aims at constant `quality`.
    pub bitrate: Option<u32>,
    /// Constant quality (x264 1-51, x265 0-51, VP9 cq-level 0-63); the codec's default when absent.
    pub quality: Option<u32>,
    /// Encoder speed preset.
    pub preset: Preset,
    /// Frames between keyframes; two seconds' worth when absent.
    pub keyframe_interval: Option<u32>,
}

impl EncoderSettings {
    /// Checks the settings are valid for `codec`; errors name the field.
    pub fn check(&self, codec: Codec) -> Result<(), SceneError> {
        if self.bitrate.is_some() && self.quality.is_some() {
            return Err(SceneError::new("quality", "give either `bitrate` or `quality`, not both"));
        }
        if self.bitrate == Some(0) {
            return Err(SceneError::new("bitrate", "must be positive (kbit/s)"));
        }
        let max_q = if codec == Codec::Vp9 { 63 } else { 51 };
        // x264 writes lossless (0) only in High 4:4:4, which a 4:2:0 pipeline cannot negotiate.
        let min_q = if codec == Codec::H264 { 1 } else { 0 };
        if let Some(q) = self.quality.filter(|&q| q > max_q || q < min_q) {
            let why =
                if q == 0 { " (x264 writes lossless only in High 4:4:4, which 4:2:0 output cannot use)" } else { "" };
            return Err(SceneError::new(
                "quality",
                format!("{q} is not in {min_q}..={max_q} for {}{why}", codec.name()),
            ));
        }
        if self.keyframe_interval == Some(0) {
            return Err(SceneError::new("keyframe_interval", "must be at least 1 frame"));
        }
        Ok(())
    }

    /// The encoder element with its settings, then the parser the muxers want.
    pub fn encoder_description(&self, codec: Codec, fps: Fps, level: Option<&str>) -> String {
        let gop = self.keyframe_interval.unwrap_or_else(|| (fps.as_f64() * 2.0).round().max(1.0) as u32);
        let preset = self.preset;
        match codec {
            Codec::H264 => {
                let rate = match (self.bitrate, self.quality) {
                    (Some(kbps), _) => format!("bitrate={kbps}"),
                    (None, q) => format!("pass=qual quantizer={}", q.unwrap_or(23)),
                };
                let level = level.map(|l| format!(",level=(string){l}")).unwrap_or_default();
                // The profile is set in caps after the encoder: that is what x264enc obeys.
                format!(
                    "x264enc speed-preset={} key-int-max={gop} {rate} ! video/x-h264,profile=high{level} ! h264parse",
                    preset.name()
                )
            }
            Codec::H265 => {
                let rate = match (self.bitrate, self.quality) {
                    (Some(kbps), _) => format!("bitrate={kbps}"),
                    (None, q) => format!("option-string=\"crf={}\"", q.unwrap_or(23)),
                };
                format!("x265enc speed-preset={} key-int-max={gop} {rate} ! h265parse", preset.name())
            }
            Codec::Vp9 => {
                let rate = match (self.bitrate, self.quality) {
                    (Some(kbps), _) => format!("end-usage=vbr target-bitrate={}", u64::from(kbps) * 1000),
                    // In constant-quality mode the target bitrate is a ceiling: keep it out of the way.
                    (None, q) => format!("end-usage=cq cq-level={} target-bitrate=100000000", q.unwrap_or(32)),
                };
                format!(
                    "vp9enc deadline=1 cpu-used={} row-mt=true threads={} keyframe-max-dist={gop} {rate}",
                    preset.vpx_cpu_used(),
                    std::thread::available_parallelism().map_or(2, |n| n.get().min(16))
                )
            }
        }
    }
}

/// GStreamer's colorimetry for our YUV output colour space.
pub(crate) fn colorimetry(cs: YuvColorSpace) -> &'static str {
    match (cs.matrix, cs.range) {
        (YuvMatrix::Bt709, YuvRange::Limited) => "bt709",
        (YuvMatrix::Bt601, YuvRange::Limited) => "bt601",
        (YuvMatrix::Bt709, YuvRange::Full) => "1:3:5:1",
        (YuvMatrix::Bt601, YuvRange::Full) => "1:4:0:0",
    }
}

/// Raw-video caps for appsrc.
pub(crate) fn raw_caps(
    format: PixelFormat,
    (width, height): (u32, u32),
    fps: Fps,
    color_space: YuvColorSpace,
) -> String {
    let gst_format = if format == PixelFormat::Nv12 { "NV12" } else { "I420" };
    format!(
        "video/x-raw,format={gst_format},width={width},height={height},framerate={}/{},colorimetry={},\
         interlace-mode=progressive,pixel-aspect-ratio=1/1",
        fps.num,
        fps.den,
        colorimetry(color_space)
    )
}

/// A tightly packed frame as a GStreamer buffer, rows padded to `info`'s strides, stamped with
/// the frame's pts and duration.
pub(crate) fn frame_buffer(info: &gst_video::VideoInfo, frame: &OutputFrame) -> gst::Buffer {
    let mut bytes = vec![0u8; info.size()];
    let mut src = 0usize;
    for (i, shape) in frame.format.planes(frame.width, frame.height).iter().enumerate() {
        let (offset, stride) = (info.offset()[i], info.stride()[i] as usize);
        let row = shape.row_bytes();
        for r in 0..shape.height as usize {
            let dst = offset + r * stride;
            bytes[dst..dst + row].copy_from_slice(&frame.data[src..src + row]);
            src += row;
        }
    }
    let mut buffer = gst::Buffer::from_mut_slice(bytes);
    if let Some(b) = buffer.get_mut() {
        b.set_pts(clock_time(frame.time.pts_ns));
        b.set_duration(clock_time(frame.time.duration_ns));
    }
    buffer
}

/// The x264 settings of a live network output: no lookahead, no B-frames, one thread (a frame
/// leaves the encoder as soon as it is coded), SPS/PPS before every keyframe so a peer joining
/// mid-stream can start there. Not sliced threads, although `tune=zerolatency` turns them on:
/// ffmpeg joining a two-slice stream mid-way never decoded the first slice again (a smeared
/// picture at 21 dB, where GStreamer's decoder was exact). One thread codes 1080p30 at ~37 fps
/// on this 2-core machine; frame threads would add a frame of delay.
pub(crate) fn live_h264(bitrate_kbps: u32, gop: u32) -> String {
    live_h264_profile(bitrate_kbps, gop, "high")
}

/// `live_h264` in another profile (`constrained-baseline` for WebRTC peers).
pub(crate) fn live_h264_profile(bitrate_kbps: u32, gop: u32, profile: &str) -> String {
    format!(
        "x264enc tune=zerolatency speed-preset=veryfast bitrate={} key-int-max={gop} threads=1 \
         sliced-threads=false rc-lookahead=0 sync-lookahead=0 ! video/x-h264,profile={profile} ! \
         h264parse config-interval=-1",
        bitrate_kbps.max(50)
    )
}

/// The caps and layout of the NV12 frames a live appsrc takes for `target` (even sides: 4:2:0).
pub(crate) fn live_nv12(target: &SinkTarget<'_>, what: &str) -> Result<(String, gst_video::VideoInfo), SinkError> {
    let (width, height) = (target.width, target.height);
    if width % 2 == 1 || height % 2 == 1 {
        return Err(SinkError::Unsupported(format!("{what} needs an even size, the output is {width}x{height}")));
    }
    let caps = raw_caps(PixelFormat::Nv12, (width, height), target.fps, YuvColorSpace::default_for_height(height));
    let info = caps
        .parse::<gst::Caps>()
        .ok()
        .and_then(|c| gst_video::VideoInfo::from_caps(&c).ok())
        .ok_or_else(|| SinkError::Encode(format!("bad caps {caps}")))?;
    Ok((caps, info))
}

/// NV12 or I420 frames pushed into an encoding pipeline: `appsrc name=src ! <rest>`.
pub struct EncodePipeline {
    label: String,
    format: PixelFormat,
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
    bus: gst::Bus,
    info: gst_video::VideoInfo,
    width: u32,
    height: u32,
    fps: Fps,
    /// The colour space in the caps, set from the first frame (appsrc starts without caps:
    /// caps replaced before the first buffer did not reach the encoder).
    color_space: Option<YuvColorSpace>,
    finished: bool,
    /// appsrc's bound: two frames.
    max_bytes: u64,
    failed: Option<String>,
    /// How long `finish` waits for end-of-stream, and whether not reaching it is an error: a
    /// file's trailer must be written, a network stream's end (an RTCP BYE) may be skipped.
    finish_timeout: Duration,
    eos_optional: bool,
}

impl EncodePipeline {
    /// Builds `appsrc ! rest` for `width`×`height` `format` frames at `fps`; `configure` sets
    /// properties that do not survive a launch string (file paths). The caps' colorimetry is
    /// taken from the first frame (`OutputFrame::color_space`), so the file is tagged with what
    /// the GPU converted.
    pub fn new(
        label: &str,
        format: PixelFormat,
        (width, height): (u32, u32),
        fps: Fps,
        rest: &str,
        needed: &[&str],
        configure: impl FnOnce(&gst::Pipeline) -> Result<(), String>,
    ) -> Result<Self, SinkError> {
        let err = |m: String| SinkError::Encode(format!("{label}: {m}"));
        init().map_err(|e| err(e.to_string()))?;
        let missing = missing_elements(needed);
        if !missing.is_empty() {
            return Err(SinkError::Unsupported(format!(
                "{label}: GStreamer elements missing here: {} (install gstreamer1.0-plugins-ugly/-good/-bad)",
                missing.join(", ")
            )));
        }
        let caps = raw_caps(format, (width, height), fps, YuvColorSpace::default_for_height(height));
        let frame_bytes = format.frame_len(width, height) as u64;
        let description = format!(
            "appsrc name=src format=time is-live=false block=false max-bytes={} ! queue ! {rest}",
            frame_bytes * 2
        );
        // Fatal errors: a link that fails must not leave a half-built pipeline that never drains.
        let pipeline = gst::parse::launch_full(&description, None, gst::ParseFlags::FATAL_ERRORS)
            .map_err(|e| err(format!("cannot build pipeline `{description}`: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| err("not a pipeline".into()))?;
        configure(&pipeline).map_err(err)?;
        let appsrc = pipeline
            .by_name("src")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or_else(|| err("no appsrc".into()))?;
        let caps: gst::Caps = caps.parse().map_err(|e: gst::glib::BoolError| err(e.to_string()))?;
        let info = gst_video::VideoInfo::from_caps(&caps).map_err(|e| err(e.to_string()))?;
        let bus = pipeline.bus().ok_or_else(|| err("no bus".into()))?;
        if pipeline.set_state(gst::State::Playing).is_err() {
            let why = bus_error(&bus).unwrap_or_else(|| "the pipeline refused to start".into());
            let _ = pipeline.set_state(gst::State::Null);
            return Err(err(why));
        }
        Ok(EncodePipeline {
            label: label.to_string(),
            format,
            pipeline,
            appsrc,
            bus,
            info,
            width,
            height,
            fps,
            color_space: None,
            finished: false,
            max_bytes: frame_bytes * 2,
            failed: None,
            finish_timeout: FINISH_TIMEOUT,
            eos_optional: false,
        })
    }

    /// The pipeline's first error, kept: popping it off the bus must not make it go away.
    fn check_bus(&mut self) -> Result<(), SinkError> {
        if self.failed.is_none() {
            self.failed = bus_error(&self.bus);
        }
        match &self.failed {
            Some(why) => Err(SinkError::Encode(format!("{}: {why}", self.label))),
            None => Ok(()),
        }
    }

    /// Waits until appsrc has room for a frame, watching the bus: an element that failed (disk
    /// full, an encoder refusing its settings) stops the pipeline, and a blocking push would then
    /// wait forever. Bounded like a blocking appsrc, but it never hangs.
    fn wait_for_room(&mut self) -> Result<(), SinkError> {
        let deadline = std::time::Instant::now() + STALL_TIMEOUT;
        loop {
            self.check_bus()?;
            if self.appsrc.current_level_bytes() < self.max_bytes {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(SinkError::Encode(format!(
                    "{}: the encoder took no frame for {} s",
                    self.label,
                    STALL_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Frame width and height in pixels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn failure(&self, fallback: &str) -> SinkError {
        SinkError::Encode(format!("{}: {}", self.label, bus_error(&self.bus).unwrap_or_else(|| fallback.into())))
    }

    /// The pixel format the pipeline takes (NV12 or I420).
    pub fn format(&self) -> PixelFormat {
        self.format
    }

    /// Pushes one tightly packed frame, laid out the way GStreamer expects (rows padded to its
    /// stride).
    pub fn push(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        if frame.format != self.format || (frame.width, frame.height) != (self.width, self.height) {
            return Err(SinkError::Encode(format!(
                "{}: got a {:?} {}x{} frame, want {:?} {}x{}",
                self.label, frame.format, frame.width, frame.height, self.format, self.width, self.height
            )));
        }
        self.follow_color_space(frame)?;
        self.wait_for_room()?;
        let buffer = frame_buffer(&self.info, frame);
        self.appsrc.push_buffer(buffer).map_err(|e| self.failure(&format!("encoder refused a frame: {e:?}")))?;
        Ok(())
    }

    /// Tags the stream with the first frame's colour space; a stream has one, so a later change
    /// is an error rather than a file whose tags disagree with its pixels.
    fn follow_color_space(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        let cs = frame.color_space.unwrap_or_else(|| YuvColorSpace::default_for_height(self.height));
        match self.color_space {
            Some(now) if now == cs => return Ok(()),
            Some(now) => {
                return Err(SinkError::Encode(format!(
                    "{}: the output colour space changed from {now:?} to {cs:?} mid-stream",
                    self.label
                )))
            }
            None => {}
        }
        let err = |m: String| SinkError::Encode(format!("{}: {m}", self.label));
        let caps: gst::Caps = raw_caps(self.format, (self.width, self.height), self.fps, cs)
            .parse()
            .map_err(|e: gst::glib::BoolError| err(e.to_string()))?;
        self.info = gst_video::VideoInfo::from_caps(&caps).map_err(|e| err(e.to_string()))?;
        self.appsrc.set_caps(Some(&caps));
        self.color_space = Some(cs);
        Ok(())
    }

    /// For a network stream with nothing to flush at the end: `finish` waits `timeout` for
    /// end-of-stream, then stops the pipeline anyway (rtpbin's BYE once did not come for minutes
    /// on a loaded machine, and the render waited for it).
    pub(crate) fn set_end_optional(&mut self, timeout: Duration) {
        self.finish_timeout = timeout;
        self.eos_optional = true;
    }

    /// Sends end-of-stream and waits until every element has written everything.
    pub fn finish(&mut self) -> Result<(), SinkError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        if let Err(e) = self.check_bus() {
            let _ = self.pipeline.set_state(gst::State::Null);
            return Err(e);
        }
        if self.color_space.is_none() {
            // No frame came: the stream still gets caps, so the muxer can close its file.
            let cs = YuvColorSpace::default_for_height(self.height);
            if let Ok(caps) = raw_caps(self.format, (self.width, self.height), self.fps, cs).parse::<gst::Caps>() {
                self.appsrc.set_caps(Some(&caps));
            }
        }
        let _ = self.appsrc.end_of_stream();
        let msg = self.bus.timed_pop_filtered(
            clock_time(self.finish_timeout.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        );
        let result = match msg.as_ref().map(|m| m.view()) {
            Some(gst::MessageView::Eos(_)) => Ok(()),
            Some(gst::MessageView::Error(e)) => {
                Err(SinkError::Encode(format!("{}: {}", self.label, super::describe_error(e))))
            }
            _ if self.eos_optional => {
                tracing::warn!("{}: no end-of-stream after {:?}; stopped without it", self.label, self.finish_timeout);
                Ok(())
            }
            _ => Err(SinkError::Encode(format!(
                "{}: not finished after {} s",
                self.label,
                self.finish_timeout.as_secs()
            ))),
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }
}

impl Drop for EncodePipeline {
    fn drop(&mut self) {
        // A sink dropped without finish still gets a playable file when the muxer can manage.
        if let Err(e) = self.finish() {
            tracing::warn!("{e}");
        }
    }
}

/// `"kind": "file"` output (and `--output x.mp4|.mov|.mkv|.webm`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The output file.
    pub path: PathBuf,
    /// Container by extension when absent: mp4, mov, mkv or webm.
    #[serde(default)]
    pub container: Option<Container>,
    /// By the container when absent: h264 for mp4/mov/mkv, vp9 for webm.
    #[serde(default)]
    pub codec: Option<Codec>,
    /// Target bitrate in kbit/s. Without it the encoder aims at constant `quality`.
    #[serde(default)]
    pub bitrate: Option<u32>,
    /// Constant quality: x264 1-51, x265 0-51 (default 23), cq-level for VP9 (0-63, default 32).
    #[serde(default)]
    pub quality: Option<u32>,
    /// Encoder speed preset; `veryfast` by default.
    #[serde(default)]
    pub preset: Preset,
    /// Frames between keyframes; two seconds' worth when absent.
    #[serde(default)]
    pub keyframe_interval: Option<u32>,
    /// mp4/mov: write one-second fragments as the recording goes (default), so a killed process
    /// leaves a file that plays up to the last fragment. `false` writes one index at the end
    /// (nothing is playable if the process dies first). Matroska/WebM are written as they go.
    #[serde(default = "yes")]
    pub fragmented: bool,
}

fn yes() -> bool {
    true
}

/// The file format an encoded output is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    /// MPEG-4 (`.mp4`, `.m4v`).
    Mp4,
    /// QuickTime (`.mov`).
    Mov,
    /// Matroska (`.mkv`).
    Mkv,
    /// WebM (`.webm`); holds VP9 only.
    Webm,
}

impl Container {
    fn from_path(path: &Path) -> Option<Container> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "mp4" | "m4v" => Some(Container::Mp4),
            "mov" => Some(Container::Mov),
            "mkv" => Some(Container::Mkv),
            "webm" => Some(Container::Webm),
            _ => None,
        }
    }

    fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4mux",
            Container::Mov => "qtmux",
            Container::Mkv => "matroskamux",
            Container::Webm => "webmmux",
        }
    }

    fn default_codec(self) -> Codec {
        if self == Container::Webm {
            Codec::Vp9
        } else {
            Codec::H264
        }
    }

    fn holds(self, codec: Codec) -> bool {
        self != Container::Webm || codec == Codec::Vp9
    }
}

impl FileSinkConfig {
    /// The encoder settings these options give.
    pub fn encoder(&self) -> EncoderSettings {
        EncoderSettings {
            codec: self.codec,
            bitrate: self.bitrate,
            quality: self.quality,
            preset: self.preset,
            keyframe_interval: self.keyframe_interval,
        }
    }

    /// Container and codec, from the options or the extension; errors name the field.
    pub fn resolve(&self) -> Result<(Container, Codec), SceneError> {
        let container = self.container.or_else(|| Container::from_path(&self.path)).ok_or_else(|| {
            SceneError::new(
                "path",
                format!("{}: say `container` (mp4, mov, mkv, webm) or use that extension", self.path.display()),
            )
        })?;
        let codec = self.codec.unwrap_or(container.default_codec());
        if !container.holds(codec) {
            return Err(SceneError::new("codec", format!("webm holds VP9 (not {}): use mp4 or mkv", codec.name())));
        }
        self.encoder().check(codec)?;
        Ok((container, codec))
    }
}

/// An encoded video file.
pub struct FileSink {
    pipeline: EncodePipeline,
}

impl FileSink {
    /// Checks the options and the output directory, creates the file and starts the encoder.
    pub fn create(config: &FileSinkConfig, target: &SinkTarget<'_>) -> Result<Self, SinkError> {
        let (container, codec) = config.resolve().map_err(|e| SinkError::Unsupported(e.to_string()))?;
        if codec.needs_even_size() && (target.width % 2 == 1 || target.height % 2 == 1) {
            return Err(SinkError::Unsupported(format!(
                "{} 4:2:0 needs an even width and height, the output is {}x{} (use vp9 or an even size)",
                codec.name(),
                target.width,
                target.height
            )));
        }
        let path = target.path.to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(SinkError::Io {
                    path: path.display().to_string(),
                    error: std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
                });
            }
        }
        // Fail here, on the caller's thread, rather than on the first frame.
        std::fs::File::create(&path)
            .map_err(|source| SinkError::Io { path: path.display().to_string(), error: source })?;
        let encoder = config.encoder().encoder_description(codec, target.fps, None);
        let fragments = match container {
            Container::Mp4 | Container::Mov if config.fragmented => " fragment-duration=1000",
            _ => "",
        };
        // Unbuffered: what the muxer wrote is in the file, not in a 64 KiB buffer a crash loses.
        let rest = format!("{encoder} ! {}{fragments} ! filesink name=out buffer-mode=unbuffered", container.muxer());
        let location = path.clone();
        let pipeline = EncodePipeline::new(
            &path.display().to_string(),
            codec.input_format(),
            (target.width, target.height),
            target.fps,
            &rest,
            &[codec.element(), container.muxer()],
            move |p| {
                let out = p.by_name("out").ok_or("no filesink")?;
                out.set_property("location", location.to_string_lossy().as_ref());
                Ok(())
            },
        )?;
        Ok(FileSink { pipeline })
    }
}

impl Sink for FileSink {
    fn format(&self) -> PixelFormat {
        self.pipeline.format()
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        self.pipeline.push(frame)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.pipeline.finish()
    }
}

/// An encoding pipeline is a sink as it is (the SRT output is one).
impl Sink for EncodePipeline {
    fn format(&self) -> PixelFormat {
        EncodePipeline::format(self)
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        self.push(frame)
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        EncodePipeline::finish(self)
    }
}

/// Registry entry for `"kind": "file"` outputs and the mp4/mov/mkv/webm extensions.
#[derive(Debug, Default)]
pub struct EncodedFileKind;

impl SinkKind for EncodedFileKind {
    type Config = FileSinkConfig;

    fn extensions(&self) -> &[&str] {
        &["mp4", "m4v", "mov", "mkv", "webm"]
    }

    fn check(&self, config: &FileSinkConfig) -> Result<(), SceneError> {
        config.resolve().map(|_| ())
    }

    fn build(&self, target: &SinkTarget<'_>, config: FileSinkConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(vec![Box::new(FileSink::create(&config, target)?)])
    }
}
