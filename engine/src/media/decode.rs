//! Decoded inputs: a GStreamer pipeline ending in an appsink hands NV12/I420 (or RGBA/BGRA)
//! planes to the producer thread; YUV goes to the GPU as it is and is converted there.
//! `file` inputs decode whatever this machine's GStreamer can (uridecodebin), keep the file's
//! timestamps (variable frame rate works), loop, start at a time and seek accurately.

use super::{bus_error, bus_error_noting_warnings, clock_time, init};
use crate::frame::{FrameData, FrameTime, PixelFormat, Plane, TimestampedFrame};
use crate::gpu::convert::{YuvColorSpace, YuvMatrix, YuvRange};
use crate::registry::{BuildContext, BuildError, InputKind};
use crate::scene::SceneError;
use crate::sources::{FrameProducer, Source, SourceError, ThreadedSource};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Formats we take from GStreamer as they are; anything else is converted to one of them by
/// `videoconvert` (a no-op for the usual decoder outputs).
pub(super) const APPSINK_CAPS: &str = "video/x-raw,format={NV12,I420,RGBA,BGRA,RGBx,BGRx}";

/// How long opening may take before we call the file broken (prerolling decodes one frame).
const PREROLL_TIMEOUT: Duration = Duration::from_secs(20);
/// Poll interval of the producer thread: how quickly stop and seek requests are seen.
const PULL_TIMEOUT: Duration = Duration::from_millis(100);

/// A running decode pipeline and the mapping of its timestamps onto the input's timeline.
pub struct GstProducer {
    /// The latest warning seen on the bus, until `warning` takes it.
    warned: Option<String>,
    label: String,
    pipeline: gst::Pipeline,
    appsink: gst_app::AppSink,
    bus: gst::Bus,
    /// First sample, pulled while prerolling (it carries the caps).
    first: Option<gst::Sample>,
    info: Option<gst_video::VideoInfo>,
    /// The caps `info` was read from.
    info_caps: Option<gst::Caps>,
    looping: bool,
    seekable: bool,
    live: bool,
    /// Running times are capture times on the engine's timeline (`media::timeline`).
    on_timeline: bool,
    /// File position shown at input time 0: `start`, or the first frame's pts (encoders with
    /// B-frames often start a file a frame or two after zero).
    start_ns: u64,
    origin_known: bool,
    first_pts_ns: u64,
    /// Added to file pts: the length of the passes already played when looping.
    pass_offset_ns: u64,
    /// End (pts + duration) of the latest frame of this pass, relative to `start_ns`.
    pass_end_ns: u64,
    frames_this_pass: u64,
    index: u64,
    /// For frames without a duration: the stream's nominal frame duration.
    nominal_duration_ns: u64,
    ended: bool,
}

impl std::fmt::Debug for GstProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GstProducer").field("label", &self.label).field("index", &self.index).finish()
    }
}

impl GstProducer {
    /// Builds `description` (which must end in `appsink name=sink`), prerolls it and reports the
    /// first error if it cannot.
    pub fn launch(label: &str, description: &str, live: bool) -> Result<Self, SourceError> {
        let mut producer = Self::build(label, description, live)?;
        producer.preroll(PREROLL_TIMEOUT).map_err(|message| SourceError::Open { path: label.to_string(), message })?;
        Ok(producer)
    }

    /// Builds and starts a live `description` without waiting for a frame: a network input whose
    /// peer is not there yet waits in `next_frame`, which returns every `PULL_TIMEOUT`, so the
    /// producer thread still sees a stop. Caps are read from the frames as they come.
    pub fn start_live(label: &str, description: &str) -> Result<Self, SourceError> {
        Self::start_live_with(label, description, |_| Ok(()))
    }

    /// The latest warning on the bus, without waiting: elements that retry on their own (srtsrc
    /// reconnecting, a peer refusing a passphrase) warn instead of failing.
    pub fn warning(&mut self) -> Option<String> {
        self.warned.take()
    }

    /// The element named `name` in the pipeline (a webrtcbin to negotiate with).
    pub(crate) fn element(&self, name: &str) -> Option<gst::Element> {
        self.pipeline.by_name(name)
    }

    /// Lets up to `frames` decoded frames wait in the appsink (a live input keeps only the newest
    /// by default): a stream that resends a lost packet releases the frames held behind it at
    /// once, and they should reach the source thread, which picks by time.
    pub fn set_live_queue(&self, frames: u32) {
        self.appsink.set_max_buffers(frames.max(1));
    }

    /// `start_live`, with `configure` run on the parsed pipeline before it starts: signal
    /// handlers and links a launch line cannot express (rtpbin's retransmission elements).
    pub fn start_live_with(
        label: &str,
        description: &str,
        configure: impl FnOnce(&gst::Pipeline) -> Result<(), String>,
    ) -> Result<Self, SourceError> {
        let producer = Self::build(label, description, true)?;
        configure(&producer.pipeline).map_err(|message| SourceError::Open { path: label.to_string(), message })?;
        if producer.pipeline.set_state(gst::State::Playing).is_err() {
            let message = producer.error_or("the pipeline refused to start");
            return Err(SourceError::Open { path: label.to_string(), message });
        }
        Ok(producer)
    }

    fn build(label: &str, description: &str, live: bool) -> Result<Self, SourceError> {
        let open_err = |message: String| SourceError::Open { path: label.to_string(), message };
        init().map_err(|e| open_err(e.to_string()))?;
        let pipeline = gst::parse::launch_full(description, None, gst::ParseFlags::FATAL_ERRORS)
            .map_err(|e| open_err(format!("cannot build pipeline: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| open_err("not a pipeline".into()))?;
        let on_timeline = live && super::timeline::join(&pipeline);
        let appsink = pipeline
            .by_name("sink")
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| open_err("pipeline has no appsink named sink".into()))?;
        // Decode ahead only as far as the source channel lets us: the appsink blocks when full.
        appsink.set_sync(false);
        appsink.set_max_buffers(if live { 1 } else { 2 });
        appsink.set_drop(live);
        let bus = pipeline.bus().ok_or_else(|| open_err("pipeline has no bus".into()))?;
        Ok(GstProducer {
            label: label.to_string(),
            pipeline,
            appsink,
            bus,
            first: None,
            info: None,
            info_caps: None,
            looping: false,
            seekable: false,
            live,
            on_timeline,
            start_ns: 0,
            origin_known: false,
            first_pts_ns: 0,
            pass_offset_ns: 0,
            pass_end_ns: 0,
            frames_this_pass: 0,
            index: 0,
            nominal_duration_ns: 0,
            ended: false,
            warned: None,
        })
    }

    fn preroll(&mut self, timeout: Duration) -> Result<(), String> {
        let target = if self.live { gst::State::Playing } else { gst::State::Paused };
        let change = self.pipeline.set_state(target);
        if change.is_err() {
            return Err(self.error_or("the pipeline refused to start"));
        }
        let deadline = Instant::now() + timeout;
        let sample = loop {
            let pulled = if self.live {
                self.appsink.try_pull_sample(clock_time(PULL_TIMEOUT.as_nanos() as u64))
            } else {
                self.appsink.try_pull_preroll(clock_time(PULL_TIMEOUT.as_nanos() as u64))
            };
            if let Some(s) = pulled {
                break s;
            }
            if let Some(e) = bus_error(&self.bus) {
                return Err(e);
            }
            if self.appsink.is_eos() {
                return Err("the stream holds no video frames".into());
            }
            if Instant::now() > deadline {
                return Err(format!("no frame within {:.1} s", timeout.as_secs_f64()));
            }
        };
        if !self.live {
            // Positions (`start`, seeks) count from the first frame, as players show them.
            self.start_ns = stream_time(&sample).unwrap_or(0);
            self.first_pts_ns = self.start_ns;
            self.origin_known = true;
        }
        let caps = sample.caps().ok_or("first frame has no caps")?;
        let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| format!("unusable caps {caps}: {e}"))?;
        let fps = info.fps();
        if fps.numer() > 0 && fps.denom() > 0 {
            self.nominal_duration_ns = 1_000_000_000u64 * fps.denom() as u64 / fps.numer() as u64;
        }
        self.info = Some(info);
        if !self.live {
            let mut query = gst::query::Seeking::new(gst::Format::Time);
            self.seekable = self.pipeline.query(&mut query) && query.result().0;
            // The preroll sample comes again from pull_sample once playing; do not keep it twice.
            if self.pipeline.set_state(gst::State::Playing).is_err() {
                return Err(self.error_or("the pipeline refused to play"));
            }
        } else {
            self.first = Some(sample);
        }
        Ok(())
    }

    fn error_or(&self, fallback: &str) -> String {
        // State changes fail asynchronously; give the bus a moment to carry the reason.
        self.bus
            .timed_pop_filtered(clock_time(2_000_000_000), &[gst::MessageType::Error])
            .and_then(|m| match m.view() {
                gst::MessageView::Error(e) => Some(super::describe_error(e)),
                _ => None,
            })
            .unwrap_or_else(|| fallback.to_string())
    }

    /// Width, height and colour space of the stream as negotiated.
    pub fn video_info(&self) -> Option<&gst_video::VideoInfo> {
        self.info.as_ref()
    }

    /// The YUV colour space the caps declare; BT.709/BT.601 by height when unknown.
    pub fn color_space(&self) -> YuvColorSpace {
        let Some(info) = &self.info else { return YuvColorSpace::BT709_LIMITED };
        let colorimetry = info.colorimetry();
        let fallback = YuvColorSpace::default_for_height(info.height());
        let matrix = match colorimetry.matrix() {
            gst_video::VideoColorMatrix::Bt709 => YuvMatrix::Bt709,
            gst_video::VideoColorMatrix::Bt601 => YuvMatrix::Bt601,
            _ => fallback.matrix,
        };
        let range = match colorimetry.range() {
            gst_video::VideoColorRange::Range0_255 => YuvRange::Full,
            gst_video::VideoColorRange::Range16_235 => YuvRange::Limited,
            _ => fallback.range,
        };
        YuvColorSpace { matrix, range }
    }

    /// Loop at the end; start at `start_ns` of the file (also where each loop restarts).
    pub fn set_looping(&mut self, looping: bool) {
        self.looping = looping;
    }

    /// Starts `start_ns` after the first frame; loops restart there too.
    pub fn start_at(&mut self, start_ns: u64) -> Result<(), SourceError> {
        self.start_ns = self.first_pts_ns + start_ns;
        if start_ns > 0 {
            self.origin_known = true;
            self.seek_file(self.start_ns)?;
        }
        Ok(())
    }

    fn seek_file(&mut self, file_ns: u64) -> Result<(), SourceError> {
        if !self.seekable {
            return Err(SourceError::Unsupported(format!("{}: this stream cannot seek", self.label)));
        }
        self.pipeline
            .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE, clock_time(file_ns))
            .map_err(|_| SourceError::Decode(format!("{}: seek to {} ms failed", self.label, file_ns / 1_000_000)))?;
        self.ended = false;
        self.frames_this_pass = 0;
        self.pass_end_ns = 0;
        Ok(())
    }

    fn frame_from_sample(&mut self, sample: &gst::Sample) -> Result<TimestampedFrame, SourceError> {
        let decode_err = |m: String| SourceError::Decode(format!("{}: frame {}: {m}", self.label, self.index));
        let caps = sample.caps().ok_or_else(|| decode_err("no caps".into()))?;
        // Caps may change mid-stream (a resolution switch): re-read them only when they do.
        let info = match (&self.info, &self.info_caps) {
            (Some(i), Some(c)) if c.as_ref() == caps => i.clone(),
            _ => {
                let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| decode_err(e.to_string()))?;
                self.info_caps = Some(caps.to_owned());
                info
            }
        };
        // `x` formats (screen capture) leave the padding byte undefined, often 0: made opaque below.
        let (format, padded_alpha) = match info.format() {
            gst_video::VideoFormat::Nv12 => (PixelFormat::Nv12, false),
            gst_video::VideoFormat::I420 => (PixelFormat::I420, false),
            gst_video::VideoFormat::Rgba => (PixelFormat::Rgba8, false),
            gst_video::VideoFormat::Bgra => (PixelFormat::Bgra8, false),
            gst_video::VideoFormat::Rgbx => (PixelFormat::Rgba8, true),
            gst_video::VideoFormat::Bgrx => (PixelFormat::Bgra8, true),
            other => return Err(decode_err(format!("unexpected format {other:?}"))),
        };
        let buffer = sample.buffer().ok_or_else(|| decode_err("sample without buffer".into()))?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
            .map_err(|e| decode_err(format!("cannot map buffer: {e}")))?;
        let mut planes = Vec::with_capacity(3);
        for (i, shape) in format.planes(info.width(), info.height()).iter().enumerate() {
            let stride = usize::try_from(info.stride()[i]).map_err(|_| decode_err("negative stride".into()))?;
            let data = frame.plane_data(i as u32).map_err(|e| decode_err(e.to_string()))?;
            // Only the rows we use: the last row need not be padded to the stride.
            let len = (stride * (shape.height as usize - 1) + shape.row_bytes()).min(data.len());
            let mut data = data[..len].to_vec();
            if padded_alpha {
                data.iter_mut().skip(3).step_by(4).for_each(|a| *a = 255);
            }
            planes.push(Plane { data, stride });
        }
        let file_pts = stream_time(sample).unwrap_or(0);
        if !self.origin_known {
            self.origin_known = true;
            self.start_ns = file_pts;
        }
        let duration = buffer.duration().map_or(self.nominal_duration_ns, gst::ClockTime::nseconds);
        let pass_pts = file_pts.saturating_sub(self.start_ns);
        self.pass_end_ns = self.pass_end_ns.max(pass_pts + duration);
        let index = self.index;
        self.index += 1;
        self.frames_this_pass += 1;
        self.info = Some(info.clone());
        Ok(TimestampedFrame {
            time: FrameTime { index, pts_ns: self.pass_offset_ns + pass_pts, duration_ns: duration },
            width: info.width(),
            height: info.height(),
            format,
            data: FrameData::Cpu(planes),
            color_space: None,
            meta: Default::default(),
            captured_ns: if self.on_timeline { super::timeline::running_time(sample) } else { None },
        })
    }
}

/// A sample's position in the stream (what seeks address and players show), from its buffer's
/// pts and segment: a demuxer may start pts anywhere, e.g. after B-frame reordering delay.
fn stream_time(sample: &gst::Sample) -> Option<u64> {
    let pts = sample.buffer()?.pts()?;
    let time = sample
        .segment()
        .and_then(|s| s.downcast_ref::<gst::ClockTime>())
        .and_then(|s| s.to_stream_time(pts))
        .unwrap_or(pts);
    Some(time.nseconds())
}

impl FrameProducer for GstProducer {
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError> {
        if let Some(sample) = self.first.take() {
            return self.frame_from_sample(&sample).map(Some);
        }
        if self.ended {
            return Ok(None);
        }
        if let Some(sample) = self.appsink.try_pull_sample(clock_time(PULL_TIMEOUT.as_nanos() as u64)) {
            return self.frame_from_sample(&sample).map(Some);
        }
        if let Some(e) = bus_error_noting_warnings(&self.bus, &mut self.warned) {
            self.ended = true;
            return Err(SourceError::Decode(format!("{}: {e}", self.label)));
        }
        if !self.appsink.is_eos() {
            return Err(SourceError::NotYet);
        }
        // A still picture (a PNG or JPEG file: one frame, no length) would loop forever at the
        // same pts: it is shown as it is, for good.
        if self.looping && self.frames_this_pass > 0 && self.pass_end_ns == 0 {
            self.ended = true;
            return Ok(None);
        }
        // A loop needs at least one frame per pass, or an empty file would spin.
        if self.looping && self.frames_this_pass > 0 {
            self.pass_offset_ns += self.pass_end_ns;
            let start = self.start_ns;
            self.seek_file(start)?;
            return Err(SourceError::NotYet);
        }
        self.ended = true;
        // A decoder often takes a cut-off or damaged file as a normal end: compare with the
        // duration the container announced, so the user hears of it (half a second of slack for
        // rounding and for other streams that run longer).
        if let Some(total) = self.pass_length().filter(|_| !self.live) {
            if total > self.pass_end_ns.saturating_add(500_000_000) {
                return Err(SourceError::Decode(format!(
                    "{}: ended after {} frames, at {:.2} s of the {:.2} s the file announces: it looks truncated or damaged",
                    self.label,
                    self.frames_this_pass,
                    self.pass_end_ns as f64 / 1e9,
                    total as f64 / 1e9
                )));
            }
        }
        Ok(None)
    }

    fn is_finite(&self) -> bool {
        !self.looping && !self.live
    }

    fn is_seekable(&self) -> bool {
        self.seekable
    }

    fn is_live(&self) -> bool {
        self.live
    }

    fn seek(&mut self, position_ns: u64) -> Result<(), SourceError> {
        // Positions past the first pass of a looping input wrap around.
        let pass = self.pass_length();
        let (passes, within) = match pass {
            Some(p) if self.looping && p > 0 => (position_ns / p, position_ns % p),
            _ => (0, position_ns),
        };
        self.seek_file(self.start_ns + within)?;
        self.pass_offset_ns = passes * pass.unwrap_or(0);
        Ok(())
    }
}

impl GstProducer {
    fn pass_length(&self) -> Option<u64> {
        let mut q = gst::query::Duration::new(gst::Format::Time);
        if !self.pipeline.query(&mut q) {
            return None;
        }
        match q.result() {
            gst::GenericFormattedValue::Time(Some(d)) => Some(d.nseconds().saturating_sub(self.start_ns)),
            _ => None,
        }
    }
}

impl Drop for GstProducer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// `"kind": "file"`: a video file decoded by GStreamer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The video file; a relative path is taken from the scene's base directory.
    pub path: PathBuf,
    /// Start again at `start` when the file ends.
    #[serde(default, rename = "loop")]
    pub looping: bool,
    /// Seconds into the file shown at the input's time 0.
    #[serde(default)]
    pub start: f64,
    /// Overrides the colour space the file declares.
    #[serde(default)]
    pub color_space: Option<YuvColorSpace>,
}

impl FileSourceConfig {
    fn check(&self) -> Result<(), SceneError> {
        if !self.start.is_finite() || self.start < 0.0 {
            return Err(SceneError::new("start", format!("{} must be a non-negative number of seconds", self.start)));
        }
        if self.path.as_os_str().is_empty() {
            return Err(SceneError::new("path", "must not be empty"));
        }
        Ok(())
    }
}

/// The pipeline that decodes `path`: any container and codec this machine's GStreamer handles,
/// rotated upright when the file says so.
fn file_pipeline(path: &Path) -> Result<String, SourceError> {
    let open_err = |message: String| SourceError::Open { path: path.display().to_string(), message };
    let meta = std::fs::metadata(path).map_err(|e| open_err(e.to_string()))?;
    if !meta.is_file() {
        return Err(open_err("not a regular file".into()));
    }
    let absolute = std::fs::canonicalize(path).map_err(|e| open_err(e.to_string()))?;
    init().map_err(|e| open_err(e.to_string()))?;
    let uri = gst::glib::filename_to_uri(&absolute, None).map_err(|e| open_err(e.to_string()))?;
    Ok(format!(
        "uridecodebin uri=\"{uri}\" caps=video/x-raw ! videoconvert ! videoflip video-direction=auto ! \
         appsink name=sink caps=\"{APPSINK_CAPS}\""
    ))
}

/// Opens `path` for decoding, ready at `start_ns`.
pub fn open_file(path: &Path, looping: bool, start_ns: u64) -> Result<GstProducer, SourceError> {
    let description = file_pipeline(path)?;
    let mut producer = GstProducer::launch(&path.display().to_string(), &description, false)
        .map_err(|e| explain_open_error(path, e))?;
    producer.set_looping(looping);
    producer.start_at(start_ns)?;
    Ok(producer)
}

/// GStreamer's "no suitable plugins" is true but unhelpful: say which codec and what to install.
fn explain_open_error(path: &Path, e: SourceError) -> SourceError {
    let SourceError::Open { message, .. } = &e else { return e };
    if message.contains("missing") || message.contains("No decoder") || message.contains("not-linked") {
        let info = super::probe(path);
        // An audio-only file is fine, it just has no picture: say that, not "install a plugin".
        if matches!(info, Err(super::MediaError::NoVideo(_))) {
            return SourceError::Unsupported(format!(
                "{}: the file has no video stream (audio only?): a video input needs one",
                path.display()
            ));
        }
        let codec = info.ok().and_then(|i| i.codec).unwrap_or_else(|| "unknown".into());
        return SourceError::Unsupported(format!(
            "{}: no decoder for codec {codec} here (install the GStreamer plugin that decodes it): {message}",
            path.display()
        ));
    }
    e
}

/// Registry entry for `"kind": "file"`.
#[derive(Debug, Default)]
pub struct FileSourceKind;

impl InputKind for FileSourceKind {
    type Config = FileSourceConfig;

    fn depends_on_scene(&self, _config: &FileSourceConfig) -> bool {
        true
    }

    fn path_fields(&self) -> &'static [&'static str] {
        &["path"]
    }

    fn check(&self, config: &FileSourceConfig) -> Result<(), SceneError> {
        config.check()
    }

    fn build(&self, id: &str, config: FileSourceConfig, ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let path = ctx.scene.resolve_path(&config.path);
        let producer = open_file(&path, config.looping, (config.start * 1e9) as u64)
            .map_err(|e| BuildError::new(format!("inputs.{id}"), e))?;
        let color_space = config.color_space.unwrap_or_else(|| producer.color_space());
        let max_offset = ctx.scene.fps.duration_ns(0) / 2;
        let source =
            ThreadedSource::spawn(id, producer, color_space, max_offset).map_err(|e| BuildError::new(id, e))?;
        Ok(Box::new(source))
    }
}
