//! One scene library for the `streamlib` program, its tests and its benchmarks: the example
//! scenes in `demos/scenes/`, the layer kinds the program adds (an analog clock, a live chart)
//! and the compositing workloads the benchmarks compare (W1 among them).

pub mod kinds;
pub mod layers;

use std::path::PathBuf;
use streamlib::{Registry, Scene, SceneError};

pub use kinds::registry;

/// The directory of the example scenes; relative paths in them (images, fonts) resolve from it.
pub fn scene_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenes")
}

/// The example scenes' names (file stems of `demos/scenes/*.json`), sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(scene_dir())
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// An example scene by name, checked against `registry` (use [`registry`] for the demo kinds),
/// with relative paths resolved from [`scene_dir`].
pub fn load(name: &str, registry: &Registry) -> Result<Scene, SceneError> {
    let path = scene_dir().join(format!("{name}.json"));
    let json = std::fs::read_to_string(&path).map_err(|e| SceneError::new(".", format!("{}: {e}", path.display())))?;
    let mut scene = Scene::from_json(&json, registry)?;
    scene.base_dir = Some(scene_dir());
    Ok(scene)
}
