//! Groups MPEG-TS packets into datagram-sized messages that end where a picture's PES ends.
//! `mpegtsmux alignment=7` fills every message to seven packets, so the last packets of a
//! frame wait for the next frame (one frame period on the wire). Reading the PES length
//! from each PES header tells where a frame ends, and its message goes out then.

/// A TS packet's size.
pub const TS_PACKET: usize = 188;
/// Packets in one message: 1316 bytes, SRT's live payload and the usual TS-over-UDP size.
pub const PACKETS_PER_MESSAGE: usize = 7;

/// Collects packets and says when a message is ready.
#[derive(Debug, Default)]
pub struct TsChunker {
    pending: Vec<u8>,
    /// PID and bytes still to come of the PES now being carried (bounded PES only).
    open_pes: Vec<(u16, usize)>,
}

impl TsChunker {
    /// Adds whole packets (`data.len()` a multiple of 188; a stray tail is passed on as is)
    /// and returns the messages that are complete, in order.
    pub fn push(&mut self, data: &[u8]) -> Vec<Vec<u8>> {
        let mut ready = Vec::new();
        for packet in data.chunks(TS_PACKET) {
            let ends_pes = packet.len() == TS_PACKET && self.track(packet);
            self.pending.extend_from_slice(packet);
            if ends_pes || self.pending.len() >= PACKETS_PER_MESSAGE * TS_PACKET {
                ready.push(std::mem::take(&mut self.pending));
            }
        }
        ready
    }

    /// What is held (at the end of the stream).
    pub fn flush(&mut self) -> Option<Vec<u8>> {
        (!self.pending.is_empty()).then(|| std::mem::take(&mut self.pending))
    }

    /// Follows the PES a packet belongs to; true when this packet completes it.
    fn track(&mut self, packet: &[u8]) -> bool {
        if packet[0] != 0x47 {
            return false;
        }
        let pid = (u16::from(packet[1] & 0x1f) << 8) | u16::from(packet[2]);
        let unit_start = packet[1] & 0x40 != 0;
        let control = (packet[3] >> 4) & 3;
        let mut start = 4;
        if control & 2 != 0 {
            start += 1 + usize::from(packet[4]);
        }
        if control & 1 == 0 || start >= TS_PACKET {
            return false;
        }
        let payload = &packet[start..];
        if unit_start {
            self.open_pes.retain(|(p, _)| *p != pid);
            // A PES header (PSI sections start with a pointer field and a table id instead).
            if payload.len() >= 6 && payload[..3] == [0, 0, 1] {
                let length = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
                // Zero is "unbounded" (a picture over 64 KiB): its end shows only when the
                // next PES starts.
                if length > 0 {
                    self.open_pes.push((pid, 6 + length));
                }
            }
        }
        let Some(i) = self.open_pes.iter().position(|(p, _)| *p == pid) else { return false };
        let left = self.open_pes[i].1.saturating_sub(payload.len());
        if left == 0 {
            self.open_pes.swap_remove(i);
            return true;
        }
        self.open_pes[i].1 = left;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs `pes` into TS packets of `pid` as a muxer does (stuffing in the last one's
    /// adaptation field).
    fn packetize(pid: u16, pes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, piece) in pes.chunks(184).enumerate() {
            let mut packet = vec![0x47, (pid >> 8) as u8 | if i == 0 { 0x40 } else { 0 }, pid as u8];
            if piece.len() == 184 {
                packet.push(0x10);
            } else {
                let stuffing = 184 - piece.len() - 1;
                packet.push(0x30);
                packet.push(stuffing as u8);
                if stuffing > 0 {
                    packet.push(0);
                    packet.extend(std::iter::repeat_n(0xff, stuffing - 1));
                }
            }
            packet.extend_from_slice(piece);
            assert_eq!(packet.len(), TS_PACKET);
            out.extend(packet);
        }
        out
    }

    fn pes(length: usize, declared: bool) -> Vec<u8> {
        let body = length - 6;
        let field = if declared { body as u16 } else { 0 };
        let mut p = vec![0, 0, 1, 0xe0];
        p.extend(field.to_be_bytes());
        p.extend(std::iter::repeat_n(0xaa, body));
        p
    }

    #[test]
    fn a_frame_goes_out_when_its_pes_ends_not_when_the_next_one_comes() {
        let mut chunker = TsChunker::default();
        // 10 packets: one full message, then the last three at once.
        let frame = packetize(65, &pes(10 * 184 - 50, true));
        let messages = chunker.push(&frame);
        assert_eq!(messages.iter().map(Vec::len).collect::<Vec<_>>(), [7 * 188, 3 * 188]);
        assert_eq!(messages.concat(), frame);
        assert!(chunker.flush().is_none());
    }

    #[test]
    fn packets_handed_over_one_by_one_make_the_same_messages() {
        let mut chunker = TsChunker::default();
        let frame = packetize(65, &pes(3 * 184, true));
        let mut messages = Vec::new();
        for packet in frame.chunks(TS_PACKET) {
            messages.extend(chunker.push(packet));
        }
        assert_eq!(messages, [frame]);
    }

    #[test]
    fn tables_before_a_keyframe_travel_with_it() {
        let mut chunker = TsChunker::default();
        let mut pat = vec![0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xb0, 0x0d];
        pat.resize(TS_PACKET, 0xff);
        assert!(chunker.push(&pat).is_empty());
        let frame = packetize(65, &pes(2 * 184, true));
        assert_eq!(chunker.push(&frame), [[pat, frame].concat()]);
    }

    #[test]
    fn an_unbounded_pes_goes_out_with_the_next_one() {
        let mut chunker = TsChunker::default();
        let big = packetize(65, &pes(9 * 184, false));
        assert_eq!(chunker.push(&big).len(), 1, "only the full message");
        let next = packetize(65, &pes(184, true));
        let messages = chunker.push(&next);
        assert_eq!(messages.concat(), [&big[7 * 188..], &next[..]].concat());
    }

    #[test]
    fn garbage_is_passed_on_without_panicking() {
        let mut chunker = TsChunker::default();
        let mut sent = chunker.push(&[0x47, 0xff, 0xff, 0xff, 9]);
        sent.extend(chunker.push(&[0u8; 188 * 8]));
        sent.extend(chunker.flush());
        assert_eq!(sent.concat().len(), 5 + 188 * 8);
    }
}
