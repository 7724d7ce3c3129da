//! RTP over UDP, out and in, through `rtpbin` under the AVPF profile (RTCP feedback goes out at
//! once, not on the next regular report, so a retransmission arrives in time):
//! - H.264 at zero latency (`rtph264pay`), with retransmission (`rtprtxsend` keeps the last
//!   `rtx_ms` of packets; a NACK brings them again on payload type 97) and keyframes on request
//!   (a receiver's PLI reaches x264 as a force-key-unit event);
//! - RFC 4175 uncompressed 4:2:0 video (`rtpvrawpay`), for LAN links.
//!
//! Ports, as in GStreamer's rtpbin examples: RTP to `port`, RTCP to `port + 1`, and the sender
//! listens for its receivers' RTCP (NACK, PLI) on `port + 2` unless `feedback_port` says
//! otherwise. The output writes an SDP file that ffmpeg, VLC and our own input open.

use super::decode::{GstProducer, APPSINK_CAPS};
use super::encode::{live_h264, EncodePipeline};
use super::live::LivePipeline;
use crate::frame::PixelFormat;
use crate::gpu::convert::YuvColorSpace;
use crate::registry::{BuildContext, BuildError, InputKind, SinkKind, SinkTarget};
use crate::scene::{Fps, SceneError};
use crate::sinks::{Sink, SinkError};
use crate::sources::{Source, SourceError, ThreadedSource};
use gstreamer as gst;
use gstreamer::prelude::*;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

/// Payload type of the media; RTX (RFC 4588) resends on `RTX_PT`.
const MEDIA_PT: u32 = 96;
const RTX_PT: u32 = 97;
/// RTP clock of video payloads.
const VIDEO_CLOCK: u32 = 90_000;

/// What an RTP output carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtpEncoding {
    /// H.264 at zero latency.
    #[default]
    H264,
    /// RFC 4175 uncompressed YCbCr 4:2:0, 8 bits.
    Raw,
}

/// `{"kind": "rtp", "host": "127.0.0.1", "port": 5004, "sdp": "out.sdp"}` in `outputs`
/// (`--output out.sdp` sends to 127.0.0.1:5004).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpOutputConfig {
    /// The SDP file written at start, for the receivers to open.
    pub sdp: PathBuf,
    /// Where the packets go (unicast or multicast).
    #[serde(default = "loopback")]
    pub host: String,
    /// RTP port (even); RTCP goes to the next one.
    #[serde(default = "default_port")]
    pub port: u16,
    /// The local port receivers' RTCP (NACK, PLI) comes to; `port + 2` when absent.
    #[serde(default)]
    pub feedback_port: Option<u16>,
    /// `h264` (default) or `raw` (RFC 4175).
    #[serde(default)]
    pub encoding: RtpEncoding,
    /// H.264 bitrate, kbit/s.
    #[serde(default = "default_bitrate")]
    pub bitrate: u32,
    /// Frames between keyframes; one second's worth when absent (a PLI brings one sooner).
    #[serde(default)]
    pub keyframe_interval: Option<u32>,
    /// Resend lost packets when a receiver asks (RFC 4588).
    #[serde(default = "yes")]
    pub retransmission: bool,
    /// How long sent packets are kept for resending, ms.
    #[serde(default = "default_rtx_ms")]
    pub rtx_ms: u32,
    /// Largest packet, bytes.
    #[serde(default = "default_mtu")]
    pub mtu: u32,
}

fn loopback() -> String {
    "127.0.0.1".into()
}
fn default_port() -> u16 {
    5004
}
fn default_bitrate() -> u32 {
    4000
}
fn yes() -> bool {
    true
}
fn default_rtx_ms() -> u32 {
    1000
}
fn default_mtu() -> u32 {
    1400
}

impl RtpOutputConfig {
    fn check(&self) -> Result<(), SceneError> {
        self.host.parse::<IpAddr>().map_err(|_| {
            SceneError::new("host", format!("{:?} is not an IP address (resolve names before)", self.host))
        })?;
        // RFC 3550 asks for an even port; ffmpeg and GStreamer take odd ones too.
        if self.port == 0 || self.port > 65532 {
            return Err(SceneError::new("port", "a port from 1 to 65532 (RTCP takes the next one)"));
        }
        if self.feedback_port == Some(0) {
            return Err(SceneError::new("feedback_port", "must be a port number"));
        }
        if !(576..=9000).contains(&self.mtu) {
            return Err(SceneError::new("mtu", "must be within 576..=9000 bytes"));
        }
        if self.keyframe_interval == Some(0) {
            return Err(SceneError::new("keyframe_interval", "must be at least 1 frame"));
        }
        Ok(())
    }

    fn feedback_port(&self) -> u16 {
        self.feedback_port.unwrap_or(self.port + 2)
    }
}

/// The address this machine sends to `host` from (the SDP's origin, where receivers send their
/// RTCP feedback).
fn source_address(host: &str, port: u16) -> String {
    let probe = || -> Option<IpAddr> {
        let to: IpAddr = host.parse().ok()?;
        if to.is_multicast() || to.is_unspecified() {
            return None;
        }
        let local = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
        let socket = UdpSocket::bind(local).ok()?;
        socket.connect(SocketAddr::new(to, port)).ok()?;
        Some(socket.local_addr().ok()?.ip())
    };
    probe().map_or_else(|| "127.0.0.1".into(), |ip| ip.to_string())
}

/// The SDP receivers open: the media on `port`, RTX and feedback announced when on.
pub fn rtp_sdp(config: &RtpOutputConfig, (width, height): (u32, u32), fps: Fps) -> String {
    let family = |a: &str| if a.contains(':') { "IP6" } else { "IP4" };
    let origin = source_address(&config.host, config.port);
    let pts = if config.retransmission { format!("{MEDIA_PT} {RTX_PT}") } else { MEDIA_PT.to_string() };
    let mut sdp = format!(
        "v=0\r\no=- {} 1 IN {} {origin}\r\ns=streamlib\r\nc=IN {} {}{}\r\nt=0 0\r\nm=video {} RTP/AVPF {pts}\r\n",
        u64::from(config.port) * 1000 + u64::from(config.feedback_port()),
        family(&origin),
        family(&config.host),
        config.host,
        if config.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_multicast() && ip.is_ipv4()) { "/32" } else { "" },
        config.port
    );
    match config.encoding {
        RtpEncoding::H264 => {
            let (_, level) = super::h264_level(width, height, fps.as_f64(), config.bitrate);
            sdp += &format!(
                "a=rtpmap:{MEDIA_PT} H264/{VIDEO_CLOCK}\r\n\
                 a=fmtp:{MEDIA_PT} packetization-mode=1;profile-level-id=6400{level:02x}\r\n"
            );
        }
        RtpEncoding::Raw => {
            sdp += &format!(
                "a=rtpmap:{MEDIA_PT} raw/{VIDEO_CLOCK}\r\n\
                 a=fmtp:{MEDIA_PT} sampling=YCbCr-4:2:0; width={width}; height={height}; depth=8; \
                 colorimetry={}; exactframerate={}\r\n",
                if height >= 720 { "BT709-2" } else { "BT601-5" },
                if fps.den == 1 { fps.num.to_string() } else { format!("{}/{}", fps.num, fps.den) }
            );
        }
    }
    sdp += &format!("a=rtcp-fb:{MEDIA_PT} nack\r\na=rtcp-fb:{MEDIA_PT} nack pli\r\n");
    if config.retransmission {
        sdp += &format!(
            "a=rtpmap:{RTX_PT} rtx/{VIDEO_CLOCK}\r\na=fmtp:{RTX_PT} apt={MEDIA_PT};rtx-time={}\r\n",
            config.rtx_ms
        );
    }
    sdp
}

/// A bin with one element between ghost pads `sink_N` and `src_N`: rtpbin's auxiliary sender or
/// receiver for session N.
fn aux_bin(session: u32, element: gst::Element) -> Option<gst::Element> {
    let bin = gst::Bin::new();
    bin.add(&element).ok()?;
    for (pad, dir) in [("sink", "sink"), ("src", "src")] {
        let target = element.static_pad(pad)?;
        let ghost = gst::GhostPad::builder_with_target(&target).ok()?.name(format!("{dir}_{session}")).build();
        bin.add_pad(&ghost).ok()?;
    }
    Some(bin.upcast())
}

/// Original payload type to its RTX payload type, the map both RTX elements take.
fn pt_map(from: u32, to: u32) -> gst::Structure {
    gst::Structure::builder("application/x-rtp-pt-map").field(from.to_string(), to).build()
}

/// Lets session 0 send RTCP every 20 ms or so. Under AVPF a receiver may send one early feedback
/// packet (a NACK) between regular reports; with the defaults (5 s minimum interval, RTCP's share
/// of a bandwidth estimated from the little a receiver sends) most NACKs expired before they
/// could go out, and resent packets came after the jitter buffer had given up on them. RTCP
/// packets are ~100 bytes: half a Mbit/s of reports is nothing next to the video.
fn quick_rtcp(rtpbin: &gst::Element) -> Result<(), String> {
    let session = rtpbin.emit_by_name::<Option<gst::Element>>("get-session", &[&0u32]).ok_or("no RTP session 0")?;
    session.set_property("rtcp-min-interval", 20_000_000u64);
    session.set_property("rtcp-rr-bandwidth", 500_000i32);
    session.set_property("rtcp-rs-bandwidth", 500_000i32);
    Ok(())
}

/// Links `from`'s pad to `to`'s, requesting either by name where it is a request pad.
fn link(pipeline: &gst::Pipeline, from: (&str, &str), to: (&str, &str)) -> Result<(), String> {
    let element = |name: &str| pipeline.by_name(name).ok_or_else(|| format!("no element {name}"));
    element(from.0)?
        .link_pads(Some(from.1), &element(to.0)?, Some(to.1))
        .map_err(|_| format!("cannot link {}.{} to {}.{}", from.0, from.1, to.0, to.1))
}

/// The sink of an `rtp` output: the encoder and payloader, rtpbin, and the UDP sockets.
pub struct RtpSink;

impl RtpSink {
    /// Writes the SDP and starts sending.
    pub fn start(config: &RtpOutputConfig, target: &SinkTarget<'_>) -> Result<EncodePipeline, SinkError> {
        config.check().map_err(|e| SinkError::Unsupported(e.to_string()))?;
        let (width, height) = (target.width, target.height);
        if width % 2 == 1 || height % 2 == 1 {
            return Err(SinkError::Unsupported(format!(
                "4:2:0 video needs an even size, the output is {width}x{height}"
            )));
        }
        let gop = config.keyframe_interval.unwrap_or_else(|| target.fps.as_f64().round().max(1.0) as u32);
        let (format, payloader, needed) = match config.encoding {
            RtpEncoding::H264 => (
                PixelFormat::Nv12,
                format!(
                    "{} ! rtph264pay name=pay pt={MEDIA_PT} mtu={} config-interval=-1 aggregate-mode=none",
                    live_h264(config.bitrate, gop),
                    config.mtu
                ),
                vec!["x264enc", "h264parse", "rtph264pay"],
            ),
            RtpEncoding::Raw => {
                (PixelFormat::I420, format!("rtpvrawpay name=pay pt={MEDIA_PT} mtu={}", config.mtu), vec!["rtpvrawpay"])
            }
        };
        let host = config.host.replace('"', "");
        let rest = format!(
            "{payloader} \
             rtpbin name=rtp rtp-profile=avpf \
             udpsink name=rtp_out host={host} port={} sync=false async=false buffer-size=4194304 \
             udpsink name=rtcp_out host={host} port={} sync=false async=false \
             udpsrc name=rtcp_in port={} reuse=false",
            config.port,
            config.port + 1,
            config.feedback_port()
        );
        let mut needed = needed;
        needed.extend(["rtpbin", "udpsink", "udpsrc"]);
        if config.retransmission {
            needed.push("rtprtxsend");
        }
        let (retransmission, rtx_ms) = (config.retransmission, config.rtx_ms);
        let mut pipeline = EncodePipeline::new(
            &format!("rtp://{}:{}", config.host, config.port),
            format,
            (width, height),
            target.fps,
            &rest,
            &needed,
            move |p| {
                let rtpbin = p.by_name("rtp").ok_or("no rtpbin")?;
                if retransmission {
                    rtpbin.connect("request-aux-sender", false, move |args| {
                        let session = args.get(1)?.get::<u32>().ok()?;
                        let rtx = gst::ElementFactory::make("rtprtxsend")
                            .property("payload-type-map", pt_map(MEDIA_PT, RTX_PT))
                            .property("max-size-time", rtx_ms)
                            .build()
                            .ok()?;
                        aux_bin(session, rtx).map(|b| b.to_value())
                    });
                }
                link(p, ("pay", "src"), ("rtp", "send_rtp_sink_0"))?;
                link(p, ("rtp", "send_rtp_src_0"), ("rtp_out", "sink"))?;
                link(p, ("rtp", "send_rtcp_src_0"), ("rtcp_out", "sink"))?;
                link(p, ("rtcp_in", "src"), ("rtp", "recv_rtcp_sink_0"))?;
                quick_rtcp(&rtpbin)
            },
        )?;
        pipeline.set_end_optional(std::time::Duration::from_secs(5));
        // Written once the sockets are up, so a receiver that opens it finds the stream.
        std::fs::write(target.path, rtp_sdp(config, (width, height), target.fps))
            .map_err(|error| SinkError::Io { path: target.path.display().to_string(), error })?;
        Ok(pipeline)
    }
}

/// Registry entry for `"kind": "rtp"` outputs and `--output out.sdp`.
#[derive(Debug, Default)]
pub struct RtpOutputKind;

impl SinkKind for RtpOutputKind {
    type Config = RtpOutputConfig;

    fn extensions(&self) -> &[&str] {
        &["sdp"]
    }

    fn path_param(&self) -> &'static str {
        "sdp"
    }

    fn check(&self, config: &RtpOutputConfig) -> Result<(), SceneError> {
        config.check()
    }

    fn build(&self, target: &SinkTarget<'_>, config: RtpOutputConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(vec![Box::new(RtpSink::start(&config, target)?)])
    }
}

/// `{"kind": "rtp", "sdp": "in.sdp"}` or `{"kind": "rtp", "port": 5004}` (H.264, payload 96)
/// in `inputs`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtpInputConfig {
    /// An SDP file describing the stream (ffmpeg's `-sdp_file`, our output's `sdp`).
    #[serde(default)]
    pub sdp: Option<PathBuf>,
    /// The RTP port, without an SDP (H.264 on payload type 96, RTX on 97); RTCP on the next.
    #[serde(default)]
    pub port: Option<u16>,
    /// Where our RTCP (NACK, PLI) goes, `host:port`: the SDP's origin at the RTP port + 2 when
    /// absent (a streamlib sender's feedback port), or 127.0.0.1 without an SDP.
    #[serde(default)]
    pub feedback: Option<String>,
    /// How long the jitter buffer waits for a late or resent packet, ms. In-order packets pass
    /// at once; this is only what a loss may cost.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u32,
    /// Ask for lost packets again (NACK); the sender must keep them (RTX).
    #[serde(default = "yes")]
    pub retransmission: bool,
    /// How long the last frame stays on screen after frames stop, in ms; then nothing.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

fn default_latency_ms() -> u32 {
    100
}
fn default_hold_ms() -> u64 {
    1000
}

/// What the receiving pipeline needs to know about a stream.
#[derive(Clone, Debug, PartialEq)]
pub struct RtpStream {
    /// Caps for udpsrc (`application/x-rtp,…`).
    pub caps: String,
    /// The address packets come to (multicast groups are joined), when not any.
    pub address: Option<String>,
    /// RTP port.
    pub port: u16,
    /// Media payload type and its RTX payload type, when announced.
    pub rtx: Option<(u32, u32)>,
    /// Elements from depayloader to raw video.
    pub decode: String,
    /// Where RTCP feedback goes.
    pub feedback: SocketAddr,
}

/// The depayloader (named `depay`: rtpbin's pads are linked to it) and decoder for an RTP
/// encoding name.
fn decoder_for(encoding: &str) -> Result<String, String> {
    Ok(match encoding.to_ascii_uppercase().as_str() {
        // Slice threads only: frame threads would hold frames back.
        "H264" => "rtph264depay name=depay request-keyframe=true wait-for-keyframe=true ! h264parse ! \
                   avdec_h264 thread-type=slice max-threads=2 output-corrupt=false"
            .into(),
        "H265" => "rtph265depay name=depay request-keyframe=true ! h265parse ! avdec_h265 thread-type=slice".into(),
        "VP8" => "rtpvp8depay name=depay request-keyframe=true wait-for-keyframe=true ! vp8dec".into(),
        "VP9" => "rtpvp9depay name=depay request-keyframe=true ! vp9dec".into(),
        "RAW" => "rtpvrawdepay name=depay".into(),
        other => return Err(format!("RTP encoding {other:?} is not one we decode (H264, H265, VP8, VP9, raw)")),
    })
}

/// Reads the stream description from an SDP file (or the settings without one).
pub fn rtp_stream(config: &RtpInputConfig) -> Result<RtpStream, String> {
    let feedback_at = |host: &str, port: u16| -> Result<SocketAddr, String> {
        match &config.feedback {
            Some(f) => f.parse().map_err(|_| format!("feedback {f:?} is not host:port")),
            None => format!("{host}:{port}")
                .parse()
                .or_else(|_| format!("[{host}]:{port}").parse())
                .map_err(|_| format!("the SDP's origin {host:?} is not an IP address; set `feedback`")),
        }
    };
    let Some(path) = &config.sdp else {
        let port = config.port.ok_or("give `sdp` (a file) or `port`")?;
        return Ok(RtpStream {
            caps: format!(
                "application/x-rtp,media=video,clock-rate={VIDEO_CLOCK},encoding-name=H264,payload={MEDIA_PT},\
                 rtcp-fb-nack=(boolean)true,rtcp-fb-nack-pli=(boolean)true"
            ),
            address: None,
            port,
            rtx: config.retransmission.then_some((MEDIA_PT, RTX_PT)),
            decode: decoder_for("H264")?,
            feedback: feedback_at("127.0.0.1", port.saturating_add(2))?,
        });
    };
    let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_sdp(&text, config, &feedback_at).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_sdp(
    text: &[u8],
    config: &RtpInputConfig,
    feedback_at: &dyn Fn(&str, u16) -> Result<SocketAddr, String>,
) -> Result<RtpStream, String> {
    use gstreamer_sdp::SDPMessage;
    super::init().map_err(|e| e.to_string())?;
    // GStreamer's parser takes anything; a description starts with its version line.
    if !text.trim_ascii_start().starts_with(b"v=") {
        return Err("not an SDP description (it starts with v=0)".into());
    }
    let message = SDPMessage::parse_buffer(text).map_err(|_| "not an SDP description".to_string())?;
    let media = message.medias().find(|m| m.media() == Some("video")).ok_or("the SDP has no m=video line")?;
    let port = u16::try_from(media.port()).map_err(|_| "the m=video port is out of range")?;
    if !media.proto().is_some_and(|p| p.starts_with("RTP/")) {
        return Err(format!("m=video is {:?}, not RTP/AVP or RTP/AVPF", media.proto().unwrap_or_default()));
    }
    let formats: Vec<u32> = (0..media.formats_len()).filter_map(|i| media.format(i)?.parse().ok()).collect();
    let caps_of = |pt: u32| -> Option<gst::Caps> {
        let mut caps = media.caps_from_media(pt as i32)?;
        // GStreamer names them application/x-unknown; udpsrc wants RTP caps.
        caps.make_mut().structure_mut(0)?.set_name("application/x-rtp");
        Some(caps)
    };
    let encoding =
        |caps: &gst::Caps| caps.structure(0).and_then(|s| s.get::<String>("encoding-name").ok()).unwrap_or_default();
    let (media_pt, caps) = formats
        .iter()
        .filter_map(|&pt| caps_of(pt).map(|c| (pt, c)))
        .find(|(_, c)| !encoding(c).eq_ignore_ascii_case("rtx"))
        .ok_or("the SDP names no video payload we can read (each needs an a=rtpmap line)")?;
    // RTX: a payload whose fmtp says apt=<media pt>.
    let rtx = formats.iter().find_map(|&pt| {
        let c = caps_of(pt)?;
        let s = c.structure(0)?;
        let apt = s.get::<String>("apt").ok()?.parse::<u32>().ok()?;
        (encoding(&c).eq_ignore_ascii_case("rtx") && apt == media_pt).then_some((media_pt, pt))
    });
    let decode = decoder_for(&encoding(&caps))?;
    let address =
        media.connection(0).and_then(|c| c.address().map(|a| a.split('/').next().unwrap_or(a).to_string())).or_else(
            || message.connection().and_then(|c| c.address().map(|a| a.split('/').next().unwrap_or(a).to_string())),
        );
    let origin = message.origin().and_then(|o| o.addr().map(str::to_string)).unwrap_or_else(|| "127.0.0.1".into());
    let mut caps = caps;
    if let Some(s) = caps.make_mut().structure_mut(0) {
        // Feedback the session may send (PLI on a decoder's keyframe request, NACK on loss).
        s.set("rtcp-fb-nack", true);
        s.set("rtcp-fb-nack-pli", true);
    }
    Ok(RtpStream {
        caps: caps.to_string(),
        // Only a multicast group needs naming; a unicast address is ours to receive on anyway.
        address: address.filter(|a| a.parse::<IpAddr>().is_ok_and(|ip| ip.is_multicast())),
        port,
        rtx: rtx.filter(|_| config.retransmission),
        decode,
        feedback: feedback_at(&origin, port.saturating_add(2))?,
    })
}

/// Receives the stream for a `ThreadedSource`: `udpsrc ! rtpbin ! depay ! decode ! appsink`,
/// restarted if it fails.
pub fn rtp_producer(config: &RtpInputConfig) -> Result<LivePipeline, SourceError> {
    let stream = rtp_stream(config).map_err(SourceError::Unsupported)?;
    let label = format!("rtp :{}", stream.port);
    let address = stream.address.as_ref().map(|a| format!("address={a} auto-multicast=true")).unwrap_or_default();
    let description = format!(
        "udpsrc name=rtp_in port={port} {address} buffer-size=8388608 caps=\"{caps}\" \
         udpsrc name=rtcp_in port={rtcp} {address} \
         rtpbin name=rtp rtp-profile=avpf latency={latency} do-retransmission={rtx} \
         udpsink name=rtcp_out host={fh} port={fp} sync=false async=false \
         {decode} ! videoconvert ! {APPSINK_CAPS} ! appsink name=sink",
        port = stream.port,
        caps = stream.caps.replace('"', "\\\""),
        rtcp = stream.port + 1,
        latency = config.latency_ms,
        rtx = stream.rtx.is_some(),
        fh = stream.feedback.ip(),
        fp = stream.feedback.port(),
        decode = stream.decode,
    );
    let rtx = stream.rtx;
    let start = move || {
        let producer = GstProducer::start_live_with(&label, &description, |p| {
            let rtpbin = p.by_name("rtp").ok_or("no rtpbin")?;
            if let Some((media_pt, rtx_pt)) = rtx {
                rtpbin.connect("request-aux-receiver", false, move |args| {
                    let session = args.get(1)?.get::<u32>().ok()?;
                    let rtx = gst::ElementFactory::make("rtprtxreceive")
                        .property("payload-type-map", pt_map(media_pt, rtx_pt))
                        .build()
                        .ok()?;
                    aux_bin(session, rtx).map(|b| b.to_value())
                });
            }
            // Ask for a lost packet 5 ms after it was due and again every 10 ms until the
            // latency runs out (the defaults wait for a jitter estimate that loopback never has).
            rtpbin.connect("new-jitterbuffer", false, |args| {
                let jitterbuffer = args.get(1)?.get::<gst::Element>().ok()?;
                jitterbuffer.set_property("rtx-delay", 5i32);
                jitterbuffer.set_property("rtx-min-retry-timeout", 10i32);
                jitterbuffer.set_property("rtx-retry-timeout", 10i32);
                None
            });
            link(p, ("rtp_in", "src"), ("rtp", "recv_rtp_sink_0"))?;
            link(p, ("rtcp_in", "src"), ("rtp", "recv_rtcp_sink_0"))?;
            link(p, ("rtp", "send_rtcp_src_0"), ("rtcp_out", "sink"))?;
            quick_rtcp(&rtpbin)?;
            let depay = p.by_name("depay").ok_or("no depayloader")?;
            rtpbin.connect_pad_added(move |_, pad| {
                if !pad.name().starts_with("recv_rtp_src_") {
                    return;
                }
                let Some(sink) = depay.static_pad("sink") else { return };
                // A sender that restarted has a new SSRC: its pad replaces the old one.
                if let Some(old) = sink.peer() {
                    let _ = old.unlink(&sink);
                }
                if let Err(e) = pad.link(&sink) {
                    tracing::warn!("rtp: cannot link {}: {e:?}", pad.name());
                }
            });
            Ok(())
        })?;
        producer.set_live_queue(8);
        Ok(producer)
    };
    Ok(LivePipeline::new(&format!("rtp :{}", stream.port), Box::new(start)))
}

/// Registry entry for `"kind": "rtp"` inputs.
#[derive(Debug, Default)]
pub struct RtpInputKind;

impl InputKind for RtpInputKind {
    type Config = RtpInputConfig;

    fn path_fields(&self) -> &'static [&'static str] {
        &["sdp"]
    }

    fn check(&self, config: &RtpInputConfig) -> Result<(), SceneError> {
        match (&config.sdp, config.port) {
            (None, None) => return Err(SceneError::new(".", "give `sdp` (a file) or `port`")),
            (Some(_), Some(_)) => return Err(SceneError::new("port", "the SDP gives the port; give one or the other")),
            (None, Some(p)) if p == 0 || p > 65532 => {
                return Err(SceneError::new("port", "a port from 1 to 65532 (RTCP takes the next one)"))
            }
            _ => {}
        }
        if let Some(f) = &config.feedback {
            f.parse::<SocketAddr>().map_err(|_| SceneError::new("feedback", format!("{f:?} is not ip:port")))?;
        }
        Ok(())
    }

    fn build(
        &self,
        id: &str,
        mut config: RtpInputConfig,
        ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Source>, BuildError> {
        let at = || format!("inputs.{id}");
        config.sdp = config.sdp.map(|p| ctx.scene.resolve_path(&p));
        super::init().map_err(|e| BuildError::new(at(), SourceError::Unsupported(e.to_string())))?;
        let missing = super::missing_elements(&["udpsrc", "rtpbin", "rtprtxreceive", "rtpjitterbuffer"]);
        if !missing.is_empty() {
            return Err(BuildError::new(
                at(),
                SourceError::Unsupported(format!("GStreamer elements missing here: {}", missing.join(", "))),
            ));
        }
        let producer = rtp_producer(&config).map_err(|e| BuildError::new(at(), e))?;
        let source = ThreadedSource::spawn(id, producer, YuvColorSpace::default(), u64::MAX / 4)
            .map_err(|e| BuildError::new(id, e))?
            .with_hold(Duration::from_millis(config.hold_ms));
        Ok(Box::new(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(encoding: RtpEncoding) -> RtpOutputConfig {
        serde_json::from_value(serde_json::json!({ "sdp": "x.sdp", "port": 5004, "encoding": encoding }))
            .expect("parses")
    }

    #[test]
    fn our_sdp_reads_back_as_the_stream_we_send() {
        for encoding in [RtpEncoding::H264, RtpEncoding::Raw] {
            let sdp = rtp_sdp(&output(encoding), (640, 360), Fps::new(30, 1));
            let config: RtpInputConfig =
                serde_json::from_value(serde_json::json!({ "sdp": "in.sdp" })).expect("parses");
            let stream = parse_sdp(sdp.as_bytes(), &config, &|h, p| Ok(format!("{h}:{p}").parse().expect("addr")))
                .expect("our own SDP parses");
            assert_eq!(stream.port, 5004);
            assert_eq!(stream.rtx, Some((96, 97)), "{sdp}");
            assert_eq!(stream.feedback.port(), 5006);
            assert!(stream.caps.starts_with("application/x-rtp"), "{}", stream.caps);
            let name = if encoding == RtpEncoding::Raw { "RAW" } else { "H264" };
            assert!(stream.caps.contains(name), "{}", stream.caps);
        }
    }

    #[test]
    fn bad_descriptions_are_refused_with_a_reason() {
        let config: RtpInputConfig = serde_json::from_value(serde_json::json!({ "sdp": "in.sdp" })).expect("parses");
        let any = |h: &str, p: u16| Ok(format!("{h}:{p}").parse().expect("addr"));
        for (sdp, why) in [
            ("hello", "not an SDP"),
            ("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n", "no m=video"),
            (
                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 5004 RTP/AVP 96\r\na=rtpmap:96 MP4V-ES/90000\r\n",
                "not one we decode",
            ),
        ] {
            let e = parse_sdp(sdp.as_bytes(), &config, &any).expect_err(sdp);
            assert!(e.contains(why), "{e}");
        }
    }
}
