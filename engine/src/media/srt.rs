//! SRT in and out. The output: H.264 at zero latency in MPEG-TS over SRT (`srtsink`), as a
//! listener that OBS, ffmpeg, VLC or a media server calls, or as a caller pushing to a listener;
//! its messages end where each picture ends (`ts_chunks`), so neither the muxer nor the far
//! end's `tsdemux` holds a picture back. The input (`srtsrc ! tsdemux`, any codec GStreamer
//! decodes) waits for its peer on the producer thread in short polls (never at build, and a
//! removed input stops at once), and starts again with backoff when the peer goes; meanwhile
//! the last frame is held. URLs take GStreamer's SRT conventions:
//! `srt://host:port?mode=listener&latency=20&passphrase=…&streamid=…`.

use super::decode::{GstProducer, APPSINK_CAPS};
use super::encode::{live_h264, Codec, EncodePipeline};
use super::live::LivePipeline;
use super::ts_chunks::TsChunker;
use crate::frame::PixelFormat;
use crate::registry::{BuildContext, BuildError, InputKind};
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::SceneError;
use crate::sinks::Reconnecting;
use crate::sinks::{Sink, SinkError};
use crate::sources::{Source, SourceError, ThreadedSource};
use gstreamer::prelude::*;
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

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

/// Sends the muxer's packets (`mpegtsmux alignment=0` pushes them one by one) to `srtsink` in
/// messages that end where each picture ends (see `ts_chunks`): srtsink 1.22 sends a buffer as
/// one SRT message and refuses one bigger than the payload size.
fn send_frames_whole(mux_src: &gstreamer::Pad, srt_sink: gstreamer::Pad) {
    use gstreamer::{PadProbeData, PadProbeReturn, PadProbeType};
    let chunker = std::sync::Mutex::new(TsChunker::default());
    let send = move |messages: Vec<Vec<u8>>| {
        for message in messages {
            // srtsink's errors (a peer gone) reach the bus as they would from a push.
            let _ = srt_sink.chain(gstreamer::Buffer::from_mut_slice(message));
        }
    };
    mux_src.add_probe(
        PadProbeType::BUFFER | PadProbeType::BUFFER_LIST | PadProbeType::EVENT_DOWNSTREAM,
        move |_, info| {
            let mut chunker = chunker.lock().unwrap_or_else(|e| e.into_inner());
            match &info.data {
                Some(PadProbeData::Buffer(buffer)) => match buffer.map_readable() {
                    Ok(map) => send(chunker.push(&map)),
                    Err(_) => return PadProbeReturn::Ok,
                },
                Some(PadProbeData::BufferList(list)) => {
                    for buffer in list.iter() {
                        if let Ok(map) = buffer.map_readable() {
                            send(chunker.push(&map));
                        }
                    }
                }
                Some(PadProbeData::Event(event)) => {
                    if matches!(event.view(), gstreamer::EventView::Eos(_) | gstreamer::EventView::FlushStart(_)) {
                        send(chunker.flush().into_iter().collect());
                    }
                    return PadProbeReturn::Ok;
                }
                _ => return PadProbeReturn::Ok,
            }
            PadProbeReturn::Drop
        },
    );
}

/// The sink of an `srt` output: an encoding pipeline ending in `srtsink`.
pub struct SrtSink;

impl SrtSink {
    /// Starts the encoder and the SRT socket (a listener binds now).
    pub fn start(config: &SrtOutputConfig, target: &SinkTarget<'_>) -> Result<EncodePipeline, SinkError> {
        check_url(&config.url).map_err(SinkError::Unsupported)?;
        if target.width % 2 == 1 || target.height % 2 == 1 {
            return Err(SinkError::Unsupported(format!(
                "H.264 4:2:0 needs an even width and height, the output is {}x{}",
                target.width, target.height
            )));
        }
        let gop = config.keyframe_interval.unwrap_or_else(|| target.fps.as_f64().round().max(1.0) as u32);
        let rest = format!(
            "{} ! mpegtsmux name=mux alignment=0 ! srtsink name=out wait-for-connection=false sync=false async=false",
            live_h264(config.bitrate, gop)
        );
        let url = config.url.clone();
        EncodePipeline::new(
            &config.url,
            Codec::H264.input_format(),
            (target.width, target.height),
            target.fps,
            &rest,
            &["x264enc", "h264parse", "mpegtsmux", "srtsink"],
            move |p| {
                let out = p.by_name("out").ok_or("no srtsink")?;
                out.set_property("uri", url.as_str());
                let mux_src = p.by_name("mux").and_then(|m| m.static_pad("src")).ok_or("no mpegtsmux")?;
                send_frames_whole(&mux_src, out.static_pad("sink").ok_or("no srtsink pad")?);
                Ok(())
            },
        )
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
        // A caller whose listener is not up yet, or goes, connects again; a listener's callers
        // come and go on their own.
        let (width, height, fps) = (target.width, target.height, target.fps);
        let label = config.url.clone();
        let connect = move || -> Result<Box<dyn Sink>, SinkError> {
            let target = SinkTarget { output: "", path: Path::new(""), width, height, fps };
            Ok(Box::new(SrtSink::start(&config, &target)?))
        };
        Ok(vec![Box::new(Reconnecting::start(&label, PixelFormat::Nv12, Box::new(connect))?)])
    }
}

/// `{"kind": "srt", "url": "srt://0.0.0.0:9000?mode=listener"}` in `inputs`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrtInputConfig {
    /// `srt://host:port` with GStreamer's query parameters; caller by default.
    pub url: String,
    /// How long the last frame stays on screen after frames stop, in ms; then nothing.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

fn default_hold_ms() -> u64 {
    1000
}

/// Reads an SRT stream for a `ThreadedSource`, (re)connecting on its own thread: a listener
/// waits for its caller as long as it takes; a caller that cannot connect, or is refused (a wrong
/// passphrase), tries again after the backoff and says why in the input's `last_error`.
pub fn srt_producer(config: &SrtInputConfig) -> Result<LivePipeline, SourceError> {
    check_url(&config.url).map_err(SourceError::Unsupported)?;
    let description = format!(
        "srtsrc uri=\"{}\" ! tsdemux latency=0 ! decodebin ! videoconvert ! {APPSINK_CAPS} ! appsink name=sink",
        config.url.replace('"', "")
    );
    let label = config.url.clone();
    Ok(LivePipeline::new(&config.url, Box::new(move || GstProducer::start_live(&label, &description))))
}

/// Registry entry for `"kind": "srt"` inputs.
#[derive(Debug, Default)]
pub struct SrtInputKind;

impl InputKind for SrtInputKind {
    type Config = SrtInputConfig;

    fn check(&self, config: &SrtInputConfig) -> Result<(), SceneError> {
        check_url(&config.url).map_err(|m| SceneError::new("url", m))
    }

    fn build(&self, id: &str, config: SrtInputConfig, _ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let missing: Vec<&str> = ["srtsrc", "tsdemux"]
            .into_iter()
            .filter(|e| super::init().is_err() || gstreamer::ElementFactory::find(e).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(BuildError::new(
                format!("inputs.{id}"),
                SourceError::Unsupported(format!("GStreamer elements missing here: {}", missing.join(", "))),
            ));
        }
        let producer = srt_producer(&config).map_err(|e| BuildError::new(format!("inputs.{id}"), e))?;
        let source = ThreadedSource::spawn(id, producer, crate::YuvColorSpace::default(), u64::MAX / 4)
            .map_err(|e| BuildError::new(id, e))?
            .with_hold(Duration::from_millis(config.hold_ms));
        Ok(Box::new(source))
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
