//! A WHIP input: a browser's camera (or OBS, or GStreamer's `whipsink`) becomes a scene input
//! (`POST /whip/{input}` on the render server). One publisher at a time: a new offer replaces the
//! session before it. Each session is its own pipeline, `webrtcbin ! decodebin ! videoconvert !
//! appsink`, built on the HTTP thread and handed to the input's producer thread, which shows the
//! newest session's frames and holds the last one when the publisher goes.

use super::decode::{GstProducer, APPSINK_CAPS};
use super::webrtc::{self, OfferAnswerer, OfferError, Role, WebRtcEndpoints};
use crate::counters::Counters;
use crate::frame::TimestampedFrame;
use crate::registry::{BuildContext, BuildError, InputKind};
use crate::sources::{FrameProducer, Source, SourceError, ThreadedSource};
use gstreamer as gst;
use gstreamer::prelude::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// `{"kind": "whip"}` in `inputs`: published to at `POST /whip/{id}`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhipInputConfig {
    /// How long the last frame stays after the publisher stops, ms.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    /// The jitter buffer's wait for late or resent packets, ms.
    #[serde(default = "default_latency_ms")]
    pub latency_ms: u32,
}

fn default_hold_ms() -> u64 {
    1000
}

fn default_latency_ms() -> u32 {
    100
}

/// Registry entry for `"kind": "whip"` inputs; only a render server registers it.
#[derive(Debug, Clone)]
pub struct WhipInputKind {
    endpoints: WebRtcEndpoints,
}

impl WhipInputKind {
    /// A kind whose inputs register in `endpoints`.
    pub fn new(endpoints: WebRtcEndpoints) -> Self {
        WhipInputKind { endpoints }
    }
}

impl InputKind for WhipInputKind {
    type Config = WhipInputConfig;

    fn build(&self, id: &str, config: WhipInputConfig, _ctx: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let what = format!("inputs.{id}");
        super::init().map_err(|e| BuildError::new(&what, e))?;
        let missing = super::missing_elements(&["webrtcbin", "nicesrc", "dtlssrtpdec", "decodebin"]);
        if !missing.is_empty() {
            return Err(BuildError::new(
                what,
                format!("GStreamer elements missing here: {} (install gstreamer1.0-nice)", missing.join(", ")),
            ));
        }
        let sessions = Arc::new(Sessions {
            label: format!("whip {id}"),
            latency_ms: config.latency_ms,
            pending: Mutex::default(),
            current: Mutex::default(),
            ended: Mutex::default(),
            stats: Arc::default(),
        });
        let endpoint: Arc<dyn OfferAnswerer> = sessions.clone();
        self.endpoints.register(Role::Whip, id, &endpoint);
        let producer = WhipProducer { sessions, _endpoint: endpoint, running: None };
        let source = ThreadedSource::spawn(id, producer, crate::YuvColorSpace::default(), u64::MAX / 4)
            .map_err(|e| BuildError::new(id, e))?
            .with_hold(Duration::from_millis(config.hold_ms));
        Ok(Box::new(source))
    }
}

#[derive(Debug, Default)]
struct WhipStats {
    sessions: AtomicU64,
    frames: AtomicU64,
    refused: AtomicU64,
}

impl Counters for WhipStats {
    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            ("sessions", self.sessions.load(Ordering::Relaxed)),
            ("frames", self.frames.load(Ordering::Relaxed)),
            ("offers_refused", self.refused.load(Ordering::Relaxed)),
        ])
    }
}

/// What the HTTP side and the producer thread share.
struct Sessions {
    label: String,
    latency_ms: u32,
    /// A negotiated session the producer has not taken yet.
    pending: Mutex<Option<(String, GstProducer)>>,
    /// The id of the session the producer shows.
    current: Mutex<Option<String>>,
    /// A session hung up (`DELETE`) that the producer should drop.
    ended: Mutex<Option<String>>,
    stats: Arc<WhipStats>,
}

impl Sessions {
    fn start(&self, offer: &str) -> Result<(String, String), OfferError> {
        let (sdp, _) = webrtc::choose_video_codec(offer, &["h264", "vp8"])?;
        let description = format!(
            "webrtcbin name=webrtc bundle-policy=max-bundle latency={} \
             videoconvert name=conv ! {APPSINK_CAPS} ! appsink name=sink",
            self.latency_ms
        );
        let producer = GstProducer::start_live_with(&self.label, &description, |pipeline| {
            let webrtcbin = pipeline.by_name("webrtc").ok_or("no webrtcbin")?;
            let conv = pipeline.by_name("conv").ok_or("no videoconvert")?;
            let bin = pipeline.clone();
            // Video goes to the decoder; anything else the publisher sends (audio) is dropped.
            webrtcbin.connect_pad_added(move |_, pad| {
                let is_video = pad
                    .current_caps()
                    .and_then(|c| c.structure(0).and_then(|s| s.get::<String>("media").ok()))
                    .is_some_and(|m| m == "video");
                let Ok(next) = gst::ElementFactory::make(if is_video { "decodebin" } else { "fakesink" }).build()
                else {
                    return;
                };
                if bin.add(&next).is_err() {
                    return;
                }
                if is_video {
                    let conv = conv.clone();
                    next.connect_pad_added(move |_, decoded| {
                        if let Some(sink) = conv.static_pad("sink").filter(|s| !s.is_linked()) {
                            let _ = decoded.link(&sink);
                        }
                    });
                }
                let _ = next.sync_state_with_parent();
                if let Some(sink) = next.static_pad("sink") {
                    let _ = pad.link(&sink);
                }
            });
            Ok(())
        })
        .map_err(|e| OfferError::Failed(e.to_string()))?;
        let webrtcbin = producer.element("webrtc").ok_or_else(|| OfferError::Failed("no webrtcbin".into()))?;
        let answer = webrtc::answer_offer(&webrtcbin, sdp)?;
        let id = webrtc::session_id();
        if let Ok(mut p) = self.pending.lock() {
            *p = Some((id.clone(), producer));
        }
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        tracing::info!("{}: publisher {id} joined", self.label);
        Ok((id, answer))
    }
}

impl OfferAnswerer for Sessions {
    fn answer(&self, offer: &str) -> Result<(String, String), OfferError> {
        self.start(offer).inspect_err(|_| {
            self.stats.refused.fetch_add(1, Ordering::Relaxed);
        })
    }

    fn hang_up(&self, id: &str) -> bool {
        let pending = self.pending.lock().ok().and_then(|mut p| p.take_if(|(s, _)| s == id));
        if pending.is_some() {
            return true;
        }
        let current = self.current.lock().ok().is_some_and(|c| c.as_deref() == Some(id));
        if current {
            if let Ok(mut e) = self.ended.lock() {
                *e = Some(id.to_string());
            }
        }
        current
    }
}

/// The producer thread's side: the running session's pipeline.
struct WhipProducer {
    sessions: Arc<Sessions>,
    /// Keeps the directory's entry alive as long as the input.
    _endpoint: Arc<dyn OfferAnswerer>,
    running: Option<GstProducer>,
}

impl WhipProducer {
    fn drop_running(&mut self) {
        self.running = None;
        if let Ok(mut c) = self.sessions.current.lock() {
            *c = None;
        }
    }
}

impl FrameProducer for WhipProducer {
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError> {
        if let Some((id, producer)) = self.sessions.pending.lock().ok().and_then(|mut p| p.take()) {
            self.running = Some(producer);
            if let Ok(mut c) = self.sessions.current.lock() {
                *c = Some(id);
            }
        }
        let hung_up = self.sessions.ended.lock().ok().and_then(|mut e| e.take());
        if hung_up.is_some() && *self.sessions.current.lock().map_err(|_| SourceError::NotYet)? == hung_up {
            tracing::info!("{}: publisher hung up", self.sessions.label);
            self.drop_running();
        }
        let Some(running) = self.running.as_mut() else {
            std::thread::sleep(Duration::from_millis(50));
            return Err(SourceError::NotYet);
        };
        match running.next_frame() {
            Ok(Some(frame)) => {
                self.sessions.stats.frames.fetch_add(1, Ordering::Relaxed);
                Ok(Some(frame))
            }
            Err(SourceError::NotYet) => Err(SourceError::NotYet),
            // The publisher's stream ended or failed: wait for the next one, holding the last frame.
            Ok(None) | Err(_) => {
                self.drop_running();
                Err(SourceError::NotYet)
            }
        }
    }

    fn is_finite(&self) -> bool {
        false
    }

    fn is_live(&self) -> bool {
        true
    }

    fn counters(&self) -> Option<Arc<dyn Counters>> {
        Some(self.sessions.stats.clone())
    }
}
