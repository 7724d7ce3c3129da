//! A WHEP output: browsers watch the composition over WebRTC (`POST /whep/{output}` on the render
//! server). One encoder per codec, shared by every viewer and idle while nobody watches that
//! codec (H.264 constrained baseline; VP8 for browsers without H.264); each viewer is a branch
//! off the encoder's tee: a leaky queue (a slow viewer loses frames, the others do not wait), a
//! payloader with the viewer's payload type, and its own `webrtcbin`, which retransmits on NACK
//! and turns a PLI into a keyframe request to the shared encoder.

use super::encode::live_h264_profile;
use super::webrtc::{self, OfferAnswerer, OfferError, Role, VideoCodec, WebRtcEndpoints};
use crate::counters::Counters;
use crate::frame::{OutputFrame, PixelFormat};
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::SceneError;
use crate::sinks::{Sink, SinkError};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_webrtc as gst_webrtc;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// `{"id": "preview", "kind": "whep"}` in `outputs`: watched at `POST /whep/preview`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhepOutputConfig {
    /// Encoder bitrate, kbit/s.
    #[serde(default = "default_bitrate")]
    pub bitrate: u32,
    /// Frames between keyframes (default: two seconds); viewers also get one when they join
    /// and when they ask (PLI).
    #[serde(default)]
    pub keyframe_interval: Option<u32>,
    /// Viewers at once; more get 503.
    #[serde(default = "default_max_viewers")]
    pub max_viewers: usize,
    /// Codecs offered, in order of preference: `h264`, `vp8`.
    #[serde(default = "default_codecs")]
    pub codecs: Vec<String>,
}

fn default_bitrate() -> u32 {
    2500
}

fn default_max_viewers() -> usize {
    8
}

fn default_codecs() -> Vec<String> {
    vec!["h264".into(), "vp8".into()]
}

/// Registry entry for `"kind": "whep"` outputs. Only a render server registers it: the viewers'
/// offers come over its HTTP API, which finds the outputs in `endpoints`.
#[derive(Debug, Clone)]
pub struct WhepOutputKind {
    endpoints: WebRtcEndpoints,
}

impl WhepOutputKind {
    /// A kind whose outputs register in `endpoints`.
    pub fn new(endpoints: WebRtcEndpoints) -> Self {
        WhepOutputKind { endpoints }
    }
}

impl SinkKind for WhepOutputKind {
    type Config = WhepOutputConfig;

    fn extensions(&self) -> &[&str] {
        &[]
    }

    fn writes_files(&self) -> bool {
        false
    }

    fn path_required(&self) -> bool {
        false
    }

    fn check(&self, config: &WhepOutputConfig) -> Result<(), SceneError> {
        if !(1..=64).contains(&config.max_viewers) {
            return Err(SceneError::new("max_viewers", "between 1 and 64"));
        }
        if config.keyframe_interval == Some(0) {
            return Err(SceneError::new("keyframe_interval", "must be at least 1 frame"));
        }
        if config.codecs.is_empty() {
            return Err(SceneError::new("codecs", "name at least one of h264, vp8"));
        }
        if let Some((i, c)) = config.codecs.iter().enumerate().find(|(_, c)| !["h264", "vp8"].contains(&c.as_str())) {
            return Err(SceneError::new(format!("codecs[{i}]"), format!("{c:?}: h264 or vp8")));
        }
        Ok(())
    }

    fn build(&self, target: &SinkTarget<'_>, config: WhepOutputConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        if target.output.is_empty() {
            return Err(SinkError::Unsupported("a whep output needs an id (its URL is /whep/{id})".into()));
        }
        let sink = WhepSink::start(&config, target)?;
        self.endpoints.register(Role::Whep, target.output, &sink.endpoint);
        Ok(vec![Box::new(sink)])
    }
}

#[derive(Debug, Default)]
struct WhepStats {
    viewers: AtomicU64,
    joined: AtomicU64,
    left: AtomicU64,
    refused: AtomicU64,
    frames_sent: AtomicU64,
}

impl Counters for WhepStats {
    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            ("viewers", self.viewers.load(Ordering::Relaxed)),
            ("viewers_joined", self.joined.load(Ordering::Relaxed)),
            ("viewers_left", self.left.load(Ordering::Relaxed)),
            ("offers_refused", self.refused.load(Ordering::Relaxed)),
            ("frames_sent", self.frames_sent.load(Ordering::Relaxed)),
        ])
    }
}

/// One viewer's branch.
struct Viewer {
    codec: &'static str,
    tee_pad: gst::Pad,
    elements: Vec<gst::Element>,
}

/// What the sink and the HTTP side share.
struct Viewers {
    pipeline: gst::Pipeline,
    /// Per codec: the encoder's gate (a valve) and the tee viewers hang off.
    branches: HashMap<&'static str, (gst::Element, gst::Element)>,
    codecs: Vec<&'static str>,
    max_viewers: usize,
    viewers: Mutex<HashMap<String, Viewer>>,
    /// Sessions whose peer connection ended, removed on the sink's thread (not on webrtcbin's).
    ended: Arc<Mutex<Vec<String>>>,
    stats: Arc<WhepStats>,
}

impl Viewers {
    fn add(&self, offer: &str) -> Result<(String, String), OfferError> {
        let refuse = |e: OfferError| {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
            e
        };
        let (sdp, codec) = webrtc::choose_video_codec(offer, &self.codecs).map_err(refuse)?;
        let id = webrtc::session_id();
        {
            let viewers = self.viewers.lock().map_err(|_| OfferError::Failed("poisoned".into()))?;
            if viewers.len() >= self.max_viewers {
                return Err(refuse(OfferError::Full(format!(
                    "this output has its {} viewers; try again later",
                    self.max_viewers
                ))));
            }
        }
        let viewer = self.branch(&id, &codec).map_err(|e| refuse(OfferError::Failed(e)))?;
        let webrtcbin = viewer.elements.last().cloned().ok_or_else(|| OfferError::Failed("no webrtcbin".into()))?;
        let codec_name = viewer.codec;
        if let Ok(mut viewers) = self.viewers.lock() {
            viewers.insert(id.clone(), viewer);
        }
        self.update_gates();
        match webrtc::answer_offer(&webrtcbin, sdp) {
            Ok(answer) => {
                self.stats.viewers.fetch_add(1, Ordering::Relaxed);
                self.stats.joined.fetch_add(1, Ordering::Relaxed);
                tracing::info!("whep: viewer {id} joined ({codec_name})");
                Ok((id, answer))
            }
            Err(e) => {
                self.remove(&id);
                Err(refuse(e))
            }
        }
    }

    /// queue ! payloader ! capssetter ! webrtcbin, linked to the codec's tee and playing.
    fn branch(&self, id: &str, codec: &VideoCodec) -> Result<Viewer, String> {
        let name = codec.name();
        let (_, tee) = self.branches.get(name).ok_or_else(|| format!("no {name} encoder"))?;
        let make = |factory: &str| gst::ElementFactory::make(factory).build().map_err(|e| format!("{factory}: {e}"));
        let queue = make("queue")?;
        queue.set_property_from_str("leaky", "downstream");
        queue.set_property("max-size-buffers", 30u32);
        queue.set_property("max-size-bytes", 0u32);
        queue.set_property("max-size-time", 0u64);
        let pay = match codec {
            VideoCodec::H264 { payload, .. } => {
                let pay = make("rtph264pay")?;
                pay.set_property("pt", *payload as u32);
                pay.set_property("config-interval", -1i32);
                pay.set_property_from_str("aggregate-mode", "zero-latency");
                pay
            }
            VideoCodec::Vp8 { payload } => {
                let pay = make("rtpvp8pay")?;
                pay.set_property("pt", *payload as u32);
                pay.set_property_from_str("picture-id-mode", "15-bit");
                pay
            }
        };
        // The offer's own profile-level-id on our caps: webrtcbin matches them to the offer by
        // intersection, and x264's SPS says 42c0xx where browsers offer 42e0xx (both
        // constrained baseline).
        let filter = make("capssetter")?;
        let mut caps = codec.rtp_caps();
        if let (VideoCodec::H264 { profile_level_id, .. }, Some(s)) = (codec, caps.make_mut().structure_mut(0)) {
            s.set("profile-level-id", profile_level_id.as_str());
        }
        filter.set_property("caps", caps);
        let webrtcbin = make("webrtcbin")?;
        webrtcbin.set_property_from_str("bundle-policy", "max-bundle");
        let elements = vec![queue.clone(), pay, filter.clone(), webrtcbin.clone()];
        self.pipeline.add_many(&elements).map_err(|e| e.to_string())?;
        let cleanup = |why: String| {
            for e in &elements {
                let _ = e.set_state(gst::State::Null);
                let _ = self.pipeline.remove(e);
            }
            why
        };
        gst::Element::link_many(&elements[..3]).map_err(|e| cleanup(e.to_string()))?;
        let sink =
            webrtcbin.request_pad_simple("sink_%u").ok_or_else(|| cleanup("webrtcbin gave no sink pad".into()))?;
        filter
            .static_pad("src")
            .ok_or_else(|| cleanup("capssetter has no src pad".into()))?
            .link(&sink)
            .map_err(|e| cleanup(format!("capssetter ! webrtcbin: {e:?}")))?;
        let transceiver = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        transceiver.set_property("direction", gst_webrtc::WebRTCRTPTransceiverDirection::Sendonly);
        transceiver.set_property("codec-preferences", codec.rtp_caps());
        if transceiver.find_property("do-nack").is_some() {
            transceiver.set_property("do-nack", true);
        }
        let (ended, session, queue_sink) = (self.ended.clone(), id.to_string(), queue.static_pad("sink"));
        webrtc::on_connection_end(&webrtcbin, move || {
            if let Ok(mut e) = ended.lock() {
                e.push(session.clone());
            }
        });
        // The viewer's first picture: a keyframe as soon as its connection is up.
        webrtcbin.connect_notify(Some("connection-state"), move |bin, _| {
            let state = bin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
            if state == gst_webrtc::WebRTCPeerConnectionState::Connected {
                if let Some(pad) = &queue_sink {
                    pad.push_event(gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build());
                }
            }
        });
        for e in &elements {
            e.sync_state_with_parent().map_err(|e| cleanup(e.to_string()))?;
        }
        let tee_pad = tee.request_pad_simple("src_%u").ok_or_else(|| cleanup("the tee gave no pad".into()))?;
        let queue_sink = queue.static_pad("sink").ok_or_else(|| cleanup("queue has no sink pad".into()))?;
        if let Err(e) = tee_pad.link(&queue_sink) {
            tee.release_request_pad(&tee_pad);
            return Err(cleanup(format!("tee ! queue: {e:?}")));
        }
        Ok(Viewer { codec: name, tee_pad, elements })
    }

    fn remove(&self, id: &str) -> bool {
        let Some(viewer) = self.viewers.lock().ok().and_then(|mut v| v.remove(id)) else { return false };
        if let Some(tee) = viewer.tee_pad.parent_element() {
            if let Some(peer) = viewer.tee_pad.peer() {
                let _ = viewer.tee_pad.unlink(&peer);
            }
            tee.release_request_pad(&viewer.tee_pad);
        }
        for e in &viewer.elements {
            let _ = e.set_state(gst::State::Null);
            let _ = self.pipeline.remove(e);
        }
        self.update_gates();
        true
    }

    /// Encoders run only for codecs somebody watches.
    fn update_gates(&self) {
        let watched: Vec<&str> = self.viewers.lock().map(|v| v.values().map(|v| v.codec).collect()).unwrap_or_default();
        for (name, (gate, _)) in &self.branches {
            gate.set_property("drop", !watched.contains(name));
        }
    }

    fn count(&self) -> usize {
        self.viewers.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Drops the viewers whose connection ended (closed tab, failed ICE).
    fn reap(&self) {
        let ended: Vec<String> = self.ended.lock().map(|mut e| std::mem::take(&mut *e)).unwrap_or_default();
        for id in ended {
            if self.remove(&id) {
                self.left();
                tracing::info!("whep: viewer {id} left");
            }
        }
    }

    fn left(&self) {
        self.stats.viewers.fetch_sub(1, Ordering::Relaxed);
        self.stats.left.fetch_add(1, Ordering::Relaxed);
    }
}

impl OfferAnswerer for Viewers {
    fn answer(&self, offer: &str) -> Result<(String, String), OfferError> {
        self.reap();
        self.add(offer)
    }

    fn hang_up(&self, id: &str) -> bool {
        let removed = self.remove(id);
        if removed {
            self.left();
            tracing::info!("whep: viewer {id} hung up");
        }
        removed
    }
}

/// The sink of a `whep` output.
pub struct WhepSink {
    appsrc: gst_app::AppSrc,
    info: gst_video::VideoInfo,
    viewers: Arc<Viewers>,
    /// The same object as `viewers`, as the directory holds it.
    endpoint: Arc<dyn OfferAnswerer>,
    bus: gst::Bus,
}

impl WhepSink {
    /// Starts the encoders (gated shut until a viewer comes).
    pub fn start(config: &WhepOutputConfig, target: &SinkTarget<'_>) -> Result<Self, SinkError> {
        super::init().map_err(|e| SinkError::Unsupported(e.to_string()))?;
        let mut needed = vec!["webrtcbin", "nicesrc", "dtlssrtpenc", "valve", "appsrc", "capssetter"];
        let codecs: Vec<&'static str> =
            config.codecs.iter().filter_map(|c| ["h264", "vp8"].into_iter().find(|k| k == c)).collect();
        for codec in &codecs {
            needed.extend(match *codec {
                "h264" => ["x264enc", "rtph264pay"],
                _ => ["vp8enc", "rtpvp8pay"],
            });
        }
        let missing = super::missing_elements(&needed);
        if !missing.is_empty() {
            return Err(SinkError::Unsupported(format!(
                "whep: GStreamer elements missing here: {} (install gstreamer1.0-nice, gstreamer1.0-plugins-bad)",
                missing.join(", ")
            )));
        }
        let (caps, info) = super::encode::live_nv12(target, "WebRTC video")?;
        let gop = config.keyframe_interval.unwrap_or_else(|| (target.fps.as_f64() * 2.0).round().max(1.0) as u32);
        // Frames are stamped with the pipeline's running time when pushed (`do-timestamp`): a
        // viewer sees each as soon as it is encoded, whatever the scene's pts.
        let mut launch = format!(
            "appsrc name=src is-live=true format=time do-timestamp=true block=false leaky-type=downstream \
             max-bytes={} caps=\"{caps}\" ! tee name=raw allow-not-linked=true",
            info.size() * 2
        );
        for codec in &codecs {
            let encoder = match *codec {
                "h264" => live_h264_profile(config.bitrate, gop, "constrained-baseline"),
                _ => format!(
                    "videoconvert ! vp8enc deadline=1 cpu-used=8 end-usage=cbr target-bitrate={} \
                     keyframe-max-dist={gop} lag-in-frames=0 error-resilient=default threads=2",
                    config.bitrate.max(50) * 1000
                ),
            };
            launch += &format!(
                " raw. ! valve name=gate_{codec} drop=true ! queue max-size-buffers=2 leaky=downstream ! \
                 {encoder} ! tee name=tee_{codec} allow-not-linked=true"
            );
        }
        let pipeline = gst::parse::launch_full(&launch, None, gst::ParseFlags::FATAL_ERRORS)
            .map_err(|e| SinkError::Encode(format!("whep: cannot build `{launch}`: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| SinkError::Encode("whep: not a pipeline".into()))?;
        let by_name = |n: &str| pipeline.by_name(n).ok_or_else(|| SinkError::Encode(format!("whep: no {n}")));
        let appsrc = by_name("src")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| SinkError::Encode("whep: src is not an appsrc".into()))?;
        let mut branches = HashMap::new();
        for codec in &codecs {
            branches.insert(*codec, (by_name(&format!("gate_{codec}"))?, by_name(&format!("tee_{codec}"))?));
        }
        let bus = pipeline.bus().ok_or_else(|| SinkError::Encode("whep: no bus".into()))?;
        if pipeline.set_state(gst::State::Playing).is_err() {
            let why = super::bus_error(&bus).unwrap_or_else(|| "the pipeline refused to start".into());
            let _ = pipeline.set_state(gst::State::Null);
            return Err(SinkError::Encode(format!("whep: {why}")));
        }
        let viewers = Arc::new(Viewers {
            pipeline,
            branches,
            codecs,
            max_viewers: config.max_viewers,
            viewers: Mutex::default(),
            ended: Arc::default(),
            stats: Arc::default(),
        });
        let endpoint: Arc<dyn OfferAnswerer> = viewers.clone();
        Ok(WhepSink { appsrc, info, viewers, endpoint, bus })
    }

    /// What answers this output's offers (for a server of your own; the render server's
    /// directory finds it by output id).
    pub fn endpoint(&self) -> Arc<dyn OfferAnswerer> {
        self.endpoint.clone()
    }

    fn stop(&mut self) {
        let ids: Vec<String> = self.viewers.viewers.lock().map(|v| v.keys().cloned().collect()).unwrap_or_default();
        for id in ids {
            self.viewers.hang_up(&id);
        }
        let _ = self.viewers.pipeline.set_state(gst::State::Null);
    }
}

impl Sink for WhepSink {
    fn format(&self) -> PixelFormat {
        PixelFormat::Nv12
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        self.viewers.reap();
        // A viewer's webrtcbin that fails (its peer gone bad) must not end the output: its
        // errors are logged and the viewer is dropped when its connection state says so.
        while let Some(msg) = self.bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]) {
            if let gst::MessageView::Error(e) = msg.view() {
                tracing::warn!("whep: {}", super::describe_error(e));
            }
        }
        if self.viewers.count() == 0 {
            return Ok(());
        }
        let mut buffer = super::encode::frame_buffer(&self.info, frame);
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::NONE);
            b.set_dts(gst::ClockTime::NONE);
        }
        self.appsrc
            .push_buffer(buffer)
            .map_err(|e| SinkError::Encode(format!("whep: the encoder refused a frame: {e:?}")))?;
        self.viewers.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.stop();
        Ok(())
    }

    fn counters(&self) -> Option<Arc<dyn Counters>> {
        Some(self.viewers.stats.clone())
    }
}

impl Drop for WhepSink {
    fn drop(&mut self) {
        self.stop();
    }
}
