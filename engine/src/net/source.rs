//! The `network` input: a producer thread that connects (or listens), reads frames, grants
//! credit as it hands them on, and reconnects with backoff. It never stalls the compositor: the
//! frames go through a `ThreadedSource` like a camera's, and when they stop the last one is held
//! for `hold_ms`, then nothing is shown.

use super::tcp::{self, Incoming, NetAddress, PacketReader, Role};
use super::unix_ns;
use super::wire::{self, ByeReason, Codec, Control, Hello, MessageType, WireFrame};
use crate::frame::{FrameData, FrameTime, Plane, TimestampedFrame};
use crate::registry::{BuildContext, BuildError, InputKind};
use crate::scene::SceneError;
use crate::sources::{FrameProducer, Source, SourceError, ThreadedSource};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames the receiver lets the sender have in flight.
const CREDIT: u32 = 4;
/// How long one read waits before the producer thread checks for stop.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// `{"kind": "network", "url": "tcp://host:9000"}` in a scene's `inputs`.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInputConfig {
    /// `tcp://host:port`, connecting by default (`?mode=listen` to wait for a sender).
    pub url: String,
    /// How long the last frame stays on screen after frames stop, in ms; then nothing.
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

fn default_hold_ms() -> u64 {
    1000
}

/// Counters of a network input.
#[derive(Debug, Default)]
pub struct NetInputStats {
    /// Connected to a sender now.
    pub connected: AtomicBool,
    /// Connections made so far (1 + reconnects).
    pub connections: AtomicU64,
    /// Frames received and handed on.
    pub frames: AtomicU64,
    /// Frames the sequence numbers say were not received.
    pub lost: AtomicU64,
    /// Packets rejected as malformed.
    pub malformed: AtomicU64,
    /// The last frame's latency, send to arrival, ns (same host or synchronised clocks).
    pub last_latency_ns: AtomicU64,
}

struct Connection {
    reader: PacketReader<TcpStream>,
    writer: TcpStream,
    sequence: u64,
    /// The next frame sequence expected from the sender.
    expected: Option<u64>,
    owed_credit: u32,
    malformed_seen: u64,
}

/// Reads frames from the network for a `ThreadedSource`.
pub struct NetworkProducer {
    address: NetAddress,
    role: Role,
    listener: Option<TcpListener>,
    connection: Option<Connection>,
    backoff: Duration,
    next_attempt: Instant,
    name: String,
    stats: Arc<NetInputStats>,
}

impl NetworkProducer {
    /// Parses the URL; a listening input binds now so a taken port fails the build.
    pub fn open(config: &NetworkInputConfig, name: &str) -> Result<Self, SourceError> {
        let address = NetAddress::parse(&config.url).map_err(SourceError::Unsupported)?;
        let role = address.role(Role::Connect);
        let open_error = |e: std::io::Error| SourceError::Open { path: config.url.clone(), message: e.to_string() };
        let listener = match role {
            Role::Listen => {
                let l = TcpListener::bind(address.resolve().map_err(open_error)?).map_err(open_error)?;
                l.set_nonblocking(true).map_err(open_error)?;
                Some(l)
            }
            Role::Connect => None,
        };
        Ok(NetworkProducer {
            address,
            role,
            listener,
            connection: None,
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

    fn connect(&mut self) -> bool {
        let Some(stream) = self.establish() else { return false };
        let _ = stream.set_nonblocking(false);
        let Ok(writer) = tcp::configure(&stream, READ_TIMEOUT).and_then(|()| stream.try_clone()) else {
            return false;
        };
        let mut connection = Connection {
            reader: PacketReader::new(stream, wire::MAX_BODY),
            writer,
            sequence: 0,
            expected: None,
            owed_credit: 0,
            malformed_seen: 0,
        };
        let hello = Control::Hello(Hello {
            sender: false,
            codecs: Codec::I420.bit() | Codec::Nv12.bit() | Codec::Rgba.bit() | Codec::Bgra.bit(),
            credit: CREDIT,
            max_body: wire::MAX_BODY,
            name: self.name.clone(),
        });
        if tcp::send(&mut connection.writer, &hello.packet(0)).is_err() {
            return false;
        }
        self.backoff = Duration::from_millis(100);
        self.stats.connections.fetch_add(1, Ordering::Relaxed);
        self.stats.connected.store(true, Ordering::Relaxed);
        self.connection = Some(connection);
        true
    }

    fn disconnect(&mut self) {
        self.connection = None;
        self.stats.connected.store(false, Ordering::Relaxed);
        self.next_attempt = Instant::now() + self.backoff;
    }

    /// A decoded raw frame as the engine takes it.
    fn to_frame(frame: WireFrame, sequence: u64) -> Result<TimestampedFrame, SourceError> {
        let format = frame
            .codec
            .pixel_format()
            .ok_or_else(|| SourceError::Unsupported(format!("codec {:?} is not decoded yet", frame.codec)))?;
        let mut planes = Vec::new();
        let mut offset = 0usize;
        for (i, shape) in format.planes(frame.width, frame.height).iter().enumerate() {
            let stride = frame.strides[i] as usize;
            let len = stride * shape.height as usize;
            // decode_frame checked that the planes add up to the payload.
            let data = frame.payload.get(offset..offset + len).unwrap_or_default().to_vec();
            planes.push(Plane { data, stride });
            offset += len;
        }
        let result = TimestampedFrame {
            time: FrameTime { index: sequence, pts_ns: frame.timing.pts_ns, duration_ns: frame.timing.duration_ns },
            width: frame.width,
            height: frame.height,
            format,
            data: FrameData::Cpu(planes),
            color_space: frame.color_space,
            meta: frame.meta,
        };
        result.check().map_err(|e| SourceError::Decode(e.to_string()))?;
        Ok(result)
    }
}

impl FrameProducer for NetworkProducer {
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError> {
        if self.connection.is_none() && !self.connect() {
            std::thread::sleep(READ_TIMEOUT);
            return Err(SourceError::NotYet);
        }
        let stats = self.stats.clone();
        let Some(c) = self.connection.as_mut() else { return Err(SourceError::NotYet) };
        // The frame handed on last time has left this thread: the sender may send another.
        if c.owed_credit > 0 {
            c.sequence += 1;
            if tcp::send(&mut c.writer, &Control::Credit(c.owed_credit).packet(c.sequence)).is_err() {
                self.disconnect();
                return Err(SourceError::NotYet);
            }
            c.owed_credit = 0;
        }
        let packet = match c.reader.read_packet() {
            Ok(Ok(Incoming::Packet(p))) => p,
            Ok(Ok(Incoming::Idle)) => return Err(SourceError::NotYet),
            Ok(Ok(Incoming::Closed)) | Err(_) => {
                self.disconnect();
                return Err(SourceError::NotYet);
            }
            Ok(Err(e)) => {
                c.sequence += 1;
                let _ =
                    tcp::send(&mut c.writer, &Control::Bye(ByeReason::Version as u8, e.to_string()).packet(c.sequence));
                self.disconnect();
                return Err(SourceError::NotYet);
            }
        };
        let new_malformed = c.reader.malformed - c.malformed_seen;
        c.malformed_seen = c.reader.malformed;
        stats.malformed.fetch_add(new_malformed, Ordering::Relaxed);
        let Some(kind) = packet.header.message_type() else { return Err(SourceError::NotYet) };
        if kind != MessageType::Frame {
            match Control::decode(kind, &packet.body) {
                Ok(Control::Ping(t)) => {
                    c.sequence += 1;
                    let pong = wire::Pong {
                        echo_ns: t,
                        received: stats.frames.load(Ordering::Relaxed),
                        lost: stats.lost.load(Ordering::Relaxed),
                        malformed: stats.malformed.load(Ordering::Relaxed),
                    };
                    let _ = tcp::send(&mut c.writer, &Control::Pong(pong).packet(c.sequence));
                }
                Ok(Control::Bye(..)) => self.disconnect(),
                Ok(_) => {}
                Err(_) => {
                    stats.malformed.fetch_add(1, Ordering::Relaxed);
                }
            }
            return Err(SourceError::NotYet);
        }
        if packet.header.flags & wire::FLAG_END_OF_STREAM != 0 {
            // The sender finished; a new one may connect (listen) or come back (connect).
            self.disconnect();
            return Err(SourceError::NotYet);
        }
        let frame = match wire::decode_frame(&packet.body) {
            Ok(f) => f,
            Err(_) => {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                // Not handed on, but the sender spent credit on it.
                c.owed_credit += 1;
                return Err(SourceError::NotYet);
            }
        };
        let sequence = packet.header.sequence;
        if let Some(expected) = c.expected.filter(|&e| sequence > e) {
            stats.lost.fetch_add(sequence - expected, Ordering::Relaxed);
        }
        c.expected = Some(sequence + 1);
        c.owed_credit += 1;
        stats.last_latency_ns.store(unix_ns().saturating_sub(frame.timing.send_ns), Ordering::Relaxed);
        match Self::to_frame(frame, sequence) {
            Ok(f) => {
                stats.frames.fetch_add(1, Ordering::Relaxed);
                Ok(Some(f))
            }
            Err(_) => {
                stats.malformed.fetch_add(1, Ordering::Relaxed);
                Err(SourceError::NotYet)
            }
        }
    }

    fn is_live(&self) -> bool {
        true
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
