//! Every WGSL file of `shaders/`, compiled into the library. `tests/shader_validation.rs` checks
//! that this list and the directory agree and that each file validates with naga.

pub const BLEND: &str = include_str!("../../../shaders/blend.wgsl");
#[cfg_attr(not(feature = "ml"), allow(dead_code))]
pub const ML_TENSOR: &str = include_str!("../../../shaders/ml_tensor.wgsl");
#[cfg_attr(not(feature = "ml"), allow(dead_code))]
pub const ML_SEGMENT: &str = include_str!("../../../shaders/ml_segment.wgsl");
pub const INPUT_CONVERT: &str = include_str!("../../../shaders/input_convert.wgsl");
pub const OPACITY_BAKE: &str = include_str!("../../../shaders/opacity_bake.wgsl");
pub const OUTPUT_CONVERT: &str = include_str!("../../../shaders/output_convert.wgsl");
pub const PRESENT: &str = include_str!("../../../shaders/present.wgsl");
pub const VECTOR: &str = include_str!("../../../shaders/vector.wgsl");
pub const TEST_PATTERN: &str = include_str!("../../../shaders/test_pattern.wgsl");

/// (file name, source) for every shader, for the validation tests.
#[cfg(test)]
pub const ALL: &[(&str, &str)] = &[
    ("blend.wgsl", BLEND),
    ("input_convert.wgsl", INPUT_CONVERT),
    ("ml_segment.wgsl", ML_SEGMENT),
    ("ml_tensor.wgsl", ML_TENSOR),
    ("opacity_bake.wgsl", OPACITY_BAKE),
    ("output_convert.wgsl", OUTPUT_CONVERT),
    ("present.wgsl", PRESENT),
    ("test_pattern.wgsl", TEST_PATTERN),
    ("vector.wgsl", VECTOR),
];
