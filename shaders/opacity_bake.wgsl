// streamlib opacity bake: multiplies a still layer texture (a static input or an image) by the
// layer's opacity once, into a texture of the same size. The compositor then draws it every frame
// at opacity 1, which on llvmpipe is a plain blit-and-blend (its fastest path, about 1.5x the
// speed of a per-pixel multiply). Same shape rules as blend.wgsl: vec4 texcoord, constant opacity.

@group(0) @binding(0) var source: texture_2d<f32>;
@group(0) @binding(1) var source_sampler: sampler;

// The layer's opacity, set per pipeline.
override OPACITY: f32 = 1.0;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec4<f32>,
};

// The whole target as a four-vertex triangle strip; texel centres map 1:1.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    var out: VsOut;
    out.position = vec4<f32>(corner.x * 2.0 - 1.0, 1.0 - corner.y * 2.0, 0.0, 1.0);
    out.uv = vec4<f32>(corner, 0.0, 1.0);
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    return textureSample(source, source_sampler, in.uv.xy) * OPACITY;
}
