//! Reference images for every test pattern and the empty-scene placeholder.

mod common;

use common::{assert_snapshot, render, scene};
use serde_json::json;
use streamlib::sources::Pattern;
use streamlib::PixelFormat;

fn pattern_scene(pattern: &str, color: &str) -> streamlib::Scene {
    scene(json!({
        "width": 320, "height": 180, "fps": 25,
        "inputs": { "p": { "kind": "test_pattern", "pattern": pattern, "color": color, "cell": 20 } },
        "layers": [ { "id": "p", "kind": "video", "input": "p" } ]
    }))
}

#[test]
fn every_pattern_matches_its_reference() {
    for pattern in Pattern::ALL {
        // Frame 37 at 25 fps: timecode 00:00:01:12, and the moving box away from its start.
        let frame = render(pattern_scene(pattern.name(), "#E0A040"), 37, PixelFormat::Rgba8);
        assert_snapshot(&format!("pattern_{}", pattern.name()), &frame);
    }
}

#[test]
fn animated_patterns_change_between_frames() {
    for name in ["moving_box", "test_card"] {
        let a = render(pattern_scene(name, "#FFFFFF"), 10, PixelFormat::Rgba8);
        let b = render(pattern_scene(name, "#FFFFFF"), 11, PixelFormat::Rgba8);
        assert_ne!(a.data, b.data, "{name} should animate");
    }
    let a = render(pattern_scene("smpte_bars", "#FFFFFF"), 10, PixelFormat::Rgba8);
    let b = render(pattern_scene("smpte_bars", "#FFFFFF"), 11, PixelFormat::Rgba8);
    assert_eq!(a.data, b.data, "static patterns are stable");
}

#[test]
fn empty_scene_shows_the_animated_placeholder() {
    let empty = || scene(json!({ "width": 320, "height": 180 }));
    let frame = render(empty(), 15, PixelFormat::Rgba8);
    assert_snapshot("placeholder", &frame);
    assert_ne!(frame.data, render(empty(), 45, PixelFormat::Rgba8).data, "the placeholder animates");
}

#[test]
fn smpte_bars_have_the_75_percent_colours() {
    let frame = render(pattern_scene("smpte_bars", "#FFFFFF"), 0, PixelFormat::Rgba8);
    // Centre of each top bar; 0.75 * 255 = 191.25.
    let expected =
        [[191, 191, 191], [191, 191, 0], [0, 191, 191], [0, 191, 0], [191, 0, 191], [191, 0, 0], [0, 0, 191]];
    for (i, want) in expected.iter().enumerate() {
        let x = (320.0 / 7.0 * (i as f32 + 0.5)) as u32;
        let px = frame.rgba_at(x, 40);
        for c in 0..3 {
            assert!(px[c].abs_diff(want[c]) <= 1, "bar {i}: {px:?} vs {want:?}");
        }
        assert_eq!(px[3], 255);
    }
}

#[test]
fn gradient_ramp_is_opaque_black_to_colour() {
    // Over a red background nothing red may show through the ramp's dark end (a transparent-to-colour
    // ramp would; GStreamer comparisons in `bench w1-vs-gst` caught exactly that).
    let s = scene(json!({
        "width": 64, "height": 16, "background": "#FF0000",
        "inputs": { "g": { "kind": "test_pattern", "pattern": "gradient", "color": "#FFFFFF" } },
        "layers": [ { "id": "g", "kind": "video", "input": "g" } ]
    }));
    let frame = render(s, 0, PixelFormat::Rgba8);
    assert_eq!(frame.rgba_at(0, 2), [2, 2, 2, 255], "left end of the ramp is black");
    assert!(frame.rgba_at(63, 2)[0] > 250 && frame.rgba_at(63, 2)[1] > 250, "right end is the colour");
}
