//! `streamlib probe FILE`: what a media file holds, from GStreamer's discoverer.

use super::{init, MediaError};
use gstreamer as gst;
use gstreamer_pbutils as pbutils;
use gstreamer_pbutils::prelude::*;
use serde::Serialize;
use std::path::Path;

/// Metadata of a file's first video stream (and its container).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MediaInfo {
    /// The path as given.
    pub path: String,
    /// Description of the container format; `None` for a raw stream.
    pub container: Option<String>,
    /// Duration in nanoseconds, when known.
    pub duration_ns: Option<u64>,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Frames per second as num/den; `None` for variable frame rate streams (GStreamer says 0/1).
    pub fps: Option<(i32, i32)>,
    /// Description of the video codec.
    pub codec: Option<String>,
    /// Clockwise rotation in degrees the file asks players to apply (0, 90, 180, 270).
    pub rotation: u32,
    /// Video bitrate in bits per second, when known.
    pub bitrate: Option<u32>,
    /// Whether the file can be seeked.
    pub seekable: bool,
    /// Whether the file has an audio stream.
    pub has_audio: bool,
}

impl MediaInfo {
    /// Duration in seconds, when known.
    pub fn duration_seconds(&self) -> Option<f64> {
        self.duration_ns.map(|d| d as f64 / 1e9)
    }
}

/// Reads `path`'s metadata without decoding the whole file.
pub fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    init()?;
    let shown = || path.display().to_string();
    let unreadable = |e: &dyn std::fmt::Display| MediaError::Unreadable { path: shown(), message: e.to_string() };
    let meta = std::fs::metadata(path).map_err(|e| unreadable(&e))?;
    if !meta.is_file() {
        return Err(MediaError::NotRegular(shown()));
    }
    let absolute = std::fs::canonicalize(path).map_err(|e| unreadable(&e))?;
    let uri = gst::glib::filename_to_uri(&absolute, None).map_err(|e| unreadable(&e))?;
    let discoverer = pbutils::Discoverer::new(gst::ClockTime::from_seconds(15))
        .map_err(|e| MediaError::Gstreamer(format!("discoverer: {e}")))?;
    let info = discoverer.discover_uri(&uri).map_err(|e| unreadable(&e))?;
    let video = info.video_streams().into_iter().next().ok_or_else(|| MediaError::NoVideo(shown()))?;
    let codec = video.caps().map(|c| pbutils::pb_utils_get_codec_description(&c).to_string());
    // The top of the stream tree is the container when there is one (a raw stream has none).
    let container = info
        .stream_info()
        .filter(|s| s.is::<pbutils::DiscovererContainerInfo>())
        .and_then(|s| s.caps())
        .map(|c| pbutils::pb_utils_get_codec_description(&c).to_string());
    let rate = video.framerate();
    let rotation = video.tags().map_or(0, |t| rotation_from_tags(&t));
    Ok(MediaInfo {
        path: path.display().to_string(),
        container,
        duration_ns: info.duration().map(gst::ClockTime::nseconds),
        width: video.width(),
        height: video.height(),
        fps: (rate.numer() > 0 && rate.denom() > 0).then_some((rate.numer(), rate.denom())),
        codec,
        rotation,
        bitrate: Some(video.bitrate()).filter(|&b| b > 0),
        seekable: info.is_seekable(),
        has_audio: !info.audio_streams().is_empty(),
    })
}

fn rotation_from_tags(tags: &gst::TagList) -> u32 {
    tags.get::<gst::tags::ImageOrientation>()
        .and_then(|v| v.get().strip_prefix("rotate-").and_then(|d| d.parse().ok()))
        .unwrap_or(0)
}
