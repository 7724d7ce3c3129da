//! `streamlib fuzz protocol`: structured mutation of frame-protocol packets fed to the decoder,
//! counting inputs, rejections and panics. Mutations edit fields and reseal the CRCs, so most
//! inputs reach the body and metadata parsers instead of dying at the checksum.

use anyhow::{bail, Result};
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;
use streamlib::metadata::{Detection, FrameMetadata};
use streamlib::net::tcp::{Incoming, PacketReader};
use streamlib::net::udp::{chunks, Reassembler};
use streamlib::net::wire::{self, Codec, Compression, Control, Hello, MessageType, Pong, WireFrame, WireTiming};
use streamlib::YuvColorSpace;

/// Options of `streamlib fuzz protocol`.
#[derive(clap::Args, Debug)]
pub struct FuzzArgs {
    /// How many inputs to try.
    #[arg(long, default_value_t = 10_000_000)]
    pub inputs: u64,
    /// Seed of the mutation generator (runs are reproducible).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where inputs that panic are written.
    #[arg(long, default_value = "fuzz-crashes")]
    pub crashes: PathBuf,
}

/// xorshift64*: fast, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut meta =
        FrameMetadata { timecode: Some("00:00:01:02".into()), scene_revision: Some(3), ..Default::default() };
    meta.detections.push(Detection {
        x: 0.1,
        y: 0.2,
        w: 0.3,
        h: 0.4,
        score: 0.5,
        class: 2,
        track_id: Some(7),
        label: "car".into(),
    });
    meta.user.insert("k".into(), "v".into());
    let mut out = Vec::new();
    for (codec, strides, len) in [
        (Codec::Rgba, [32, 0, 0], 32 * 4),
        (Codec::I420, [8, 4, 4], 8 * 4 + 2 * 4 * 2),
        (Codec::Nv12, [8, 8, 0], 8 * 4 + 8 * 2),
    ] {
        for (m, compression) in [(FrameMetadata::default(), Compression::None), (meta.clone(), Compression::Lz4)] {
            let frame = WireFrame {
                codec,
                width: 8,
                height: 4,
                strides,
                color_space: (codec != Codec::Rgba).then_some(YuvColorSpace::BT601_FULL),
                alpha: wire::AlphaMode::Opaque,
                timing: WireTiming { pts_ns: 1, duration_ns: 2, send_ns: 3, ..Default::default() },
                meta: m,
                payload: (0..len).map(|i| (i * 31) as u8).collect(),
            };
            out.push(wire::packet(MessageType::Frame, 1, 1, 0, &wire::encode_frame(&frame, compression)));
        }
    }
    let hello = Hello { sender: true, codecs: 14, credit: 4, max_body: 1 << 20, name: "fuzz".into() };
    for c in [
        Control::Hello(hello),
        Control::KeyframeRequest,
        Control::Credit(1),
        Control::Ping(9),
        Control::Pong(Pong::default()),
        Control::Bye(0, "bye".into()),
        Control::Nack { packet_id: 3, chunks: vec![0, 2] },
    ] {
        out.push(c.packet(1));
    }
    out
}

const INTERESTING: [u32; 9] = [0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFF, 1 << 30, u32::MAX];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        if b.is_empty() {
            b.push(rng.next() as u8);
            continue;
        }
        match rng.below(7) {
            0 => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            1 => {
                let i = rng.below(b.len());
                b[i] = INTERESTING[rng.below(INTERESTING.len())] as u8;
            }
            2 if b.len() >= 4 => {
                // A length, count or size field: most of them are u32s at 4-byte offsets.
                let i = rng.below(b.len() - 3) & !3;
                let v = match rng.below(3) {
                    0 => INTERESTING[rng.below(INTERESTING.len())],
                    1 => b.len() as u32 + rng.below(64) as u32,
                    _ => rng.next() as u32,
                };
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            3 => b.truncate(rng.below(b.len() + 1)),
            4 if !b.is_empty() => {
                let start = rng.below(b.len());
                let end = (start + rng.below(64)).min(b.len());
                let chunk = b[start..end].to_vec();
                let at = rng.below(b.len());
                b.splice(at..at, chunk);
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(b.len());
                b.truncate(cut);
                b.extend_from_slice(&other[rng.below(other.len())..]);
            }
            _ => {
                let i = rng.below(b.len());
                b.insert(i, rng.next() as u8);
            }
        }
    }
    // Usually reseal: a consistent body length and both CRCs, so parsing goes past them.
    if b.len() >= wire::HEADER_LEN && rng.below(10) < 8 {
        let body_len = (b.len() - wire::HEADER_LEN) as u32;
        if rng.below(4) != 0 {
            b[20..24].copy_from_slice(&body_len.to_le_bytes());
        }
        let crc = wire::checksum(&b[wire::HEADER_LEN..]);
        b[24..28].copy_from_slice(&crc.to_le_bytes());
        let header_crc = wire::checksum(&b[..28]);
        b[28..32].copy_from_slice(&header_crc.to_le_bytes());
    }
    b
}

#[derive(Default)]
struct Counts {
    packets: u64,
    frames_ok: u64,
    controls_ok: u64,
    rejected: u64,
    malformed: u64,
    /// Packets the UDP reassembler put together from the input's datagrams.
    reassembled: u64,
}

/// Everything a receiver does with untrusted bytes: read packets (with resync), decode them.
fn feed(input: &[u8], counts: &mut Counts) {
    let mut reader = PacketReader::new(Cursor::new(input), wire::MAX_BODY);
    while let Ok(Ok(Incoming::Packet(p))) = reader.read_packet() {
        counts.packets += 1;
        let ok = match p.header.message_type() {
            Some(MessageType::Frame) => wire::decode_frame(&p.body).is_ok().then(|| counts.frames_ok += 1).is_some(),
            Some(kind) => Control::decode(kind, &p.body).is_ok().then(|| counts.controls_ok += 1).is_some(),
            None => true,
        };
        if !ok {
            counts.rejected += 1;
        }
    }
    counts.malformed += reader.malformed;
    // The same bytes over UDP: as one datagram, and cut into chunks that arrive backwards.
    let mut udp = Reassembler::default();
    let (from, now) = (SocketAddr::from(([127, 0, 0, 1], 9)), Instant::now());
    let _ = udp.push(from, input, now);
    for d in chunks(input, 1, 512).iter().rev() {
        if udp.push(from, d, now).is_some() {
            counts.reassembled += 1;
        }
    }
    let _ = udp.nacks(now + std::time::Duration::from_millis(5));
    // The body parsers straight, CRC or not.
    if input.len() > wire::HEADER_LEN {
        let body = &input[wire::HEADER_LEN..];
        let _ = wire::decode_frame(body);
        let _ = wire::decode_metadata(body);
    }
}

/// Runs the fuzzer; fails if any input panicked.
pub fn run(args: &FuzzArgs) -> Result<()> {
    let seeds = seeds();
    let mut rng = Rng(args.seed.max(1));
    let mut counts = Counts::default();
    let mut panics = 0u64;
    let started = Instant::now();
    let bar = indicatif::ProgressBar::new(args.inputs);
    // Panics are caught and counted; their messages would flood the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    for i in 0..args.inputs {
        let input = mutate(&mut rng, &seeds);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| feed(&input, &mut counts))).is_err() {
            panics += 1;
            std::fs::create_dir_all(&args.crashes)?;
            std::fs::write(args.crashes.join(format!("crash-{}-{i}.bin", args.seed)), &input)?;
        }
        if i % 65536 == 0 {
            bar.set_position(i);
        }
    }
    bar.finish_and_clear();
    let _ = std::panic::take_hook();
    let secs = started.elapsed().as_secs_f64();
    println!("| inputs | packets decoded | frames accepted | controls accepted | rejected bodies | malformed headers | UDP packets reassembled | panics | inputs/s |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {:.0} |",
        args.inputs,
        counts.packets,
        counts.frames_ok,
        counts.controls_ok,
        counts.rejected,
        counts.malformed,
        counts.reassembled,
        panics,
        args.inputs as f64 / secs
    );
    if panics > 0 {
        bail!("{panics} inputs panicked; they are in {}", args.crashes.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_run_finds_no_panic_and_reaches_the_parsers() {
        let seeds = seeds();
        let mut rng = Rng(7);
        let mut counts = Counts::default();
        for _ in 0..20_000 {
            feed(&mutate(&mut rng, &seeds), &mut counts);
        }
        // Resealed mutations get past the CRCs: bodies are both accepted and rejected.
        assert!(counts.reassembled > 1000, "the UDP reassembler sees whole packets: {}", counts.reassembled);
        assert!(
            counts.frames_ok > 100 && counts.rejected > 100,
            "{} ok, {} rejected",
            counts.frames_ok,
            counts.rejected
        );
    }
}
