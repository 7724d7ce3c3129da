// streamlib blend pipeline: draws one layer as a textured quad over its destination rect.
// Blending itself is fixed-function (see engine/src/compositor.rs); the shader only samples the
// premultiplied layer texture and scales it by the layer's opacity.

struct LayerParams {
    // Destination rect in clip space: x0, y0, x1, y1.
    dst: vec4<f32>,
    // Source rect in normalized texture coordinates: u0, v0, u1, v1.
    src: vec4<f32>,
    // x: opacity; y, z, w: unused padding.
    opacity: vec4<f32>,
};

@group(0) @binding(0) var<uniform> params: LayerParams;
@group(1) @binding(0) var layer_texture: texture_2d<f32>;
@group(1) @binding(1) var layer_sampler: sampler;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// Four vertices as a triangle strip: (0,0) (1,0) (0,1) (1,1).
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    var out: VsOut;
    out.position = vec4<f32>(mix(params.dst.xy, params.dst.zw, corner), 0.0, 1.0);
    out.uv = mix(params.src.xy, params.src.zw, corner);
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    return textureSample(layer_texture, layer_sampler, in.uv) * params.opacity.x;
}
