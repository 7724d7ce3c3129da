//! Memory stays flat while rendering (regression for issue 20's leak: llvmpipe leaked ~800 KiB
//! per test-pattern draw, so an idle server grew by 800 KiB a frame and every created input kept
//! 0.8 MB). One test in its own binary: resident memory is per process, and tests running beside
//! it in other threads would move it.

mod common;

use common::{engine, scene};
use serde_json::json;
use streamlib::Registry;

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("resident pages");
    pages * 4096
}

const MIB: u64 = 1 << 20;

#[test]
fn rendering_and_replacing_inputs_do_not_grow_memory() {
    // Every animated pattern, a static one, and no readback: nothing but the frame itself polls
    // the device (as in an idle server or a preview).
    let mut inputs = serde_json::Map::new();
    for (id, pattern) in [("box", "moving_box"), ("card", "test_card"), ("bars", "smpte_bars")] {
        inputs.insert(id.into(), json!({ "kind": "test_pattern", "pattern": pattern }));
    }
    let layers: Vec<_> =
        inputs.keys().enumerate().map(|(z, id)| json!({ "id": id, "kind": "video", "input": id, "z": z })).collect();
    let doc = json!({ "width": 320, "height": 180, "fps": 30, "inputs": inputs, "layers": layers });
    let mut e = engine(scene(doc.clone()));
    let none: &[streamlib::PixelFormat] = &[];
    for i in 0..60 {
        e.render(i, none).expect("render");
    }
    let before = resident_bytes();
    for i in 60..360 {
        e.render(i, none).expect("render");
    }
    let grown = resident_bytes().saturating_sub(before);
    // With the leak: ~240 MB over these 300 frames. The bound leaves room for allocator noise.
    assert!(grown < 24 * MIB, "rendering 300 frames grew resident memory by {} MiB", grown / MIB);

    // Adding and removing an input, 100 times, each drawn at least once (the leak: ~80 MB).
    let registry = Registry::default();
    let before = resident_bytes();
    for round in 0..100u64 {
        let mut with = doc.clone();
        with["inputs"]["extra"] = json!({ "kind": "test_pattern", "pattern": "solid", "color": "#336699" });
        e.apply_scene(scene(with), &registry).expect("add input");
        e.render(360 + round * 2, none).expect("render");
        e.apply_scene(scene(doc.clone()), &registry).expect("remove input");
        e.render(361 + round * 2, none).expect("render");
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 24 * MIB, "100 added and removed inputs grew resident memory by {} MiB", grown / MIB);
}
