//! Media I/O through GStreamer (feature `media`): decoded file, camera and screen inputs whose
//! planes are converted on the GPU, encoded file outputs fed by NV12 readback, HLS with an
//! adaptive-bitrate ladder scaled on the GPU, SRT (MPEG-TS) and RTP in and out, RTMP push, an RTSP server, WebRTC for browsers (WHEP out, WHIP in), and `probe` for
//! file metadata.

mod capture;
mod decode;
mod encode;
mod hls;
mod live;
mod probe;
mod rtmp;
mod rtp;
mod rtsp;
mod srt;
mod timeline;
mod ts_chunks;
mod webrtc;
mod whep;
mod whip;

pub use capture::{
    list_cameras, CameraConfig, CameraKind, CameraProducer, DeviceInfo, LiveTestConfig, LiveTestKind, ScreenConfig,
    ScreenKind, LIVE_TEST_PATTERNS,
};
pub use decode::{open_file, FileSourceConfig, FileSourceKind, GstProducer};
pub(crate) use encode::colorimetry;
pub use encode::{Codec, Container, EncodedFileKind, EncoderSettings, FileSink, FileSinkConfig, Preset};
pub use hls::{h264_level, HlsConfig, HlsKind, HlsMode, RenditionSpec};
pub use live::{LivePipeline, LiveStats, StartPipeline};
pub use probe::{probe, MediaInfo};
pub use rtmp::{RtmpOutputConfig, RtmpOutputKind};
pub use rtp::{
    rtp_producer, rtp_sdp, rtp_stream, RtpEncoding, RtpInputConfig, RtpInputKind, RtpOutputConfig, RtpOutputKind,
    RtpSink, RtpStream,
};
pub use rtsp::{RtspOutputConfig, RtspOutputKind, RtspSink};
pub use srt::{srt_producer, SrtInputConfig, SrtInputKind, SrtOutputConfig, SrtOutputKind, SrtSink};
pub use webrtc::{choose_video_codec, OfferAnswerer, OfferError, Role, VideoCodec, WebRtcEndpoints, MAX_OFFER_BYTES};
pub use whep::{WhepOutputConfig, WhepOutputKind, WhepSink};
pub use whip::{WhipInputConfig, WhipInputKind};

/// Why GStreamer could not start, or a file could not be probed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// GStreamer could not be initialized.
    #[error("cannot initialize GStreamer: {0}")]
    Init(String),
    /// The file could not be read or probed.
    #[error("{path}: {message}")]
    Unreadable {
        /// The file.
        path: String,
        /// What GStreamer or the file system said.
        message: String,
    },
    /// The path is not a regular file.
    #[error("{0}: not a regular file")]
    NotRegular(String),
    /// The file has no video stream.
    #[error("{0}: no video stream")]
    NoVideo(String),
    /// GStreamer's discoverer or device monitor failed; the message is its own.
    #[error("{0}")]
    Gstreamer(String),
}

use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::OnceLock;

/// Initializes GStreamer once per process; every media entry point calls it.
pub(crate) fn init() -> Result<(), MediaError> {
    static INIT: OnceLock<Result<(), MediaError>> = OnceLock::new();
    INIT.get_or_init(|| gst::init().map_err(|e| MediaError::Init(e.to_string()))).clone()
}

/// The elements a pipeline description needs that this machine lacks.
fn missing_elements(names: &[&str]) -> Vec<String> {
    names.iter().filter(|n| gst::ElementFactory::find(n).is_none()).map(|n| n.to_string()).collect()
}

/// The first error or warning-free reason a pipeline stopped, from its bus, without waiting.
pub(crate) fn bus_error(bus: &gst::Bus) -> Option<String> {
    bus_error_noting_warnings(bus, &mut None)
}

/// `bus_error`, keeping the latest warning on the way in `warned` (popping for errors alone
/// would throw warnings away).
pub(crate) fn bus_error_noting_warnings(bus: &gst::Bus, warned: &mut Option<String>) -> Option<String> {
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]) {
        match msg.view() {
            gst::MessageView::Error(e) => return Some(describe_error(e)),
            gst::MessageView::Warning(w) => *warned = Some(w.error().to_string()),
            _ => {}
        }
    }
    None
}

fn describe_error(e: &gst::message::Error) -> String {
    let source = e.src().map(|s| s.name().to_string()).unwrap_or_default();
    match e.debug() {
        Some(debug) if !debug.is_empty() => {
            // The first line of the debug text says what GStreamer found; the rest is code paths.
            let first = debug.lines().last().unwrap_or_default();
            format!("{} ({source}: {first})", e.error())
        }
        _ => format!("{} ({source})", e.error()),
    }
}

/// Nanoseconds as a GStreamer clock time.
fn clock_time(ns: u64) -> gst::ClockTime {
    gst::ClockTime::from_nseconds(ns)
}
