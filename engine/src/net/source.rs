//! The `network` input: a producer thread that connects (or listens), reads frames, decodes
//! JPEG and H.264, grants credit (TCP) as it hands frames on, and reconnects with backoff. It
//! never stalls the compositor: the frames go through a `ThreadedSource` like a camera's, and
//! when they stop the last one is held for `hold_ms`, then nothing is shown. After a lost H.264
//! frame it asks for a keyframe and skips frames until one comes, so the last good frame stays.

use super::address::{NetAddress, Role, Transport};
use super::tcp::{self, Incoming, Packet, PacketReader};
use super::udp::UdpEndpoint;
use super::unix_ns;
use super::wire::{self, ByeReason, Codec, Control, Hello, MessageType, WireError, WireFrame};
use crate::frame::{FrameData, FrameTime, Plane, TimestampedFrame};
use crate::registry::{BuildContext, BuildError, InputKind};
use crate::scene::SceneError;
use crate::sources::{FrameProducer, Source, SourceError, ThreadedSource};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames the receiver lets the sender have in flight.
const CREDIT: u32 = 4;
/// How long one read waits before the producer thread checks for stop.
const READ_TIMEOUT: Duration = Duration::from_millis(50);
/// How often a keyframe request is repeated while none comes.
const KEYFRAME_RETRY: Duration = Duration::from_millis(100);
/// How often a connecting UDP input says hello (the sender learns where to send).
const UDP_HELLO_EVERY: Duration = Duration::from_secs(1);
/// A UDP input counts as connected while packets came within this long.
const UDP_ALIVE: Duration = Duration::from_secs(2);

/// `{"kind": "network", "url": "tcp://host:9000"}` in a scene's `inputs`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInputConfig {
    /// `tcp://host:port` connects by default (`?mode=listen` waits for a sender);
    /// `udp://host:port` binds by default (`?mode=connect` asks a listening output to send here).
    pub url: String,
    /// How long the last frame stays on screen after frames stop, in ms; then nothing.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
    /// UDP: how long a frame's datagrams may take to arrive, in ms; then it is dropped.
    #[serde(default = "default_reassembly_ms")]
    pub reassembly_ms: u64,
    /// UDP: how long a frame after a gap waits for the missing one, in ms.
    #[serde(default = "default_reorder_ms")]
    pub reorder_ms: u64,
}

fn default_hold_ms() -> u64 {
    1000
}

fn default_reassembly_ms() -> u64 {
    100
}

fn default_reorder_ms() -> u64 {
    20
}

/// Counters of a network input.
#[derive(Debug, Default)]
pub struct NetInputStats {
    /// Connected to a sender now (UDP: packets arrived lately).
    pub connected: AtomicBool,
    /// Connections made so far (1 + reconnects).
    pub connections: AtomicU64,
    /// Frames received and handed on.
    pub frames: AtomicU64,
    /// Frames the sequence numbers say were not received.
    pub lost: AtomicU64,
    /// Packets rejected as malformed (and UDP datagrams that were not chunks).
    pub malformed: AtomicU64,
    /// UDP: frames whose datagrams did not all arrive in time.
    pub incomplete: AtomicU64,
    /// UDP: frames that arrived after a later one was shown.
    pub late: AtomicU64,
    /// H.264 frames skipped while waiting for a keyframe after a loss.
    pub skipped: AtomicU64,
    /// Keyframe requests sent.
    pub keyframe_requests: AtomicU64,
    /// UDP: requests to resend missing datagrams.
    pub nacks: AtomicU64,
    /// Keyframes that ended a wait after a loss.
    pub recovered: AtomicU64,
    /// Frames that arrived but could not be decoded.
    pub undecodable: AtomicU64,
    /// The last frame's latency, send to arrival, ns (same host or synchronised clocks).
    pub last_latency_ns: AtomicU64,
    /// Recent latencies, for percentiles.
    pub latencies: std::sync::Mutex<Latencies>,
}

/// The latencies of the last frames: this hop's (send to arrival) and glass-to-glass (the
/// origin's capture to arrival), in µs.
#[derive(Debug, Default)]
pub struct Latencies {
    hop: std::collections::VecDeque<u64>,
    glass: std::collections::VecDeque<u64>,
}

/// Frames the latency percentiles are taken over.
const LATENCY_WINDOW: usize = 600;

impl Latencies {
    fn add(&mut self, hop_ns: u64, glass_ns: Option<u64>) {
        for (ring, v) in [(&mut self.hop, Some(hop_ns)), (&mut self.glass, glass_ns)] {
            if let Some(v) = v {
                if ring.len() == LATENCY_WINDOW {
                    ring.pop_front();
                }
                ring.push_back(v / 1000);
            }
        }
    }

    /// p50 and p95 of this hop's latency, µs.
    pub fn hop(&self) -> Option<(u64, u64)> {
        percentiles(&self.hop)
    }

    /// p50 and p95 of the glass-to-glass latency, µs.
    pub fn glass(&self) -> Option<(u64, u64)> {
        percentiles(&self.glass)
    }
}

fn percentiles(values: &std::collections::VecDeque<u64>) -> Option<(u64, u64)> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<u64> = values.iter().copied().collect();
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Some((at(0.5), at(0.95)))
}

/// How packets reach the input.
enum Link {
    Tcp { reader: PacketReader<TcpStream>, writer: TcpStream, malformed_seen: u64 },
    Udp { endpoint: Box<UdpEndpoint>, target: Option<SocketAddr>, rejected_seen: u64, last_hello: Option<Instant> },
}

impl Link {
    fn recv(&mut self) -> std::io::Result<Result<Incoming, WireError>> {
        match self {
            Link::Tcp { reader, .. } => reader.read_packet(),
            Link::Udp { endpoint, .. } => endpoint.recv(),
        }
    }

    /// Sends a control packet to the sender; UDP without a known sender drops it.
    fn send(&mut self, packet: &[u8]) -> std::io::Result<()> {
        match self {
            Link::Tcp { writer, .. } => tcp::send(writer, packet),
            Link::Udp { endpoint, target, .. } => match target.or(endpoint.last_from) {
                Some(to) => endpoint.send(packet, to).map(|_| ()),
                None => Ok(()),
            },
        }
    }

    /// Rejections since the last call.
    fn new_rejections(&mut self) -> u64 {
        match self {
            Link::Tcp { reader, malformed_seen, .. } => {
                let n = reader.malformed - *malformed_seen;
                *malformed_seen = reader.malformed;
                n
            }
            Link::Udp { endpoint, rejected_seen, .. } => {
                let n = endpoint.rejected() - *rejected_seen;
                *rejected_seen = endpoint.rejected();
                n
            }
        }
    }
}

impl crate::counters::Counters for NetInputStats {
    fn snapshot(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let latencies = self.latencies.lock().unwrap_or_else(|p| p.into_inner());
        let (hop, glass) = (latencies.hop(), latencies.glass());
        drop(latencies);
        let percentiles = [
            ("latency_p50_us", hop.map(|h| h.0)),
            ("latency_p95_us", hop.map(|h| h.1)),
            ("glass_p50_us", glass.map(|g| g.0)),
            ("glass_p95_us", glass.map(|g| g.1)),
        ];
        [
            ("connected", u64::from(self.connected.load(Ordering::Relaxed))),
            ("connections", get(&self.connections)),
            ("frames", get(&self.frames)),
            ("lost", get(&self.lost)),
            ("malformed", get(&self.malformed)),
            ("incomplete", get(&self.incomplete)),
            ("late", get(&self.late)),
            ("skipped", get(&self.skipped)),
            ("keyframe_requests", get(&self.keyframe_requests)),
            ("nacks", get(&self.nacks)),
            ("recovered", get(&self.recovered)),
            ("undecodable", get(&self.undecodable)),
        ]
        .into_iter()
        .chain(percentiles.into_iter().filter_map(|(k, v)| Some((k, v?))))
        .collect()
    }

    fn latency_ms(&self) -> Option<f64> {
        let ns = self.last_latency_ns.load(Ordering::Relaxed);
        (self.frames.load(Ordering::Relaxed) > 0).then_some(ns as f64 / 1e6)
    }
}

struct Connection {
    link: Link,
    sequence: u64,
    /// The next frame sequence expected from the sender.
    expected: Option<u64>,
    owed_credit: u32,
    last_packet: Instant,
}

impl Connection {
    fn send_control(&mut self, message: &Control) -> std::io::Result<()> {
        self.sequence += 1;
        self.link.send(&message.packet(self.sequence))
    }
}

/// Decoding of compressed frames, and the wait for a keyframe after a loss.
#[derive(Default)]
struct Decoding {
    #[cfg(feature = "media")]
    decoder: Option<super::codec::FrameDecoder>,
    /// An H.264 frame was lost: skip until a keyframe.
    need_key: bool,
    /// The wait followed a loss (not the stream's start).
    after_loss: bool,
    last_request: Option<Instant>,
    /// Frames in the decoder: its input number, and the frame without its payload.
    #[cfg(feature = "media")]
    pending: std::collections::VecDeque<(u64, u64, WireFrame)>,
    #[cfg(feature = "media")]
    inputs: u64,
    /// Compressed frames in a row that gave no picture.
    #[cfg(feature = "media")]
    barren: u32,
}

/// Frames in a row a decoder may swallow before it is started afresh at the next keyframe.
#[cfg(feature = "media")]
const MAX_BARREN: u32 = 15;

/// The codecs this build can decode, as a hello's mask (asked of GStreamer once per process).
fn decodable() -> u32 {
    static MASK: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *MASK.get_or_init(find_decodable)
}

fn find_decodable() -> u32 {
    let raw = Codec::I420.bit() | Codec::Nv12.bit() | Codec::Rgba.bit() | Codec::Bgra.bit();
    #[cfg(feature = "media")]
    {
        use super::codec::{missing_elements, Compressed};
        let mut mask = raw;
        if missing_elements(Compressed::Jpeg).is_empty() {
            mask |= Codec::Jpeg.bit();
        }
        if missing_elements(Compressed::H264).is_empty() {
            mask |= Codec::H264.bit();
        }
        mask
    }
    #[cfg(not(feature = "media"))]
    raw
}

/// Reads frames from the network for a `ThreadedSource`.
pub struct NetworkProducer {
    address: NetAddress,
    role: Role,
    listener: Option<TcpListener>,
    connection: Option<Connection>,
    decoding: Decoding,
    /// Frames decoded and not yet handed on.
    ready: std::collections::VecDeque<TimestampedFrame>,
    backoff: Duration,
    next_attempt: Instant,
    name: String,
    stats: Arc<NetInputStats>,
}

impl NetworkProducer {
    /// Parses the URL; a listening input binds now so a taken port fails the build.
    pub fn open(config: &NetworkInputConfig, name: &str) -> Result<Self, SourceError> {
        let address = NetAddress::parse(&config.url).map_err(SourceError::Unsupported)?;
        let open_error = |e: std::io::Error| SourceError::Open { path: config.url.clone(), message: e.to_string() };
        let (role, listener, connection) = match address.transport {
            Transport::Tcp => match address.role(Role::Connect) {
                Role::Listen => {
                    let l = TcpListener::bind(address.resolve().map_err(open_error)?).map_err(open_error)?;
                    l.set_nonblocking(true).map_err(open_error)?;
                    (Role::Listen, Some(l), None)
                }
                Role::Connect => (Role::Connect, None, None),
            },
            Transport::Udp => {
                let role = address.role(Role::Listen);
                let resolved = address.resolve().map_err(open_error)?;
                let (bind, target) = match role {
                    Role::Listen => (resolved, None),
                    Role::Connect if resolved.is_ipv4() => ("0.0.0.0:0".parse().expect("literal"), Some(resolved)),
                    Role::Connect => ("[::]:0".parse().expect("literal"), Some(resolved)),
                };
                let socket = UdpSocket::bind(bind).map_err(open_error)?;
                let ms = Duration::from_millis;
                let endpoint = UdpEndpoint::new(socket, READ_TIMEOUT, ms(config.reassembly_ms), ms(config.reorder_ms))
                    .with_nacks();
                let link = Link::Udp { endpoint: Box::new(endpoint), target, rejected_seen: 0, last_hello: None };
                let connection =
                    Connection { link, sequence: 0, expected: None, owed_credit: 0, last_packet: Instant::now() };
                (role, None, Some(connection))
            }
        };
        Ok(NetworkProducer {
            address,
            role,
            listener,
            connection,
            decoding: Decoding::default(),
            ready: Default::default(),
            backoff: Duration::from_millis(100),
            next_attempt: Instant::now(),
            name: name.to_string(),
            stats: Arc::new(NetInputStats::default()),
        })
    }

    /// Counters of this input.
    pub fn stats(&self) -> Arc<NetInputStats> {
        self.stats.clone()
    }

    /// The local address of a UDP input (where senders send).
    pub fn udp_local_addr(&self) -> Option<SocketAddr> {
        match &self.connection.as_ref()?.link {
            Link::Udp { endpoint, .. } => endpoint.local_addr().ok(),
            Link::Tcp { .. } => None,
        }
    }

    fn hello(&self) -> Control {
        Control::Hello(Hello {
            sender: false,
            codecs: decodable(),
            credit: CREDIT,
            max_body: wire::MAX_BODY,
            name: self.name.clone(),
        })
    }

    fn establish(&mut self) -> Option<TcpStream> {
        match self.role {
            Role::Listen => self.listener.as_ref()?.accept().ok().map(|(s, _)| s),
            Role::Connect => {
                if Instant::now() < self.next_attempt {
                    return None;
                }
                let stream = self
                    .address
                    .resolve()
                    .and_then(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)))
                    .ok();
                if stream.is_none() {
                    self.next_attempt = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(Duration::from_secs(2));
                }
                stream
            }
        }
    }

    fn connect_tcp(&mut self) -> bool {
        let Some(stream) = self.establish() else { return false };
        let _ = stream.set_nonblocking(false);
        let Ok(writer) = tcp::configure(&stream, READ_TIMEOUT).and_then(|()| stream.try_clone()) else {
            return false;
        };
        let link = Link::Tcp { reader: PacketReader::new(stream, wire::MAX_BODY), writer, malformed_seen: 0 };
        let mut connection =
            Connection { link, sequence: 0, expected: None, owed_credit: 0, last_packet: Instant::now() };
        if connection.link.send(&self.hello().packet(0)).is_err() {
            return false;
        }
        self.backoff = Duration::from_millis(100);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        self.stats.connected.store(true, Ordering::Relaxed);
        self.connection = Some(connection);
        self.new_stream();
        true
    }

    /// A new sender (or the same one restarted): its frames start over.
    fn new_stream(&mut self) {
        if let Some(c) = self.connection.as_mut() {
            c.expected = None;
            if let Link::Udp { endpoint, .. } = &mut c.link {
                endpoint.reset_order();
            }
        }
        #[cfg(feature = "media")]
        if let Some(d) = self.decoding.decoder.as_mut() {
            d.reset();
        }
        self.decoding.need_key = true;
        self.decoding.after_loss = false;
    }

    fn disconnect(&mut self) {
        if self.address.transport == Transport::Udp {
            // The socket stays; the next packets are a new stream.
            self.new_stream();
            return;
        }
        self.connection = None;
        self.stats.connected.store(false, Ordering::Relaxed);
        self.next_attempt = Instant::now() + self.backoff;
    }

    /// UDP upkeep: hello to a listening sender every second; the connected flag.
    fn udp_upkeep(&mut self) {
        let hello = self.hello().packet(0);
        let stats = self.stats.clone();
        let Some(c) = self.connection.as_mut() else { return };
        let alive = c.last_packet.elapsed() < UDP_ALIVE;
        if stats.connected.swap(alive, Ordering::Relaxed) != alive && alive {
            stats.connections.fetch_add(1, Ordering::Relaxed);
        }
        if let Link::Udp { endpoint, target: Some(to), last_hello, .. } = &mut c.link {
            if last_hello.is_none_or(|t| t.elapsed() >= UDP_HELLO_EVERY) {
                *last_hello = Some(Instant::now());
                let _ = endpoint.send(&hello, *to);
            }
        }
    }

    /// Pixels of a raw frame as the engine takes them: the first plane keeps the payload's
    /// buffer, only the (smaller) chroma planes are copied out.
    fn raw_planes(frame: &mut WireFrame) -> Vec<Plane> {
        let Some(format) = frame.codec.pixel_format() else { return Vec::new() };
        let mut payload = std::mem::take(&mut frame.payload);
        let shapes = format.planes(frame.width, frame.height);
        let mut offsets = Vec::with_capacity(shapes.len());
        let mut offset = 0usize;
        for (i, shape) in shapes.iter().enumerate() {
            offsets.push(offset);
            offset += frame.strides[i] as usize * shape.height as usize;
        }
        // decode_frame checked that the planes add up to the payload.
        let mut planes = Vec::with_capacity(shapes.len());
        for i in (0..shapes.len()).rev() {
            let data =
                if i == 0 { std::mem::take(&mut payload) } else { payload.split_off(offsets[i].min(payload.len())) };
            planes.push(Plane { data, stride: frame.strides[i] as usize });
        }
        planes.reverse();
        planes
    }

    /// Decodes a JPEG or H.264 payload; the pictures the decoder gave back, each with the
    /// sequence number and frame (timing, metadata) it belongs to.
    #[cfg(feature = "media")]
    fn decode_compressed(&mut self, sequence: u64, frame: WireFrame) -> Result<Vec<Picture>, String> {
        use super::codec::{Compressed, FrameDecoder};
        let codec = if frame.codec == Codec::Jpeg { Compressed::Jpeg } else { Compressed::H264 };
        let d = &mut self.decoding;
        if d.decoder.as_ref().is_none_or(|d| d.codec() != codec) {
            d.decoder = Some(FrameDecoder::new(codec));
            d.pending.clear();
            d.inputs = 0;
        }
        let Some(decoder) = d.decoder.as_mut() else { return Ok(Vec::new()) };
        let pictures = match decoder.decode(&frame.payload) {
            Ok(p) => p,
            Err(e) => {
                // Start a fresh decoder at the next keyframe.
                decoder.reset();
                d.need_key = true;
                return Err(e);
            }
        };
        d.pending.push_back((d.inputs, sequence, WireFrame { payload: Vec::new(), ..frame }));
        d.inputs += 1;
        d.barren = if pictures.is_empty() { d.barren + 1 } else { 0 };
        if d.barren >= MAX_BARREN {
            // A wedged decoder: a fresh one, from the next keyframe.
            d.barren = 0;
            decoder.reset();
            d.need_key = true;
            d.pending.clear();
            return Err(format!("the decoder gave nothing for {MAX_BARREN} frames; restarted"));
        }
        let mut out = Vec::new();
        for p in pictures {
            while d.pending.front().is_some_and(|(i, ..)| *i < p.input) {
                d.pending.pop_front();
            }
            if let Some((_, sequence, frame)) = d.pending.pop_front() {
                out.push((sequence, frame, p.width, p.height, p.planes));
            }
        }
        while d.pending.len() > 16 {
            d.pending.pop_front();
        }
        Ok(out)
    }

    #[cfg(not(feature = "media"))]
    fn decode_compressed(&mut self, _sequence: u64, frame: WireFrame) -> Result<Vec<Picture>, String> {
        Err(format!("{:?} needs streamlib built with the media feature", frame.codec))
    }

    fn request_keyframe(&mut self) {
        if self.decoding.last_request.is_some_and(|t| t.elapsed() < KEYFRAME_RETRY) {
            return;
        }
        self.decoding.last_request = Some(Instant::now());
        if let Some(c) = self.connection.as_mut() {
            if c.send_control(&Control::KeyframeRequest).is_ok() {
                self.stats.keyframe_requests.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Handles a control packet from the sender.
    fn on_control(&mut self, kind: MessageType, body: &[u8]) {
        let stats = self.stats.clone();
        let Some(c) = self.connection.as_mut() else { return };
        match Control::decode(kind, body) {
            Ok(Control::Ping(t)) => {
                let pong = wire::Pong {
                    echo_ns: t,
                    received: stats.frames.load(Ordering::Relaxed),
                    lost: stats.lost.load(Ordering::Relaxed),
                    malformed: stats.malformed.load(Ordering::Relaxed),
                };
                let _ = c.send_control(&Control::Pong(pong));
            }
            Ok(Control::Bye(..)) => self.disconnect(),
            Ok(_) => {}
            Err(_) => {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Turns a frame packet into frames for the engine (`ready`): none when it was skipped or
    /// could not be decoded, more than one if a decoder caught up.
    fn on_frame(&mut self, packet: Packet) {
        let stats = self.stats.clone();
        let Some(c) = self.connection.as_mut() else { return };
        c.owed_credit += 1;
        if packet.header.flags & wire::FLAG_END_OF_STREAM != 0 {
            // The sender finished; a new one may connect (listen) or come back (connect).
            self.disconnect();
            return;
        }
        let Ok(frame) = wire::decode_frame(&packet.body) else {
            stats.malformed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let sequence = packet.header.sequence;
        let gap = c.expected.filter(|&e| sequence > e).map_or(0, |e| sequence - e);
        let restarted = c.expected.is_some_and(|e| sequence + 1 < e);
        stats.lost.fetch_add(gap, Ordering::Relaxed);
        c.expected = Some(sequence + 1);
        let now = unix_ns();
        stats.last_latency_ns.store(now.saturating_sub(frame.timing.send_ns), Ordering::Relaxed);
        stats.latencies.lock().unwrap_or_else(|p| p.into_inner()).add(
            now.saturating_sub(frame.timing.send_ns),
            (frame.timing.capture_ns > 0).then(|| now.saturating_sub(frame.timing.capture_ns)),
        );
        if restarted {
            self.new_stream();
        }
        let keyframe = packet.header.flags & wire::FLAG_KEYFRAME != 0;
        if frame.codec == Codec::H264 {
            if (gap > 0 || packet.header.flags & wire::FLAG_DISCONTINUITY != 0) && !keyframe {
                self.decoding.need_key = true;
                self.decoding.after_loss = true;
            }
            if self.decoding.need_key {
                if !keyframe {
                    stats.skipped.fetch_add(1, Ordering::Relaxed);
                    self.request_keyframe();
                    return;
                }
                if self.decoding.after_loss {
                    stats.recovered.fetch_add(1, Ordering::Relaxed);
                }
                self.decoding.need_key = false;
                self.decoding.after_loss = false;
            }
        }
        let pictures = match frame.codec.pixel_format() {
            Some(format) => {
                let mut frame = frame;
                let planes = Self::raw_planes(&mut frame);
                vec![(sequence, format, frame, planes)]
            }
            None => match self.decode_compressed(sequence, frame) {
                Ok(pictures) => pictures
                    .into_iter()
                    .map(|(sequence, frame, width, height, planes)| {
                        (sequence, crate::frame::PixelFormat::I420, WireFrame { width, height, ..frame }, planes)
                    })
                    .collect(),
                Err(_) => {
                    stats.undecodable.fetch_add(1, Ordering::Relaxed);
                    Vec::new()
                }
            },
        };
        for (sequence, format, mut frame, planes) in pictures {
            if frame.timing.capture_ns > 0 {
                frame.meta.capture_ns = Some(frame.timing.capture_ns);
            }
            let result = TimestampedFrame {
                time: FrameTime { index: sequence, pts_ns: frame.timing.pts_ns, duration_ns: frame.timing.duration_ns },
                width: frame.width,
                height: frame.height,
                format,
                data: FrameData::Cpu(planes),
                color_space: frame.color_space,
                meta: frame.meta,
                captured_ns: None,
            };
            if result.check().is_err() {
                stats.undecodable.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            stats.frames.fetch_add(1, Ordering::Relaxed);
            self.ready.push_back(result);
        }
    }
}

/// A decoded picture: sequence, the frame it belongs to (payload taken), size, planes.
type Picture = (u64, WireFrame, u32, u32, Vec<Plane>);

impl FrameProducer for NetworkProducer {
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError> {
        if let Some(frame) = self.ready.pop_front() {
            return Ok(Some(frame));
        }
        if self.connection.is_none() && !self.connect_tcp() {
            std::thread::sleep(READ_TIMEOUT);
            return Err(SourceError::NotYet);
        }
        if self.address.transport == Transport::Udp {
            self.udp_upkeep();
        }
        let stats = self.stats.clone();
        let Some(c) = self.connection.as_mut() else { return Err(SourceError::NotYet) };
        // The frames handed on since the last read have left this thread: the sender may send more.
        if c.owed_credit > 0 && matches!(c.link, Link::Tcp { .. }) {
            let owed = c.owed_credit;
            c.owed_credit = 0;
            if c.send_control(&Control::Credit(owed)).is_err() {
                self.disconnect();
                return Err(SourceError::NotYet);
            }
        }
        let received = c.link.recv();
        stats.malformed.fetch_add(c.link.new_rejections(), Ordering::Relaxed);
        if let Link::Udp { endpoint, .. } = &c.link {
            stats.incomplete.store(endpoint.incomplete(), Ordering::Relaxed);
            stats.late.store(endpoint.late(), Ordering::Relaxed);
            stats.nacks.store(endpoint.nacks_sent, Ordering::Relaxed);
        }
        let packet = match received {
            Ok(Ok(Incoming::Packet(p))) => p,
            Ok(Ok(Incoming::Idle)) => return Err(SourceError::NotYet),
            Ok(Ok(Incoming::Closed)) | Err(_) => {
                self.disconnect();
                return Err(SourceError::NotYet);
            }
            Ok(Err(e)) => {
                let _ = c.send_control(&Control::Bye(ByeReason::Version as u8, e.to_string()));
                self.disconnect();
                return Err(SourceError::NotYet);
            }
        };
        c.last_packet = Instant::now();
        let Some(kind) = packet.header.message_type() else { return Err(SourceError::NotYet) };
        if kind != MessageType::Frame {
            self.on_control(kind, &packet.body);
            return Err(SourceError::NotYet);
        }
        self.on_frame(packet);
        self.ready.pop_front().map(Some).ok_or(SourceError::NotYet)
    }

    fn is_live(&self) -> bool {
        true
    }

    fn counters(&self) -> Option<Arc<dyn crate::counters::Counters>> {
        Some(self.stats.clone())
    }
}

/// Registry entry for `"kind": "network"` inputs.
#[derive(Debug, Default)]
pub struct NetworkInputKind;

impl InputKind for NetworkInputKind {
    type Config = NetworkInputConfig;

    fn check(&self, config: &NetworkInputConfig) -> Result<(), SceneError> {
        NetAddress::parse(&config.url).map(|_| ()).map_err(|m| SceneError::new("url", m))
    }

    fn build(
        &self,
        id: &str,
        config: NetworkInputConfig,
        _ctx: &BuildContext<'_>,
    ) -> Result<Box<dyn Source>, BuildError> {
        let producer = NetworkProducer::open(&config, id).map_err(|e| BuildError::new(format!("inputs.{id}"), e))?;
        // Live: the newest frame whatever its pts; held for `hold_ms` when frames stop.
        let source = ThreadedSource::spawn(id, producer, crate::YuvColorSpace::default(), u64::MAX / 4)
            .map_err(|e| BuildError::new(id, e))?
            .with_hold(Duration::from_millis(config.hold_ms));
        Ok(Box::new(source))
    }
}
