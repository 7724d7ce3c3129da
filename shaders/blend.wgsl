// streamlib blend pipeline: draws one layer as a textured quad over its destination rect.
// Blending itself is fixed-function (see engine/src/gpu/blend.rs); the shader only samples the
// premultiplied layer texture and scales it by the layer's opacity.
//
// The shape is deliberate: Mesa's software rasterizer (llvmpipe) runs a draw on its fast "linear"
// path only when the fragment shader is exactly a texture sample times a constant, the texture
// coordinate is two components taken from a vec4 varying (a vec2 varying fails its check), and
// the target is BGRA. So the opacity is an override constant, one pipeline per opacity step (a
// uniform fails the check).

struct LayerParams {
    // Destination rect in clip space: x0, y0, x1, y1.
    dst: vec4<f32>,
    // Source rect in normalized texture coordinates: u0, v0, u1, v1.
    src: vec4<f32>,
};

@group(0) @binding(0) var<uniform> params: LayerParams;
@group(1) @binding(0) var layer_texture: texture_2d<f32>;
@group(1) @binding(1) var layer_sampler: sampler;

// The layer's opacity, set per pipeline.
override OPACITY: f32 = 1.0;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    // Only xy is used; vec4 for llvmpipe's linear path (see above).
    @location(0) uv: vec4<f32>,
};

// Four vertices as a triangle strip: (0,0) (1,0) (0,1) (1,1).
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    var out: VsOut;
    out.position = vec4<f32>(mix(params.dst.xy, params.dst.zw, corner), 0.0, 1.0);
    out.uv = vec4<f32>(mix(params.src.xy, params.src.zw, corner), 0.0, 1.0);
    return out;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    return textureSample(layer_texture, layer_sampler, in.uv.xy) * OPACITY;
}
