//! Every WGSL file in `shaders/` parses and validates with naga, and every uniform struct the
//! engine writes has the size and field offsets the shader declares.

use super::shaders;
use std::collections::BTreeSet;

fn module(source: &str, name: &str) -> naga::Module {
    let module =
        naga::front::wgsl::parse_str(source).unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::empty())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(source)));
    module
}

#[test]
fn every_shader_file_validates_and_is_compiled_in() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("shaders/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".wgsl"))
        .collect();
    let compiled: BTreeSet<String> = shaders::ALL.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(on_disk, compiled, "shaders/ and gpu::shaders::ALL must list the same files");
    for name in &on_disk {
        let source = std::fs::read_to_string(dir.join(name)).expect("read shader");
        let m = module(&source, name);
        let draws = m.entry_points.iter().any(|e| e.name == "vs_main");
        let computes = m.entry_points.iter().any(|e| e.name == "main" && e.stage == naga::ShaderStage::Compute);
        assert!(draws || computes, "{name}: the entry point is vs_main (a draw) or main (a compute pass)");
    }
}

/// (size, member offsets) of the WGSL struct `name`.
fn layout(source: &str, name: &str) -> (u32, Vec<u32>) {
    let m = module(source, name);
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(m.to_ctx()).expect("layout");
    for (handle, ty) in m.types.iter() {
        if ty.name.as_deref() == Some(name) {
            if let naga::TypeInner::Struct { members, span } = &ty.inner {
                let _ = handle;
                return (*span, members.iter().map(|m| m.offset).collect());
            }
        }
    }
    panic!("no struct {name}");
}

macro_rules! offsets {
    ($t:ty, $($f:ident),+) => { vec![$(std::mem::offset_of!($t, $f) as u32),+] };
}

#[test]
fn uniform_structs_match_the_wgsl() {
    use crate::gpu::{blend::LayerParams, convert::RgbToYuvParams, convert::YuvToRgbParams, pattern::PatternParams};
    let cases: Vec<(&str, &str, usize, Vec<u32>)> = vec![
        (shaders::BLEND, "LayerParams", size_of::<LayerParams>(), offsets!(LayerParams, dst, src)),
        (
            shaders::INPUT_CONVERT,
            "YuvToRgb",
            size_of::<YuvToRgbParams>(),
            offsets!(YuvToRgbParams, row_r, row_g, row_b),
        ),
        (
            shaders::OUTPUT_CONVERT,
            "RgbToYuv",
            size_of::<RgbToYuvParams>(),
            offsets!(RgbToYuvParams, row_y, row_u, row_v, size),
        ),
        (
            shaders::TEST_PATTERN,
            "PatternParams",
            size_of::<PatternParams>(),
            offsets!(PatternParams, color, size, frame, fps, cell, _pad0, _pad),
        ),
        #[cfg(feature = "ml")]
        (
            shaders::ML_TENSOR,
            "Params",
            size_of::<crate::gpu::tensor::TensorParams>(),
            offsets!(crate::gpu::tensor::TensorParams, origin_x_axis, y_axis, bounds, scale, bias, size, bgr, nhwc),
        ),
        #[cfg(feature = "ml")]
        (
            shaders::ML_SEGMENT,
            "Params",
            size_of::<crate::layers::segment::SegmentParams>(),
            offsets!(
                crate::layers::segment::SegmentParams,
                crop,
                color,
                background_texel,
                threshold,
                softness,
                mode,
                pad0,
                pad1,
                pad2
            ),
        ),
    ];
    for (source, name, rust_size, rust_offsets) in cases {
        let (size, offsets) = layout(source, name);
        assert_eq!(size as usize, rust_size, "{name}: WGSL size {size} vs Rust {rust_size}");
        assert_eq!(offsets, rust_offsets, "{name}: member offsets differ");
    }
}
