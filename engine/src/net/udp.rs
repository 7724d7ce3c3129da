//! The UDP transport: every packet is cut into datagrams that fit the path MTU
//! (`docs/protocol.md`, "UDP"), reassembled at the receiver with a timeout (an incomplete packet
//! is dropped and counted), and frames are put back in sequence order within a reorder window.
//! A receiver asks for missing datagrams again (`NACK`) a few times before the timeout, so
//! random loss costs a round trip, not a frame. Memory is bounded: a few packets in reassembly,
//! a few frames held for reordering, a ring of recent packets at the sender.

use super::tcp::{Incoming, Packet};
use super::wire::{Control, Header, MessageType, WireError, HEADER_LEN, MAX_BODY};
use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// The first bytes of every datagram.
pub const CHUNK_MAGIC: [u8; 4] = *b"SLFD";
/// Bytes of a datagram's chunk header.
pub const CHUNK_HEADER_LEN: usize = 16;
/// Datagram size by default: with IP and UDP headers it fits a 1500-byte Ethernet MTU.
pub const DEFAULT_DATAGRAM: usize = 1400;
/// Packets reassembled at once; the oldest is dropped when another starts.
const MAX_PARTIAL: usize = 8;
/// Bytes held in reassembly at most (a frame at the protocol's body limit fits).
const MAX_BUFFERED: usize = HEADER_LEN + MAX_BODY as usize;
/// Frames held back waiting for an earlier one.
const MAX_HELD: usize = 8;
/// A packet whose datagrams stopped arriving this long ago is missing some: ask again. Not much
/// shorter: a sender preempted mid-frame (a busy machine) would be asked for what is still coming.
const NACK_AFTER: Duration = Duration::from_millis(8);
/// Between two asks for the same packet.
const NACK_RETRY: Duration = Duration::from_millis(20);
/// Completed packet ids remembered per reassembler, so resent copies are not new packets.
const RECENT_DONE: usize = 128;
/// Asks per packet at most.
const MAX_NACKS: u8 = 3;
/// Packet ids missing entirely that are remembered for asking.
const MAX_MISSING: usize = 32;
/// Packets the sender keeps for resending.
const RING_PACKETS: usize = 64;
/// Bytes the sender keeps for resending at most.
const RING_BYTES: usize = 32 << 20;

/// Cuts `packet` into datagrams of at most `datagram` bytes, each with a chunk header.
pub fn chunks(packet: &[u8], packet_id: u32, datagram: usize) -> Vec<Vec<u8>> {
    let payload = datagram.saturating_sub(CHUNK_HEADER_LEN).max(64);
    let count = packet.len().div_ceil(payload).max(1);
    (0..count)
        .map(|i| {
            let part = &packet[(i * payload).min(packet.len())..((i + 1) * payload).min(packet.len())];
            let mut d = Vec::with_capacity(CHUNK_HEADER_LEN + part.len());
            d.extend_from_slice(&CHUNK_MAGIC);
            d.extend_from_slice(&packet_id.to_le_bytes());
            d.extend_from_slice(&(i as u16).to_le_bytes());
            d.extend_from_slice(&(count as u16).to_le_bytes());
            d.extend_from_slice(&(packet.len() as u32).to_le_bytes());
            d.extend_from_slice(part);
            d
        })
        .collect()
}

struct Partial {
    from: SocketAddr,
    id: u32,
    count: u16,
    total: usize,
    parts: BTreeMap<u16, Vec<u8>>,
    bytes: usize,
    started: Instant,
    last_arrival: Instant,
    asks: Asks,
}

/// How often a packet was asked for again.
#[derive(Clone, Copy, Default)]
struct Asks {
    count: u8,
    last: Option<Instant>,
}

impl Asks {
    /// Whether to ask (again) now, given when the packet was last heard of.
    fn due(&mut self, heard: Instant, now: Instant) -> bool {
        let due = self.count < MAX_NACKS
            && now.duration_since(heard) >= NACK_AFTER
            && self.last.is_none_or(|t| now.duration_since(t) >= NACK_RETRY);
        if due {
            self.count += 1;
            self.last = Some(now);
        }
        due
    }
}

/// A packet id never seen while later ones were.
struct Missing {
    from: SocketAddr,
    id: u32,
    noticed: Instant,
    asks: Asks,
}

/// A request to resend: the sender, the packet id, the chunks (none: all).
pub type Nack = (SocketAddr, u32, Vec<u16>);

/// Reassembles packets from datagrams, from any number of senders.
#[derive(Default)]
pub struct Reassembler {
    partial: Vec<Partial>,
    buffered: usize,
    /// The newest packet id of each sender (one or a few).
    newest: Vec<(SocketAddr, u32)>,
    missing: Vec<Missing>,
    done: std::collections::VecDeque<(SocketAddr, u32)>,
    /// Datagrams of packets already complete (resent copies, duplicates on the way).
    pub duplicates: u64,
    /// Packets given up: timed out or pushed out by newer ones.
    pub incomplete: u64,
    /// Datagrams that are not chunks of a packet, or contradict the others of theirs.
    pub malformed: u64,
}

impl Reassembler {
    /// Takes one datagram; returns the packet it completes.
    pub fn push(&mut self, from: SocketAddr, datagram: &[u8], now: Instant) -> Option<Vec<u8>> {
        if datagram.len() < CHUNK_HEADER_LEN || datagram[..4] != CHUNK_MAGIC {
            self.malformed += 1;
            return None;
        }
        let id = u32::from_le_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]);
        let index = u16::from_le_bytes([datagram[8], datagram[9]]);
        let count = u16::from_le_bytes([datagram[10], datagram[11]]);
        let total = u32::from_le_bytes([datagram[12], datagram[13], datagram[14], datagram[15]]) as usize;
        let part = &datagram[CHUNK_HEADER_LEN..];
        if count == 0 || index >= count || total > MAX_BUFFERED || part.len() > total {
            self.malformed += 1;
            return None;
        }
        if self.done.contains(&(from, id)) {
            self.duplicates += 1;
            return None;
        }
        self.note_id(from, id, now);
        if count == 1 {
            if part.len() != total {
                self.malformed += 1;
                return None;
            }
            self.mark_done(from, id);
            return Some(part.to_vec());
        }
        let at = match self.partial.iter().position(|p| p.from == from && p.id == id) {
            Some(at) => at,
            None => {
                if self.partial.len() >= MAX_PARTIAL {
                    self.drop_partial(0);
                }
                self.partial.push(Partial {
                    from,
                    id,
                    count,
                    total,
                    parts: BTreeMap::new(),
                    bytes: 0,
                    started: now,
                    last_arrival: now,
                    asks: Asks::default(),
                });
                self.partial.len() - 1
            }
        };
        let p = &mut self.partial[at];
        if p.count != count || p.total != total || p.bytes + part.len() > total {
            self.malformed += 1;
            return None;
        }
        if p.parts.contains_key(&index) {
            return None; // a duplicate
        }
        if self.buffered + part.len() > MAX_BUFFERED {
            self.drop_partial(at);
            return None;
        }
        let p = &mut self.partial[at];
        p.last_arrival = now;
        p.parts.insert(index, part.to_vec());
        p.bytes += part.len();
        self.buffered += part.len();
        if p.parts.len() < usize::from(p.count) {
            return None;
        }
        let p = self.partial.remove(at);
        self.buffered -= p.bytes;
        self.mark_done(p.from, p.id);
        if p.bytes != p.total {
            self.malformed += 1;
            return None;
        }
        let mut packet = Vec::with_capacity(p.total);
        p.parts.into_values().for_each(|part| packet.extend_from_slice(&part));
        Some(packet)
    }

    fn mark_done(&mut self, from: SocketAddr, id: u32) {
        if self.done.len() == RECENT_DONE {
            self.done.pop_front();
        }
        self.done.push_back((from, id));
    }

    /// Remembers ids skipped between a sender's newest and `id` as missing; forgets `id` as missing.
    fn note_id(&mut self, from: SocketAddr, id: u32, now: Instant) {
        self.missing.retain(|m| !(m.from == from && m.id == id));
        match self.newest.iter_mut().find(|(a, _)| *a == from) {
            Some((_, newest)) => {
                let ahead = id.wrapping_sub(*newest);
                // A jump of more than a ring's worth is a sender restart, not loss.
                if (1..=RING_PACKETS as u32).contains(&ahead) {
                    for skipped in 1..ahead {
                        self.missing.push(Missing {
                            from,
                            id: newest.wrapping_add(skipped),
                            noticed: now,
                            asks: Asks::default(),
                        });
                    }
                    *newest = id;
                } else if ahead > RING_PACKETS as u32 && ahead < u32::MAX / 2 {
                    *newest = id;
                }
            }
            None => {
                if self.newest.len() >= MAX_PARTIAL {
                    self.newest.remove(0);
                }
                self.newest.push((from, id));
            }
        }
        if self.missing.len() > MAX_MISSING {
            let excess = self.missing.len() - MAX_MISSING;
            self.missing.drain(..excess);
        }
    }

    /// What to ask senders for again now: chunks of packets that stalled, and packets that never
    /// showed up.
    pub fn nacks(&mut self, now: Instant) -> Vec<Nack> {
        let mut out = Vec::new();
        for p in &mut self.partial {
            if p.asks.due(p.last_arrival, now) {
                let chunks = (0..p.count).filter(|i| !p.parts.contains_key(i)).take(super::wire::MAX_NACK_CHUNKS);
                out.push((p.from, p.id, chunks.collect()));
            }
        }
        for m in &mut self.missing {
            if m.asks.due(m.noticed, now) {
                out.push((m.from, m.id, Vec::new()));
            }
        }
        self.missing
            .retain(|m| m.asks.count < MAX_NACKS || m.asks.last.is_some_and(|t| now.duration_since(t) < NACK_RETRY));
        out
    }

    fn drop_partial(&mut self, at: usize) {
        let p = self.partial.remove(at);
        self.buffered -= p.bytes;
        self.incomplete += 1;
    }

    /// Gives up packets started more than `timeout` ago.
    pub fn expire(&mut self, now: Instant, timeout: Duration) {
        while let Some(at) = self.partial.iter().position(|p| now.duration_since(p.started) > timeout) {
            self.drop_partial(at);
        }
    }

    /// Packets in reassembly now.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }
}

/// Puts frames back in sequence order: a frame after a gap waits up to `window` for the missing
/// one; a frame older than one already delivered is late and dropped.
pub struct Reorder {
    window: Duration,
    next: Option<u64>,
    held: BTreeMap<u64, (Instant, Packet)>,
    /// Frames that arrived after a later one was delivered.
    pub late: u64,
}

impl Reorder {
    /// A reorder buffer that holds frames up to `window`.
    pub fn new(window: Duration) -> Self {
        Reorder { window, next: None, held: BTreeMap::new(), late: 0 }
    }

    /// Takes a frame packet.
    pub fn push(&mut self, packet: Packet, now: Instant) {
        let sequence = packet.header.sequence;
        if self.next.is_some_and(|n| sequence < n) || self.held.contains_key(&sequence) {
            self.late += 1;
            return;
        }
        self.held.insert(sequence, (now, packet));
        if self.held.len() > MAX_HELD {
            // Too much waiting: give up on the gap.
            self.next = None;
        }
    }

    /// The next frame to deliver, if its turn has come.
    pub fn pop(&mut self, now: Instant) -> Option<Packet> {
        let (&sequence, (since, _)) = self.held.iter().next()?;
        let in_turn = self.next.is_none_or(|n| sequence == n);
        if !in_turn && now.duration_since(*since) < self.window {
            return None;
        }
        let (_, packet) = self.held.remove(&sequence)?;
        self.next = Some(sequence + 1);
        Some(packet)
    }

    /// Forgets the order (a new stream).
    pub fn reset(&mut self) {
        self.next = None;
        self.held.clear();
    }
}

/// The sender's recent packets, for resending what receivers ask for.
#[derive(Default)]
pub struct ResendRing {
    packets: std::collections::VecDeque<(u32, Vec<Vec<u8>>)>,
    bytes: usize,
}

impl ResendRing {
    /// Keeps a packet's datagrams, forgetting the oldest beyond the ring's bounds.
    pub fn keep(&mut self, id: u32, datagrams: Vec<Vec<u8>>) {
        self.bytes += datagrams.iter().map(Vec::len).sum::<usize>();
        self.packets.push_back((id, datagrams));
        while self.packets.len() > RING_PACKETS || self.bytes > RING_BYTES {
            let Some((_, old)) = self.packets.pop_front() else { break };
            self.bytes -= old.iter().map(Vec::len).sum::<usize>();
        }
    }

    /// The datagrams a `NACK` asks for (all of the packet when `chunks` is empty); none when the
    /// packet is no longer kept.
    pub fn find(&self, id: u32, chunks: &[u16]) -> Vec<&Vec<u8>> {
        let Some((_, datagrams)) = self.packets.iter().find(|(i, _)| *i == id) else { return Vec::new() };
        if chunks.is_empty() {
            return datagrams.iter().collect();
        }
        chunks.iter().filter_map(|&c| datagrams.get(usize::from(c))).collect()
    }
}

/// Parses a reassembled packet; a packet of another major version is an error, other faults
/// are `None` (counted by the caller).
fn parse(bytes: Vec<u8>, max_body: u32) -> Result<Option<Packet>, WireError> {
    let Some(head) = bytes.get(..HEADER_LEN).and_then(|h| <&[u8; HEADER_LEN]>::try_from(h).ok()) else {
        return Ok(None);
    };
    let header = match Header::decode(head, max_body) {
        Ok(h) => h,
        Err(e @ WireError::Version { .. }) => return Err(e),
        Err(_) => return Ok(None),
    };
    if header.body_len as usize != bytes.len() - HEADER_LEN {
        return Ok(None);
    }
    let body = bytes[HEADER_LEN..].to_vec();
    if header.check_body(&body).is_err() {
        return Ok(None);
    }
    Ok(Some(Packet { header, body }))
}

/// A UDP socket speaking the protocol: packets out as datagrams, packets in reassembled and
/// (frames) reordered.
pub struct UdpEndpoint {
    socket: UdpSocket,
    datagram: usize,
    next_id: u32,
    reassembler: Reassembler,
    reorder: Reorder,
    timeout: Duration,
    max_body: u32,
    /// Ask senders to resend what is missing (a receiving endpoint).
    nack: bool,
    /// Packets that reassembled but failed their checks.
    pub malformed: u64,
    /// Where the last packet came from.
    pub last_from: Option<SocketAddr>,
    /// `NACK`s sent.
    pub nacks_sent: u64,
    /// One datagram's worth, reused by every read.
    buf: Vec<u8>,
}

impl UdpEndpoint {
    /// Wraps `socket`; reads wait at most `read_timeout`.
    pub fn new(socket: UdpSocket, read_timeout: Duration, reassembly: Duration, reorder: Duration) -> Self {
        let _ = socket.set_read_timeout(Some(read_timeout));
        // Large receive buffers so a burst of datagrams (a keyframe) is not dropped by the kernel;
        // the kernel caps it at net.core.rmem_max.
        let s = socket2::SockRef::from(&socket);
        let _ = s.set_recv_buffer_size(8 << 20);
        let _ = s.set_send_buffer_size(8 << 20);
        UdpEndpoint {
            socket,
            datagram: DEFAULT_DATAGRAM,
            next_id: 0,
            reassembler: Reassembler::default(),
            reorder: Reorder::new(reorder),
            timeout: reassembly,
            max_body: MAX_BODY,
            nack: false,
            malformed: 0,
            last_from: None,
            nacks_sent: 0,
            buf: vec![0u8; 65536],
        }
    }

    /// Makes this endpoint ask senders for missing datagrams.
    pub fn with_nacks(mut self) -> Self {
        self.nack = true;
        self
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends one packet to `to`, cut into datagrams. A full socket buffer drops it (`Ok(false)`).
    pub fn send(&mut self, packet: &[u8], to: SocketAddr) -> std::io::Result<bool> {
        let (_, datagrams) = self.cut(packet);
        self.send_datagrams(&datagrams, to)
    }

    /// Cuts a packet into datagrams under a new packet id.
    pub fn cut(&mut self, packet: &[u8]) -> (u32, Vec<Vec<u8>>) {
        self.next_id = self.next_id.wrapping_add(1);
        (self.next_id, chunks(packet, self.next_id, self.datagram))
    }

    /// Sends datagrams to `to`; `Ok(false)` if the socket buffer was full.
    pub fn send_datagrams(&self, datagrams: &[Vec<u8>], to: SocketAddr) -> std::io::Result<bool> {
        for d in datagrams {
            match self.socket.send_to(d, to) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                // Nobody listening there yet (ICMP port unreachable): like a lost datagram.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Packets given up in reassembly.
    pub fn incomplete(&self) -> u64 {
        self.reassembler.incomplete
    }

    /// Frames that came too late to be shown in order.
    pub fn late(&self) -> u64 {
        self.reorder.late
    }

    /// Datagrams and packets rejected so far.
    pub fn rejected(&self) -> u64 {
        self.malformed + self.reassembler.malformed
    }

    /// Forgets frame order (the sender restarted).
    pub fn reset_order(&mut self) {
        self.reorder.reset();
    }

    /// The next packet: a control packet as soon as it is whole, a frame when its turn comes.
    pub fn recv(&mut self) -> std::io::Result<Result<Incoming, WireError>> {
        let deadline = Instant::now() + self.socket.read_timeout()?.unwrap_or(Duration::from_millis(50));
        loop {
            let now = Instant::now();
            if self.nack {
                for (to, packet_id, chunks) in self.reassembler.nacks(now) {
                    let packet = Control::Nack { packet_id, chunks }.packet(0);
                    if self.send(&packet, to).unwrap_or(false) {
                        self.nacks_sent += 1;
                    }
                }
            }
            self.reassembler.expire(now, self.timeout);
            if let Some(p) = self.reorder.pop(now) {
                return Ok(Ok(Incoming::Packet(p)));
            }
            if now >= deadline {
                return Ok(Ok(Incoming::Idle));
            }
            // Wake in time for a held frame's window to close.
            let _ = self
                .socket
                .set_read_timeout(Some((deadline - now).min(Duration::from_millis(5)).max(Duration::from_millis(1))));
            let (n, from) = match self.socket.recv_from(&mut self.buf) {
                Ok(r) => r,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {
                    continue
                }
                // A previous send hit a closed port: not this socket's fault.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => return Err(e),
            };
            let Some(bytes) = self.reassembler.push(from, &self.buf[..n], now) else { continue };
            let packet = match parse(bytes, self.max_body) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.malformed += 1;
                    continue;
                }
                Err(e) => return Ok(Err(e)),
            };
            self.last_from = Some(from);
            if packet.header.message_type() == Some(MessageType::Frame) {
                self.reorder.push(packet, now);
            } else {
                return Ok(Ok(Incoming::Packet(packet)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wire::{self, Control};

    fn addr() -> SocketAddr {
        "127.0.0.1:1".parse().expect("addr")
    }

    #[test]
    fn chunks_reassemble_in_any_order_and_duplicates_are_ignored() {
        let packet: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut parts = chunks(&packet, 9, 1000);
        assert_eq!(parts.len(), 11);
        assert!(parts.iter().all(|d| d.len() <= 1000));
        parts.reverse();
        parts.insert(3, parts[2].clone());
        let mut r = Reassembler::default();
        let now = Instant::now();
        let done: Vec<_> = parts.iter().filter_map(|d| r.push(addr(), d, now)).collect();
        assert_eq!(done, vec![packet]);
        assert_eq!((r.incomplete, r.malformed, r.pending()), (0, 0, 0));
    }

    #[test]
    fn an_incomplete_packet_times_out_and_is_counted() {
        let packet = vec![5u8; 5000];
        let parts = chunks(&packet, 1, 1400);
        let mut r = Reassembler::default();
        let t0 = Instant::now();
        for d in &parts[1..] {
            assert!(r.push(addr(), d, t0).is_none());
        }
        r.expire(t0 + Duration::from_millis(50), Duration::from_millis(100));
        assert_eq!(r.pending(), 1);
        r.expire(t0 + Duration::from_millis(150), Duration::from_millis(100));
        assert_eq!((r.pending(), r.incomplete), (0, 1));
        // The missing chunk arriving late starts a new packet that never completes.
        assert!(r.push(addr(), &parts[0], t0).is_none());
    }

    #[test]
    fn lying_chunk_headers_are_rejected_without_allocating_their_claims() {
        let mut r = Reassembler::default();
        let now = Instant::now();
        let mut d = chunks(&[1, 2, 3], 1, 1400).remove(0);
        d[12..16].copy_from_slice(&u32::MAX.to_le_bytes()); // total beyond any limit
        assert!(r.push(addr(), &d, now).is_none());
        let mut e = chunks(&[1, 2, 3], 1, 1400).remove(0);
        e[10..12].copy_from_slice(&0u16.to_le_bytes()); // no chunks
        assert!(r.push(addr(), &e, now).is_none());
        assert!(r.push(addr(), b"SLF", now).is_none());
        assert_eq!(r.malformed, 3);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn stalled_and_vanished_packets_are_asked_for_again_a_few_times() {
        let mut r = Reassembler::default();
        let t0 = Instant::now();
        let first = chunks(&[1u8; 3000], 1, 1400);
        assert!(r.push(addr(), &first[0], t0).is_none());
        assert!(r.push(addr(), &first[2], t0).is_none());
        // Packet 2 never comes; packet 3 does.
        assert!(r.push(addr(), &chunks(&[3u8; 10], 3, 1400)[0], t0).is_some());
        assert!(r.nacks(t0 + Duration::from_millis(1)).is_empty(), "too soon to ask");
        let mut asked = r.nacks(t0 + NACK_AFTER);
        asked.sort_by_key(|n| n.1);
        assert_eq!(asked, vec![(addr(), 1, vec![1]), (addr(), 2, vec![])]);
        let mut t = t0 + NACK_AFTER;
        let mut asks = 1;
        for _ in 0..20 {
            t += NACK_RETRY;
            asks += r.nacks(t).iter().filter(|n| n.1 == 1).count();
        }
        assert_eq!(asks, usize::from(MAX_NACKS));
        // The resent chunk completes the packet; a second copy of it is a duplicate, not a packet.
        assert_eq!(r.push(addr(), &first[1], t).map(|p| p.len()), Some(3000));
        assert!(r.push(addr(), &first[1], t).is_none());
        assert_eq!((r.duplicates, r.pending()), (1, 0));
    }

    #[test]
    fn the_ring_resends_what_is_asked_and_forgets_old_packets() {
        let mut ring = ResendRing::default();
        for id in 0..100u32 {
            ring.keep(id, chunks(&[id as u8; 3000], id, 1400));
        }
        assert!(ring.find(10, &[]).is_empty(), "beyond the ring");
        assert_eq!(ring.find(99, &[]).len(), 3);
        assert_eq!(ring.find(99, &[2, 7]).len(), 1, "chunk 7 does not exist");
    }

    fn frame(sequence: u64) -> Packet {
        let bytes = wire::packet(MessageType::Frame, 0, 1, sequence, &[]);
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&bytes[..HEADER_LEN]);
        Packet { header: Header::decode(&head, MAX_BODY).expect("header"), body: Vec::new() }
    }

    #[test]
    fn frames_wait_for_a_missing_one_within_the_window_and_late_ones_are_dropped() {
        let mut o = Reorder::new(Duration::from_millis(20));
        let t0 = Instant::now();
        o.push(frame(0), t0);
        assert_eq!(o.pop(t0).map(|p| p.header.sequence), Some(0));
        o.push(frame(2), t0);
        assert!(o.pop(t0).is_none(), "2 waits for 1");
        o.push(frame(1), t0);
        assert_eq!(o.pop(t0).map(|p| p.header.sequence), Some(1));
        assert_eq!(o.pop(t0).map(|p| p.header.sequence), Some(2));
        o.push(frame(4), t0);
        assert!(o.pop(t0 + Duration::from_millis(10)).is_none());
        assert_eq!(o.pop(t0 + Duration::from_millis(25)).map(|p| p.header.sequence), Some(4), "3 given up");
        o.push(frame(3), t0);
        assert_eq!(o.late, 1);
        assert!(o.pop(t0 + Duration::from_secs(1)).is_none());
    }

    #[test]
    fn packets_cross_a_real_socket_pair() {
        let a = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let to = b.local_addr().expect("addr");
        let ms = Duration::from_millis;
        let (mut tx, mut rx) =
            (UdpEndpoint::new(a, ms(50), ms(100), ms(20)), UdpEndpoint::new(b, ms(200), ms(100), ms(20)));
        let big = wire::packet(MessageType::Frame, wire::FLAG_KEYFRAME, 1, 0, &vec![7u8; 100_000]);
        assert!(tx.send(&big, to).expect("send"));
        assert!(tx.send(&Control::Credit(3).packet(0), to).expect("send"));
        let mut got = Vec::new();
        for _ in 0..20 {
            if let Ok(Ok(Incoming::Packet(p))) = rx.recv() {
                got.push((p.header.message_type(), p.body.len()));
            }
            if got.len() == 2 {
                break;
            }
        }
        got.sort_by_key(|g| g.1);
        assert_eq!(got, vec![(Some(MessageType::Credit), 4), (Some(MessageType::Frame), 100_000)]);
    }
}
