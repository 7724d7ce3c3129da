//! `streamlib bench network`: the frame protocol against GStreamer on loopback, side by side on
//! the same frames: H.264 640x360@30 over UDP (GStreamer: RTP), raw 1280x720@30 I420 over TCP
//! (GStreamer: GDP over tcpserversink), the raw 1080p rates TCP holds, H.264 under 2 %
//! datagram loss (the same lossy proxy in front of both), and H.264 over SRT in MPEG-TS (our
//! `srt` output and input against the same GStreamer elements alone). Latency is from handing a frame to the
//! sender to the receiver having its pixels (encode, network, decode), read back from an index
//! drawn into each frame, so nothing is taken on trust from either side's timestamps.

use anyhow::{bail, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamlib::frame::FrameData;
use streamlib::net::proxy::LossyProxy;
use streamlib::net::{NetworkInputConfig, NetworkOutputConfig, NetworkProducer, NetworkSink};
use streamlib::sources::FrameProducer;
use streamlib::{Fps, FrameTime, OutputFrame, PixelFormat, Sink};

/// Bits of the frame index drawn into the picture, and the block size that survives H.264.
const INDEX_BITS: usize = 20;
const CHECK_BITS: usize = 4;
const BLOCK: usize = 16;

/// An I420 frame: a gradient, a moving box, and the index as black and white blocks on top.
fn frame(index: u64, w: u32, h: u32) -> OutputFrame {
    let (wu, hu) = (w as usize, h as usize);
    let mut data = vec![128u8; wu * hu * 3 / 2];
    let bx = (index as usize * 6) % (wu - 96);
    for y in 0..hu {
        for x in 0..wu {
            let in_box = (bx..bx + 96).contains(&x) && (hu / 2..hu / 2 + 96).contains(&y);
            data[y * wu + x] = if in_box { 220 } else { (40 + x * 150 / wu + y * 30 / hu) as u8 };
        }
    }
    let code = index & ((1 << INDEX_BITS) - 1) | (index % 13) << INDEX_BITS;
    for bit in 0..INDEX_BITS + CHECK_BITS {
        let value = if code >> bit & 1 == 1 { 235 } else { 16 };
        for y in 0..BLOCK {
            let row = y * wu + bit * BLOCK;
            data[row..row + BLOCK].fill(value);
        }
    }
    OutputFrame {
        time: FrameTime::at(Fps::new(30, 1), index),
        width: w,
        height: h,
        format: PixelFormat::I420,
        color_space: Some(streamlib::YuvColorSpace::default_for_height(h)),
        data,
        meta: Default::default(),
    }
}

/// The index drawn into a received Y plane; `None` when the blocks do not check out.
fn read_index(y: &[u8], stride: usize) -> Option<u64> {
    let mut code = 0u64;
    for bit in 0..INDEX_BITS + CHECK_BITS {
        let v = *y.get(BLOCK / 2 * stride + bit * BLOCK + BLOCK / 2)?;
        code |= u64::from(v > 128) << bit;
    }
    let index = code & ((1 << INDEX_BITS) - 1);
    (code >> INDEX_BITS == index % 13).then_some(index)
}

/// What the receiving side saw: (frame index, when its pixels were there).
type Arrivals = Arc<Mutex<Vec<(u64, Instant)>>>;

/// One measured case.
#[derive(Clone, Debug, serde::Serialize)]
struct Outcome {
    case: String,
    peer: &'static str,
    sent: usize,
    shown: usize,
    p50_ms: f64,
    p95_ms: f64,
    longest_freeze_ms: f64,
}

/// Sends `count` frames at `fps` through `send`, with `receive` collecting arrivals on its own
/// thread until told to stop; then sums up.
fn measure(
    case: &str,
    peer: &'static str,
    (w, h, fps, count): (u32, u32, u64, u64),
    mut send: impl FnMut(&OutputFrame) -> Result<()>,
    receive: impl FnOnce(Arrivals, Arc<AtomicBool>) + Send + 'static,
) -> Result<Outcome> {
    let arrivals: Arrivals = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let receiver = {
        let (a, s) = (arrivals.clone(), stop.clone());
        std::thread::spawn(move || receive(a, s))
    };
    // The receiver connects and the codecs start before the clock does.
    let base = frame(0, w, h);
    let warmup = 15;
    let mut sent_at = vec![None; (warmup + count) as usize];
    let interval = Duration::from_nanos(1_000_000_000 / fps);
    let start = Instant::now() + Duration::from_millis(500);
    for i in 0..warmup + count {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let mut f = frame_like(&base, i);
        f.time = FrameTime::at(Fps::new(fps as u32, 1), i);
        sent_at[i as usize] = Some(Instant::now());
        send(&f)?;
    }
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    receiver.join().map_err(|_| anyhow::anyhow!("the receiver panicked"))?;
    let arrivals = arrivals.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    let mut latencies = Vec::new();
    let mut shown = Vec::new();
    for &(index, at) in arrivals.iter().filter(|(i, _)| *i >= warmup) {
        if let Some(Some(sent)) = sent_at.get(index as usize) {
            latencies.push(at.duration_since(*sent).as_secs_f64() * 1000.0);
            shown.push(at);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct =
        |q: f64| latencies.get(((latencies.len().max(1) - 1) as f64 * q).round() as usize).copied().unwrap_or(f64::NAN);
    let longest = shown.windows(2).map(|p| p[1].duration_since(p[0]).as_secs_f64() * 1000.0).fold(0.0, f64::max);
    Ok(Outcome {
        case: case.to_string(),
        peer,
        sent: count as usize,
        shown: latencies.len(),
        p50_ms: pct(0.5),
        p95_ms: pct(0.95),
        longest_freeze_ms: longest,
    })
}

/// `base` with index `i` drawn in (cheaper than drawing the whole frame again).
fn frame_like(base: &OutputFrame, i: u64) -> OutputFrame {
    let mut f = base.clone();
    let stamp = frame_index_rows(i, base.width);
    f.data[..stamp.len()].copy_from_slice(&stamp);
    f
}

fn frame_index_rows(i: u64, w: u32) -> Vec<u8> {
    let full = frame(i, w, BLOCK as u32 * 2);
    full.data[..w as usize * BLOCK].to_vec()
}

/// Pulls frames from `producer` until told to stop, noting when each index arrived.
fn collect(mut producer: impl FrameProducer, arrivals: &Arrivals, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(Some(f)) = producer.next_frame() else { continue };
        let FrameData::Cpu(planes) = &f.data else { continue };
        if let Some(i) = planes.first().and_then(|p| read_index(&p.data, p.stride)) {
            if let Ok(mut a) = arrivals.lock() {
                a.push((i, Instant::now()));
            }
        }
    }
}

fn ours_receiver(url: String) -> impl FnOnce(Arrivals, Arc<AtomicBool>) + Send + 'static {
    move |arrivals, stop| {
        let config: NetworkInputConfig = match serde_json::from_value(serde_json::json!({ "url": url })) {
            Ok(c) => c,
            Err(_) => return,
        };
        if let Ok(producer) = NetworkProducer::open(&config, "bench") {
            collect(producer, &arrivals, &stop);
        }
    }
}

fn ours_sender(fields: serde_json::Value) -> Result<NetworkSink> {
    let config: NetworkOutputConfig = serde_json::from_value(fields)?;
    Ok(NetworkSink::start(config, "bench")?)
}

fn launch(description: &str) -> Result<gst::Pipeline> {
    let p = gst::parse::launch(description)
        .with_context(|| format!("cannot build `{description}`"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    p.set_state(gst::State::Playing).with_context(|| format!("cannot start `{description}`"))?;
    Ok(p)
}

fn gst_receiver(description: String) -> impl FnOnce(Arrivals, Arc<AtomicBool>) + Send + 'static {
    move |arrivals, stop| {
        let Ok(pipeline) = launch(&description) else { return };
        let Some(sink) = pipeline.by_name("sink").and_then(|e| e.downcast::<gst_app::AppSink>().ok()) else { return };
        while !stop.load(Ordering::Relaxed) {
            let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(50)) else { continue };
            let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else { continue };
            let Some(width) = caps.structure(0).and_then(|s| s.get::<i32>("width").ok()) else { continue };
            let Ok(map) = buffer.map_readable() else { continue };
            // I420 at these widths: Y rows are `width` bytes apart (GStreamer aligns to 4).
            let stride = (width as usize).div_ceil(4) * 4;
            if let Some(i) = read_index(map.as_slice(), stride) {
                if let Ok(mut a) = arrivals.lock() {
                    a.push((i, Instant::now()));
                }
            }
        }
        let _ = pipeline.set_state(gst::State::Null);
    }
}

/// A GStreamer sender: `appsrc name=src` with I420 caps, then `rest`.
struct GstSender {
    pipeline: gst::Pipeline,
    appsrc: gst_app::AppSrc,
}

impl GstSender {
    fn start(w: u32, h: u32, fps: u64, rest: &str) -> Result<GstSender> {
        let description = format!(
            "appsrc name=src is-live=true format=time do-timestamp=true \
             caps=video/x-raw,format=I420,width={w},height={h},framerate={fps}/1,colorimetry=bt709 ! {rest}"
        );
        let pipeline = launch(&description)?;
        let appsrc = pipeline.by_name("src").and_then(|e| e.downcast::<gst_app::AppSrc>().ok()).context("no appsrc")?;
        Ok(GstSender { pipeline, appsrc })
    }

    fn send(&self, f: &OutputFrame) -> Result<()> {
        self.appsrc.push_buffer(gst::Buffer::from_slice(f.data.clone())).map_err(|e| anyhow::anyhow!("push: {e:?}"))?;
        Ok(())
    }
}

impl Drop for GstSender {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// x264 as both sides use it.
const X264: &str = "x264enc tune=zerolatency speed-preset=ultrafast bitrate=4000 key-int-max=60 threads=2 sliced-threads=true rc-lookahead=0 sync-lookahead=0";
const RTP_CAPS: &str = "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload=96";
const GST_DECODE: &str =
    "rtph264depay ! avdec_h264 thread-type=slice max-threads=2 ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink sync=false";

fn h264_udp(count: u64, loss: Option<u64>) -> Result<[Outcome; 2]> {
    let (w, h) = (640, 360);
    let case = match loss {
        None => "H.264 640x360@30, UDP".to_string(),
        Some(p) => format!("H.264 640x360@30, UDP, {p} % loss"),
    };
    let port = free_port()?;
    let proxy =
        loss.map(|p| LossyProxy::start(([127, 0, 0, 1], port).into(), LossyProxy::random_loss(p), 0)).transpose()?;
    let to = proxy.as_ref().map_or(format!("127.0.0.1:{port}"), |p| p.addr.to_string());
    let mut sink = ours_sender(serde_json::json!({ "url": format!("udp://{to}"), "codec": "h264",
        "bitrate": 4000, "keyframe_interval": 60 }))?;
    let ours = measure(
        &case,
        "streamlib",
        (w, h, 30, count),
        |f| Ok(sink.write(f)?),
        ours_receiver(format!("udp://127.0.0.1:{port}")),
    )?;
    sink.finish()?;
    drop(proxy);
    Ok([ours, gst_rtp(&case, count, loss)?])
}

/// GStreamer's plain RTP path (rtph264pay → udpsink → udpsrc → rtph264depay), through the same
/// lossy proxy: what gst-launch-1.0 elements alone give (no rtpbin, so no retransmission).
fn gst_rtp(case: &str, count: u64, loss: Option<u64>) -> Result<Outcome> {
    let (w, h) = (640, 360);
    let port = free_port()?;
    let proxy =
        loss.map(|p| LossyProxy::start(([127, 0, 0, 1], port).into(), LossyProxy::random_loss(p), 0)).transpose()?;
    let (host, to_port) =
        proxy.as_ref().map_or(("127.0.0.1".to_string(), port), |p| (p.addr.ip().to_string(), p.addr.port()));
    let receiver = gst_receiver(format!("udpsrc port={port} buffer-size=4194304 caps=\"{RTP_CAPS}\" ! {GST_DECODE}"));
    let sender =
        GstSender::start(w, h, 30, &format!("{X264} ! rtph264pay config-interval=-1 mtu=1400 ! udpsink host={host} port={to_port} sync=false async=false"))?;
    measure(case, "GStreamer RTP", (w, h, 30, count), |f| sender.send(f), receiver)
}

/// Our `rtp` output into our `rtp` input (rtpbin, AVPF, RTX), beside GStreamer's plain RTP.
fn rtp_case(count: u64, loss: Option<u64>) -> Result<[Outcome; 2]> {
    let (w, h) = (640, 360);
    let case = match loss {
        None => "H.264 640x360@30, RTP (rtpbin, RTX)".to_string(),
        Some(p) => format!("H.264 640x360@30, RTP (rtpbin, RTX), {p} % loss"),
    };
    let (port, feedback) = (free_port()?, free_port()?);
    let proxy =
        loss.map(|p| LossyProxy::start(([127, 0, 0, 1], port).into(), LossyProxy::random_loss(p), 0)).transpose()?;
    let to_port = proxy.as_ref().map_or(port, |p| p.addr.port());
    let sdp = std::env::temp_dir().join(format!("streamlib-bench-rtp-{}.sdp", std::process::id()));
    let config: streamlib::media::RtpOutputConfig = serde_json::from_value(serde_json::json!({
        "sdp": sdp, "port": to_port, "feedback_port": feedback, "bitrate": 4000, "keyframe_interval": 60 }))?;
    let target = streamlib::registry::SinkTarget { output: "", path: &sdp, width: w, height: h, fps: Fps::new(30, 1) };
    let mut sink = streamlib::media::RtpSink::start(&config, &target)?;
    let input: streamlib::media::RtpInputConfig = serde_json::from_value(serde_json::json!({
        "port": port, "feedback": format!("127.0.0.1:{feedback}"), "latency_ms": 100 }))?;
    let receive = move |arrivals: Arrivals, stop: Arc<AtomicBool>| {
        if let Ok(producer) = streamlib::media::rtp_producer(&input) {
            collect(producer, &arrivals, &stop);
        }
    };
    let ours = measure(&case, "streamlib", (w, h, 30, count), |f| Ok(sink.write(&to_nv12(f))?), receive)?;
    sink.finish()?;
    drop(proxy);
    let _ = std::fs::remove_file(&sdp);
    Ok([ours, gst_rtp(&case, count, loss)?])
}

fn raw_tcp(w: u32, h: u32, fps: u64, count: u64, with_gst: bool) -> Result<Vec<Outcome>> {
    let case = format!("raw I420 {w}x{h}@{fps}, TCP");
    let port = free_port()?;
    let mut sink = ours_sender(serde_json::json!({ "url": format!("tcp://127.0.0.1:{port}"), "format": "i420" }))?;
    let mut out = vec![measure(
        &case,
        "streamlib",
        (w, h, fps, count),
        |f| Ok(sink.write(f)?),
        ours_receiver(format!("tcp://127.0.0.1:{port}")),
    )?];
    sink.finish()?;
    if with_gst {
        let port = free_port()?;
        let sender =
            GstSender::start(w, h, fps, &format!("gdppay ! tcpserversink host=127.0.0.1 port={port} sync=false"))?;
        std::thread::sleep(Duration::from_millis(300));
        let receiver =
            gst_receiver(format!("tcpclientsrc host=127.0.0.1 port={port} ! gdpdepay ! appsink name=sink sync=false"));
        out.push(measure(&case, "GStreamer GDP", (w, h, fps, count), |f| sender.send(f), receiver)?);
    }
    Ok(out)
}

/// The same frame as NV12 (what the encoded outputs take).
fn to_nv12(f: &OutputFrame) -> OutputFrame {
    let (w, h) = (f.width as usize, f.height as usize);
    let mut data = f.data[..w * h].to_vec();
    let (u, v) = (f.plane(1), f.plane(2));
    for (a, b) in u.iter().zip(v) {
        data.extend_from_slice(&[*a, *b]);
    }
    OutputFrame { format: PixelFormat::Nv12, data, meta: f.meta.clone(), ..*f }
}

/// GStreamer alone over SRT at latency 20, 640x360@30: x264 → `wrap` → srtsink, srtsrc →
/// `unwrap` → decoder.
fn gst_srt_row(case: &str, peer: &'static str, count: u64, wrap: &str, unwrap: &str) -> Result<Outcome> {
    let port = free_port()?;
    let srt = format!("uri=\"srt://127.0.0.1:{port}?mode=listener&latency=20\"");
    let sender = GstSender::start(
        640,
        360,
        30,
        &format!("{X264} ! h264parse config-interval=-1 ! {wrap} ! srtsink {srt} wait-for-connection=false sync=false async=false"),
    )?;
    let receiver = gst_receiver(format!(
        "srtsrc uri=\"srt://127.0.0.1:{port}?mode=caller&latency=20\" ! {unwrap} h264parse ! avdec_h264 thread-type=slice max-threads=2 ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink sync=false"
    ));
    measure(case, peer, (640, 360, 30, count), |f| sender.send(f), receiver)
}

fn srt_case(count: u64) -> Result<[Outcome; 3]> {
    let (w, h) = (640, 360);
    let case = "H.264 640x360@30, SRT latency 20 ms, MPEG-TS".to_string();
    let port = free_port()?;
    let url = format!("srt://127.0.0.1:{port}?mode=listener&latency=20");
    let target = streamlib::registry::SinkTarget {
        output: "",
        path: Path::new(&url),
        width: w,
        height: h,
        fps: Fps::new(30, 1),
    };
    let config: streamlib::media::SrtOutputConfig =
        serde_json::from_value(serde_json::json!({ "url": url, "bitrate": 4000, "keyframe_interval": 60 }))?;
    let mut sink = streamlib::media::SrtSink::start(&config, &target)?;
    let input: streamlib::media::SrtInputConfig =
        serde_json::from_value(serde_json::json!({ "url": format!("srt://127.0.0.1:{port}?mode=caller&latency=20") }))?;
    let receive = move |arrivals: Arrivals, stop: Arc<AtomicBool>| {
        if let Ok(producer) = streamlib::media::srt_producer(&input) {
            collect(producer, &arrivals, &stop);
        }
    };
    let ours = measure(&case, "streamlib", (w, h, 30, count), |f| Ok(sink.write(&to_nv12(f))?), receive)?;
    sink.finish()?;
    let theirs = gst_srt_row(&case, "GStreamer", count, "mpegtsmux alignment=7", "tsdemux latency=0 !")?;
    // The same path without MPEG-TS (H.264 byte-stream straight over SRT, which few peers
    // read) shows what the muxer and tsdemux cost.
    let bare =
        gst_srt_row(&case, "GStreamer, no MPEG-TS", count, "video/x-h264,stream-format=byte-stream,alignment=au", "")?;
    Ok([ours, theirs, bare])
}

/// The groups of cases `bench network --cases` picks from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CaseGroup {
    /// The frame protocol's H.264 over UDP, beside plain RTP.
    H264,
    /// The frame protocol's raw frames over TCP (720p beside GDP, 1080p at 30–240 fps).
    Raw,
    /// The frame protocol's H.264 over UDP under 2 % loss.
    Loss,
    /// SRT with MPEG-TS, beside GStreamer with and without MPEG-TS.
    Srt,
    /// RTP/H.264 outputs and inputs, clean and under 2 % loss.
    Rtp,
}

pub fn network(frames: u64, only: &[CaseGroup], json: Option<&Path>) -> Result<()> {
    let wanted = |g: CaseGroup| only.is_empty() || only.contains(&g);
    gst::init()?;
    for element in ["x264enc", "avdec_h264", "rtph264pay", "gdppay", "tcpserversink"] {
        if gst::ElementFactory::find(element).is_none() {
            bail!("GStreamer element {element} is missing (bash scripts/setup.sh)");
        }
    }
    let adapter =
        streamlib::GpuContext::new().map(|g| g.adapter_summary().to_string()).unwrap_or_else(|e| e.to_string());
    println!("network: loopback, {frames} frames per case after 15 warm-up frames; latency = frame handed to the sender → its pixels at the receiver");
    println!(
        "machine: {} CPUs; adapter (not used by these cases): {adapter}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let mut rows = Vec::new();
    // A first, unmeasured round: libraries load and caches fill for both peers.
    h264_udp(30, None)?;
    if wanted(CaseGroup::H264) {
        rows.extend(h264_udp(frames, None)?);
    }
    if wanted(CaseGroup::Raw) {
        rows.extend(raw_tcp(1280, 720, 30, frames, true)?);
        for fps in [30, 60, 120, 240] {
            rows.extend(raw_tcp(1920, 1080, fps, frames, false)?);
        }
    }
    if wanted(CaseGroup::Loss) {
        rows.extend(h264_udp(frames, Some(2))?);
    }
    if wanted(CaseGroup::Srt) {
        rows.extend(srt_case(frames)?);
    }
    if wanted(CaseGroup::Rtp) {
        rows.extend(rtp_case(frames, None)?);
        rows.extend(rtp_case(frames, Some(2))?);
    }
    println!();
    println!("| case | peer | shown | p50 ms | p95 ms | longest freeze ms | p50 ratio GStreamer / streamlib |");
    println!("|---|---|---|---|---|---|---|");
    for (i, r) in rows.iter().enumerate() {
        // Each peer row against streamlib's row of the same case above it.
        let ours = rows[..i].iter().rev().find(|o| o.case == r.case && o.peer == "streamlib");
        let ratio = match ours {
            Some(ours) if r.peer != "streamlib" => format!("{:.2}", r.p50_ms / ours.p50_ms),
            _ => String::new(),
        };
        println!(
            "| {} | {} | {}/{} ({:.1} %) | {:.2} | {:.2} | {:.0} | {ratio} |",
            r.case,
            r.peer,
            r.shown,
            r.sent,
            100.0 * r.shown as f64 / r.sent.max(1) as f64,
            r.p50_ms,
            r.p95_ms,
            r.longest_freeze_ms
        );
    }
    if let Some(path) = json {
        let doc = serde_json::json!({ "frames": frames, "adapter": adapter, "cases": rows });
        std::fs::write(path, serde_json::to_string_pretty(&doc)?)?;
    }
    Ok(())
}
