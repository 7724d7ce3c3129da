// streamlib input conversion pipelines: planes uploaded from the CPU become one premultiplied
// RGBA texture. YUV matrices (BT.601/BT.709, limited/full range) come from engine/src/gpu/convert.rs.

struct YuvToRgb {
    // rgb = (row_r, row_g, row_b) · (y, u, v, 1)
    row_r: vec4<f32>,
    row_g: vec4<f32>,
    row_b: vec4<f32>,
};

@group(0) @binding(0) var<uniform> params: YuvToRgb;
// Y plane (NV12, I420) or the whole RGBA/BGRA image.
@group(0) @binding(1) var plane0: texture_2d<f32>;
// Interleaved UV (NV12) or U (I420); a 1x1 dummy otherwise.
@group(0) @binding(2) var plane1: texture_2d<f32>;
// V (I420); a 1x1 dummy otherwise.
@group(0) @binding(3) var plane2: texture_2d<f32>;
// Linear sampler for chroma upsampling (chroma sited at the centre of each 2x2 block).
@group(0) @binding(4) var chroma_sampler: sampler;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// One triangle covering the whole target.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VsOut {
    let p = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    var out: VsOut;
    out.position = vec4<f32>(p.x * 2.0 - 1.0, 1.0 - p.y * 2.0, 0.0, 1.0);
    out.uv = p;
    return out;
}

fn to_rgb(y: f32, u: f32, v: f32) -> vec4<f32> {
    let yuv = vec4<f32>(y, u, v, 1.0);
    let rgb = vec3<f32>(dot(params.row_r, yuv), dot(params.row_g, yuv), dot(params.row_b, yuv));
    return vec4<f32>(clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0)), 1.0);
}

@fragment
fn fs_nv12(in: VsOut) -> @location(0) vec4<f32> {
    let y = textureLoad(plane0, vec2<i32>(in.position.xy), 0).r;
    let uv = textureSampleLevel(plane1, chroma_sampler, in.uv, 0.0).rg;
    return to_rgb(y, uv.x, uv.y);
}

@fragment
fn fs_i420(in: VsOut) -> @location(0) vec4<f32> {
    let y = textureLoad(plane0, vec2<i32>(in.position.xy), 0).r;
    let u = textureSampleLevel(plane1, chroma_sampler, in.uv, 0.0).r;
    let v = textureSampleLevel(plane2, chroma_sampler, in.uv, 0.0).r;
    return to_rgb(y, u, v);
}

// Straight-alpha RGBA (or BGRA, swizzled by the texture format) to premultiplied.
@fragment
fn fs_rgba(in: VsOut) -> @location(0) vec4<f32> {
    let c = textureLoad(plane0, vec2<i32>(in.position.xy), 0);
    return vec4<f32>(c.rgb * c.a, c.a);
}
