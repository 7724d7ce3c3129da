//! The frame protocol's bytes: packets, frame bodies, metadata sections and control messages,
//! encoded and decoded exactly as `docs/protocol.md` specifies. Decoding never panics and never
//! allocates more than the limits below, whatever the input.

use crate::frame::PixelFormat;
use crate::metadata::{Detection, FrameMetadata};
use crate::{YuvColorSpace, YuvMatrix, YuvRange};

/// The first four bytes of every packet.
pub const MAGIC: [u8; 4] = *b"SLFP";
/// The protocol's major version: a receiver refuses any other.
pub const MAJOR: u8 = 1;
/// The protocol's minor version: additions only.
pub const MINOR: u8 = 0;
/// Bytes in a packet header.
pub const HEADER_LEN: usize = 32;
/// The largest body a packet may have.
pub const MAX_BODY: u32 = 64 << 20;
/// The largest width or height of a frame.
pub const MAX_SIDE: u32 = 8192;
/// The largest metadata block.
pub const MAX_META: u32 = 64 << 10;
/// The most detections in one frame.
pub const MAX_DETECTIONS: u32 = 1024;
/// The most user values in one frame.
pub const MAX_USER_VALUES: u16 = 64;
const FRAME_FIXED_LEN: u16 = 96;
const HELLO_FIXED_LEN: u16 = 16;

/// Why bytes were not a valid packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The header does not start with `SLFP`.
    #[error("bad magic")]
    Magic,
    /// The header's CRC does not match.
    #[error("header CRC mismatch")]
    HeaderCrc,
    /// Another major version.
    #[error("protocol version {major}.{minor} (this side speaks {MAJOR}.{MINOR})")]
    Version {
        /// The packet's major version.
        major: u8,
        /// The packet's minor version.
        minor: u8,
    },
    /// The body is longer than the limit.
    #[error("body of {0} bytes exceeds the limit")]
    TooLarge(u32),
    /// The body's CRC does not match.
    #[error("body CRC mismatch")]
    BodyCrc,
    /// The bytes end before `what`.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A field holds a value the protocol does not allow.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> WireError {
    WireError::Invalid { field, message: message.into() }
}

/// Message types (header byte 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    /// A frame.
    Frame = 1,
    /// The first packet of each side.
    Hello = 2,
    /// The receiver asks for a keyframe.
    KeyframeRequest = 3,
    /// The receiver grants frames.
    Credit = 4,
    /// A round-trip probe.
    Ping = 5,
    /// The answer to a ping, with counters.
    Pong = 6,
    /// The last packet.
    Bye = 7,
    /// UDP: the receiver asks for datagrams of a packet again.
    Nack = 8,
}

impl MessageType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Frame,
            2 => Self::Hello,
            3 => Self::KeyframeRequest,
            4 => Self::Credit,
            5 => Self::Ping,
            6 => Self::Pong,
            7 => Self::Bye,
            8 => Self::Nack,
            _ => return None,
        })
    }
}

/// Header flag: the frame decodes on its own.
pub const FLAG_KEYFRAME: u8 = 1;
/// Header flag: frames before this one were not received.
pub const FLAG_DISCONTINUITY: u8 = 2;
/// Header flag: the stream ends.
pub const FLAG_END_OF_STREAM: u8 = 4;

/// A packet header, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// The packet's minor version.
    pub minor: u8,
    /// Message type byte (unknown types are skipped, not refused).
    pub kind: u8,
    /// Flag bits.
    pub flags: u8,
    /// The sender's stream.
    pub stream_id: u32,
    /// Frame counter (frames) or packet counter (control).
    pub sequence: u64,
    /// Bytes of body.
    pub body_len: u32,
    /// CRC32C of the body.
    pub body_crc: u32,
}

impl Header {
    /// Checks and decodes 32 header bytes. `max_body` is this side's body limit.
    pub fn decode(bytes: &[u8; HEADER_LEN], max_body: u32) -> Result<Header, WireError> {
        if bytes[0..4] != MAGIC {
            return Err(WireError::Magic);
        }
        if crc32c::crc32c(&bytes[..28]) != u32_at(bytes, 28) {
            return Err(WireError::HeaderCrc);
        }
        if bytes[4] != MAJOR {
            return Err(WireError::Version { major: bytes[4], minor: bytes[5] });
        }
        let body_len = u32_at(bytes, 20);
        if body_len > max_body.min(MAX_BODY) {
            return Err(WireError::TooLarge(body_len));
        }
        Ok(Header {
            minor: bytes[5],
            kind: bytes[6],
            flags: bytes[7],
            stream_id: u32_at(bytes, 8),
            sequence: u64::from_le_bytes(arr(&bytes[12..20])),
            body_len,
            body_crc: u32_at(bytes, 24),
        })
    }

    /// The message type, if this side knows it.
    pub fn message_type(&self) -> Option<MessageType> {
        MessageType::from_u8(self.kind)
    }

    /// Checks `body` against the header's CRC.
    pub fn check_body(&self, body: &[u8]) -> Result<(), WireError> {
        if body.len() != self.body_len as usize {
            return Err(WireError::Truncated("body"));
        }
        if crc32c::crc32c(body) != self.body_crc {
            return Err(WireError::BodyCrc);
        }
        Ok(())
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(arr(&b[at..at + 4]))
}

fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(b);
    out
}

/// The protocol's checksum (CRC32C) of `bytes`.
pub fn checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// One packet's bytes: a header for `body`, then `body`.
pub fn packet(kind: MessageType, flags: u8, stream_id: u32, sequence: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&[MAJOR, MINOR, kind as u8, flags]);
    out.extend_from_slice(&stream_id.to_le_bytes());
    out.extend_from_slice(&sequence.to_le_bytes());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    let crc = crc32c::crc32c(&out[..28]);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// What a frame's payload is (frame byte 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Codec {
    /// No payload: an end-of-stream marker.
    None = 0,
    /// Raw NV12.
    Nv12 = 1,
    /// Raw I420.
    I420 = 2,
    /// Raw RGBA.
    Rgba = 3,
    /// Raw BGRA.
    Bgra = 4,
    /// A JPEG image.
    Jpeg = 16,
    /// An H.264 access unit, Annex B.
    H264 = 17,
}

impl Codec {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::None,
            1 => Self::Nv12,
            2 => Self::I420,
            3 => Self::Rgba,
            4 => Self::Bgra,
            16 => Self::Jpeg,
            17 => Self::H264,
            _ => return None,
        })
    }

    /// The pixel format of a raw codec.
    pub fn pixel_format(self) -> Option<PixelFormat> {
        Some(match self {
            Self::Nv12 => PixelFormat::Nv12,
            Self::I420 => PixelFormat::I420,
            Self::Rgba => PixelFormat::Rgba8,
            Self::Bgra => PixelFormat::Bgra8,
            _ => return None,
        })
    }

    /// The raw codec that carries `format`.
    pub fn raw(format: PixelFormat) -> Self {
        match format {
            PixelFormat::Nv12 => Self::Nv12,
            PixelFormat::I420 => Self::I420,
            PixelFormat::Rgba8 => Self::Rgba,
            PixelFormat::Bgra8 => Self::Bgra,
        }
    }

    /// The codec's bit in a hello's `codecs` mask.
    pub fn bit(self) -> u32 {
        1 << (self as u8 as u32 % 32)
    }
}

/// How a raw payload is compressed (frame byte 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// As is.
    #[default]
    None,
    /// LZ4 block format.
    Lz4,
}

/// How alpha is stored (frame byte 6).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlphaMode {
    /// No alpha (YUV) or every pixel opaque.
    #[default]
    Opaque,
    /// Colour multiplied by alpha, as the compositor makes it.
    Premultiplied,
    /// Colour not multiplied by alpha.
    Straight,
}

/// Whether the capture clock is locked (frame byte 7).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// The sender's own clock, not disciplined.
    #[default]
    FreeRunning,
    /// Converging on a leader.
    Locking,
    /// Locked to the leader `clock_id` names.
    Locked,
}

/// A frame's timing as it travels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WireTiming {
    /// Presentation time, ns.
    pub pts_ns: u64,
    /// How long the frame is shown, ns.
    pub duration_ns: u64,
    /// Capture time on `clock_id`'s timeline, ns; 0 unknown.
    pub capture_ns: u64,
    /// 0: the sender's system clock; otherwise a PTP clock identity.
    pub clock_id: u64,
    /// Lock state of that clock.
    pub clock_state: ClockState,
    /// The sender's system clock at send, ns since the Unix epoch.
    pub send_ns: u64,
}

/// A decoded frame: format, timing, metadata and the (decompressed) payload.
#[derive(Clone, Debug, PartialEq)]
pub struct WireFrame {
    /// What the payload is.
    pub codec: Codec,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes per row of each plane (0 for absent planes and compressed codecs).
    pub strides: [u32; 3],
    /// The YUV colour space; `None` for RGB codecs.
    pub color_space: Option<YuvColorSpace>,
    /// How alpha is stored.
    pub alpha: AlphaMode,
    /// Timing.
    pub timing: WireTiming,
    /// The frame's metadata.
    pub meta: FrameMetadata,
    /// The payload, decompressed.
    pub payload: Vec<u8>,
}

/// Bytes the planes of a raw `codec` frame occupy with `strides`, after checking each stride
/// covers its row.
fn raw_len(codec: Codec, width: u32, height: u32, strides: [u32; 3]) -> Result<usize, WireError> {
    let Some(format) = codec.pixel_format() else {
        return Ok(0);
    };
    let mut total = 0usize;
    for (i, shape) in format.planes(width, height).iter().enumerate() {
        let stride = strides[i] as usize;
        let row = shape.width as usize * shape.bytes_per_pixel as usize;
        if stride < row {
            return Err(invalid("strides", format!("plane {i}: stride {stride} is shorter than a row of {row} bytes")));
        }
        total += stride * shape.height as usize;
    }
    for (i, &s) in strides.iter().enumerate().skip(format.planes(width, height).len()) {
        if s != 0 {
            return Err(invalid("strides", format!("plane {i} does not exist in {codec:?} but has stride {s}")));
        }
    }
    Ok(total)
}

/// A `FRAME` body for `frame`, its raw payload compressed as asked.
pub fn encode_frame(frame: &WireFrame, compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    encode_body_into(&mut out, frame, &frame.payload, compression);
    out
}

/// Where `send_ns` sits in a frame packet (header included).
const SEND_AT: usize = HEADER_LEN + 40;

/// A whole `FRAME` packet, encoded once for every receiver, with what restamping its send time
/// needs: the CRC of the body after `send_ns`, so a receiver's copy costs a 48-byte checksum
/// instead of one over the whole payload (CRC32C combines).
#[derive(Debug)]
pub struct FramePacket {
    /// Header and body.
    pub bytes: Vec<u8>,
    tail_crc: u32,
}

impl FramePacket {
    /// Encodes `frame` with `payload` (its own `payload` field is not read) into a packet.
    pub fn new(
        frame: &WireFrame,
        payload: &[u8],
        compression: Compression,
        (flags, stream_id, sequence): (u8, u32, u64),
    ) -> FramePacket {
        let mut bytes = vec![0u8; HEADER_LEN];
        encode_body_into(&mut bytes, frame, payload, compression);
        let body_len = (bytes.len() - HEADER_LEN) as u32;
        let mut head = Vec::with_capacity(28);
        head.extend_from_slice(&MAGIC);
        head.extend_from_slice(&[MAJOR, MINOR, MessageType::Frame as u8, flags]);
        head.extend_from_slice(&stream_id.to_le_bytes());
        head.extend_from_slice(&sequence.to_le_bytes());
        head.extend_from_slice(&body_len.to_le_bytes());
        bytes[..24].copy_from_slice(&head);
        let tail_crc = crc32c::crc32c(&bytes[SEND_AT + 8..]);
        let mut packet = FramePacket { bytes, tail_crc };
        let send_ns = frame.timing.send_ns;
        let stamped = packet.head(send_ns, 0);
        packet.bytes[..stamped.len()].copy_from_slice(&stamped);
        packet
    }

    /// The first bytes of the packet (header and body up to `send_ns`) with `send_ns` and extra
    /// `flags` set and both CRCs made right; the rest of the packet follows unchanged.
    pub fn head(&self, send_ns: u64, flags: u8) -> [u8; SEND_AT + 8] {
        let mut head = [0u8; SEND_AT + 8];
        head.copy_from_slice(&self.bytes[..SEND_AT + 8]);
        head[7] |= flags;
        head[SEND_AT..].copy_from_slice(&send_ns.to_le_bytes());
        let tail_len = self.bytes.len() - SEND_AT - 8;
        let body_crc = crc32c::crc32c_combine(crc32c::crc32c(&head[HEADER_LEN..]), self.tail_crc, tail_len);
        head[24..28].copy_from_slice(&body_crc.to_le_bytes());
        let header_crc = crc32c::crc32c(&head[..28]);
        head[28..32].copy_from_slice(&header_crc.to_le_bytes());
        head
    }

    /// Sets `send_ns` in place.
    pub fn stamp(&mut self, send_ns: u64) {
        let head = self.head(send_ns, 0);
        self.bytes[..head.len()].copy_from_slice(&head);
    }
}

/// Appends a `FRAME` body for `frame` carrying `payload` to `out`.
fn encode_body_into(out: &mut Vec<u8>, frame: &WireFrame, payload: &[u8], compression: Compression) {
    let compressed;
    let raw_len = payload.len();
    let (compression, payload): (u8, &[u8]) = match compression {
        Compression::Lz4 if frame.codec.pixel_format().is_some() => {
            compressed = lz4_flex::block::compress(payload);
            (1, &compressed)
        }
        _ => (0, payload),
    };
    let meta = encode_metadata(&frame.meta);
    out.reserve(FRAME_FIXED_LEN as usize + meta.len() + payload.len());
    out.extend_from_slice(&FRAME_FIXED_LEN.to_le_bytes());
    let (matrix, range) = match frame.color_space {
        None => (0, 0),
        Some(cs) => (
            match cs.matrix {
                YuvMatrix::Bt601 => 1,
                YuvMatrix::Bt709 => 2,
            },
            match cs.range {
                YuvRange::Limited => 0,
                YuvRange::Full => 1,
            },
        ),
    };
    let alpha = match frame.alpha {
        AlphaMode::Opaque => 0,
        AlphaMode::Premultiplied => 1,
        AlphaMode::Straight => 2,
    };
    let clock = match frame.timing.clock_state {
        ClockState::FreeRunning => 0,
        ClockState::Locking => 1,
        ClockState::Locked => 2,
    };
    out.extend_from_slice(&[frame.codec as u8, compression, matrix, range, alpha, clock]);
    let t = &frame.timing;
    for v in [t.pts_ns, t.duration_ns, t.capture_ns, t.clock_id, t.send_ns] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [frame.width, frame.height, frame.strides[0], frame.strides[1], frame.strides[2]] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for v in [meta.len() as u32, payload.len() as u32, raw_len as u32] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&meta);
    out.extend_from_slice(payload);
}

/// A bounds-checked reader over untrusted bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(WireError::Truncated(what))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(arr(self.take(2, what)?)))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(arr(self.take(4, what)?)))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(arr(self.take(8, what)?)))
    }

    fn f32(&mut self, what: &'static str) -> Result<f32, WireError> {
        Ok(f32::from_le_bytes(arr(self.take(4, what)?)))
    }

    /// A `u16`-prefixed UTF-8 string of at most `max` bytes.
    fn string(&mut self, what: &'static str, max: usize) -> Result<String, WireError> {
        let len = self.u16(what)? as usize;
        if len > max {
            return Err(invalid(what, format!("{len} bytes exceeds {max}")));
        }
        let bytes = self.take(len, what)?;
        std::str::from_utf8(bytes).map(str::to_string).map_err(|_| invalid(what, "not UTF-8"))
    }

    fn rest(&self) -> usize {
        self.bytes.len() - self.at
    }
}

/// Decodes a `FRAME` body (already checked against its header's CRC).
pub fn decode_frame(body: &[u8]) -> Result<WireFrame, WireError> {
    let mut r = Reader::new(body);
    let fixed_len = r.u16("fixed_len")?;
    if fixed_len < FRAME_FIXED_LEN {
        return Err(invalid("fixed_len", format!("{fixed_len} is less than {FRAME_FIXED_LEN}")));
    }
    let codec_byte = r.u8("codec")?;
    let codec = Codec::from_u8(codec_byte).ok_or_else(|| invalid("codec", format!("unknown codec {codec_byte}")))?;
    let compression = r.u8("compression")?;
    let (matrix, range, alpha, clock) = (r.u8("matrix")?, r.u8("range")?, r.u8("alpha")?, r.u8("clock_state")?);
    let timing = WireTiming {
        pts_ns: r.u64("pts_ns")?,
        duration_ns: r.u64("duration_ns")?,
        capture_ns: r.u64("capture_ns")?,
        clock_id: r.u64("clock_id")?,
        clock_state: match clock {
            0 => ClockState::FreeRunning,
            1 => ClockState::Locking,
            2 => ClockState::Locked,
            v => return Err(invalid("clock_state", format!("unknown state {v}"))),
        },
        send_ns: r.u64("send_ns")?,
    };
    let (width, height) = (r.u32("width")?, r.u32("height")?);
    let strides = [r.u32("strides")?, r.u32("strides")?, r.u32("strides")?];
    let (meta_len, payload_len, raw_len_field) = (r.u32("meta_len")?, r.u32("payload_len")?, r.u32("raw_len")?);
    // The rest of the fixed part: reserved in 1.0, fields of later minors.
    r.take(fixed_len as usize - 80, "fixed part")?;
    if u64::from(meta_len) + u64::from(payload_len) != r.rest() as u64 {
        return Err(invalid("meta_len", format!("fixed part + {meta_len} + {payload_len} is not the body length")));
    }
    if meta_len > MAX_META {
        return Err(invalid("meta_len", format!("{meta_len} exceeds {MAX_META}")));
    }
    if codec != Codec::None && (width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE) {
        return Err(invalid("width", format!("{width}x{height} is not within 1..={MAX_SIDE}")));
    }
    let color_space = match (codec, matrix) {
        (Codec::Rgba | Codec::Bgra, 0) | (Codec::None, _) => None,
        (Codec::Rgba | Codec::Bgra, m) => return Err(invalid("matrix", format!("{m} for an RGB codec"))),
        (_, m) => Some(YuvColorSpace {
            matrix: match m {
                1 => YuvMatrix::Bt601,
                2 => YuvMatrix::Bt709,
                m => return Err(invalid("matrix", format!("unknown matrix {m}"))),
            },
            range: match range {
                0 => YuvRange::Limited,
                1 => YuvRange::Full,
                v => return Err(invalid("range", format!("unknown range {v}"))),
            },
        }),
    };
    let alpha = match alpha {
        0 => AlphaMode::Opaque,
        1 => AlphaMode::Premultiplied,
        2 => AlphaMode::Straight,
        v => return Err(invalid("alpha", format!("unknown alpha mode {v}"))),
    };
    let meta = decode_metadata(r.take(meta_len as usize, "metadata")?)?;
    let wire = r.take(payload_len as usize, "payload")?;
    let payload = if codec.pixel_format().is_some() {
        let expected = raw_len(codec, width, height, strides)?;
        if raw_len_field as usize != expected || expected > MAX_BODY as usize {
            return Err(invalid("raw_len", format!("{raw_len_field} is not the {expected} bytes the planes need")));
        }
        match compression {
            0 if wire.len() == expected => wire.to_vec(),
            0 => return Err(invalid("payload_len", "an uncompressed payload must be raw_len bytes")),
            1 => {
                // Decompressed into exactly `raw_len`, which was checked above: no bombs.
                let mut out = vec![0; expected];
                match lz4_flex::block::decompress_into(wire, &mut out) {
                    Ok(n) if n == expected => out,
                    Ok(n) => return Err(invalid("payload", format!("LZ4 gave {n} bytes, not {expected}"))),
                    Err(e) => return Err(invalid("payload", format!("LZ4: {e}"))),
                }
            }
            c => return Err(invalid("compression", format!("unsupported compression {c}"))),
        }
    } else {
        if compression != 0 || strides != [0; 3] || raw_len_field != payload_len {
            return Err(invalid("compression", format!("{codec:?} payloads are sent as they are")));
        }
        if codec == Codec::None && payload_len != 0 {
            return Err(invalid("payload_len", "codec none has no payload"));
        }
        wire.to_vec()
    };
    Ok(WireFrame { codec, width, height, strides, color_space, alpha, timing, meta, payload })
}

fn put_string(out: &mut Vec<u8>, s: &str, max: usize) {
    // Cut at a character boundary so the receiver's limit holds.
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn section(out: &mut Vec<u8>, kind: u16, data: &[u8]) {
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

/// The metadata block of a frame. Whatever exceeds the protocol's limits is left out (the
/// receiver would refuse the frame).
pub fn encode_metadata(meta: &FrameMetadata) -> Vec<u8> {
    let mut out = Vec::new();
    if !meta.detections.is_empty() {
        let mut d = Vec::new();
        let n = meta.detections.len().min(MAX_DETECTIONS as usize);
        d.extend_from_slice(&(n as u32).to_le_bytes());
        for det in &meta.detections[..n] {
            for v in [det.x, det.y, det.w, det.h, det.score] {
                d.extend_from_slice(&v.to_le_bytes());
            }
            d.extend_from_slice(&det.class.to_le_bytes());
            d.extend_from_slice(&det.track_id.unwrap_or(0).to_le_bytes());
            put_string(&mut d, &det.label, 64);
        }
        section(&mut out, 1, &d);
    }
    if let Some(tc) = &meta.timecode {
        let mut d = Vec::new();
        put_string(&mut d, tc, 64);
        section(&mut out, 2, &d);
    }
    if let Some(rev) = meta.scene_revision {
        section(&mut out, 3, &rev.to_le_bytes());
    }
    if !meta.user.is_empty() {
        let mut d = Vec::new();
        let entries: Vec<_> = meta.user.iter().filter(|(k, _)| !k.is_empty() && k.len() <= 64).collect();
        let n = entries.len().min(MAX_USER_VALUES as usize);
        d.extend_from_slice(&(n as u16).to_le_bytes());
        for (k, v) in &entries[..n] {
            put_string(&mut d, k, 64);
            put_string(&mut d, v, 1024);
        }
        section(&mut out, 4, &d);
    }
    if out.len() > MAX_META as usize {
        // Only many long labels get here: keep what always fits.
        return encode_metadata(&FrameMetadata { detections: Vec::new(), ..meta.clone() });
    }
    out
}

fn unit(v: f32, field: &'static str) -> Result<f32, WireError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(invalid(field, format!("{v} is not within 0..=1")))
    }
}

/// Decodes a metadata block.
pub fn decode_metadata(bytes: &[u8]) -> Result<FrameMetadata, WireError> {
    let mut r = Reader::new(bytes);
    let mut meta = FrameMetadata::default();
    let mut seen = 0u32;
    while r.rest() > 0 {
        let kind = r.u16("section type")?;
        let len = r.u32("section length")?;
        let data = r.take(len as usize, "section")?;
        if (1..=4).contains(&kind) {
            if seen & (1 << kind) != 0 {
                return Err(invalid("metadata", format!("section {kind} appears twice")));
            }
            seen |= 1 << kind;
        }
        let mut s = Reader::new(data);
        match kind {
            1 => {
                let n = s.u32("detections")?;
                if n > MAX_DETECTIONS {
                    return Err(invalid("detections", format!("{n} exceeds {MAX_DETECTIONS}")));
                }
                for _ in 0..n {
                    let (x, y, w, h) = (s.f32("x")?, s.f32("y")?, s.f32("w")?, s.f32("h")?);
                    let score = unit(s.f32("score")?, "score")?;
                    let class = s.u32("class")?;
                    let track = s.u64("track_id")?;
                    let label = s.string("label", 64)?;
                    meta.detections.push(Detection {
                        x: unit(x, "x")?,
                        y: unit(y, "y")?,
                        w: unit(w, "w")?,
                        h: unit(h, "h")?,
                        score,
                        class,
                        track_id: (track != 0).then_some(track),
                        label,
                    });
                }
            }
            2 => meta.timecode = Some(s.string("timecode", 64)?),
            3 => meta.scene_revision = Some(s.u64("scene revision")?),
            4 => {
                let n = s.u16("user values")?;
                if n > MAX_USER_VALUES {
                    return Err(invalid("user values", format!("{n} exceeds {MAX_USER_VALUES}")));
                }
                for _ in 0..n {
                    let key = s.string("key", 64)?;
                    if key.is_empty() {
                        return Err(invalid("key", "empty"));
                    }
                    let value = s.string("value", 1024)?;
                    if meta.user.insert(key, value).is_some() {
                        return Err(invalid("key", "appears twice"));
                    }
                }
            }
            // A later minor's section.
            _ => continue,
        }
        if s.rest() != 0 {
            return Err(invalid("metadata", format!("section {kind} has {} bytes left over", s.rest())));
        }
    }
    Ok(meta)
}

/// What a side says about itself when it connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// True for the side that sends frames.
    pub sender: bool,
    /// Codecs the side sends or decodes (`Codec::bit`).
    pub codecs: u32,
    /// Frames the receiver can take now (0 from a sender).
    pub credit: u32,
    /// The largest body the side accepts.
    pub max_body: u32,
    /// The stream or input name.
    pub name: String,
}

/// Pong counters (see `docs/protocol.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pong {
    /// The ping's time, echoed.
    pub echo_ns: u64,
    /// Frames received on the connection.
    pub received: u64,
    /// Frames lost (sequence gaps).
    pub lost: u64,
    /// Packets rejected as malformed.
    pub malformed: u64,
}

/// Reasons in a `BYE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ByeReason {
    /// Done.
    Normal = 0,
    /// The peer speaks another major version.
    Version = 1,
    /// The peer sent too many bad packets.
    Malformed = 2,
    /// The side cannot take more receivers or data.
    Overloaded = 3,
    /// No codec in common.
    Codec = 4,
}

/// A control message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// The first packet of each side.
    Hello(Hello),
    /// Asks the sender for a keyframe.
    KeyframeRequest,
    /// Grants frames.
    Credit(u32),
    /// A round-trip probe with the pinger's monotonic time.
    Ping(u64),
    /// The answer to a ping.
    Pong(Pong),
    /// The last packet, with a reason code and why.
    Bye(u8, String),
    /// UDP: resend chunks of packet `packet_id` (none listed: all of them).
    Nack {
        /// The packet's id from its chunk headers.
        packet_id: u32,
        /// The chunk indices missing, at most `MAX_NACK_CHUNKS`.
        chunks: Vec<u16>,
    },
}

/// Chunk indices one `NACK` lists at most.
pub const MAX_NACK_CHUNKS: usize = 512;

impl Control {
    /// The message's packet (control messages use stream 0).
    pub fn packet(&self, sequence: u64) -> Vec<u8> {
        let mut body = Vec::new();
        let kind = match self {
            Control::Hello(h) => {
                body.extend_from_slice(&HELLO_FIXED_LEN.to_le_bytes());
                body.extend_from_slice(&[if h.sender { 1 } else { 2 }, 0]);
                for v in [h.codecs, h.credit, h.max_body] {
                    body.extend_from_slice(&v.to_le_bytes());
                }
                put_string(&mut body, &h.name, 64);
                MessageType::Hello
            }
            Control::KeyframeRequest => MessageType::KeyframeRequest,
            Control::Credit(n) => {
                body.extend_from_slice(&n.to_le_bytes());
                MessageType::Credit
            }
            Control::Ping(t) => {
                body.extend_from_slice(&t.to_le_bytes());
                MessageType::Ping
            }
            Control::Pong(p) => {
                for v in [p.echo_ns, p.received, p.lost, p.malformed] {
                    body.extend_from_slice(&v.to_le_bytes());
                }
                MessageType::Pong
            }
            Control::Bye(reason, message) => {
                body.push(*reason);
                put_string(&mut body, message, 256);
                MessageType::Bye
            }
            Control::Nack { packet_id, chunks } => {
                let chunks = &chunks[..chunks.len().min(MAX_NACK_CHUNKS)];
                body.extend_from_slice(&packet_id.to_le_bytes());
                body.extend_from_slice(&(chunks.len() as u16).to_le_bytes());
                chunks.iter().for_each(|c| body.extend_from_slice(&c.to_le_bytes()));
                MessageType::Nack
            }
        };
        packet(kind, 0, 0, sequence, &body)
    }

    /// Decodes a control message's body. Trailing bytes (a later minor's fields) are ignored.
    pub fn decode(kind: MessageType, body: &[u8]) -> Result<Control, WireError> {
        let mut r = Reader::new(body);
        Ok(match kind {
            MessageType::Frame => return Err(invalid("type", "a frame is not a control message")),
            MessageType::Hello => {
                let fixed_len = r.u16("fixed_len")?;
                if fixed_len < HELLO_FIXED_LEN {
                    return Err(invalid("fixed_len", format!("{fixed_len} is less than {HELLO_FIXED_LEN}")));
                }
                let role = r.u8("role")?;
                r.u8("reserved")?;
                let (codecs, credit, max_body) = (r.u32("codecs")?, r.u32("credit")?, r.u32("max_body")?);
                r.take(fixed_len as usize - HELLO_FIXED_LEN as usize, "fixed part")?;
                let sender = match role {
                    1 => true,
                    2 => false,
                    v => return Err(invalid("role", format!("unknown role {v}"))),
                };
                Control::Hello(Hello { sender, codecs, credit, max_body, name: r.string("name", 64)? })
            }
            MessageType::KeyframeRequest => Control::KeyframeRequest,
            MessageType::Credit => Control::Credit(r.u32("credit")?),
            MessageType::Ping => Control::Ping(r.u64("time")?),
            MessageType::Pong => Control::Pong(Pong {
                echo_ns: r.u64("echo")?,
                received: r.u64("received")?,
                lost: r.u64("lost")?,
                malformed: r.u64("malformed")?,
            }),
            MessageType::Bye => Control::Bye(r.u8("reason")?, r.string("message", 256)?),
            MessageType::Nack => {
                let packet_id = r.u32("packet_id")?;
                let count = r.u16("count")? as usize;
                if count > MAX_NACK_CHUNKS {
                    return Err(invalid("count", format!("{count} chunks exceeds {MAX_NACK_CHUNKS}")));
                }
                let chunks = (0..count).map(|_| r.u16("chunks")).collect::<Result<_, _>>()?;
                Control::Nack { packet_id, chunks }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restamped_frame_packet_is_the_packet_encoded_with_that_send_time() {
        let mut frame = sample_frame();
        for send_ns in [0, 1, u64::MAX, 1_733_000_000_123_456_789] {
            frame.timing.send_ns = send_ns;
            let direct = packet(MessageType::Frame, FLAG_KEYFRAME, 5, 9, &encode_frame(&frame, Compression::None));
            let mut p = FramePacket::new(&sample_frame(), &frame.payload, Compression::None, (FLAG_KEYFRAME, 5, 9));
            p.stamp(send_ns);
            assert_eq!(p.bytes, direct);
            let mut head = p.head(send_ns, FLAG_DISCONTINUITY).to_vec();
            head.extend_from_slice(&p.bytes[head.len()..]);
            let flagged = packet(
                MessageType::Frame,
                FLAG_KEYFRAME | FLAG_DISCONTINUITY,
                5,
                9,
                &encode_frame(&frame, Compression::None),
            );
            assert_eq!(head, flagged);
        }
    }

    pub(crate) fn sample_frame() -> WireFrame {
        let (w, h) = (6, 4);
        let payload: Vec<u8> = (0..(6 * 4 + 2 * 3 * 2) as u32).map(|i| (i * 7) as u8).collect();
        let mut meta =
            FrameMetadata { timecode: Some("00:00:01:02".into()), scene_revision: Some(7), ..Default::default() };
        meta.detections.push(Detection {
            x: 0.25,
            y: 0.5,
            w: 0.125,
            h: 0.25,
            score: 0.9,
            class: 3,
            track_id: Some(42),
            label: "cat".into(),
        });
        meta.user.insert("speaker".into(), "Ada".into());
        WireFrame {
            codec: Codec::I420,
            width: w,
            height: h,
            strides: [6, 3, 3],
            color_space: Some(YuvColorSpace::BT601_FULL),
            alpha: AlphaMode::Opaque,
            timing: WireTiming { pts_ns: 33_333_333, duration_ns: 33_333_334, send_ns: 5, ..Default::default() },
            meta,
            payload,
        }
    }

    fn round_trip(frame: &WireFrame, compression: Compression) -> WireFrame {
        let body = encode_frame(frame, compression);
        let bytes = packet(MessageType::Frame, FLAG_KEYFRAME, 9, 3, &body);
        let header = Header::decode(&arr(&bytes[..HEADER_LEN]), MAX_BODY).expect("header");
        assert_eq!((header.kind, header.flags, header.stream_id, header.sequence), (1, FLAG_KEYFRAME, 9, 3));
        header.check_body(&bytes[HEADER_LEN..]).expect("crc");
        decode_frame(&bytes[HEADER_LEN..]).expect("frame")
    }

    #[test]
    fn frames_round_trip_with_metadata_uncompressed_and_lz4() {
        let frame = sample_frame();
        assert_eq!(round_trip(&frame, Compression::None), frame);
        assert_eq!(round_trip(&frame, Compression::Lz4), frame);
    }

    #[test]
    fn crc32c_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn the_header_layout_is_the_documented_one() {
        let bytes = packet(MessageType::Credit, 0, 0x0102_0304, 0x1122_3344_5566_7788, &[1, 0, 0, 0]);
        assert_eq!(&bytes[..8], b"SLFP\x01\x00\x04\x00");
        assert_eq!(&bytes[8..12], &[4, 3, 2, 1]);
        assert_eq!(&bytes[12..20], &[0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&bytes[20..24], &[4, 0, 0, 0]);
        assert_eq!(u32_at(&bytes, 24), crc32c::crc32c(&[1, 0, 0, 0]));
        assert_eq!(u32_at(&bytes, 28), crc32c::crc32c(&bytes[..28]));
    }

    #[test]
    fn control_messages_round_trip() {
        let messages = [
            Control::Hello(Hello { sender: false, codecs: 0b110, credit: 4, max_body: MAX_BODY, name: "cam".into() }),
            Control::KeyframeRequest,
            Control::Credit(3),
            Control::Ping(123),
            Control::Pong(Pong { echo_ns: 1, received: 2, lost: 3, malformed: 4 }),
            Control::Bye(ByeReason::Normal as u8, "done".into()),
            Control::Nack { packet_id: 7, chunks: vec![0, 3, 65535] },
            Control::Nack { packet_id: u32::MAX, chunks: Vec::new() },
        ];
        for m in messages {
            let bytes = m.packet(1);
            let header = Header::decode(&arr(&bytes[..HEADER_LEN]), MAX_BODY).expect("header");
            let kind = header.message_type().expect("known type");
            assert_eq!(Control::decode(kind, &bytes[HEADER_LEN..]).expect("decode"), m);
        }
    }

    #[test]
    fn bad_headers_are_refused_by_kind() {
        let good = packet(MessageType::Ping, 0, 0, 0, &[0; 8]);
        let header = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            f(&mut b);
            Header::decode(&arr(&b[..HEADER_LEN]), MAX_BODY)
        };
        assert_eq!(header(&|b| b[0] = b'X'), Err(WireError::Magic));
        assert_eq!(header(&|b| b[12] ^= 1), Err(WireError::HeaderCrc));
        let future = |b: &mut Vec<u8>| {
            b[4] = 2;
            let crc = crc32c::crc32c(&b[..28]);
            b[28..32].copy_from_slice(&crc.to_le_bytes());
        };
        assert_eq!(header(&future), Err(WireError::Version { major: 2, minor: 0 }));
        let huge = |b: &mut Vec<u8>| {
            b[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
            let crc = crc32c::crc32c(&b[..28]);
            b[28..32].copy_from_slice(&crc.to_le_bytes());
        };
        assert_eq!(header(&huge), Err(WireError::TooLarge(u32::MAX)));
    }

    #[test]
    fn lying_lengths_and_bombs_are_refused() {
        let frame = sample_frame();
        let body = encode_frame(&frame, Compression::Lz4);
        // raw_len claims a much larger frame than width x height: refused before decompressing.
        let mut bomb = body.clone();
        bomb[76..80].copy_from_slice(&(60u32 << 20).to_le_bytes());
        assert!(matches!(decode_frame(&bomb), Err(WireError::Invalid { field: "raw_len", .. })));
        // A huge size with a matching raw_len is over the side limit.
        let mut big = body.clone();
        big[48..52].copy_from_slice(&100_000u32.to_le_bytes());
        assert!(matches!(decode_frame(&big), Err(WireError::Invalid { field: "width", .. })));
        // meta_len that overruns the body.
        let mut lying = body.clone();
        lying[68..72].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_frame(&lying).is_err());
        // Every truncation fails cleanly.
        for n in 0..body.len() {
            assert!(decode_frame(&body[..n]).is_err(), "truncated at {n}");
        }
    }

    #[test]
    fn garbage_metadata_is_refused_and_unknown_sections_skipped() {
        let meta = encode_metadata(&sample_frame().meta);
        assert_eq!(decode_metadata(&meta).expect("good"), sample_frame().meta);
        let mut unknown = meta.clone();
        unknown.extend_from_slice(&[99, 0, 3, 0, 0, 0, 1, 2, 3]);
        assert_eq!(decode_metadata(&unknown).expect("unknown section skipped"), sample_frame().meta);
        let mut twice = meta.clone();
        twice.extend_from_slice(&[3, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert!(decode_metadata(&twice).is_err(), "a section twice");
        let out_of_range = [1, 0, 4 + 34, 0, 0, 0, 1, 0, 0, 0];
        let mut bad = out_of_range.to_vec();
        for v in [2.0f32, 0.0, 0.1, 0.1, 0.5] {
            bad.extend_from_slice(&v.to_le_bytes());
        }
        bad.extend_from_slice(&[0; 14]);
        assert!(matches!(decode_metadata(&bad), Err(WireError::Invalid { field: "x", .. })));
    }
}
