//! The frame protocol over real TCP sockets on loopback: frames arrive with their pts, exact
//! pixels and metadata, and reach the receiving engine's output; malformed packets are counted
//! and skipped; an input reconnects when its sender restarts; a slow receiver loses frames
//! instead of growing memory.

mod common;

use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use streamlib::frame::FrameData;
use streamlib::metadata::{Detection, FrameMetadata};
use streamlib::net::proxy::LossyProxy;
use streamlib::net::wire::{self, Codec, Compression, Control, Hello, MessageType, WireFrame, WireTiming};
use streamlib::net::{NetworkInputConfig, NetworkOutputConfig, NetworkProducer, NetworkSink};
use streamlib::sources::{FrameProducer, SourceError};
use streamlib::{Fps, FrameTime, OutputFrame, PixelFormat, Registry, Sink, TimestampedFrame};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn metadata() -> FrameMetadata {
    let mut meta = FrameMetadata { timecode: Some("00:00:00:07".into()), ..Default::default() };
    meta.detections.push(Detection {
        x: 0.125,
        y: 0.25,
        w: 0.5,
        h: 0.5,
        score: 0.75,
        class: 1,
        track_id: Some(9),
        label: "person".into(),
    });
    meta.user.insert("speaker".into(), "Ada Lovelace".into());
    meta
}

/// Received metadata less the capture time the sender stamped (checked to be there and recent).
fn as_sent(meta: &FrameMetadata) -> FrameMetadata {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let capture = meta.capture_ns.expect("a capture time travels with every frame");
    assert!(now - capture < 60_000_000_000, "capture {capture} is recent");
    FrameMetadata { capture_ns: None, ..meta.clone() }
}

/// An opaque RGBA frame with a pattern every pixel of which differs from its neighbours.
fn rgba_frame(index: u64, w: u32, h: u32) -> OutputFrame {
    let mut data = Vec::with_capacity((w * h * 4) as usize);
    for y in 0..h {
        for x in 0..w {
            data.extend_from_slice(&[(x * 7 + index as u32) as u8, ((y * 13) % 256) as u8, ((x ^ y) * 3) as u8, 255]);
        }
    }
    OutputFrame {
        time: FrameTime::at(Fps::new(30, 1), index),
        width: w,
        height: h,
        format: PixelFormat::Rgba8,
        color_space: None,
        data,
        meta: metadata(),
    }
}

/// A network output built the way a scene builds it.
fn network_sink(url: &str, format: &str, compression: &str) -> Box<dyn Sink> {
    let registry = Registry::default();
    let scene = registry
        .parse_scene(
            &json!({ "width": 32, "height": 16,
                "inputs": { "p": { "kind": "test_pattern", "pattern": "solid" } },
                "layers": [ { "id": "p", "kind": "video", "input": "p" } ],
                "outputs": [ { "kind": "network", "url": url, "format": format, "compression": compression } ] })
            .to_string(),
        )
        .expect("scene with a network output");
    let mut sinks = registry.open_scene_outputs(&scene, |_| panic!("a URL is not a file to place")).expect("sink");
    sinks.pop().expect("one sink").sink
}

fn producer(url: &str) -> NetworkProducer {
    let config: NetworkInputConfig = serde_json::from_value(json!({ "url": url })).expect("input config");
    NetworkProducer::open(&config, "test").expect("producer")
}

/// The next frame within `timeout`.
fn next(p: &mut NetworkProducer, timeout: Duration) -> Option<TimestampedFrame> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        match p.next_frame() {
            Ok(Some(f)) => return Some(f),
            Ok(None) | Err(SourceError::NotYet) => {}
            Err(e) => panic!("{e}"),
        }
    }
    None
}

fn packed(frame: &TimestampedFrame) -> Vec<u8> {
    match &frame.data {
        FrameData::Cpu(planes) => planes.iter().flat_map(|p| p.data.clone()).collect(),
        _ => panic!("a CPU frame"),
    }
}

/// Writes frames to `sink` until `receive` returns, so whenever the receiver connects it gets some.
fn while_sending<T>(mut sink: Box<dyn Sink>, frame: impl Fn(u64) -> OutputFrame, receive: impl FnOnce() -> T) -> T {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let frames: Vec<OutputFrame> = (0..8).map(&frame).collect();
    let sender = std::thread::spawn(move || {
        let mut i = 0;
        while !flag.load(Ordering::Relaxed) {
            sink.write(&frames[i % frames.len()]).expect("write");
            i += 1;
            std::thread::sleep(Duration::from_millis(10));
        }
        sink.finish().expect("finish");
    });
    let out = receive();
    stop.store(true, Ordering::Relaxed);
    sender.join().expect("sender");
    out
}

#[test]
fn raw_frames_arrive_with_their_pts_exact_pixels_and_metadata() {
    for compression in ["none", "lz4"] {
        let port = free_port();
        let sink = network_sink(&format!("tcp://127.0.0.1:{port}"), "rgba", compression);
        let got = while_sending(
            sink,
            |i| rgba_frame(i, 32, 16),
            || next(&mut producer(&format!("tcp://127.0.0.1:{port}")), Duration::from_secs(10)),
        );
        let got = got.expect("a frame over TCP");
        let index = (0..8).find(|&i| rgba_frame(i, 32, 16).time.pts_ns == got.time.pts_ns).expect("a sent pts");
        let sent = rgba_frame(index, 32, 16);
        assert_eq!((got.width, got.height, got.format), (32, 16, PixelFormat::Rgba8));
        assert_eq!(got.time.duration_ns, sent.time.duration_ns);
        assert_eq!(packed(&got), sent.data, "raw pixels are exact ({compression})");
        assert_eq!(as_sent(&got.meta), metadata());
    }
}

#[test]
fn the_receiving_engine_shows_the_frames_and_passes_their_metadata_on() {
    let port = free_port();
    let sink = network_sink(&format!("tcp://127.0.0.1:{port}"), "rgba", "none");
    let out = while_sending(
        sink,
        |i| rgba_frame(i, 32, 16),
        || {
            let scene = common::scene(json!({
                "width": 32, "height": 16, "fps": 30,
                "inputs": { "net": { "kind": "network", "url": format!("tcp://127.0.0.1:{port}") } },
                "layers": [ { "id": "net", "kind": "video", "input": "net" } ]
            }));
            let mut engine = common::engine(scene);
            // Offline pacing waits for a live input's first frame.
            engine.render_and_read(0, PixelFormat::Rgba8).expect("render")
        },
    );
    assert_eq!(as_sent(&out.meta), metadata(), "the input's metadata travels with the output frame");
    let sent = rgba_frame(0, 32, 16);
    // Pixel (5, 3): green and blue do not depend on the frame index.
    let [_, g, b, a] = out.rgba_at(5, 3);
    let i = (3 * 32 + 5) * 4;
    assert_eq!(a, 255);
    assert!(g.abs_diff(sent.data[i + 1]) <= 1 && b.abs_diff(sent.data[i + 2]) <= 1, "({g}, {b})");
}

/// A hand-written sender: accepts the input's connection and says hello.
fn fake_sender(listener: &TcpListener) -> TcpStream {
    let (mut s, _) = listener.accept().expect("the input connects");
    let hello = Control::Hello(Hello {
        sender: true,
        codecs: Codec::Rgba.bit(),
        credit: 0,
        max_body: 1 << 16,
        name: "fake".into(),
    });
    s.write_all(&hello.packet(0)).expect("hello");
    s
}

fn frame_packet(sequence: u64, w: u32, h: u32) -> Vec<u8> {
    let sent = rgba_frame(sequence, w, h);
    let frame = WireFrame {
        codec: Codec::Rgba,
        width: w,
        height: h,
        strides: [w * 4, 0, 0],
        color_space: None,
        alpha: wire::AlphaMode::Premultiplied,
        timing: WireTiming { pts_ns: sent.time.pts_ns, duration_ns: sent.time.duration_ns, ..Default::default() },
        meta: FrameMetadata::default(),
        payload: sent.data,
    };
    wire::packet(MessageType::Frame, wire::FLAG_KEYFRAME, 1, sequence, &wire::encode_frame(&frame, Compression::None))
}

/// Fixes the header CRC after editing header bytes, so the fault is the one meant.
fn reseal(mut p: Vec<u8>) -> Vec<u8> {
    let crc = crc32c(&p[..28]);
    p[28..32].copy_from_slice(&crc.to_le_bytes());
    p
}

/// Replaces a frame packet's body, resealing both CRCs: a well-formed packet carrying `body`.
fn with_body(good: &[u8], edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut body = good[32..].to_vec();
    edit(&mut body);
    let mut p = good[..32].to_vec();
    p[20..24].copy_from_slice(&(body.len() as u32).to_le_bytes());
    p[24..28].copy_from_slice(&crc32c(&body).to_le_bytes());
    p.extend_from_slice(&body);
    reseal(p)
}

fn crc32c(b: &[u8]) -> u32 {
    // The protocol's CRC, computed independently of the crate (bitwise, reflected 0x82F63B78).
    let mut crc = !0u32;
    for &byte in b {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// The regression corpus: each packet is malformed in one way, and a good frame follows it.
fn malformed_corpus() -> Vec<(&'static str, Vec<u8>)> {
    let good = frame_packet(0, 8, 4);
    let mut cases: Vec<(&'static str, Vec<u8>)> = Vec::new();
    let mut magic = good.clone();
    magic[0] = b'X';
    cases.push(("wrong magic", magic));
    cases.push(("truncated header", good[..20].to_vec()));
    let mut header_crc = good.clone();
    header_crc[12] ^= 0x40;
    cases.push(("header CRC", header_crc));
    let mut body_crc = good.clone();
    let last = body_crc.len() - 1;
    body_crc[last] ^= 1;
    cases.push(("body CRC", body_crc));
    let mut huge = good[..32].to_vec();
    huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
    cases.push(("absurd body length", reseal(huge)));
    cases.push(("lying meta_len", with_body(&good, |b| b[68..72].copy_from_slice(&1000u32.to_le_bytes()))));
    cases.push(("absurd size", with_body(&good, |b| b[48..52].copy_from_slice(&1_000_000u32.to_le_bytes()))));
    cases.push((
        "decompression bomb",
        with_body(&good, |b| {
            b[3] = 1; // LZ4
            b[76..80].copy_from_slice(&(1u32 << 30).to_le_bytes());
        }),
    ));
    cases.push(("unknown codec", with_body(&good, |b| b[2] = 200)));
    cases.push((
        "garbage metadata",
        with_body(&good, |b| {
            // A detections section claiming 5 000 boxes in 4 bytes.
            let meta = [1u8, 0, 4, 0, 0, 0, 0x88, 0x13, 0, 0];
            b[68..72].copy_from_slice(&(meta.len() as u32).to_le_bytes());
            let at = 96;
            b.splice(at..at, meta);
        }),
    ));
    cases.push(("short stride", with_body(&good, |b| b[56..60].copy_from_slice(&4u32.to_le_bytes()))));
    cases
}

#[test]
fn malformed_packets_are_counted_and_the_stream_recovers_at_the_next_good_frame() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("addr"));
    let corpus = malformed_corpus();
    let n = corpus.len();
    let sender = std::thread::spawn(move || {
        let mut s = fake_sender(&listener);
        for (i, (_, bad)) in corpus.iter().enumerate() {
            s.write_all(bad).expect("bad packet");
            s.write_all(&frame_packet(i as u64 + 1, 8, 4)).expect("good packet");
        }
        // Keep the connection open until the receiver closes it (it reads hello and credits).
        let mut sink = [0u8; 256];
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        while matches!(s.read(&mut sink), Ok(k) if k > 0) {}
    });
    let mut p = producer(&url);
    let stats = p.stats();
    let mut got = Vec::new();
    while got.len() < n {
        match next(&mut p, Duration::from_secs(10)) {
            Some(f) => got.push(f.time.index),
            None => break,
        }
    }
    drop(p);
    sender.join().expect("sender");
    let expected: Vec<u64> = (1..=n as u64).collect();
    assert_eq!(got, expected, "every good frame after a bad packet arrives");
    assert_eq!(stats.malformed.load(Ordering::Relaxed), n as u64, "each bad packet counted once");
}

#[test]
fn a_future_major_version_is_refused_with_bye() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("tcp://{}", listener.local_addr().expect("addr"));
    let sender = std::thread::spawn(move || {
        let mut s = fake_sender(&listener);
        let mut future = frame_packet(0, 8, 4);
        future[4] = 2;
        s.write_all(&reseal(future)).expect("write");
        // Read the receiver's hello, then its bye.
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = Vec::new();
        let mut chunk = [0u8; 512];
        while let Ok(k) = s.read(&mut chunk) {
            if k == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..k]);
        }
        buf
    });
    let mut p = producer(&url);
    assert!(next(&mut p, Duration::from_secs(2)).is_none());
    drop(p);
    let received = sender.join().expect("sender");
    // Packets back to back: find the BYE (type 7) with reason 1 (version).
    let mut at = 0;
    let mut bye = None;
    while at + 32 <= received.len() {
        let len = u32::from_le_bytes(received[at + 20..at + 24].try_into().expect("4 bytes")) as usize;
        if received[at + 6] == 7 {
            bye = received.get(at + 32).copied();
        }
        at += 32 + len;
    }
    assert_eq!(bye, Some(1), "BYE with reason 1 (version)");
}

#[test]
fn an_input_reconnects_when_its_sender_restarts() {
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let mut p = producer(&url);
    let stats = p.stats();
    for round in 0..2u64 {
        let sink = network_sink(&url, "rgba", "none");
        let frame =
            while_sending(sink, |i| rgba_frame(i + round * 100, 32, 16), || next(&mut p, Duration::from_secs(10)));
        let frame = frame.unwrap_or_else(|| panic!("a frame from sender {round}"));
        // The pixels say which sender it was (red carries the index).
        let red = packed(&frame)[0];
        assert!((round as u8 * 100..round as u8 * 100 + 8).contains(&red), "sender {round}: red {red}");
    }
    assert_eq!(stats.connections.load(Ordering::Relaxed), 2);
}

#[test]
fn a_receiver_without_credit_loses_frames_and_the_sender_never_queues_them() {
    let port = free_port();
    let config: NetworkOutputConfig =
        serde_json::from_value(json!({ "url": format!("tcp://127.0.0.1:{port}"), "format": "rgba" })).expect("config");
    let mut sink = NetworkSink::start(config, "slow receiver test").expect("listen");
    let stats = sink.stats();
    // A receiver that grants one frame and never reads.
    let mut slow = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let hello = Control::Hello(Hello {
        sender: false,
        codecs: Codec::Rgba.bit(),
        credit: 1,
        max_body: 1 << 26,
        name: "slow".into(),
    });
    slow.write_all(&hello.packet(0)).expect("hello");
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..200 {
        sink.write(&rgba_frame(i, 320, 180)).expect("write never blocks on a receiver");
    }
    assert_eq!(stats.sent.load(Ordering::Relaxed), 1, "one credit, one frame");
    assert_eq!(stats.dropped.load(Ordering::Relaxed), 199, "the rest dropped and counted");
    sink.finish().expect("finish");
    drop(slow);
}

/// A 640x360 I420 frame of smooth gradients and a moving square: content codecs handle well,
/// with detail enough that a wrong decode shows.
fn i420_frame(index: u64) -> OutputFrame {
    let (w, h) = (640u32, 360u32);
    let mut data = Vec::with_capacity((w * h * 3 / 2) as usize);
    let (sx, sy) = (40 + (index as u32 * 8) % 480, 120);
    for y in 0..h {
        for x in 0..w {
            let inside = (sx..sx + 96).contains(&x) && (sy..sy + 96).contains(&y);
            data.push(if inside { 220 } else { (30 + x * 160 / w + y * 40 / h) as u8 });
        }
    }
    for plane in 0..2 {
        for y in 0..h / 2 {
            for x in 0..w / 2 {
                data.push(if plane == 0 { (90 + x * 60 / (w / 2)) as u8 } else { (100 + y * 50 / (h / 2)) as u8 });
            }
        }
    }
    OutputFrame {
        time: FrameTime::at(Fps::new(30, 1), index),
        width: w,
        height: h,
        format: PixelFormat::I420,
        color_space: Some(streamlib::YuvColorSpace::default_for_height(h)),
        data,
        meta: metadata(),
    }
}

/// PSNR in dB of a received I420 frame against the one sent (all three planes).
fn psnr(got: &TimestampedFrame, sent: &OutputFrame) -> f64 {
    let FrameData::Cpu(planes) = &got.data else { panic!("a CPU frame") };
    let mut sum = 0f64;
    let mut n = 0usize;
    for (i, shape) in sent.format.planes(sent.width, sent.height).iter().enumerate() {
        let row = shape.row_bytes();
        for (y, want) in sent.plane(i).chunks_exact(row).enumerate() {
            let have = &planes[i].data[y * planes[i].stride..y * planes[i].stride + row];
            for (a, b) in want.iter().zip(have) {
                sum += (f64::from(*a) - f64::from(*b)).powi(2);
                n += 1;
            }
        }
    }
    let mse = sum / n as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// A network output from JSON config fields.
fn output(fields: serde_json::Value) -> NetworkSink {
    let config: NetworkOutputConfig = serde_json::from_value(fields).expect("output config");
    NetworkSink::start(config, "test output").expect("output")
}

/// Frames received until `count` arrived or `timeout` passed.
fn receive(p: &mut NetworkProducer, count: usize, timeout: Duration) -> Vec<TimestampedFrame> {
    let start = Instant::now();
    let mut got = Vec::new();
    while got.len() < count && start.elapsed() < timeout {
        if let Ok(Some(f)) = p.next_frame() {
            got.push(f);
        }
    }
    got
}

/// The frame of `i420_frame` a received frame is, by its pts.
fn sent_for(got: &TimestampedFrame) -> OutputFrame {
    let index = (got.time.pts_ns * 30 + 500_000_000) / 1_000_000_000;
    let sent = i420_frame(index);
    assert_eq!(sent.time.pts_ns, got.time.pts_ns, "a pts that was sent");
    sent
}

#[test]
fn jpeg_and_h264_frames_arrive_with_their_pts_metadata_and_at_least_35_db() {
    for codec in ["jpeg", "h264"] {
        let port = free_port();
        let sink = Box::new(output(json!({ "url": format!("tcp://127.0.0.1:{port}"), "codec": codec })));
        let frames = while_sending(sink, i420_frame, || {
            receive(&mut producer(&format!("tcp://127.0.0.1:{port}")), 10, Duration::from_secs(20))
        });
        assert_eq!(frames.len(), 10, "{codec}: ten frames");
        for got in &frames {
            let sent = sent_for(got);
            assert_eq!((got.width, got.height, got.format), (640, 360, PixelFormat::I420));
            assert_eq!(got.color_space, sent.color_space, "{codec}: colour space travels");
            assert_eq!(as_sent(&got.meta), metadata(), "{codec}: metadata travels");
            let db = psnr(got, &sent);
            assert!(db >= 35.0, "{codec}: frame {} at {db:.1} dB", got.time.index);
        }
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Sends `frames` frames made by `frame` to `sink` every `gap`, then finishes; returns what
/// `receive` returns.
fn send_frames<T>(
    mut sink: NetworkSink,
    frames: u64,
    gap: Duration,
    frame: impl Fn(u64) -> OutputFrame + Send + 'static,
    receive: impl FnOnce() -> T,
) -> (T, NetworkSink) {
    let sender = std::thread::spawn(move || {
        // Give the receiver a moment to start reading.
        std::thread::sleep(Duration::from_millis(200));
        for i in 0..frames {
            sink.write(&frame(i)).expect("write");
            std::thread::sleep(gap);
        }
        sink
    });
    let out = receive();
    let mut sink = sender.join().expect("sender");
    sink.finish().expect("finish");
    (out, sink)
}

#[test]
fn udp_raw_frames_arrive_exact_and_in_order_through_loss_and_reordering() {
    let recv_port = free_udp_port();
    // What is tested is that resending recovers every lost datagram, so both windows leave a
    // resend time to come: reassembly 500 ms (default 100) and reorder 500 ms (default 20). The
    // reorder window is what failed ("lost 1, late 1", twice in four full runs): when the proxy
    // also drops a resend (it drops every 50th datagram, resends included), the second ask comes
    // 8 + 20 ms after the loss, past 20 ms, and the frames behind the gap had gone on without it.
    let config: NetworkInputConfig = serde_json::from_value(json!({
        "url": format!("udp://127.0.0.1:{recv_port}"), "reassembly_ms": 500, "reorder_ms": 500
    }))
    .expect("input config");
    let mut p = NetworkProducer::open(&config, "test").expect("producer");
    let stats = p.stats();
    // 2 % of datagrams lost, every 7th swapped with the next.
    let proxy = LossyProxy::start(([127, 0, 0, 1], recv_port).into(), Box::new(|i| i % 50 == 0), 7).expect("proxy");
    let sink = output(json!({ "url": format!("udp://{}", proxy.addr), "format": "rgba" }));
    let out_stats = sink.stats();
    let (got, _sink) = send_frames(
        sink,
        30,
        Duration::from_millis(20),
        |i| rgba_frame(i, 320, 180),
        || receive(&mut p, 30, Duration::from_secs(10)),
    );
    assert!(proxy.dropped.load(Ordering::Relaxed) > 50, "the proxy lost datagrams");
    let counters = format!(
        "lost {}, incomplete {}, late {}, nacks {}, proxy dropped {}",
        stats.lost.load(Ordering::Relaxed),
        stats.incomplete.load(Ordering::Relaxed),
        stats.late.load(Ordering::Relaxed),
        stats.nacks.load(Ordering::Relaxed),
        proxy.dropped.load(Ordering::Relaxed)
    );
    assert_eq!(got.len(), 30, "every frame recovered by resending: {counters}");
    for (i, f) in got.iter().enumerate() {
        assert_eq!(f.time.index, i as u64, "in order");
        assert_eq!(packed(f), rgba_frame(i as u64, 320, 180).data, "frame {i}: exact pixels");
        assert_eq!(as_sent(&f.meta), metadata());
    }
    assert!(stats.nacks.load(Ordering::Relaxed) > 0 && out_stats.retransmitted.load(Ordering::Relaxed) > 0);
    assert_eq!(stats.lost.load(Ordering::Relaxed), 0);
}

#[test]
fn h264_over_udp_shows_every_frame_at_2_percent_loss_and_recovers_from_an_outage_with_a_keyframe() {
    // 2 % random-looking loss (a fixed pseudo-random sequence), then an outage of 1.2 s starting
    // 1.5 s in (frames take 15 ms or more each, so the first 30 come before it): longer than the sender keeps packets for resending (64), so frames are
    // lost and the picture comes back with a keyframe. (A shorter outage is bridged by resending.)
    let first_datagram = std::sync::OnceLock::<Instant>::new();
    let lose = move |i: u64| {
        let since = first_datagram.get_or_init(Instant::now).elapsed();
        i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % 100 < 2
            || (Duration::from_millis(1500)..Duration::from_millis(2700)).contains(&since)
    };
    let recv_port = free_udp_port();
    let mut p = producer(&format!("udp://127.0.0.1:{recv_port}"));
    let stats = p.stats();
    let proxy = LossyProxy::start(([127, 0, 0, 1], recv_port).into(), Box::new(lose), 11).expect("proxy");
    let sink = output(json!({ "url": format!("udp://{}", proxy.addr), "codec": "h264",
        "bitrate": 4000, "keyframe_interval": 600 }));
    let out_stats = sink.stats();
    // Until the last frame or, if that one is lost, a timeout.
    let until_last = |p: &mut NetworkProducer| {
        let mut got: Vec<TimestampedFrame> = Vec::new();
        let start = Instant::now();
        while got.last().is_none_or(|f| f.time.index < 199) && start.elapsed() < Duration::from_secs(10) {
            got.extend(p.next_frame().ok().flatten());
        }
        got
    };
    let (got, _sink) = send_frames(sink, 200, Duration::from_millis(15), i420_frame, || until_last(&mut p));
    for f in &got {
        let sent = i420_frame(f.time.index);
        assert_eq!(f.time.pts_ns, sent.time.pts_ns);
        let db = psnr(f, &sent);
        assert!(db >= 35.0, "frame {} at {db:.1} dB: never a broken picture", f.time.index);
    }
    let (lost, skipped) = (stats.lost.load(Ordering::Relaxed), stats.skipped.load(Ordering::Relaxed));
    let first = got.iter().filter(|f| f.time.index < 30).count();
    assert_eq!(
        first,
        30,
        "the frames before the outage all arrive despite 2 % loss: {:?}",
        got.iter().map(|f| f.time.index).collect::<Vec<_>>()
    );
    let indices: Vec<u64> = got.iter().map(|f| f.time.index).collect();
    let counters = format!(
        "lost {lost}, skipped {skipped}, incomplete {}, late {}, nacks {}, proxy dropped {}, shown {indices:?}",
        stats.incomplete.load(Ordering::Relaxed),
        stats.late.load(Ordering::Relaxed),
        stats.nacks.load(Ordering::Relaxed),
        proxy.dropped.load(Ordering::Relaxed)
    );
    assert!(lost > 0, "the outage lost frames: {counters}");
    assert!(stats.keyframe_requests.load(Ordering::Relaxed) > 0, "the receiver asked for a keyframe");
    assert!(out_stats.forced_keyframes.load(Ordering::Relaxed) > 0, "the sender forced one");
    assert!(stats.recovered.load(Ordering::Relaxed) >= 1, "and the picture came back");
    assert!(got.last().is_some_and(|f| f.time.index >= 190), "frames after the outage are shown");
    let last = got.last().map_or(0, |f| f.time.index);
    assert_eq!(
        got.len() as u64 + lost + skipped,
        last + 1,
        "each frame shown, lost or skipped: {lost} lost, {skipped} skipped"
    );
}

/// `i420_frame` as NV12 (what an H.264 RTP output reads back).
fn nv12_frame(index: u64) -> OutputFrame {
    let mut f = i420_frame(index);
    let luma = (f.width * f.height) as usize;
    let quarter = luma / 4;
    let (u, v) = (f.data[luma..luma + quarter].to_vec(), f.data[luma + quarter..].to_vec());
    for i in 0..quarter {
        f.data[luma + 2 * i] = u[i];
        f.data[luma + 2 * i + 1] = v[i];
    }
    f.format = PixelFormat::Nv12;
    f
}

/// Which `i420_frame` a received picture is: the bright square's left edge on row 168 gives the
/// index modulo 60; the first such index after `after`.
fn index_of(got: &TimestampedFrame, after: Option<u64>) -> Option<u64> {
    let FrameData::Cpu(planes) = &got.data else { return None };
    let row = &planes[0].data[168 * planes[0].stride..][..640];
    let sx = row.iter().position(|&y| y > 200)? as u64;
    let phase = (sx.checked_sub(40)? + 4) / 8 % 60;
    let start = after.map_or(0, |a| a + 1);
    Some(start + (phase + 60 - start % 60) % 60)
}

/// An RTP output (H.264 or raw) sending to `port`, receivers' feedback on `feedback`.
fn rtp_output(port: u16, feedback: u16, fields: serde_json::Value, sdp: &std::path::Path) -> Box<dyn Sink> {
    let mut config = json!({ "sdp": sdp, "port": port, "feedback_port": feedback, "keyframe_interval": 600 });
    config.as_object_mut().expect("object").extend(fields.as_object().expect("object").clone());
    let config: streamlib::media::RtpOutputConfig = serde_json::from_value(config).expect("config");
    let target =
        streamlib::registry::SinkTarget { output: "", path: sdp, width: 640, height: 360, fps: Fps::new(30, 1) };
    Box::new(streamlib::media::RtpSink::start(&config, &target).expect("rtp output"))
}

/// Frames `producer` gives until none came for a second after `sent` says sending ended.
fn collect_live(producer: &mut impl FrameProducer, sent: &std::sync::atomic::AtomicBool) -> Vec<TimestampedFrame> {
    let mut got = Vec::new();
    let mut last = Instant::now();
    while !sent.load(Ordering::Relaxed) || last.elapsed() < Duration::from_secs(1) {
        if let Ok(Some(f)) = producer.next_frame() {
            got.push(f);
            last = Instant::now();
        }
        if last.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    if let Some(why) = producer.counters().and_then(|c| c.last_error()) {
        println!("the input failed on the way: {why}");
    }
    got
}

/// Sends `frames` frames at 30 fps through `sink` while `receive` runs.
fn send_rtp<T>(
    mut sink: Box<dyn Sink>,
    frames: u64,
    frame: fn(u64) -> OutputFrame,
    receive: impl FnOnce(&std::sync::atomic::AtomicBool) -> T,
) -> T {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    // Made before sending: RTP timestamps must advance as fast as the packets go out, or the
    // jitter buffer takes every packet for late (a debug build makes a frame slower than 30 fps).
    let made: Vec<OutputFrame> = (0..frames).map(frame).collect();
    let sender = std::thread::spawn(move || {
        // The receiver's pipeline starts on its first pull.
        std::thread::sleep(Duration::from_millis(700));
        let start = Instant::now();
        for (i, f) in (0..frames).zip(&made) {
            sink.write(f).expect("write");
            let next = start + Duration::from_nanos((i + 1) * 1_000_000_000 / 30);
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        flag.store(true, Ordering::Relaxed);
        sink.finish().expect("finish");
    });
    let out = receive(&done);
    sender.join().expect("sender");
    out
}

/// `i420_frame` over a fixed fine texture, which makes keyframes many datagrams long.
fn textured_i420(index: u64) -> OutputFrame {
    let mut f = i420_frame(index);
    let w = f.width as usize;
    for (i, y) in f.data[..w * f.height as usize].iter_mut().enumerate() {
        if *y < 200 {
            let grain = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61) as u8;
            *y = (*y).saturating_add(grain).min(199);
        }
    }
    f
}

fn textured_nv12(index: u64) -> OutputFrame {
    let mut f = textured_i420(index);
    let plain = nv12_frame(index);
    let luma = (f.width * f.height) as usize;
    f.data[luma..].copy_from_slice(&plain.data[luma..]);
    f.format = PixelFormat::Nv12;
    f
}

/// The frames decoded whole, in order (at 35 dB or better against the frame `sent` made), and
/// how many came broken (a picture decoded from damaged data).
fn check_pictures(got: &[TimestampedFrame], sent: fn(u64) -> OutputFrame) -> (Vec<u64>, usize) {
    let mut indices = Vec::new();
    let mut broken = 0;
    for f in got {
        match index_of(f, indices.last().copied()) {
            Some(i) if psnr(f, &sent(i)) >= 35.0 => indices.push(i),
            _ => broken += 1,
        }
    }
    (indices, broken)
}

#[test]
fn rtp_h264_with_retransmission_decodes_99_percent_of_frames_at_2_percent_loss() {
    let dir = std::env::temp_dir().join(format!("streamlib-rtp-loss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut shown = Vec::new();
    for rtx in [true, false] {
        let recv_port = free_udp_port();
        let feedback = free_udp_port();
        let proxy =
            LossyProxy::start(([127, 0, 0, 1], recv_port).into(), LossyProxy::random_loss(2), 0).expect("proxy");
        let sdp = dir.join(format!("rtx-{rtx}.sdp"));
        let sink = rtp_output(
            proxy.addr.port(),
            feedback,
            json!({ "retransmission": rtx, "keyframe_interval": 30, "bitrate": 6000 }),
            &sdp,
        );
        let input: streamlib::media::RtpInputConfig = serde_json::from_value(json!({
            "port": recv_port, "feedback": format!("127.0.0.1:{feedback}"), "retransmission": rtx, "latency_ms": 200
        }))
        .expect("input config");
        let mut producer = streamlib::media::rtp_producer(&input).expect("rtp input");
        let got = send_rtp(sink, 150, textured_nv12, |done| collect_live(&mut producer, done));
        let (indices, broken) = check_pictures(&got, textured_i420);
        let missing: Vec<u64> = (0..150).filter(|i| !indices.contains(i)).collect();
        println!(
            "rtx {rtx}: {} of 150 frames decoded whole, {broken} broken (missing {missing:?}), proxy lost {} of {} datagrams",
            indices.len(),
            proxy.dropped.load(Ordering::Relaxed),
            proxy.dropped.load(Ordering::Relaxed) + proxy.forwarded.load(Ordering::Relaxed)
        );
        assert!(proxy.dropped.load(Ordering::Relaxed) > 8, "the proxy lost datagrams");
        if rtx {
            assert_eq!(broken, 0, "with retransmission no picture is broken");
        }
        shown.push(indices.len());
    }
    assert!(shown[0] >= 149, "with retransmission {} of 150 frames decoded (want ≥ 99 %)", shown[0]);
    assert!(shown[1] < shown[0], "without it fewer ({} against {})", shown[1], shown[0]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn rfc4175_raw_rtp_frames_arrive_exact_through_our_sdp() {
    let dir = std::env::temp_dir().join(format!("streamlib-rtp-raw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let sdp = dir.join("raw.sdp");
    let (port, feedback) = (free_udp_port(), free_udp_port());
    let sink = rtp_output(port, feedback, json!({ "encoding": "raw" }), &sdp);
    let text = std::fs::read_to_string(&sdp).expect("the output wrote its SDP");
    assert!(text.contains("a=rtpmap:96 raw/90000") && text.contains("sampling=YCbCr-4:2:0; width=640; height=360"));
    let input: streamlib::media::RtpInputConfig =
        serde_json::from_value(json!({ "sdp": sdp, "feedback": format!("127.0.0.1:{feedback}") })).expect("config");
    let mut producer = streamlib::media::rtp_producer(&input).expect("rtp input");
    let got = send_rtp(sink, 60, i420_frame, |done| collect_live(&mut producer, done));
    let (indices, broken) = check_pictures(&got, i420_frame);
    assert_eq!(broken, 0);
    assert!(indices.len() >= 57, "{} of 60 raw frames arrived: {indices:?}", indices.len());
    for f in &got {
        let i = index_of(f, None).expect("square");
        let exact = psnr(f, &i420_frame(i % 60)).is_infinite() || psnr(f, &i420_frame(i % 60)) > 60.0;
        assert!(exact, "raw video is uncompressed: frame {i} arrives as sent");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
