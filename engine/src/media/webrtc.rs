//! What WHEP outputs and WHIP inputs share: the directory the HTTP server finds them in, reading
//! a browser's SDP offer, and one offer/answer exchange with `webrtcbin` (non-trickle: the answer
//! goes back with every ICE candidate in it, as WHEP and WHIP expect from a server).

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_sdp as gst_sdp;
use gstreamer_webrtc as gst_webrtc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// Largest SDP offer taken: browsers send 5–15 KiB.
pub const MAX_OFFER_BYTES: usize = 64 * 1024;
/// How long one exchange (remote description, answer, ICE gathering) may take.
const NEGOTIATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an offer got no answer; each maps to an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// Not SDP, or SDP without what we need (400).
    #[error("bad SDP offer: {0}")]
    BadOffer(String),
    /// No codec in the offer that we send or take (406).
    #[error("{0}")]
    NoCommonCodec(String),
    /// The endpoint has as many peers as it takes (503).
    #[error("{0}")]
    Full(String),
    /// webrtcbin failed (500).
    #[error("WebRTC negotiation failed: {0}")]
    Failed(String),
}

impl OfferError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> u16 {
        match self {
            OfferError::BadOffer(_) => 400,
            OfferError::NoCommonCodec(_) => 406,
            OfferError::Full(_) => 503,
            OfferError::Failed(_) => 500,
        }
    }
}

/// A WHEP output or WHIP input: takes an SDP offer, answers it, and hangs a session up.
pub trait OfferAnswerer: Send + Sync {
    /// The session id and the SDP answer. Blocks for the negotiation (a few ms to a second).
    fn answer(&self, offer: &str) -> Result<(String, String), OfferError>;
    /// Ends session `id`; false when there is none.
    fn hang_up(&self, id: &str) -> bool;
}

/// Which side of the server an endpoint is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// An output browsers watch (`POST /whep/{output}`).
    Whep,
    /// An input browsers or OBS send to (`POST /whip/{input}`).
    Whip,
}

/// The WHEP outputs and WHIP inputs of one server, by id. Sinks and inputs register themselves
/// when built; the directory holds them weakly, so one that is dropped is gone from it.
#[derive(Clone, Default)]
pub struct WebRtcEndpoints {
    map: Arc<Mutex<EndpointMap>>,
}

type EndpointMap = HashMap<(Role, String), Weak<dyn OfferAnswerer>>;

impl std::fmt::Debug for WebRtcEndpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebRtcEndpoints")
    }
}

impl WebRtcEndpoints {
    /// Makes `endpoint` the one that answers for `id` (a rebuilt output replaces its old self).
    pub fn register(&self, role: Role, id: &str, endpoint: &Arc<dyn OfferAnswerer>) {
        if let Ok(mut map) = self.map.lock() {
            map.retain(|_, weak| weak.strong_count() > 0);
            map.insert((role, id.to_string()), Arc::downgrade(endpoint));
        }
    }

    /// The live endpoint for `id`.
    pub fn get(&self, role: Role, id: &str) -> Option<Arc<dyn OfferAnswerer>> {
        self.map.lock().ok()?.get(&(role, id.to_string()))?.upgrade()
    }
}

/// A video codec both sides of a WebRTC session can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264, packetization mode 1, with the offer's `profile-level-id`.
    H264 {
        /// The offer's payload type for it.
        payload: u8,
        /// As offered, e.g. `42e01f`.
        profile_level_id: String,
    },
    /// VP8.
    Vp8 {
        /// The offer's payload type for it.
        payload: u8,
    },
}

impl VideoCodec {
    /// The RTP caps a payloader (or depayloader) is set to, matching the offer's entry. Not the
    /// offer's `profile-level-id`: the payloader takes it from the stream's SPS (x264's
    /// constrained baseline is `42c0xx`, which browsers take for the `42e0xx` they offer).
    pub fn rtp_caps(&self) -> gst::Caps {
        match self {
            VideoCodec::H264 { payload, .. } => gst::Caps::builder("application/x-rtp")
                .field("media", "video")
                .field("encoding-name", "H264")
                .field("clock-rate", 90000i32)
                .field("payload", *payload as i32)
                .field("packetization-mode", "1")
                .build(),
            VideoCodec::Vp8 { payload } => gst::Caps::builder("application/x-rtp")
                .field("media", "video")
                .field("encoding-name", "VP8")
                .field("clock-rate", 90000i32)
                .field("payload", *payload as i32)
                .build(),
        }
    }

    /// `h264` or `vp8`.
    pub fn name(&self) -> &'static str {
        match self {
            VideoCodec::H264 { .. } => "h264",
            VideoCodec::Vp8 { .. } => "vp8",
        }
    }
}

/// Parses an offer and picks its video codec: H.264 constrained baseline (packetization mode 1)
/// when offered, else any H.264 in mode 1, else VP8, in the order `prefer` names them.
pub fn choose_video_codec(offer: &str, prefer: &[&str]) -> Result<(gst_sdp::SDPMessage, VideoCodec), OfferError> {
    if offer.len() > MAX_OFFER_BYTES {
        return Err(OfferError::BadOffer(format!("{} bytes, over the {MAX_OFFER_BYTES}-byte limit", offer.len())));
    }
    if !offer.starts_with("v=0") {
        return Err(OfferError::BadOffer("it does not start with v=0".into()));
    }
    let sdp = gst_sdp::SDPMessage::parse_buffer(offer.as_bytes())
        .map_err(|e| OfferError::BadOffer(format!("not SDP: {e}")))?;
    let video = sdp
        .medias()
        .find(|m| m.media() == Some("video") && m.port() != 0)
        .ok_or_else(|| OfferError::BadOffer("no video m-line".into()))?;
    if !sdp.medias().chain(std::iter::once(video)).any(|m| m.attribute_val("ice-ufrag").is_some())
        && sdp.attribute_val("ice-ufrag").is_none()
    {
        return Err(OfferError::BadOffer("no ICE credentials (a=ice-ufrag)".into()));
    }
    let mut h264_baseline = None;
    let mut h264_any = None;
    let mut vp8 = None;
    for format in video.formats() {
        let Ok(payload) = format.parse::<u8>() else { continue };
        let Some(caps) = video.caps_from_media(payload as i32) else { continue };
        let Some(s) = caps.structure(0) else { continue };
        let name = s.get::<&str>("encoding-name").unwrap_or_default().to_ascii_uppercase();
        match name.as_str() {
            "H264" if s.get::<&str>("packetization-mode").ok() == Some("1") => {
                // GStreamer's SDP reader turns profile-level-id into `profile`; older ones kept it.
                let profile_level_id = s.get::<&str>("profile-level-id").unwrap_or("42e01f").to_ascii_lowercase();
                let constrained = match s.get::<&str>("profile") {
                    Ok(profile) => profile == "constrained-baseline",
                    Err(_) => profile_level_id.starts_with("42e0"),
                };
                let entry = VideoCodec::H264 { payload, profile_level_id };
                // Constrained baseline is what every WebRTC H.264 decoder takes.
                if constrained && h264_baseline.is_none() {
                    h264_baseline = Some(entry);
                } else if h264_any.is_none() {
                    h264_any = Some(entry);
                }
            }
            "VP8" if vp8.is_none() => vp8 = Some(VideoCodec::Vp8 { payload }),
            _ => {}
        }
    }
    let h264 = h264_baseline.or(h264_any);
    let chosen = prefer.iter().find_map(|p| match *p {
        "h264" => h264.clone(),
        "vp8" => vp8.clone(),
        _ => None,
    });
    let chosen = chosen.ok_or_else(|| {
        OfferError::NoCommonCodec(format!(
            "the offer has none of the codecs this endpoint uses ({})",
            prefer.join(", ")
        ))
    })?;
    Ok((sdp, chosen))
}

/// Emits `signal` with `args` and a promise, and waits for its reply, bounded: a webrtcbin that
/// never answers must not hold an HTTP request.
fn call(webrtcbin: &gst::Element, signal: &str, args: &[&dyn ToValue]) -> Result<Option<gst::Structure>, OfferError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let promise = gst::Promise::with_change_func(move |reply| {
        let _ = tx.send(match reply {
            Ok(Some(s)) => match s.get::<glib::Error>("error") {
                Ok(e) => Err(e.to_string()),
                Err(_) => Ok(Some(s.to_owned())),
            },
            Ok(None) => Ok(None),
            Err(e) => Err(format!("{e:?}")),
        });
    });
    let mut values: Vec<glib::Value> = args.iter().map(|a| a.to_value()).collect();
    values.push(promise.to_value());
    webrtcbin.emit_by_name_with_values(signal, &values);
    match rx.recv_timeout(NEGOTIATION_TIMEOUT) {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(OfferError::Failed(format!("{signal}: {e}"))),
        Err(_) => {
            promise.interrupt();
            Err(OfferError::Failed(format!("{signal}: no reply in {} s", NEGOTIATION_TIMEOUT.as_secs())))
        }
    }
}

/// Sets `offer` on `webrtcbin`, answers it, and waits for ICE gathering: the answer's SDP text,
/// with candidates. Transceivers must already be set up (pads linked, directions set).
pub fn answer_offer(webrtcbin: &gst::Element, offer: gst_sdp::SDPMessage) -> Result<String, OfferError> {
    let offer = gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, offer);
    call(webrtcbin, "set-remote-description", &[&offer])?;
    let reply = call(webrtcbin, "create-answer", &[&None::<gst::Structure>])?
        .ok_or_else(|| OfferError::Failed("no answer".into()))?;
    let answer = reply
        .get::<gst_webrtc::WebRTCSessionDescription>("answer")
        .map_err(|_| OfferError::Failed("webrtcbin made no answer for this offer".into()))?;
    call(webrtcbin, "set-local-description", &[&answer])?;
    let deadline = Instant::now() + NEGOTIATION_TIMEOUT;
    while webrtcbin.property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
        != gst_webrtc::WebRTCICEGatheringState::Complete
    {
        if Instant::now() > deadline {
            return Err(OfferError::Failed("ICE gathering did not complete".into()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let local = webrtcbin
        .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
        .ok_or_else(|| OfferError::Failed("no local description".into()))?;
    local.sdp().as_text().map_err(|e| OfferError::Failed(e.to_string()))
}

/// A new session id: 128 bits from the standard library's per-process random keys and the clock,
/// not guessable from the ones before it.
pub fn session_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..2 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos());
        out += &format!("{:016x}", h.finish());
    }
    out
}

/// Calls `on_end` once when the peer connection fails or closes (a viewer that went away).
pub fn on_connection_end(webrtcbin: &gst::Element, on_end: impl Fn() + Send + Sync + 'static) {
    let fired = std::sync::atomic::AtomicBool::new(false);
    webrtcbin.connect_notify(Some("connection-state"), move |bin, _| {
        use gst_webrtc::WebRTCPeerConnectionState as S;
        let state = bin.property::<S>("connection-state");
        if matches!(state, S::Failed | S::Closed) && !fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            on_end();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROMIUM_OFFER: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 102 108\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
        a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtpmap:102 H264/90000\r\n\
        a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
        a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n";

    #[test]
    fn constrained_baseline_h264_is_chosen_over_baseline_and_vp8() {
        crate::media::init().expect("gst");
        let (_, codec) = choose_video_codec(CHROMIUM_OFFER, &["h264", "vp8"]).expect("offer");
        assert_eq!(codec, VideoCodec::H264 { payload: 108, profile_level_id: "42e01f".into() });
        let (_, codec) = choose_video_codec(CHROMIUM_OFFER, &["vp8", "h264"]).expect("offer");
        assert_eq!(codec, VideoCodec::Vp8 { payload: 96 });
    }

    #[test]
    fn bad_offers_say_what_is_wrong() {
        crate::media::init().expect("gst");
        let cases = [
            ("hello", "v=0"),
            ("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "no video"),
        ];
        for (offer, says) in cases {
            let e = choose_video_codec(offer, &["h264"]).expect_err(offer);
            assert_eq!(e.status(), 400);
            assert!(e.to_string().contains(says), "{e}");
        }
        let only_vp9 = CHROMIUM_OFFER.replace("H264", "VP9").replace("VP8", "VP9");
        assert_eq!(choose_video_codec(&only_vp9, &["h264", "vp8"]).expect_err("vp9").status(), 406);
        let huge = format!("v=0\r\n{}", "a=x\r\n".repeat(MAX_OFFER_BYTES / 4));
        assert!(choose_video_codec(&huge, &["h264"]).expect_err("huge").to_string().contains("limit"));
    }

    #[test]
    fn session_ids_differ() {
        assert_ne!(session_id(), session_id());
        assert_eq!(session_id().len(), 32);
    }
}
