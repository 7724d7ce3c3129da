//! The `network` output: frames encoded once per output (raw, or JPEG/H.264 through GStreamer)
//! and fanned out to every receiver. Over TCP each receiver has its own bounded queue and credit
//! (a slow receiver loses frames, nobody else does); over UDP frames are cut into datagrams and
//! sent to each receiver. A receiver that missed an H.264 frame gets nothing until the next
//! keyframe, which its keyframe request (or a new receiver) asks the encoder for.

use super::address::{NetAddress, Role, Transport};
use super::tcp::{self, Incoming, PacketReader};
use super::udp::{ResendRing, UdpEndpoint};
use super::unix_ns;
use super::wire::{
    self, AlphaMode, ByeReason, Codec, Compression, Control, FramePacket, Hello, MessageType, WireFrame, WireTiming,
};
use crate::frame::{OutputFrame, PixelFormat};
use crate::registry::{SinkKind, SinkTarget};
use crate::scene::SceneError;
use crate::sinks::{Sink, SinkError};
use crossbeam_channel::{bounded, select, Receiver, Sender};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
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
    /// Every frame a JPEG (GStreamer's jpegenc), `quality` 1..=100.
    Jpeg,
    /// H.264 (x264, `tune=zerolatency`) at `bitrate` kbit/s.
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
    /// `tcp://host:port` listens by default (`?mode=connect` pushes to a listening input);
    /// `udp://host:port` sends there by default (`?mode=listen` serves inputs that say hello).
    pub url: String,
    /// `raw` (default), `jpeg` or `h264`.
    #[serde(default)]
    pub codec: NetCodec,
    /// H.264 bitrate, kbit/s.
    #[serde(default = "default_bitrate")]
    pub bitrate: u32,
    /// JPEG quality, 1..=100.
    #[serde(default = "default_quality")]
    pub quality: u32,
    /// Frames between H.264 keyframes at most (a receiver that lost one may ask sooner).
    #[serde(default = "default_keyframe_interval")]
    pub keyframe_interval: u32,
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

fn default_bitrate() -> u32 {
    4000
}

fn default_quality() -> u32 {
    85
}

fn default_keyframe_interval() -> u32 {
    60
}

impl NetworkOutputConfig {
    fn pixel_format(&self) -> PixelFormat {
        if self.codec != NetCodec::Raw {
            return PixelFormat::I420;
        }
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
    /// Keyframes forced for receivers that asked or joined.
    pub forced_keyframes: AtomicU64,
    /// Frames that could not be encoded.
    pub encode_errors: AtomicU64,
    /// UDP: datagrams sent again because a receiver asked.
    pub retransmitted: AtomicU64,
}

impl crate::counters::Counters for NetOutputStats {
    fn snapshot(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("peers", get(&self.peers)),
            ("connections", get(&self.connections)),
            ("sent", get(&self.sent)),
            ("dropped", get(&self.dropped)),
            ("forced_keyframes", get(&self.forced_keyframes)),
            ("encode_errors", get(&self.encode_errors)),
            ("retransmitted", get(&self.retransmitted)),
        ]
        .into_iter()
        .collect()
    }
}

struct Peer {
    frames: Sender<Arc<FramePacket>>,
    control: Sender<Vec<u8>>,
    credit: AtomicI64,
    ready: AtomicBool,
    alive: Arc<AtomicBool>,
    /// Frames were not sent since the last one: the next carries the discontinuity flag.
    missed: Arc<AtomicBool>,
    /// H.264: this receiver can only start again at a keyframe.
    needs_key: AtomicBool,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What every transport shares: the counters, the stop flag, and receivers' keyframe wishes.
struct Shared {
    stop: AtomicBool,
    stats: Arc<NetOutputStats>,
    name: String,
    /// The codec frames are sent in (its bit in hellos).
    codec: Codec,
    keyframe_wanted: AtomicBool,
}

impl Shared {
    fn hello(&self) -> Control {
        Control::Hello(Hello {
            sender: true,
            codecs: self.codec.bit(),
            credit: 0,
            max_body: 64 << 10,
            name: self.name.clone(),
        })
    }
}

/// The TCP receivers of an output.
struct Hub {
    peers: Mutex<Vec<Arc<Peer>>>,
    shared: Arc<Shared>,
}

impl Hub {
    /// Starts the threads of a new receiver on `stream`.
    fn add_peer(self: &Arc<Self>, stream: TcpStream) {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|p| p.alive.load(Ordering::Relaxed));
        let hello = self.shared.hello();
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
            needs_key: AtomicBool::new(true),
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
                self.shared.stats.connections.fetch_add(1, Ordering::Relaxed);
                peers.push(peer);
                self.shared.stats.peers.store(peers.len() as u64, Ordering::Relaxed);
                // A new H.264 receiver starts at a keyframe.
                self.shared.keyframe_wanted.store(true, Ordering::Relaxed);
            }
            _ => peer.alive.store(false, Ordering::Relaxed),
        }
    }

    fn live_peers(&self) -> Vec<Arc<Peer>> {
        let mut peers = self.peers.lock().unwrap_or_else(|p| p.into_inner());
        peers.retain(|p| p.alive.load(Ordering::Relaxed));
        self.shared.stats.peers.store(peers.len() as u64, Ordering::Relaxed);
        peers.clone()
    }

    /// Queues `packet` for every receiver that can take it.
    fn broadcast(&self, packet: FramePacket, keyframe: bool) {
        let packet = Arc::new(packet);
        let gated = self.shared.codec == Codec::H264;
        let stats = &self.shared.stats;
        for peer in self.live_peers() {
            let waiting = gated && !keyframe && peer.needs_key.load(Ordering::Relaxed);
            let sendable = !waiting && peer.ready.load(Ordering::Relaxed) && peer.credit.load(Ordering::Relaxed) > 0;
            // A full queue or a receiver gone: not sent, counted below.
            let sent = sendable && peer.frames.try_send(packet.clone()).is_ok();
            if sent {
                peer.credit.fetch_sub(1, Ordering::Relaxed);
                if keyframe {
                    peer.needs_key.store(false, Ordering::Relaxed);
                }
            } else {
                peer.missed.store(true, Ordering::Relaxed);
                stats.dropped.fetch_add(1, Ordering::Relaxed);
                if gated {
                    // Its decoder lost a reference: it can only resume at a keyframe.
                    peer.needs_key.store(true, Ordering::Relaxed);
                    self.shared.keyframe_wanted.store(true, Ordering::Relaxed);
                }
            }
        }
    }

    fn send_last(&self, eos: &[u8]) -> Vec<Arc<Peer>> {
        let peers = self.live_peers();
        for peer in &peers {
            let _ = peer.control.send_timeout(eos.to_vec(), Duration::from_millis(200));
            let bye = Control::Bye(ByeReason::Normal as u8, "output finished".into()).packet(u64::MAX);
            let _ = peer.control.send_timeout(bye, Duration::from_millis(200));
        }
        peers
    }

    fn stop(&self) {
        let peers = std::mem::take(&mut *self.peers.lock().unwrap_or_else(|p| p.into_inner()));
        for peer in peers {
            peer.alive.store(false, Ordering::Relaxed);
            for t in std::mem::take(&mut *peer.threads.lock().unwrap_or_else(|p| p.into_inner())) {
                let _ = t.join();
            }
        }
    }
}

fn write_loop(
    mut stream: TcpStream,
    frames: Receiver<Arc<FramePacket>>,
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
                    // Only the first bytes differ per receiver (send time, flags, CRCs).
                    let flags = if missed.swap(false, Ordering::Relaxed) { wire::FLAG_DISCONTINUITY } else { 0 };
                    let head = packet.head(unix_ns(), flags);
                    let r = tcp::send_parts(&mut stream, &[&head, &packet.bytes[head.len()..]]);
                    if r.is_ok() {
                        hub.shared.stats.sent.fetch_add(1, Ordering::Relaxed);
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
    let shared = &hub.shared;
    while peer.alive.load(Ordering::Relaxed) && !shared.stop.load(Ordering::Relaxed) {
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
        sequence += 1;
        match Control::decode(kind, &packet.body) {
            Ok(Control::Hello(h)) if h.codecs & shared.codec.bit() == 0 => {
                let why = format!("this output sends {:?}, which the receiver cannot decode", shared.codec);
                let _ = peer.control.try_send(Control::Bye(ByeReason::Codec as u8, why).packet(sequence));
                // Let the goodbye go out before the writer stops.
                std::thread::sleep(Duration::from_millis(100));
                break;
            }
            Ok(Control::Hello(h)) => {
                peer.credit.store(i64::from(h.credit), Ordering::Relaxed);
                peer.ready.store(true, Ordering::Relaxed);
            }
            Ok(Control::Credit(n)) => {
                // Bounded so a lying receiver cannot make the queue matter less than credit.
                let c = peer.credit.load(Ordering::Relaxed).saturating_add(i64::from(n)).min(1 << 20);
                peer.credit.store(c, Ordering::Relaxed);
            }
            Ok(Control::KeyframeRequest) => shared.keyframe_wanted.store(true, Ordering::Relaxed),
            Ok(Control::Ping(t)) => {
                let pong = wire::Pong { echo_ns: t, ..Default::default() };
                let _ = peer.control.try_send(Control::Pong(pong).packet(sequence));
            }
            Ok(Control::Bye(..)) => break,
            Ok(_) => {}
            Err(_) => reader.malformed += 1,
        }
    }
    peer.alive.store(false, Ordering::Relaxed);
}

/// UDP receivers forgotten after this long without a packet from them.
const UDP_PEER_TIMEOUT: Duration = Duration::from_secs(5);

/// The UDP side of an output: a fixed destination (connect) and/or the inputs that said hello
/// (listen).
struct UdpHub {
    endpoint: Mutex<UdpEndpoint>,
    ring: Mutex<ResendRing>,
    fixed: Option<SocketAddr>,
    joined: Mutex<Vec<(SocketAddr, Instant)>>,
    shared: Arc<Shared>,
}

impl UdpHub {
    fn targets(&self) -> Vec<SocketAddr> {
        let mut joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
        joined.retain(|(_, seen)| seen.elapsed() < UDP_PEER_TIMEOUT);
        let mut targets: Vec<SocketAddr> = self.fixed.into_iter().collect();
        targets.extend(joined.iter().map(|(a, _)| *a).filter(|a| Some(*a) != self.fixed));
        self.shared.stats.peers.store(targets.len() as u64, Ordering::Relaxed);
        targets
    }

    /// Sends a packet to every receiver, once cut for all, and keeps it for resending.
    fn send_all(&self, packet: &[u8]) {
        let targets = self.targets();
        let mut endpoint = self.endpoint.lock().unwrap_or_else(|p| p.into_inner());
        let (id, datagrams) = endpoint.cut(packet);
        for to in targets {
            match endpoint.send_datagrams(&datagrams, to) {
                Ok(true) => self.shared.stats.sent.fetch_add(1, Ordering::Relaxed),
                _ => self.shared.stats.dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
        drop(endpoint);
        self.ring.lock().unwrap_or_else(|p| p.into_inner()).keep(id, datagrams);
    }

    fn resend(&self, packet_id: u32, chunks: &[u16], to: SocketAddr) {
        let ring = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let datagrams: Vec<Vec<u8>> = ring.find(packet_id, chunks).into_iter().cloned().collect();
        drop(ring);
        let endpoint = self.endpoint.lock().unwrap_or_else(|p| p.into_inner());
        if endpoint.send_datagrams(&datagrams, to).unwrap_or(false) {
            self.shared.stats.retransmitted.fetch_add(datagrams.len() as u64, Ordering::Relaxed);
        }
    }

    fn send_to(&self, packet: &[u8], to: SocketAddr) {
        let _ = self.endpoint.lock().unwrap_or_else(|p| p.into_inner()).send(packet, to);
    }

    /// Control datagrams from receivers: hellos (join), keyframe requests, pings, byes.
    fn control_loop(&self, mut inbound: UdpEndpoint) {
        let mut sequence = 0u64;
        while !self.shared.stop.load(Ordering::Relaxed) {
            let Ok(Ok(Incoming::Packet(packet))) = inbound.recv() else { continue };
            let (Some(from), Some(kind)) = (inbound.last_from, packet.header.message_type()) else { continue };
            sequence += 1;
            match Control::decode(kind, &packet.body) {
                Ok(Control::Hello(h)) if h.codecs & self.shared.codec.bit() == 0 => {
                    let why = format!("this output sends {:?}, which the receiver cannot decode", self.shared.codec);
                    self.send_to(&Control::Bye(ByeReason::Codec as u8, why).packet(sequence), from);
                }
                Ok(Control::Hello(_)) => {
                    let mut joined = self.joined.lock().unwrap_or_else(|p| p.into_inner());
                    let count = joined.len();
                    match joined.iter_mut().find(|(a, _)| *a == from) {
                        Some(entry) => entry.1 = Instant::now(),
                        None if count < MAX_PEERS => {
                            joined.push((from, Instant::now()));
                            self.shared.stats.connections.fetch_add(1, Ordering::Relaxed);
                            self.shared.keyframe_wanted.store(true, Ordering::Relaxed);
                        }
                        None => {
                            let bye = Control::Bye(ByeReason::Overloaded as u8, "too many receivers".into());
                            self.send_to(&bye.packet(sequence), from);
                        }
                    }
                }
                Ok(Control::KeyframeRequest) => self.shared.keyframe_wanted.store(true, Ordering::Relaxed),
                Ok(Control::Nack { packet_id, chunks }) => self.resend(packet_id, &chunks, from),
                Ok(Control::Ping(t)) => {
                    let pong = wire::Pong { echo_ns: t, ..Default::default() };
                    self.send_to(&Control::Pong(pong).packet(sequence), from);
                }
                Ok(Control::Bye(..)) => {
                    self.joined.lock().unwrap_or_else(|p| p.into_inner()).retain(|(a, _)| *a != from)
                }
                _ => {}
            }
        }
    }
}

enum Fanout {
    Tcp(Arc<Hub>),
    Udp(Arc<UdpHub>),
}

/// The sink of a `network` output.
pub struct NetworkSink {
    fanout: Fanout,
    shared: Arc<Shared>,
    config: NetworkOutputConfig,
    #[cfg(feature = "media")]
    encoder: Option<super::codec::FrameEncoder>,
    /// Frames given to the encoder and not yet out of it: their timing, colour and metadata.
    #[cfg(feature = "media")]
    encoding: std::collections::VecDeque<(u64, OutputFrame)>,
    #[cfg(feature = "media")]
    encoded_inputs: u64,
    #[cfg(feature = "media")]
    last_forced: Option<Instant>,
    sequence: u64,
    threads: Vec<JoinHandle<()>>,
}

/// Keyframes forced at most this often, however many receivers ask.
#[cfg(feature = "media")]
const FORCED_KEYFRAME_GAP: Duration = Duration::from_millis(200);

impl NetworkSink {
    /// Binds (listen) or starts connecting (connect) as `config.url` says.
    pub fn start(config: NetworkOutputConfig, name: &str) -> Result<Self, SinkError> {
        let address = NetAddress::parse(&config.url).map_err(SinkError::Unsupported)?;
        let codec = match config.codec {
            NetCodec::Raw => Codec::raw(config.pixel_format()),
            NetCodec::Jpeg => Codec::Jpeg,
            NetCodec::H264 => Codec::H264,
        };
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            stats: Arc::new(NetOutputStats::default()),
            name: name.to_string(),
            codec,
            keyframe_wanted: AtomicBool::new(false),
        });
        #[cfg(feature = "media")]
        let encoder = {
            use super::codec::{Compressed, EncoderSettings, FrameEncoder};
            let compressed = match config.codec {
                NetCodec::Raw => None,
                NetCodec::Jpeg => Some(Compressed::Jpeg),
                NetCodec::H264 => Some(Compressed::H264),
            };
            compressed.map(|codec| {
                FrameEncoder::new(EncoderSettings {
                    codec,
                    bitrate_kbps: config.bitrate,
                    quality: config.quality,
                    keyframe_interval: config.keyframe_interval,
                })
            })
        };
        let io = |e: std::io::Error| SinkError::Io { path: config.url.clone(), error: e };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name.into()).spawn(f).map_err(io)
        };
        let (fanout, thread) = match address.transport {
            Transport::Tcp => {
                let hub = Arc::new(Hub { peers: Mutex::new(Vec::new()), shared: shared.clone() });
                let h = hub.clone();
                let thread = match address.role(Role::Listen) {
                    Role::Listen => {
                        let listener = TcpListener::bind(address.resolve().map_err(io)?).map_err(io)?;
                        listener.set_nonblocking(true).map_err(io)?;
                        spawn("streamlib net listen", Box::new(move || accept_loop(&listener, &h)))?
                    }
                    Role::Connect => {
                        let a = address.clone();
                        spawn("streamlib net connect", Box::new(move || connect_loop(&a, &h)))?
                    }
                };
                (Fanout::Tcp(hub), thread)
            }
            Transport::Udp => {
                let resolved = address.resolve().map_err(io)?;
                let (bind, fixed) = match address.role(Role::Connect) {
                    Role::Listen => (resolved, None),
                    Role::Connect if resolved.is_ipv4() => ("0.0.0.0:0".parse().expect("literal"), Some(resolved)),
                    Role::Connect => ("[::]:0".parse().expect("literal"), Some(resolved)),
                };
                let socket = UdpSocket::bind(bind).map_err(io)?;
                let inbound = socket.try_clone().map_err(io)?;
                let ms = Duration::from_millis;
                let hub = Arc::new(UdpHub {
                    endpoint: Mutex::new(UdpEndpoint::new(socket, ms(100), ms(100), ms(0))),
                    ring: Mutex::new(ResendRing::default()),
                    fixed,
                    joined: Mutex::new(Vec::new()),
                    shared: shared.clone(),
                });
                if fixed.is_some() {
                    // The destination the URL names is this output's one receiver from the start.
                    shared.stats.connections.store(1, Ordering::Relaxed);
                }
                let h = hub.clone();
                let inbound = UdpEndpoint::new(inbound, ms(100), ms(100), ms(0));
                let thread = spawn("streamlib net udp control", Box::new(move || h.control_loop(inbound)))?;
                (Fanout::Udp(hub), thread)
            }
        };
        Ok(NetworkSink {
            fanout,
            shared,
            config,
            #[cfg(feature = "media")]
            encoder,
            #[cfg(feature = "media")]
            encoding: Default::default(),
            #[cfg(feature = "media")]
            encoded_inputs: 0,
            #[cfg(feature = "media")]
            last_forced: None,
            sequence: 0,
            threads: vec![thread],
        })
    }

    /// Counters of this output.
    pub fn stats(&self) -> Arc<NetOutputStats> {
        self.shared.stats.clone()
    }

    /// Whether to force a keyframe now: somebody asked, and the last forced one is not too recent.
    #[cfg(feature = "media")]
    fn take_keyframe_request(&mut self) -> bool {
        if self.last_forced.is_some_and(|t| t.elapsed() < FORCED_KEYFRAME_GAP)
            || !self.shared.keyframe_wanted.swap(false, Ordering::Relaxed)
        {
            return false;
        }
        self.last_forced = Some(Instant::now());
        self.shared.stats.forced_keyframes.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Sends `frame` with `payload` in `codec`.
    fn send(&mut self, frame: &OutputFrame, codec: Codec, payload: &[u8], strides: [u32; 3], keyframe: bool) {
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
                capture_ns: frame.meta.capture_ns.unwrap_or_else(unix_ns),
                ..Default::default()
            },
            meta: frame.meta.clone(),
            payload: Vec::new(),
        };
        let flags = if keyframe { wire::FLAG_KEYFRAME } else { 0 };
        let header = (flags, self.config.stream_id, self.sequence);
        let mut packet = FramePacket::new(&wire_frame, payload, self.config.compression, header);
        self.sequence += 1;
        match &self.fanout {
            Fanout::Tcp(hub) => hub.broadcast(packet, keyframe),
            Fanout::Udp(hub) => {
                packet.stamp(unix_ns());
                hub.send_all(&packet.bytes);
            }
        }
    }

    /// Encodes `frame` and sends what the encoder gives back, each with its own frame's timing
    /// and metadata.
    #[cfg(feature = "media")]
    fn encode_and_send(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        let force = self.take_keyframe_request();
        let Some(encoder) = self.encoder.as_mut() else { return Ok(()) };
        let encoded = encoder.encode(frame, force).map_err(|e| {
            self.shared.stats.encode_errors.fetch_add(1, Ordering::Relaxed);
            SinkError::Encode(format!("{}: {e}", self.config.url))
        })?;
        // Only the frame's description is kept, not its pixels.
        let described = OutputFrame {
            time: frame.time,
            width: frame.width,
            height: frame.height,
            format: frame.format,
            color_space: frame.color_space,
            data: Vec::new(),
            meta: frame.meta.clone(),
        };
        self.encoding.push_back((self.encoded_inputs, described));
        self.encoded_inputs += 1;
        for e in encoded {
            while self.encoding.front().is_some_and(|(i, _)| *i < e.input) {
                self.encoding.pop_front();
            }
            if let Some((_, f)) = self.encoding.pop_front() {
                self.send(&f, self.shared.codec, &e.data, [0; 3], e.keyframe);
            }
        }
        // Bounded whatever the encoder does.
        while self.encoding.len() > 16 {
            self.encoding.pop_front();
        }
        Ok(())
    }
}

fn accept_loop(listener: &TcpListener, hub: &Arc<Hub>) {
    while !hub.shared.stop.load(Ordering::Relaxed) {
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
    while !hub.shared.stop.load(Ordering::Relaxed) {
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
                while started.elapsed() < backoff && !hub.shared.stop.load(Ordering::Relaxed) {
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

    fn counters(&self) -> Option<Arc<dyn crate::counters::Counters>> {
        Some(self.shared.stats.clone())
    }

    fn write(&mut self, frame: &OutputFrame) -> Result<(), SinkError> {
        #[cfg(feature = "media")]
        if self.encoder.is_some() {
            return self.encode_and_send(frame);
        }
        let mut strides = [0u32; 3];
        for (i, shape) in frame.format.planes(frame.width, frame.height).iter().enumerate() {
            strides[i] = shape.row_bytes() as u32;
        }
        self.send(frame, Codec::raw(frame.format), &frame.data, strides, true);
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
        match &self.fanout {
            Fanout::Tcp(hub) => {
                let peers = hub.send_last(&eos);
                // Let queued frames and the goodbyes go out, then stop every thread.
                let deadline = Instant::now() + Duration::from_secs(1);
                while Instant::now() < deadline && peers.iter().any(|p| !p.frames.is_empty() || !p.control.is_empty()) {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Fanout::Udp(hub) => {
                hub.send_all(&eos);
                hub.send_all(&Control::Bye(ByeReason::Normal as u8, "output finished".into()).packet(u64::MAX));
            }
        }
        self.stop();
        Ok(())
    }
}

impl NetworkSink {
    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Fanout::Tcp(hub) = &self.fanout {
            hub.stop();
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

/// Registry entry for `"kind": "network"` outputs and `--output tcp://...` / `udp://...`.
#[derive(Debug, Default)]
pub struct NetworkOutputKind;

impl SinkKind for NetworkOutputKind {
    type Config = NetworkOutputConfig;

    fn extensions(&self) -> &[&str] {
        &[]
    }

    fn schemes(&self) -> &[&str] {
        &["tcp", "udp"]
    }

    fn path_param(&self) -> &'static str {
        "url"
    }

    fn writes_files(&self) -> bool {
        false
    }

    fn check(&self, config: &NetworkOutputConfig) -> Result<(), SceneError> {
        NetAddress::parse(&config.url).map_err(|m| SceneError::new("url", m))?;
        if config.codec != NetCodec::Raw && config.compression != Compression::None {
            return Err(SceneError::new("compression", "applies to raw frames only"));
        }
        if !(1..=100).contains(&config.quality) {
            return Err(SceneError::new("quality", format!("{} is not within 1..=100", config.quality)));
        }
        if !(50..=200_000).contains(&config.bitrate) {
            return Err(SceneError::new("bitrate", format!("{} kbit/s is not within 50..=200000", config.bitrate)));
        }
        if config.keyframe_interval == 0 {
            return Err(SceneError::new("keyframe_interval", "must be at least 1"));
        }
        let compressed = match config.codec {
            NetCodec::Raw => return Ok(()),
            NetCodec::Jpeg => "jpeg",
            NetCodec::H264 => "h264",
        };
        #[cfg(feature = "media")]
        {
            use super::codec::{missing_elements, Compressed};
            let missing =
                missing_elements(if config.codec == NetCodec::Jpeg { Compressed::Jpeg } else { Compressed::H264 });
            if !missing.is_empty() {
                return Err(SceneError::new(
                    "codec",
                    format!("{compressed} needs GStreamer elements missing here: {}", missing.join(", ")),
                ));
            }
            Ok(())
        }
        #[cfg(not(feature = "media"))]
        Err(SceneError::new("codec", format!("{compressed} needs streamlib built with the media feature")))
    }

    fn build(&self, target: &SinkTarget<'_>, config: NetworkOutputConfig) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        let name = target.path.display().to_string();
        Ok(vec![Box::new(NetworkSink::start(config, &name)?)])
    }
}
