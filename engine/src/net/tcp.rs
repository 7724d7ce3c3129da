//! The TCP transport: reading packets from a byte stream that may hold garbage (it
//! resynchronises on the next valid header), and writing them whole.

use super::wire::{self, Header, WireError, HEADER_LEN};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sets a connection up the way the protocol wants: no Nagle delay, bounded blocking.
pub fn configure(stream: &TcpStream, read_timeout: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(read_timeout))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))
}

/// One packet read from the stream.
#[derive(Debug)]
pub struct Packet {
    /// Its header.
    pub header: Header,
    /// Its body, checked against the header's CRC.
    pub body: Vec<u8>,
}

/// What a read produced.
#[derive(Debug)]
pub enum Incoming {
    /// A packet with a good header and body CRC.
    Packet(Packet),
    /// Nothing within the read timeout.
    Idle,
    /// The peer closed the connection.
    Closed,
}

/// Reads packets from a byte stream, rejecting and counting bad ones, never allocating more than
/// the body limit, and resynchronising on the next good header after garbage.
#[derive(Debug)]
pub struct PacketReader<R> {
    stream: R,
    /// Header bytes (or garbage being scanned for the next header).
    buf: Vec<u8>,
    /// A packet whose header was good, and how much of its body has arrived: bodies are read
    /// straight into their own buffer, never copied.
    body: Option<(Header, Vec<u8>, usize)>,
    max_body: u32,
    resyncing: bool,
    /// Packets rejected so far (a run of garbage counts once).
    pub malformed: u64,
    /// The last rejection, for logs and events.
    pub last_error: Option<WireError>,
}

impl<R: Read> PacketReader<R> {
    /// Reads from `stream`, accepting bodies up to `max_body` bytes.
    pub fn new(stream: R, max_body: u32) -> Self {
        PacketReader { stream, buf: Vec::new(), body: None, max_body, resyncing: false, malformed: 0, last_error: None }
    }

    /// The stream.
    pub fn get_ref(&self) -> &R {
        &self.stream
    }

    /// Reads until `buf` holds `n` bytes (never more): `Some(true)` done, `Some(false)` closed,
    /// `None` timed out.
    fn fill(&mut self, n: usize) -> std::io::Result<Option<bool>> {
        let mut filled = self.buf.len();
        self.buf.resize(n.max(filled), 0);
        let result = read_into(&mut self.stream, &mut self.buf, &mut filled);
        self.buf.truncate(filled);
        result
    }

    fn reject(&mut self, e: WireError) {
        if !self.resyncing {
            self.malformed += 1;
        }
        self.last_error = Some(e);
    }

    /// The next good packet. A packet of another major version is returned as an error (the
    /// caller says `BYE`); every other fault is counted and skipped.
    pub fn read_packet(&mut self) -> std::io::Result<Result<Incoming, WireError>> {
        loop {
            if let Some((header, mut body, mut filled)) = self.body.take() {
                let done = read_into(&mut self.stream, &mut body, &mut filled);
                match done? {
                    Some(true) => {}
                    Some(false) => return Ok(Ok(Incoming::Closed)),
                    None => {
                        self.body = Some((header, body, filled));
                        return Ok(Ok(Incoming::Idle));
                    }
                }
                if let Err(e) = header.check_body(&body) {
                    self.reject(e);
                    continue;
                }
                return Ok(Ok(Incoming::Packet(Packet { header, body })));
            }
            match self.fill(HEADER_LEN)? {
                Some(true) => {}
                Some(false) => return Ok(Ok(Incoming::Closed)),
                None => return Ok(Ok(Incoming::Idle)),
            }
            let mut head = [0u8; HEADER_LEN];
            head.copy_from_slice(&self.buf[..HEADER_LEN]);
            let header = match Header::decode(&head, self.max_body) {
                Ok(h) => h,
                Err(e @ WireError::Version { .. }) => return Ok(Err(e)),
                Err(e) => {
                    self.reject(e);
                    self.resyncing = true;
                    // Skip to the next possible magic after this byte.
                    let next = self.buf[1..].windows(4).position(|w| w == wire::MAGIC).map(|p| p + 1);
                    let keep_from = next.unwrap_or(self.buf.len().saturating_sub(3));
                    self.buf.drain(..keep_from.max(1));
                    continue;
                }
            };
            self.resyncing = false;
            self.buf.clear();
            // Bounded by the header's checked body_len.
            self.body = Some((header, vec![0u8; header.body_len as usize], 0));
        }
    }
}

/// Reads into `buf[*filled..]` until it is full: `Some(true)` full, `Some(false)` closed,
/// `None` timed out (what arrived is kept in `filled`).
fn read_into(stream: &mut impl Read, buf: &mut [u8], filled: &mut usize) -> std::io::Result<Option<bool>> {
    while *filled < buf.len() {
        match stream.read(&mut buf[*filled..]) {
            Ok(0) => return Ok(Some(false)),
            Ok(k) => *filled += k,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Some(true))
}

/// Writes one packet, whole.
pub fn send(stream: &mut TcpStream, packet: &[u8]) -> std::io::Result<()> {
    stream.write_all(packet)
}

/// Writes one packet given in parts (a per-receiver head, a shared body) with vectored writes:
/// no copy to join them, and no lone small segment for the head under `TCP_NODELAY`.
pub fn send_parts(stream: &mut TcpStream, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> = parts.iter().map(|p| std::io::IoSlice::new(p)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match stream.write_vectored(rest) {
            Ok(0) => return Err(std::io::Error::new(ErrorKind::WriteZero, "the peer takes no more")),
            Ok(n) => std::io::IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::wire::{Control, MessageType};

    #[test]
    fn the_reader_skips_garbage_and_counts_it_once_per_run() {
        let good = Control::Credit(5).packet(0);
        let mut stream = Vec::new();
        stream.extend_from_slice(b"garbage that is not a header at all, SLFP and some more bytes");
        stream.extend_from_slice(&good);
        let mut corrupt = good.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xFF; // body CRC no longer matches
        stream.extend_from_slice(&corrupt);
        stream.extend_from_slice(&good);
        let mut r = PacketReader::new(std::io::Cursor::new(stream), wire::MAX_BODY);
        let mut got = Vec::new();
        loop {
            match r.read_packet().expect("io") {
                Ok(Incoming::Packet(p)) => got.push(p),
                Ok(Incoming::Closed) => break,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(got.len(), 2);
        for p in &got {
            let kind = p.header.message_type().expect("credit");
            assert_eq!(kind, MessageType::Credit);
            assert_eq!(Control::decode(kind, &p.body).expect("decode"), Control::Credit(5));
        }
        assert_eq!(r.malformed, 2, "one run of garbage and one bad body");
    }
}
