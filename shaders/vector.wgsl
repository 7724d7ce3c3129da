// streamlib vector pipeline: tessellated shapes (lyon) with per-vertex premultiplied colour,
// drawn 4x multisampled into a layer texture for antialiased edges.

struct VectorParams {
    // x, y: target size in pixels; z, w unused.
    size: vec4<f32>,
};

@group(0) @binding(0) var<uniform> params: VectorParams;

struct VsIn {
    @location(0) position: vec2<f32>,
    @location(1) color: vec4<f32>,
};

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) color: vec4<f32>,
};

@vertex
fn vs_main(in: VsIn) -> VsOut {
    var out: VsOut;
    let ndc = in.position / params.size.xy * 2.0 - 1.0;
    out.position = vec4<f32>(ndc.x, -ndc.y, 0.0, 1.0);
    out.color = in.color;
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    return in.color;
}
