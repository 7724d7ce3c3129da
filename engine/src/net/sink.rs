//! The `network` output: frames encoded once per output and fanned out to every receiver, each
//! behind its own bounded queue and credit (a slow receiver loses frames, nobody else does).

use super::tcp::{self, Incoming, NetAddress, PacketReader, Role};
use super::unix_ns;
use super::wire::{self, AlphaMode, ByeReason, Codec, Compression, Control, Hello, MessageType, WireFrame, WireTiming};
use crate::frame::{OutputFrame, PixelFormat};
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::SceneError;
use crate::sinks::{Sink, SinkError};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Frames queued per receiver beyond what its socket holds.
const PEER_QUEUE: usize = 2;
/// Receivers one output serves at most; more are told `BYE overloaded`.
const MAX_PEERS: usize = 16;

/// How the output encodes frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetCodec {
    /// Uncompressed planes (optionally LZ4), exact pixels.
    #[default]
    Raw,
    /// JPEG through GStreamer (not in this version).
    Jpeg,
    /// H.264 through GStreamer (not in this version).
    H264,
}

/// Pixel layout of a raw network output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawFormat {
    /// 4:2:0 planar, 1.5 bytes a pixel.
    #[default]
    I420,
    /// 4:2:0 with interleaved chroma.
    Nv12,
    /// Premultiplied RGBA, 4 bytes a pixel, alpha kept.
    Rgba,
}

/// `{"kind": "network", "url": "tcp://0.0.0.0:9000", ...}` in a scene's `outputs`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkOutputConfig {
    /// `tcp://host:port`, listening by default (`?mode=connect` to push to a listening input).
    pub url: String,
    /// `raw` (default); `jpeg` and `h264` are refused until they are built.
    #[serde(default)]
    pub codec: NetCodec,
    /// Raw pixel layout: `i420` (default), `nv12` or `rgba`.
    #[serde(default)]
    pub format: RawFormat,
    /// Raw payload compression: `none` (default) or `lz4`.
    #[serde(default)]
    pub compression: Compression,
    /// The stream id receivers see.
    #[serde(default = "one")]
    pub stream_id: u32,
}

fn one() -> u32 {
    1
}

impl NetworkOutputConfig {
    fn pixel_format(&self) -> PixelFormat {
        match self.format {
            RawFormat::I420 => PixelFormat::I420,
            RawFormat::Nv12 => PixelFormat::Nv12,
            RawFormat::Rgba => PixelFormat::Rgba8,
        }
    }
}

/// Counters of a network output.
#[derive(Debug, Default)]
pub struct NetOutputStats {
    /// Receivers connected now.
    pub peers: AtomicU64,
    /// Frame copies sent to receivers.
    pub sent: AtomicU64,
    /// Frame copies not sent: a receiver without credit or with a full queue.
    pub dropped: AtomicU64,
    /// Receivers that connected so far.
    pub connections: AtomicU64,
}

struct Peer {
    frames: Sender<Arc<Vec<u8>>>,
    control: Sender<Vec<u8>>,
    credit: AtomicI64,
    ready: AtomicBool,
    alive: Arc<AtomicBool>,
    /// Frames were not sent since the last one: the next carries the discontinuity flag.
    missed: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

struct Hub {
    peers: Mutex<Vec<Arc<Peer>>>,
    stop: AtomicBool,
    stats: Arc<NetOutputStats>,
    name: String,
}

impl Hub {
    /// Starts the threads of a new receiver on `stream`.
    fn add_peer(self: &Arc<Self>, stream: TcpStream) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|p| p.alive.load(Ordering::Relaxed));
        let hello = Control::Hello(Hello {
            sender: true,
            codecs: Codec::I420.bit() | Codec::Nv12.bit() | Codec::Rgba.bit(),
            credit: 0,
            max_body: 64 << 10,
            name: self.name.clone(),
        });
        let (Ok(()), Ok(read_half)) = (tcp::configure(&stream, Duration::from_millis(100)), stream.try_clone()) else {
            return;
        };
        let mut write_half = stream;
        if peers.len() >= MAX_PEERS {
            let _ = tcp::send(&mut write_half, &hello.packet(0));
            let _ = tcp::send(
                &mut write_half,
                &Control::Bye(ByeReason::Overloaded as u8, "too many receivers".into()).packet(1),
            );
            return;
        }
        let (frames_tx, frames_rx) = bounded(PEER_QUEUE);
        let (control_tx, control_rx) = bounded(16);
        let peer = Arc::new(Peer {
            frames: frames_tx,
            control: control_tx,
            credit: AtomicI64::new(0),
            ready: AtomicBool::new(false),
            alive: Arc::new(AtomicBool::new(true)),
            missed: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
        });
        let _ = peer.control.try_send(hello.packet(0));
        let writer = {
            let (alive, missed, hub) = (peer.alive.clone(), peer.missed.clone(), self.clone());
            std::thread::Builder::new()
                .name("streamlib net send".into())
                .spawn(move || write_loop(write_half, frames_rx, control_rx, &alive, &missed, &hub))
        };
        let reader = {
            let (peer, hub) = (peer.clone(), self.clone());
            std::thread::Builder::new()
                .name("streamlib net control".into())
                .spawn(move || read_loop(read_half, &peer, &hub))
        };
        match (writer, reader) {
            (Ok(w), Ok(r)) => {
                peer.threads.lock().unwrap_or_else(|p| p.into_inner()).extend([w, r]);
                self.stats.connections.fetch_add(1, Ordering::Relaxed);
                peers.push(peer);
                self.stats.peers.store(peers.len() as u64, Ordering::Relaxed);
            }
            _ => peer.alive.store(false, Ordering::Relaxed),
        }
    }

    fn live_peers(&self) -> Vec<Arc<Peer>> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|p| p.alive.load(Ordering::Relaxed));
        self.stats.peers.store(peers.len() as u64, Ordering::Relaxed);
        peers.clone()
    }
}

fn write_loop(
    mut stream: TcpStream,
    frames: Receiver<Arc<Vec<u8>>>,
    control: Receiver<Vec<u8>>,
    alive: &AtomicBool,
    missed: &AtomicBool,
    hub: &Hub,
) {
    let tick = crossbeam_channel::tick(Duration::from_millis(100));
    while alive.load(Ordering::Relaxed) {
        let result = select! {
            recv(control) -> m => match m {
                Ok(bytes) => tcp::send(&mut stream, &bytes),
                Err(_) => break,
            },
            recv(frames) -> m => match m {
                Ok(packet) => {
                    let mut bytes = (*packet).clone();
                    if missed.swap(false, Ordering::Relaxed) {
                        bytes[7] |= wire::FLAG_DISCONTINUITY;
                    }
                    wire::stamp_send_time(&mut bytes, unix_ns());
                    let r = tcp::send(&mut stream, &bytes);
                    if r.is_ok() {
                        hub.stats.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    r
                }
                Err(_) => break,
            },
            recv(tick) -> _ => Ok(()),
        };
        if result.is_err() {
            break;
        }
    }
    alive.store(false, Ordering::Relaxed);
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn read_loop(stream: TcpStream, peer: &Peer, hub: &Hub) {
    let mut reader = PacketReader::new(stream, 64 << 10);
    let mut sequence = 1u64;
    while peer.alive.load(Ordering::Relaxed) && !hub.stop.load(Ordering::Relaxed) {
        let packet = match reader.read_packet() {
            Ok(Ok(Incoming::Packet(p))) => p,
            Ok(Ok(Incoming::Idle)) => continue,
            Ok(Ok(Incoming::Closed)) | Err(_) => break,
            Ok(Err(e)) => {
                sequence += 1;
                let _ = peer.control.try_send(Control::Bye(ByeReason::Version as u8, e.to_string()).packet(sequence));
                break;
            }
        };
        let Some(kind) = packet.header.message_type() else { continue };
        match Control::decode(kind, &packet.body) {
            Ok(Control::Hello(h)) => {
                peer.credit.store(i64::from(h.credit), Ordering::Relaxed);
                peer.ready.store(true, Ordering::Relaxed);
            }
            Ok(Control::Credit(n)) => {
                // Bounded so a lying receiver cannot make the queue matter less than credit.
                let c = peer.credit.load(Ordering::Relaxed).saturating_add(i64::from(n)).min(1 << 20);
                peer.credit.store(c, Ordering::Relaxed);
            }
            Ok(Control::Ping(t)) => {
                sequence += 1;
                let pong = wire::Pong { echo_ns: t, ..Default::default() };
                let _ = peer.control.try_send(Control::Pong(pong).packet(sequence));
            }
            Ok(Control::Bye(..)) => break,
            // Raw frames are all keyframes; pongs need no answer.
            Ok(_) => {}
            Err(_) => reader.malformed += 1,
        }
    }
    peer.alive.store(false, Ordering::Relaxed);
}

/// The sink of a `network` output.
pub struct NetworkSink {
    hub: Arc<Hub>,
    config: NetworkOutputConfig,
    sequence: u64,
    threads: Vec<JoinHandle<()>>,
}

impl NetworkSink {
    /// Binds (listen) or starts connecting (connect) as `config.url` says.
    pub fn start(config: NetworkOutputConfig, name: &str) -> Result<Self, SinkError> {
        let address = NetAddress::parse(&config.url).map_err(SinkError::Unsupported)?;
        let hub = Arc::new(Hub {
            peers: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            stats: Arc::new(NetOutputStats::default()),
            name: name.to_string(),
        });
        let io = |e: std::io::Error| SinkError::Io { path: config.url.clone(), error: e };
        let thread = match address.role(Role::Listen) {
            Role::Listen => {
                let listener = TcpListener::bind(address.resolve().map_err(io)?).map_err(io)?;
                listener.set_nonblocking(true).map_err(io)?;
                let hub = hub.clone();
                std::thread::Builder::new()
                    .name("streamlib net listen".into())
                    .spawn(move || accept_loop(&listener, &hub))
                    .map_err(io)?
            }
            Role::Connect => {
                let hub = hub.clone();
                std::thread::Builder::new()
                    .name("streamlib net connect".into())
                    .spawn(move || connect_loop(&address, &hub))
                    .map_err(io)?
            }
        };
        Ok(NetworkSink { hub, config, sequence: 0, threads: vec![thread] })
    }

    /// Counters of this output.
    pub fn stats(&self) -> Arc<NetOutputStats> {
        self.hub.stats.clone()
    }

    fn broadcast(&mut self, packet: Vec<u8>) {
        let packet = Arc::new(packet);
        for peer in self.hub.live_peers() {
            let sendable = peer.ready.load(Ordering::Relaxed) && peer.credit.load(Ordering::Relaxed) > 0;
            // A full queue or a receiver gone: not sent, counted below.
            let sent = sendable && peer.frames.try_send(packet.clone()).is_ok();
            if sent {
                peer.credit.fetch_sub(1, Ordering::Relaxed);
            } else {
                peer.missed.store(true, Ordering::Relaxed);
                self.hub.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn accept_loop(listener: &TcpListener, hub: &Arc<Hub>) {
    while !hub.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                hub.add_peer(stream);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn connect_loop(address: &NetAddress, hub: &Arc<Hub>) {
    let mut backoff = Duration::from_millis(100);
    while !hub.stop.load(Ordering::Relaxed) {
        if !hub.live_peers().is_empty() {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let started = Instant::now();
        match address.resolve().and_then(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500))) {
            Ok(stream) => {
                backoff = Duration::from_millis(100);
                hub.add_peer(stream);
            }
            Err(_) => {
                // Sleep in small steps so a stop is seen promptly.
                while started.elapsed() < backoff && !hub.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

impl Sink for NetworkSink {
    fn format(&self) -> PixelFormat {
        self.config.pixel_format()
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        let codec = Codec::raw(frame.format);
        let strides = {
            let mut s = [0u32; 3];
            for (i, shape) in frame.format.planes(frame.width, frame.height).iter().enumerate() {
                s[i] = shape.row_bytes() as u32;
            }
            s
        };
        let wire_frame = WireFrame {
            codec,
            width: frame.width,
            height: frame.height,
            strides,
            color_space: frame.color_space,
            alpha: if frame.format == PixelFormat::Rgba8 { AlphaMode::Premultiplied } else { AlphaMode::Opaque },
            timing: WireTiming {
                pts_ns: frame.time.pts_ns,
                duration_ns: frame.time.duration_ns,
                capture_ns: unix_ns(),
                ..Default::default()
            },
            meta: frame.meta.clone(),
            payload: frame.data.clone(),
        };
        let body = wire::encode_frame(&wire_frame, self.config.compression);
        let packet = wire::packet(MessageType::Frame, wire::FLAG_KEYFRAME, self.config.stream_id, self.sequence, &body);
        self.sequence += 1;
        self.broadcast(packet);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        let end = WireFrame {
            codec: Codec::None,
            width: 0,
            height: 0,
            strides: [0; 3],
            color_space: None,
            alpha: AlphaMode::Opaque,
            timing: WireTiming::default(),
            meta: Default::default(),
            payload: Vec::new(),
        };
        let body = wire::encode_frame(&end, Compression::None);
        let eos =
            wire::packet(MessageType::Frame, wire::FLAG_END_OF_STREAM, self.config.stream_id, self.sequence, &body);
        let peers = self.hub.live_peers();
        for peer in &peers {
            let _ = peer.control.send_timeout(eos.clone(), Duration::from_millis(200));
            let bye = Control::Bye(ByeReason::Normal as u8, "output finished".into()).packet(u64::MAX);
            let _ = peer.control.send_timeout(bye, Duration::from_millis(200));
        }
        // Let queued frames and the goodbyes go out, then stop every thread.
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline && peers.iter().any(|p| !p.frames.is_empty() || !p.control.is_empty()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.stop();
        Ok(())
    }
}

impl NetworkSink {
    fn stop(&mut self) {
        self.hub.stop.store(true, Ordering::Relaxed);
        let peers = std::mem::take(&mut *self.hub.peers.lock().unwrap_or_else(|p| p.into_inner()));
        for peer in peers {
            peer.alive.store(false, Ordering::Relaxed);
            for t in std::mem::take(&mut *peer.threads.lock().unwrap_or_else(|p| p.into_inner())) {
                let _ = t.join();
            }
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for NetworkSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Registry entry for `"kind": "network"` outputs and `--output tcp://...`.
#[derive(Debug, Default)]
pub struct NetworkOutputKind;

impl SinkKind for NetworkOutputKind {
    type Config = NetworkOutputConfig;

    fn extensions(&self) -> &[&str] {
        &[]
    }

    fn schemes(&self) -> &[&str] {
        &["tcp"]
    }

    fn path_param(&self) -> &'static str {
        "url"
    }

    fn writes_files(&self) -> bool {
        false
    }

    fn check(&self, config: &NetworkOutputConfig) -> Result<(), SceneError> {
        NetAddress::parse(&config.url).map_err(|m| SceneError::new("url", m))?;
        match config.codec {
            NetCodec::Raw => Ok(()),
            other => Err(SceneError::new("codec", format!("{other:?} is not built yet; use raw"))),
        }
    }

    fn build(&self, target: &SinkTarget<'_>, config: NetworkOutputConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        let name = target.path.display().to_string();
        Ok(vec![Box::new(NetworkSink::start(config, &name)?)])
    }
}
