//! The shared scene library: every example scene loads with the program's kinds and renders, and
//! the benchmark workloads build the scenes they say (W1's layers land where its offsets put them).

use streamlib::{Engine, GpuContext, Pacing, PixelFormat, Registry};
use streamlib_scenes::layers::{layers, w1};

#[test]
fn every_library_scene_loads_and_renders_a_frame() {
    let names = streamlib_scenes::names();
    assert!(names.len() >= 4, "example scenes: {names:?}");
    let registry = streamlib_scenes::registry();
    let gpu = GpuContext::new().expect("a GPU adapter (install mesa-vulkan-drivers)");
    for name in &names {
        let scene = streamlib_scenes::load(name, &registry).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (w, h) = (scene.width, scene.height);
        let mut engine = Engine::new(&gpu, scene, &registry, Pacing::Offline).unwrap_or_else(|e| panic!("{name}: {e}"));
        let frame = engine.render_and_read(0, PixelFormat::Rgba8).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((frame.width, frame.height), (w, h), "{name}");
        assert!(frame.data.chunks(4).any(|p| p[..3] != [0, 0, 0]), "{name} rendered only black");
    }
    assert!(streamlib_scenes::load("no_such_scene", &registry).is_err());
}

#[test]
fn workloads_scale_w1s_offsets_and_opacities() {
    let w1 = w1();
    assert_eq!((w1.name.as_str(), w1.width, w1.height, w1.layers.len()), ("4 layers 1920x1080", 1920, 1080, 4));
    let placed: Vec<(i32, i32, f32)> = w1.layers.iter().map(|l| (l.1, l.2, l.3)).collect();
    assert_eq!(placed, [(0, 0, 1.0), (100, 50, 0.8), (400, 200, 0.7), (800, 400, 0.9)]);
    // Offsets scale with the output: at 720p the second layer sits at two thirds of (100, 50).
    let small = layers(2, 1280, 720);
    assert_eq!((small.layers[1].1, small.layers[1].2), (67, 33));

    let scene = w1.scene(&Registry::default()).expect("W1 is a valid scene");
    assert_eq!((scene.inputs.len(), scene.layers.len()), (4, 4));
    let top = &scene.layers[3];
    assert_eq!((top.z, top.opacity), (3, 0.9));
}
