//! YUV on the GPU: uploaded NV12/I420 converted to RGB, and the composited frame converted to
//! NV12/I420 for readback, both against the textbook matrices; y4m files in and out.

mod common;

use common::{gpu, scene};
use serde_json::json;
use std::sync::Mutex;
use streamlib::registry::{BuildContext, BuildError, InputKind};
use streamlib::sources::{FrameProducer, Source, SourceError, ThreadedSource};
use streamlib::{Engine, FrameTime, Pacing, PixelFormat, Registry, TimestampedFrame, YuvColorSpace};

/// Textbook 8-bit RGB→YCbCr (ITU-R BT.601 / BT.709), written out independently of the engine.
fn rgb_to_ycbcr(rgb: [f64; 3], kr: f64, kb: f64, limited: bool) -> [f64; 3] {
    let [r, g, b] = rgb.map(|v| v / 255.0);
    let y = kr * r + (1.0 - kr - kb) * g + kb * b;
    let cb = (b - y) / (2.0 * (1.0 - kb));
    let cr = (r - y) / (2.0 * (1.0 - kr));
    if limited {
        [16.0 + 219.0 * y, 128.0 + 224.0 * cb, 128.0 + 224.0 * cr]
    } else {
        [255.0 * y, 128.0 + 255.0 * cb, 128.0 + 255.0 * cr]
    }
}

const COLOURS: [[u8; 3]; 6] = [[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [20, 40, 250], [180, 120, 60]];

fn solid_scene(width: u32, height: u32, rgb: [u8; 3]) -> streamlib::Scene {
    let color = format!("#{:02X}{:02X}{:02X}", rgb[0], rgb[1], rgb[2]);
    scene(json!({
        "width": width, "height": height,
        "inputs": { "c": { "kind": "test_pattern", "pattern": "solid", "color": color } },
        "layers": [ { "id": "c", "kind": "video", "input": "c" } ]
    }))
}

#[test]
fn one_frame_read_back_in_two_colour_spaces() {
    let mut engine = common::engine(solid_scene(16, 8, [255, 255, 255]));
    let full =
        streamlib::Readback { format: PixelFormat::I420, size: None, color_space: Some(YuvColorSpace::BT601_FULL) };
    let (mut done, _) = engine.render(0, &[full, PixelFormat::I420.into()]).expect("render");
    done.extend(engine.flush().expect("flush"));
    let y_of = |cs| done.iter().find(|f| f.color_space == Some(cs)).map(|f| f.plane(0)[0]);
    assert_eq!(y_of(YuvColorSpace::BT601_FULL), Some(255), "white in full range");
    assert_eq!(y_of(engine.output_color_space()), Some(235), "white in the engine's (limited) default");
}

#[test]
fn rgb_to_nv12_and_i420_match_the_reference_matrices() {
    let spaces = [
        (YuvColorSpace::BT601_LIMITED, 0.299, 0.114, true),
        (YuvColorSpace::BT709_LIMITED, 0.2126, 0.0722, true),
        (YuvColorSpace::BT709_FULL, 0.2126, 0.0722, false),
        (YuvColorSpace::BT601_FULL, 0.299, 0.114, false),
    ];
    for (cs, kr, kb, limited) in spaces {
        for rgb in COLOURS {
            let want = rgb_to_ycbcr(rgb.map(f64::from), kr, kb, limited);
            let mut engine = common::engine(solid_scene(17, 9, rgb));
            engine.set_output_color_space(cs);
            let i420 = engine.render_and_read(0, PixelFormat::I420).expect("i420");
            let nv12 = engine.render_and_read(1, PixelFormat::Nv12).expect("nv12");
            let got_i420 = [i420.plane(0)[17 * 9 - 1], i420.plane(1)[0], i420.plane(2)[44]];
            let got_nv12 = [nv12.plane(0)[100], nv12.plane(1)[0], nv12.plane(1)[1]];
            for (got, what) in [(got_i420, "I420"), (got_nv12, "NV12")] {
                for c in 0..3 {
                    assert!(
                        (f64::from(got[c]) - want[c]).abs() <= 1.0,
                        "{cs:?} {what} rgb {rgb:?}: got {got:?}, want {want:.1?}"
                    );
                }
            }
            assert_eq!((i420.color_space, nv12.color_space), (Some(cs), Some(cs)), "frames say their colour space");
            // Odd size: 9 chroma columns by 5 rows, every sample present.
            assert_eq!(i420.plane(1).len(), 9 * 5);
            assert_eq!(nv12.plane(1).len(), 9 * 5 * 2);
        }
    }
}

#[test]
fn yuv_planes_match_the_rgba_frame_sample_by_sample() {
    // Patterns that change every pixel (a one-pixel checkerboard over SMPTE bars) at sizes that
    // are not multiples of the four samples a texel packs: every luma sample against its pixel,
    // every chroma sample against the mean of its 2x2 block (edges repeat), ±1.
    let (kr, kb) = (0.2126, 0.0722);
    for (width, height) in [(37u32, 11u32), (22, 6), (16, 8)] {
        let s = scene(json!({
            "width": width, "height": height,
            "inputs": {
                "bars": { "kind": "test_pattern", "pattern": "smpte_bars" },
                "dots": { "kind": "test_pattern", "pattern": "checkerboard", "cell": 1, "color": "#FF8000" }
            },
            "layers": [
                { "id": "bars", "kind": "video", "input": "bars" },
                { "id": "dots", "kind": "video", "input": "dots", "z": 1, "opacity": 0.5 }
            ]
        }));
        let mut engine = common::engine(s);
        engine.set_output_color_space(YuvColorSpace::BT709_LIMITED);
        let rgba = engine.render_and_read(0, PixelFormat::Rgba8).expect("rgba");
        let nv12 = engine.render_and_read(0, PixelFormat::Nv12).expect("nv12");
        let i420 = engine.render_and_read(0, PixelFormat::I420).expect("i420");
        let (w, h) = (width as usize, height as usize);
        let rgb = |x: usize, y: usize| {
            let p = rgba.rgba_at(x.min(w - 1) as u32, y.min(h - 1) as u32);
            [p[0], p[1], p[2]].map(f64::from)
        };
        let close = |got: u8, want: f64, what: &str| {
            assert!((f64::from(got) - want).abs() <= 1.0, "{width}x{height} {what}: got {got}, want {want:.1}");
        };
        for y in 0..h {
            for x in 0..w {
                let want = rgb_to_ycbcr(rgb(x, y), kr, kb, true)[0];
                close(nv12.plane(0)[y * w + x], want, &format!("NV12 Y({x},{y})"));
                close(i420.plane(0)[y * w + x], want, &format!("I420 Y({x},{y})"));
            }
        }
        let cw = w.div_ceil(2);
        for cy in 0..h.div_ceil(2) {
            for cx in 0..cw {
                let block = [(0, 0), (1, 0), (0, 1), (1, 1)].map(|(dx, dy)| rgb(2 * cx + dx, 2 * cy + dy));
                let mean = [0, 1, 2].map(|c| block.iter().map(|p| p[c]).sum::<f64>() / 4.0);
                let [_, u, v] = rgb_to_ycbcr(mean, kr, kb, true);
                let at = format!("({cx},{cy})");
                close(nv12.plane(1)[(cy * cw + cx) * 2], u, &format!("NV12 U{at}"));
                close(nv12.plane(1)[(cy * cw + cx) * 2 + 1], v, &format!("NV12 V{at}"));
                close(i420.plane(1)[cy * cw + cx], u, &format!("I420 U{at}"));
                close(i420.plane(2)[cy * cw + cx], v, &format!("I420 V{at}"));
            }
        }
    }
}

/// An input kind registered from the test: one fixed CPU frame through the threaded source path.
struct FixedFrame {
    frame: Mutex<Option<TimestampedFrame>>,
    color_space: YuvColorSpace,
}

struct Once(Option<TimestampedFrame>);

impl FrameProducer for Once {
    fn next_frame(&mut self) -> Result<Option<TimestampedFrame>, SourceError> {
        Ok(self.0.take())
    }
}

impl InputKind for FixedFrame {
    type Config = streamlib::registry::NoParams;
    fn build(&self, id: &str, _: Self::Config, _: &BuildContext<'_>) -> Result<Box<dyn Source>, BuildError> {
        let frame = self.frame.lock().ok().and_then(|mut f| f.take());
        let source = ThreadedSource::spawn(id, Once(frame), self.color_space, 0).map_err(|e| BuildError::new(id, e))?;
        Ok(Box::new(source))
    }
}

fn render_frame(frame: TimestampedFrame, color_space: YuvColorSpace) -> streamlib::OutputFrame {
    let (w, h) = (frame.width, frame.height);
    let mut registry = Registry::default();
    registry.register_input("fixed", FixedFrame { frame: Mutex::new(Some(frame)), color_space });
    let s = streamlib::Scene::from_value(
        json!({
            "width": w, "height": h,
            "inputs": { "f": { "kind": "fixed" } },
            "layers": [ { "id": "f", "kind": "video", "input": "f" } ]
        }),
        &registry,
    )
    .expect("scene with a custom kind");
    let g = gpu();
    let mut engine =
        Engine::with_pipelines(&g.ctx, g.pipelines.clone(), s, &registry, Pacing::Offline).expect("engine");
    engine.render_and_read(0, PixelFormat::Rgba8).expect("render")
}

fn flat_yuv(format: PixelFormat, w: u32, h: u32, yuv: [u8; 3]) -> TimestampedFrame {
    let planes = format.planes(w, h);
    let mut bytes = vec![yuv[0]; planes[0].tight_len()];
    match format {
        PixelFormat::Nv12 => bytes.extend(std::iter::repeat_n([yuv[1], yuv[2]], planes[1].tight_len() / 2).flatten()),
        _ => {
            bytes.extend(std::iter::repeat_n(yuv[1], planes[1].tight_len()));
            bytes.extend(std::iter::repeat_n(yuv[2], planes[2].tight_len()));
        }
    }
    TimestampedFrame::from_packed(format, w, h, &bytes, FrameTime::default()).expect("frame")
}

#[test]
fn nv12_and_i420_uploads_convert_with_the_textbook_inverse() {
    // (Y, Cb, Cr) and the BT.601 limited-range decode: R = 1.164(Y-16) + 1.596(Cr-128), ...
    for yuv in [[16u8, 128, 128], [235, 128, 128], [81, 90, 240], [145, 54, 34], [41, 240, 110], [120, 100, 160]] {
        let [y, cb, cr] = yuv.map(f64::from);
        let want = [
            1.164 * (y - 16.0) + 1.596 * (cr - 128.0),
            1.164 * (y - 16.0) - 0.392 * (cb - 128.0) - 0.813 * (cr - 128.0),
            1.164 * (y - 16.0) + 2.017 * (cb - 128.0),
        ]
        .map(|v| v.clamp(0.0, 255.0));
        for format in [PixelFormat::Nv12, PixelFormat::I420] {
            // Odd size, to cover the rounded-up chroma planes.
            let out = render_frame(flat_yuv(format, 13, 7, yuv), YuvColorSpace::BT601_LIMITED);
            for (x, yy) in [(0, 0), (12, 6), (6, 3)] {
                let px = out.rgba_at(x, yy);
                for c in 0..3 {
                    // 1.5 steps: the textbook coefficients are rounded to three decimals.
                    assert!(
                        (f64::from(px[c]) - want[c]).abs() <= 1.5,
                        "{format:?} yuv {yuv:?} at ({x},{yy}): got {px:?}, want {want:.1?}"
                    );
                }
                assert_eq!(px[3], 255);
            }
        }
    }
}

#[test]
fn straight_rgba_uploads_are_premultiplied_once() {
    let bytes: Vec<u8> = [200u8, 100, 50, 128].repeat(6);
    let frame = TimestampedFrame::from_packed(PixelFormat::Rgba8, 3, 2, &bytes, FrameTime::default()).expect("frame");
    let out = render_frame(frame, YuvColorSpace::default());
    // Over the black background: premultiplied colour, alpha becomes opaque through the background.
    let px = out.rgba_at(1, 1);
    assert!(px[0].abs_diff(100) <= 1 && px[1].abs_diff(50) <= 1 && px[2].abs_diff(25) <= 1, "{px:?}");
    let bgra: Vec<u8> = [50u8, 100, 200, 255].repeat(6);
    let frame = TimestampedFrame::from_packed(PixelFormat::Bgra8, 3, 2, &bgra, FrameTime::default()).expect("frame");
    assert_eq!(render_frame(frame, YuvColorSpace::default()).rgba_at(2, 0), [200, 100, 50, 255]);
}

#[test]
fn y4m_round_trip_through_files() {
    let dir = std::env::temp_dir().join(format!("streamlib-yuv-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let path = dir.join("bars.y4m");
    // Write 5 frames of bars with the y4m sink.
    let bars = scene(json!({
        "width": 33, "height": 17, "fps": 25,
        "inputs": { "b": { "kind": "test_pattern", "pattern": "smpte_bars" } },
        "layers": [ { "id": "b", "kind": "video", "input": "b" } ]
    }));
    let mut sinks = Registry::default().open_output(&path, &bars).expect("y4m sink");
    let sink = sinks.pop().expect("one sink").sink;
    let handle = streamlib::SinkHandle::spawn("y4m", sink, streamlib::Backpressure::Block, 2).expect("spawn");
    let mut engine = common::engine(bars.clone());
    let options = streamlib::RunOptions { frames: Some(5), stop: None, ..Default::default() };
    streamlib::run(&mut engine, vec![handle], Pacing::Offline, &options, |_| {}).expect("run");
    let direct = common::engine(bars).render_and_read(0, PixelFormat::Rgba8).expect("direct");

    // Read it back as an input: runs until the input ends, the file's 5 frames.
    let reread = scene(json!({
        "width": 33, "height": 17, "fps": 25,
        "inputs": { "f": { "kind": "y4m", "path": path, "color_space": { "matrix": "bt601", "range": "limited" } } },
        "layers": [ { "id": "f", "kind": "video", "input": "f" } ]
    }));
    let mut engine = common::engine(reread);
    let sink = streamlib::sinks::MemorySink::new(PixelFormat::Rgba8, 8);
    let handle =
        streamlib::SinkHandle::spawn("mem", Box::new(sink.clone()), streamlib::Backpressure::Block, 2).expect("spawn");
    let stats = streamlib::run(&mut engine, vec![handle], Pacing::Offline, &streamlib::RunOptions::default(), |_| {})
        .expect("run");
    assert_eq!(stats.frames, 5, "the input ends after the file's 5 frames");
    let frames = sink.frames();
    // Colour survives 4:2:0 within a few steps away from bar edges (chroma is shared by 2x2 blocks).
    for (x, y) in [(2, 2), (16, 5), (30, 8)] {
        let (a, b) = (frames[0].rgba_at(x, y), direct.rgba_at(x, y));
        for c in 0..3 {
            assert!(a[c].abs_diff(b[c]) <= 3, "({x},{y}): {a:?} vs {b:?}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn truncated_and_garbage_y4m_files() {
    let dir = std::env::temp_dir().join(format!("streamlib-y4m-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    // Two whole 4x2 frames and half of a third.
    let frame_len = 4 * 2 + 2 * 2;
    let mut bytes = b"YUV4MPEG2 W4 H2 F25:1 Ip A1:1 C420jpeg\n".to_vec();
    for i in 0..2u8 {
        bytes.extend_from_slice(b"FRAME\n");
        bytes.extend(std::iter::repeat_n(100 + i * 50, frame_len));
    }
    bytes.extend_from_slice(b"FRAME\n");
    bytes.extend(std::iter::repeat_n(7, frame_len / 2));
    let truncated = dir.join("truncated.y4m");
    std::fs::write(&truncated, &bytes).expect("write");
    let s = scene(json!({
        "width": 4, "height": 2, "fps": 25,
        "inputs": { "f": { "kind": "y4m", "path": truncated } },
        "layers": [ { "id": "f", "kind": "video", "input": "f" } ]
    }));
    let mut engine = common::engine(s);
    let stats = streamlib::run(&mut engine, vec![], Pacing::Offline, &streamlib::RunOptions::default(), |_| {})
        .expect("a truncated file ends cleanly");
    assert_eq!(stats.frames, 2, "the two whole frames, then a clean end");

    let garbage = dir.join("garbage.y4m");
    std::fs::write(&garbage, b"\x00\x01 definitely not a y4m file").expect("write");
    let s = scene(json!({
        "width": 4, "height": 2,
        "inputs": { "f": { "kind": "y4m", "path": garbage } },
        "layers": [ { "id": "f", "kind": "video", "input": "f" } ]
    }));
    let g = gpu();
    let err = Engine::with_pipelines(&g.ctx, g.pipelines.clone(), s, &Registry::default(), Pacing::Offline)
        .expect_err("garbage must not open");
    assert!(err.to_string().contains("not a valid YUV4MPEG2 file"), "{err}");
    let missing = dir.join("missing.y4m");
    let s = scene(json!({
        "width": 4, "height": 2,
        "inputs": { "f": { "kind": "y4m", "path": missing } },
        "layers": [ { "id": "f", "kind": "video", "input": "f" } ]
    }));
    let err = Engine::with_pipelines(&g.ctx, g.pipelines.clone(), s, &Registry::default(), Pacing::Offline)
        .expect_err("missing file");
    assert!(err.to_string().contains("missing.y4m"), "{err}");

    // A header that claims a bigger picture than the data holds: said, not rendered black.
    let liar = dir.join("liar.y4m");
    let mut bytes = b"YUV4MPEG2 W640 H480 F25:1 C420jpeg\n".to_vec();
    bytes.extend_from_slice(b"FRAME\n");
    bytes.extend(std::iter::repeat_n(128u8, frame_len));
    std::fs::write(&liar, &bytes).expect("write");
    let s = scene(json!({
        "width": 4, "height": 2,
        "inputs": { "f": { "kind": "y4m", "path": liar } },
        "layers": [ { "id": "f", "kind": "video", "input": "f" } ]
    }));
    let mut engine = common::engine(s);
    let said = common::first_input_error(&mut engine, 50).expect("an input error for the lying header");
    assert!(said.contains("640x480") && said.contains("no whole frame"), "{said}");
    std::fs::remove_dir_all(&dir).ok();
}
