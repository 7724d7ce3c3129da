//! RTMP push: H.264 at zero latency in FLV to a streaming service or media server
//! (`rtmp://host/app/key`, `rtmps://…` too), through `flvmux ! rtmp2sink`. A server that is
//! down, refuses the key or drops us is connected to again with backoff (`Reconnecting`); the
//! other outputs run on. Video only until the audio issue lands (some services insist on audio).

use super::encode::{live_h264, Codec, EncodePipeline};
use crate::frame::PixelFormat;
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::SceneError;
use crate::sinks::{Reconnecting, Sink, SinkError};
use gstreamer::prelude::*;
use serde::Deserialize;

/// `{"kind": "rtmp", "url": "rtmp://live.example.com/app/stream-key"}` in `outputs`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtmpOutputConfig {
    /// `rtmp://host[:port]/app/key` or `rtmps://…`.
    pub url: String,
    /// H.264 bitrate, kbit/s.
    #[serde(default = "default_bitrate")]
    pub bitrate: u32,
    /// Frames between keyframes; two seconds' worth when absent (what services ask for).
    #[serde(default)]
    pub keyframe_interval: Option<u32>,
}

fn default_bitrate() -> u32 {
    4500
}

fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("rtmp://")
        .or_else(|| url.strip_prefix("rtmps://"))
        .ok_or_else(|| format!("{url:?}: expected rtmp://host/app/key or rtmps://…"))?;
    let mut parts = rest.splitn(3, '/');
    let host = parts.next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    if let Some((_, port)) = host.rsplit_once(':') {
        port.parse::<u16>().map_err(|_| format!("{url:?}: port {port:?} is not a number"))?;
    }
    match (parts.next(), parts.next()) {
        (Some(app), Some(key)) if !app.is_empty() && !key.is_empty() => Ok(()),
        _ => Err(format!("{url:?}: expected an application and a stream key: rtmp://host/app/key")),
    }
}

/// Starts one connection: the encoder, the muxer and the RTMP client.
fn connect(
    config: &RtmpOutputConfig,
    (width, height, fps): (u32, u32, crate::Fps),
) -> Result<EncodePipeline, SinkError> {
    if width % 2 == 1 || height % 2 == 1 {
        return Err(SinkError::Unsupported(format!("H.264 4:2:0 needs an even size, the output is {width}x{height}")));
    }
    let gop = config.keyframe_interval.unwrap_or_else(|| (fps.as_f64() * 2.0).round().max(1.0) as u32);
    let rest = format!(
        "{} ! flvmux streamable=true ! rtmp2sink name=out sync=false async=false",
        live_h264(config.bitrate, gop)
    );
    let url = config.url.clone();
    EncodePipeline::new(
        &config.url,
        Codec::H264.input_format(),
        (width, height),
        fps,
        &rest,
        &["x264enc", "h264parse", "flvmux", "rtmp2sink"],
        move |p| {
            p.by_name("out").ok_or("no rtmp2sink")?.set_property("location", url.as_str());
            Ok(())
        },
    )
}

/// Registry entry for `"kind": "rtmp"` outputs and `--output rtmp://…`.
#[derive(Debug, Default)]
pub struct RtmpOutputKind;

impl SinkKind for RtmpOutputKind {
    type Config = RtmpOutputConfig;

    fn extensions(&self) -> &[&str] {
        &[]
    }

    fn schemes(&self) -> &[&str] {
        &["rtmp", "rtmps"]
    }

    fn path_param(&self) -> &'static str {
        "url"
    }

    fn writes_files(&self) -> bool {
        false
    }

    fn check(&self, config: &RtmpOutputConfig) -> Result<(), SceneError> {
        check_url(&config.url).map_err(|m| SceneError::new("url", m))?;
        if config.keyframe_interval == Some(0) {
            return Err(SceneError::new("keyframe_interval", "must be at least 1 frame"));
        }
        Ok(())
    }

    fn build(&self, target: &SinkTarget<'_>, config: RtmpOutputConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        let size = (target.width, target.height, target.fps);
        let label = config.url.clone();
        let sink = Reconnecting::start(
            &label,
            PixelFormat::Nv12,
            Box::new(move || Ok(Box::new(connect(&config, size)?) as Box<dyn Sink>)),
        )?;
        Ok(vec![Box::new(sink)])
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn rtmp_urls_need_an_app_and_a_key() {
        assert!(check_url("rtmp://127.0.0.1:1935/live/key").is_ok());
        assert!(check_url("rtmps://a.rtmp.youtube.com/live2/abcd-efgh").is_ok());
        for bad in ["http://x/a/b", "rtmp://", "rtmp://host/app", "rtmp://host//key", "rtmp://host:x/a/b"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
