//! The `srt` output: H.264 at zero latency in MPEG-TS over SRT (`srtsink`), as a listener that
//! OBS, ffmpeg, VLC or a media server calls, or as a caller pushing to a listener. The URL takes
//! GStreamer's SRT conventions: `srt://host:port?mode=listener&latency=20&passphrase=…&streamid=…`.

use super::encode::{Codec, EncodePipeline};
use crate::frame::{OutputFrame, PixelFormat};
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::SceneError;
use crate::sinks::{Sink, SinkError};
use gstreamer::prelude::*;
use serde::Deserialize;

/// `{"kind": "srt", "url": "srt://0.0.0.0:9000?mode=listener&latency=20"}` in `outputs`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrtOutputConfig {
    /// `srt://host:port` with GStreamer's query parameters (`mode=caller|listener|rendezvous`,
    /// `latency` ms, `passphrase`, `pbkeylen`, `streamid`); caller by default.
    pub url: String,
    /// H.264 bitrate, kbit/s.
    #[serde(default = "default_bitrate")]
    pub bitrate: u32,
    /// Frames between keyframes (a caller joining mid-stream starts at one); one second's worth
    /// when absent.
    #[serde(default)]
    pub keyframe_interval: Option<u32>,
}

fn default_bitrate() -> u32 {
    4000
}

/// The query parameters srtsink understands, and the checks SRT itself would make later.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url.strip_prefix("srt://").ok_or_else(|| format!("{url:?}: expected srt://host:port[?…]"))?;
    let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (_, port) = authority.rsplit_once(':').ok_or_else(|| format!("{url:?}: missing :port"))?;
    port.parse::<u16>().map_err(|_| format!("{url:?}: port {port:?} is not a number in 0..=65535"))?;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "mode" if ["caller", "listener", "rendezvous"].contains(&value) => {}
            "mode" => return Err(format!("{url:?}: mode {value:?} is not caller, listener or rendezvous")),
            "latency" | "pbkeylen" | "localport" | "poll-timeout" if value.parse::<u32>().is_err() => {
                return Err(format!("{url:?}: {key} {value:?} is not a number"))
            }
            "pbkeylen" if !["16", "24", "32"].contains(&value) => {
                return Err(format!("{url:?}: pbkeylen is 16, 24 or 32 bytes"))
            }
            // SRT refuses other lengths when the connection is made, with a vaguer message.
            "passphrase" if !(10..=79).contains(&value.len()) => {
                return Err(format!("{url:?}: an SRT passphrase has 10 to 79 characters"))
            }
            "latency" | "pbkeylen" | "localport" | "poll-timeout" | "passphrase" | "streamid" | "localaddress" => {}
            other => return Err(format!("{url:?}: unknown query parameter {other:?}")),
        }
    }
    Ok(())
}

/// The sink of an `srt` output.
pub struct SrtSink {
    pipeline: EncodePipeline,
}

impl SrtSink {
    /// Starts the encoder and the SRT socket (a listener binds now).
    pub fn start(config: &SrtOutputConfig, target: &SinkTarget<'_>) -> Result<Self, SinkError> {
        check_url(&config.url).map_err(SinkError::Unsupported)?;
        if target.width % 2 == 1 || target.height % 2 == 1 {
            return Err(SinkError::Unsupported(format!(
                "H.264 4:2:0 needs an even width and height, the output is {}x{}",
                target.width, target.height
            )));
        }
        let gop = config.keyframe_interval.unwrap_or_else(|| target.fps.as_f64().round().max(1.0) as u32);
        // Zero latency: no lookahead, no B-frames, slice threads; SPS/PPS before every keyframe so
        // a caller joining mid-stream can start there.
        let rest = format!(
            "x264enc tune=zerolatency speed-preset=veryfast bitrate={} key-int-max={gop} threads=2 \
             sliced-threads=true rc-lookahead=0 sync-lookahead=0 ! video/x-h264,profile=high ! \
             h264parse config-interval=-1 ! mpegtsmux alignment=7 ! \
             srtsink name=out wait-for-connection=false sync=false async=false",
            config.bitrate.max(50)
        );
        let url = config.url.clone();
        let pipeline = EncodePipeline::new(
            &config.url,
            Codec::H264.input_format(),
            (target.width, target.height),
            target.fps,
            &rest,
            &["x264enc", "h264parse", "mpegtsmux", "srtsink"],
            move |p| {
                let out = p.by_name("out").ok_or("no srtsink")?;
                out.set_property("uri", url.as_str());
                Ok(())
            },
        )?;
        Ok(SrtSink { pipeline })
    }
}

impl Sink for SrtSink {
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

/// Registry entry for `"kind": "srt"` outputs and `--output srt://…`.
#[derive(Debug, Default)]
pub struct SrtOutputKind;

impl SinkKind for SrtOutputKind {
    type Config = SrtOutputConfig;

    fn extensions(&self) -> &[&str] {
        &[]
    }

    fn schemes(&self) -> &[&str] {
        &["srt"]
    }

    fn path_param(&self) -> &'static str {
        "url"
    }

    fn writes_files(&self) -> bool {
        false
    }

    fn check(&self, config: &SrtOutputConfig) -> Result<(), SceneError> {
        check_url(&config.url).map_err(|m| SceneError::new("url", m))?;
        if config.keyframe_interval == Some(0) {
            return Err(SceneError::new("keyframe_interval", "must be at least 1 frame"));
        }
        Ok(())
    }

    fn build(&self, target: &SinkTarget<'_>, config: SrtOutputConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(vec![Box::new(SrtSink::start(&config, target)?)])
    }
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn srt_urls_are_checked_before_srt_sees_them() {
        for good in ["srt://0.0.0.0:9000?mode=listener&latency=20", "srt://h:1?passphrase=0123456789&streamid=a/b"] {
            assert!(check_url(good).is_ok(), "{good}");
        }
        for bad in [
            "udp://h:1",
            "srt://h",
            "srt://h:1?mode=server",
            "srt://h:1?latency=soon",
            "srt://h:1?passphrase=short",
            "srt://h:1?pbkeylen=8",
            "srt://h:1?colour=red",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }
}
