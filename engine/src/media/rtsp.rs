//! An RTSP server output (gst-rtsp-server): NVRs, VLC, ffplay and OBS pull
//! `rtsp://host:8554/live`. One shared media for all clients: the first client starts the
//! encoder, later ones join it (SPS/PPS in the SDP and before every keyframe, one a second), and
//! when the last leaves the encoder stops. Frames reach it through an appsrc that the server's
//! media-configure hands us; no client, no encoding.

use super::encode::live_h264;
use crate::counters::Counters;
use crate::frame::{OutputFrame, PixelFormat};
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::SceneError;
use crate::sinks::{Sink, SinkError};
use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use gstreamer_video as gst_video;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// `{"kind": "rtsp", "port": 8554, "path": "/live"}` in `outputs` (`--output rtsp://0.0.0.0:8554/live`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtspOutputConfig {
    /// The mount point, `/live`; or a whole `rtsp://address:port/path` URL.
    pub path: String,
    /// TCP port of the server.
    #[serde(default)]
    pub port: Option<u16>,
    /// The address to listen on: loopback by default, `0.0.0.0` for the LAN.
    #[serde(default)]
    pub address: Option<String>,
    /// H.264 bitrate, kbit/s.
    #[serde(default = "default_bitrate")]
    pub bitrate: u32,
    /// Frames between keyframes (a client joining waits for one); one second's worth when absent.
    #[serde(default)]
    pub keyframe_interval: Option<u32>,
}

fn default_bitrate() -> u32 {
    4000
}

/// Where the server listens and what it serves: (address, port, mount path).
fn endpoint(config: &RtspOutputConfig) -> Result<(String, u16, String), String> {
    let (address, port, path) = match config.path.strip_prefix("rtsp://") {
        Some(rest) => {
            let (authority, path) = rest.split_once('/').ok_or_else(|| format!("{:?}: no /path", config.path))?;
            let (host, port) = authority.rsplit_once(':').unwrap_or((authority, "8554"));
            let port = port.parse::<u16>().map_err(|_| format!("{:?}: port {port:?} is not a number", config.path))?;
            (host.to_string(), port, format!("/{path}"))
        }
        None => (String::new(), 0, config.path.clone()),
    };
    let address = config.address.clone().unwrap_or(if address.is_empty() { "127.0.0.1".into() } else { address });
    address
        .parse::<std::net::IpAddr>()
        .map_err(|_| format!("address {address:?} is not an IP address to listen on"))?;
    let port = config.port.unwrap_or(if port == 0 { 8554 } else { port });
    if port == 0 {
        return Err("port 0: choose the port clients connect to".into());
    }
    if !path.starts_with('/') || path.len() < 2 || path.contains(['?', '#', ' ']) {
        return Err(format!("path {path:?}: a mount point such as /live"));
    }
    Ok((address, port, path))
}

#[derive(Debug, Default)]
struct RtspStats {
    clients: AtomicU64,
    frames_sent: AtomicU64,
}

impl Counters for RtspStats {
    fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        BTreeMap::from([
            ("clients", self.clients.load(Ordering::Relaxed)),
            ("frames_sent", self.frames_sent.load(Ordering::Relaxed)),
        ])
    }
}

/// The sink of an `rtsp` output: the server on its own GLib main loop, and the appsrcs of the
/// media now playing.
pub struct RtspSink {
    sources: Arc<Mutex<Vec<gst_app::AppSrc>>>,
    info: gst_video::VideoInfo,
    main_loop: glib::MainLoop,
    context: glib::MainContext,
    source_id: Option<glib::SourceId>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<RtspStats>,
}

impl RtspSink {
    /// Binds the port and starts serving; encoding starts with the first client.
    pub fn start(config: &RtspOutputConfig, target: &SinkTarget<'_>) -> Result<Self, SinkError> {
        super::init().map_err(|e| SinkError::Unsupported(e.to_string()))?;
        let (address, port, path) = endpoint(config).map_err(SinkError::Unsupported)?;
        let missing = super::missing_elements(&["x264enc", "h264parse", "rtph264pay", "appsrc"]);
        if !missing.is_empty() {
            return Err(SinkError::Unsupported(format!("GStreamer elements missing here: {}", missing.join(", "))));
        }
        let (caps, info) = super::encode::live_nv12(target, "H.264 4:2:0")?;
        let gop = config.keyframe_interval.unwrap_or_else(|| target.fps.as_f64().round().max(1.0) as u32);
        // A slow client must not hold frames back for the others: the queue keeps the newest.
        let launch = format!(
            "( appsrc name=src is-live=true format=time do-timestamp=true block=false max-bytes={} caps=\"{caps}\" ! \
             queue max-size-buffers=2 leaky=downstream ! {} ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
            info.size() * 2,
            live_h264(config.bitrate, gop)
        );
        let server = rtsp::RTSPServer::new();
        server.set_address(&address);
        server.set_service(&port.to_string());
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(&launch);
        factory.set_shared(true);
        let sources: Arc<Mutex<Vec<gst_app::AppSrc>>> = Arc::default();
        let stats = Arc::new(RtspStats::default());
        let (list, st) = (sources.clone(), stats.clone());
        factory.connect_media_configure(move |_, media| {
            let Some(src) = media
                .element()
                .downcast::<gst::Bin>()
                .ok()
                .and_then(|b| b.by_name_recurse_up("src"))
                .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            else {
                return;
            };
            if let Ok(mut l) = list.lock() {
                l.push(src.clone());
            }
            let list = list.clone();
            media.connect_unprepared(move |_| {
                if let Ok(mut l) = list.lock() {
                    l.retain(|s| s != &src);
                }
            });
        });
        server.connect_client_connected(move |_, client| {
            st.clients.fetch_add(1, Ordering::Relaxed);
            let st = st.clone();
            client.connect_closed(move |_| {
                st.clients.fetch_sub(1, Ordering::Relaxed);
            });
        });
        server
            .mount_points()
            .ok_or_else(|| SinkError::Encode("the RTSP server has no mount points".into()))?
            .add_factory(&path, factory);
        let context = glib::MainContext::new();
        let source_id = server
            .attach(Some(&context))
            .map_err(|_| SinkError::Unsupported(format!("cannot listen on {address}:{port} for RTSP (in use?)")))?;
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let (ml, ctx) = (main_loop.clone(), context.clone());
        let thread = std::thread::Builder::new()
            .name("streamlib rtsp".into())
            .spawn(move || {
                let _ = ctx.with_thread_default(|| ml.run());
            })
            .map_err(|e| SinkError::Encode(format!("cannot start the RTSP thread: {e}")))?;
        tracing::info!("rtsp: serving rtsp://{address}:{port}{path}");
        Ok(RtspSink { sources, info, main_loop, context, source_id: Some(source_id), thread: Some(thread), stats })
    }

    fn stop(&mut self) {
        // The listening socket's source lives on our own context (SourceId::remove looks in
        // the default one): destroying it closes the port.
        if let Some(source) = self.source_id.take().and_then(|id| self.context.find_source_by_id(&id)) {
            source.destroy();
        }
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Sink for RtspSink {
    fn format(&self) -> PixelFormat {
        PixelFormat::Nv12
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        let sources = self.sources.lock().map(|l| l.clone()).unwrap_or_default();
        if sources.is_empty() {
            return Ok(());
        }
        let mut buffer = super::encode::frame_buffer(&self.info, frame);
        // Stamped by appsrc with the media's running time when pushed (`do-timestamp`).
        if let Some(b) = buffer.get_mut() {
            b.set_pts(gst::ClockTime::NONE);
            b.set_dts(gst::ClockTime::NONE);
        }
        for src in sources {
            // A media that is going away refuses; the others still get the frame.
            let _ = src.push_buffer(buffer.clone());
        }
        self.stats.frames_sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.stop();
        Ok(())
    }

    fn counters(&self) -> Option<Arc<dyn Counters>> {
        Some(self.stats.clone())
    }
}

impl Drop for RtspSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Registry entry for `"kind": "rtsp"` outputs and `--output rtsp://…`.
#[derive(Debug, Default)]
pub struct RtspOutputKind;

impl SinkKind for RtspOutputKind {
    type Config = RtspOutputConfig;

    fn extensions(&self) -> &[&str] {
        &[]
    }

    fn schemes(&self) -> &[&str] {
        &["rtsp"]
    }

    fn path_param(&self) -> &'static str {
        "path"
    }

    fn writes_files(&self) -> bool {
        false
    }

    fn check(&self, config: &RtspOutputConfig) -> Result<(), SceneError> {
        endpoint(config).map_err(|m| SceneError::new("path", m))?;
        if config.keyframe_interval == Some(0) {
            return Err(SceneError::new("keyframe_interval", "must be at least 1 frame"));
        }
        Ok(())
    }

    fn build(&self, target: &SinkTarget<'_>, config: RtspOutputConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        Ok(vec![Box::new(RtspSink::start(&config, target)?)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(path: &str) -> RtspOutputConfig {
        serde_json::from_value(serde_json::json!({ "path": path })).expect("config")
    }

    #[test]
    fn endpoints_come_from_the_path_or_a_url() {
        assert_eq!(endpoint(&config("/live")), Ok(("127.0.0.1".into(), 8554, "/live".into())));
        assert_eq!(endpoint(&config("rtsp://0.0.0.0:9554/cam/1")), Ok(("0.0.0.0".into(), 9554, "/cam/1".into())));
        for bad in ["live", "/", "rtsp://host:x/a", "rtsp://localhost:8554/a", "/a b"] {
            assert!(endpoint(&config(bad)).is_err(), "{bad}");
        }
    }
}
