//! Scene parsing and validation: every class of bad input is an error naming its JSON path.

use super::*;
use crate::registry::Registry;
use serde_json::json;

fn parse(v: serde_json::Value) -> Result<Scene, SceneError> {
    Scene::from_value(v, &Registry::default())
}

fn good() -> serde_json::Value {
    json!({
        "width": 640, "height": 360, "fps": 30, "background": "#102030",
        "inputs": {
            "bars": { "kind": "test_pattern", "pattern": "smpte_bars" },
            "box": { "kind": "test_pattern", "pattern": "moving_box", "color": "#FF000080" }
        },
        "layers": [
            { "id": "bg", "kind": "video", "input": "bars" },
            { "id": "fg", "kind": "video", "input": "box", "z": 2, "opacity": 0.5, "blend": "screen",
              "visible": true, "rect": [10, 20, 300, 200], "crop": [0, 0, 320, 180] }
        ]
    })
}

fn err_path(v: serde_json::Value) -> (String, String) {
    let e = parse(v).expect_err("should be rejected");
    (e.path.clone(), e.to_string())
}

#[test]
fn a_good_scene_parses_with_defaults() {
    let s = parse(good()).expect("valid");
    assert_eq!(s.layers[1].blend, BlendMode::Screen);
    assert_eq!(s.layers[0].opacity, 1.0);
    assert!(s.layers[0].visible);
    assert_eq!(s.background, Color::rgba(0x10, 0x20, 0x30, 255));
    let minimal = parse(json!({ "width": 2, "height": 2 })).expect("minimal");
    assert_eq!(minimal.fps, Fps::new(30, 1));
    assert_eq!(minimal.background, Color::BLACK);
}

#[test]
fn scenes_round_trip_through_json() {
    let s = parse(good()).expect("valid");
    let again = Scene::from_json(&s.to_json_pretty(), &Registry::default()).expect("round trip");
    assert_eq!(s, again);
}

#[test]
fn unknown_fields_name_their_path() {
    let mut v = good();
    v["colour"] = json!("#000000");
    assert_eq!(err_path(v).0, "colour");
    let mut v = good();
    v["layers"][1]["opacty"] = json!(0.3);
    let (path, msg) = err_path(v);
    assert_eq!(path, "layers[1].opacty", "{msg}");
    let mut v = good();
    v["inputs"]["bars"]["speed"] = json!(3);
    assert_eq!(err_path(v).0, "inputs.bars.speed");
}

#[test]
fn unknown_kinds_are_errors() {
    let mut v = good();
    v["inputs"]["bars"]["kind"] = json!("hologram");
    let (path, msg) = err_path(v);
    assert_eq!(path, "inputs.bars.kind");
    assert!(msg.contains("test_pattern"), "lists the known kinds: {msg}");
    let mut v = good();
    v["layers"][0]["kind"] = json!("sparkles");
    assert_eq!(err_path(v).0, "layers[0].kind");
    let mut v = good();
    v["inputs"]["bars"]["pattern"] = json!("plaid");
    assert_eq!(err_path(v).0, "inputs.bars.pattern");
    let mut v = good();
    v["inputs"]["bars"].as_object_mut().map(|o| o.remove("kind"));
    assert_eq!(err_path(v).0, "inputs.bars");
}

#[test]
fn dangling_references_are_errors() {
    let mut v = good();
    v["layers"][1]["input"] = json!("camera9");
    let (path, msg) = err_path(v);
    assert_eq!(path, "layers[1].input");
    assert!(msg.contains("camera9"));
    let mut v = good();
    v["layers"][1].as_object_mut().map(|o| o.remove("input"));
    assert_eq!(err_path(v).0, "layers[1]");
}

#[test]
fn bad_colours_are_errors() {
    for bad in ["red", "#12345", "#GGHHII", "123456"] {
        let mut v = good();
        v["background"] = json!(bad);
        assert_eq!(err_path(v).0, "background", "{bad}");
    }
    let mut v = good();
    v["inputs"]["box"]["color"] = json!("#12");
    assert_eq!(err_path(v).0, "inputs.box.color");
}

#[test]
fn impossible_sizes_and_values_are_errors() {
    for (field, value) in [("width", json!(0)), ("height", json!(100000)), ("width", json!(-5)), ("width", json!(1.5))]
    {
        let mut v = good();
        v[field] = value;
        assert_eq!(err_path(v).0, field);
    }
    for fps in [json!(0), json!(-1), json!("30/0"), json!(5000), json!("fast")] {
        let mut v = good();
        v["fps"] = fps.clone();
        assert_eq!(err_path(v).0, "fps", "{fps}");
    }
    let cases = [
        ("opacity", json!(1.5)),
        ("opacity", json!(-0.1)),
        ("rect", json!([0, 0, 0, 10])),
        ("rect", json!([0, 0, 10])),
        ("crop", json!([0, 0, -4, 10])),
        ("blend", json!("overlay")),
        ("z", json!("top")),
        ("visible", json!("yes")),
        ("id", json!("has space")),
    ];
    for (field, value) in cases {
        let mut v = good();
        v["layers"][1][field] = value.clone();
        let (path, msg) = err_path(v);
        assert_eq!(path, format!("layers[1].{field}"), "{field} = {value}: {msg}");
    }
    let mut v = good();
    v["inputs"]["bars"]["width"] = json!(0);
    assert_eq!(err_path(v).0, "inputs.bars.width");
}

#[test]
fn duplicate_layer_ids_are_errors() {
    let mut v = good();
    v["layers"][1]["id"] = json!("bg");
    assert_eq!(err_path(v).0, "layers[1].id");
}

#[test]
fn malformed_json_reports_line_and_column() {
    let e = Scene::from_json("{ \"width\": 10,\n \"height\": }", &Registry::default()).expect_err("bad json");
    assert!(e.message.contains("line 2"), "{e}");
}

#[test]
fn draw_order_is_stable_for_equal_z() {
    let s = parse(json!({
        "width": 4, "height": 4,
        "inputs": { "a": { "kind": "test_pattern", "pattern": "solid" } },
        "layers": [
            { "id": "first", "kind": "video", "input": "a", "z": 1 },
            { "id": "low", "kind": "video", "input": "a", "z": -3 },
            { "id": "second", "kind": "video", "input": "a", "z": 1 }
        ]
    }))
    .expect("valid");
    let ids: Vec<&str> = s.draw_order().iter().map(|l| l.id.as_str()).collect();
    assert_eq!(ids, ["low", "first", "second"]);
}

#[test]
fn sync_fields_parse_round_trip_and_are_checked() {
    let mut v = good();
    v["sync"] = json!({ "latency_ms": 120 });
    v["inputs"]["box"]["sync"] = json!({ "required": true, "max_repeat": 5, "offset_ms": -40 });
    let s = parse(v.clone()).expect("valid");
    assert_eq!(s.sync.latency_ms, Some(120.0));
    let policy = s.inputs["box"].sync_policy();
    assert_eq!((policy.required, policy.max_repeat, policy.offset_ns), (true, 5, -40_000_000));
    assert_eq!(s.inputs["bars"].sync, None);
    assert!(!s.inputs["box"].params.contains_key("sync"), "the kind never sees `sync`");
    // Written back, it reads the same.
    let again = parse(serde_json::to_value(&s).expect("serialize")).expect("round trip");
    assert_eq!(again, s);
    let bad = |path: &str, value: serde_json::Value| {
        let mut v = good();
        match path {
            "latency" => v["sync"] = value,
            _ => v["inputs"]["box"]["sync"] = value,
        }
        err_path(v).0
    };
    assert_eq!(bad("latency", json!({ "latency_ms": 5000 })), "sync.latency_ms");
    assert_eq!(bad("latency", json!({ "latency": 5 })), "sync.latency");
    assert_eq!(bad("input", json!({ "offset_ms": 1e9 })), "inputs.box.sync.offset_ms");
    assert_eq!(bad("input", json!({ "max_repeat": -1 })), "inputs.box.sync.max_repeat");
}
