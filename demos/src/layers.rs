//! The compositing workloads benchmarks and tests share: `n` full-size layers over an opaque
//! base. W1 (four layers at 1080p) is the one compared with GStreamer's `compositor`.

use streamlib::scene::SceneError;
use streamlib::{Registry, Scene};

/// One compositing workload: full-size layers over an opaque base.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Case {
    /// E.g. `4 layers 1920x1080`.
    pub name: String,
    /// Output width.
    pub width: u32,
    /// Output height.
    pub height: u32,
    /// (pattern JSON, x, y, opacity) per layer, bottom first.
    pub layers: Vec<(serde_json::Value, i32, i32, f32)>,
}

const OFFSETS: [(i32, i32); 15] = [
    (100, 50),
    (400, 200),
    (800, 400),
    (200, 600),
    (600, 100),
    (1000, 300),
    (300, 450),
    (700, 700),
    (1100, 150),
    (150, 350),
    (500, 550),
    (900, 250),
    (1200, 600),
    (50, 800),
    (850, 50),
];

fn input(i: usize) -> serde_json::Value {
    match i % 4 {
        0 => serde_json::json!({ "kind": "test_pattern", "pattern": "smpte_bars" }),
        1 => serde_json::json!({ "kind": "test_pattern", "pattern": "gradient", "color": "#F0C040" }),
        2 => serde_json::json!({ "kind": "test_pattern", "pattern": "checkerboard", "color": "#FFFFFF", "cell": 32 }),
        _ => serde_json::json!({ "kind": "test_pattern", "pattern": "checkerboard", "color": "#3080FF", "cell": 48 }),
    }
}

/// `n` full-size layers at `width`x`height`: an opaque base, then translucent layers (0.8, 0.7,
/// 0.9, ...) at W1's offsets, scaled to the size. `layers(4, 1920, 1080)` is W1.
pub fn layers(n: usize, width: u32, height: u32) -> Case {
    let sx = width as f32 / 1920.0;
    let sy = height as f32 / 1080.0;
    let layers = (0..n.max(1))
        .map(|i| {
            let (x, y) = if i == 0 { (0, 0) } else { OFFSETS[(i - 1) % OFFSETS.len()] };
            let opacity = if i == 0 { 1.0 } else { [0.8, 0.7, 0.9][(i - 1) % 3] };
            (input(i), (x as f32 * sx).round() as i32, (y as f32 * sy).round() as i32, opacity)
        })
        .collect();
    Case { name: format!("{n} layers {width}x{height}"), width, height, layers }
}

impl Case {
    /// The case as a scene (inputs `in0..`, layers `l0..`), checked against `registry`.
    pub fn scene(&self, registry: &Registry) -> Result<Scene, SceneError> {
        let inputs: serde_json::Map<String, serde_json::Value> =
            self.layers.iter().enumerate().map(|(i, l)| (format!("in{i}"), l.0.clone())).collect();
        let layers: Vec<serde_json::Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, (_, x, y, opacity))| {
                serde_json::json!({ "id": format!("l{i}"), "kind": "video", "input": format!("in{i}"), "z": i,
                    "opacity": opacity, "rect": [x, y, self.width, self.height] })
            })
            .collect();
        let json = serde_json::json!({ "width": self.width, "height": self.height, "fps": 30,
            "inputs": inputs, "layers": layers });
        Scene::from_value(json, registry)
    }
}

/// W1 from the engine issue: four full-size layers at 1080p, three translucent and offset.
pub fn w1() -> Case {
    layers(4, 1920, 1080)
}
