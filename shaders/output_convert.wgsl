// streamlib output conversion pipelines: the composited premultiplied RGBA frame becomes YUV
// planes before readback (NV12 or I420: 1.5 bytes a pixel instead of 4). Alpha is dropped, which
// for premultiplied colour is the same as compositing over black.
//
// Each plane is written as RGBA8 texels holding four consecutive plane bytes, so one fragment
// makes four luma samples (or two NV12 chroma pairs, or four I420 chroma samples): a quarter of
// the fragments of one-byte targets, which is what costs on a software rasterizer. The readback
// copies a plane's texels as its bytes and drops what lies past the plane's width.

struct RgbToYuv {
    // (y, u, v) = (row_y, row_u, row_v) · (r, g, b, 1)
    row_y: vec4<f32>,
    row_u: vec4<f32>,
    row_v: vec4<f32>,
    // x, y: luma width and height in pixels; z, w unused.
    size: vec4<f32>,
};

@group(0) @binding(0) var<uniform> params: RgbToYuv;
@group(0) @binding(1) var source: texture_2d<f32>;

// One triangle covering the whole target.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    let p = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    return vec4<f32>(p.x * 2.0 - 1.0, 1.0 - p.y * 2.0, 0.0, 1.0);
}

fn rgb_at(p: vec2<i32>) -> vec4<f32> {
    let max_p = vec2<i32>(params.size.xy) - vec2<i32>(1);
    return vec4<f32>(textureLoad(source, clamp(p, vec2<i32>(0), max_p), 0).rgb, 1.0);
}

// Four luma bytes: pixels x = 4i .. 4i+3 of row y.
@fragment
fn fs_luma(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let p = vec2<i32>(position.xy) * vec2<i32>(4, 1);
    let rgb = mat4x4<f32>(rgb_at(p), rgb_at(p + vec2<i32>(1, 0)), rgb_at(p + vec2<i32>(2, 0)), rgb_at(p + vec2<i32>(3, 0)));
    return params.row_y * rgb;
}

// The mean of the 2x2 block starting at luma pixel `p` (edge pixels repeat on odd sizes).
fn block_rgb(p: vec2<i32>) -> vec4<f32> {
    return (rgb_at(p) + rgb_at(p + vec2<i32>(1, 0)) + rgb_at(p + vec2<i32>(0, 1)) + rgb_at(p + vec2<i32>(1, 1))) * 0.25;
}

// Two interleaved chroma pairs: (u, v) of chroma sites 2i and 2i+1.
@fragment
fn fs_chroma_nv12(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let p = vec2<i32>(position.xy) * vec2<i32>(4, 2);
    let a = block_rgb(p);
    let b = block_rgb(p + vec2<i32>(2, 0));
    return vec4<f32>(dot(params.row_u, a), dot(params.row_v, a), dot(params.row_u, b), dot(params.row_v, b));
}

struct ChromaPlanes {
    @location(0) u: vec4<f32>,
    @location(1) v: vec4<f32>,
};

// Four chroma sites 4i .. 4i+3, U and V in their own planes.
@fragment
fn fs_chroma_i420(@builtin(position) position: vec4<f32>) -> ChromaPlanes {
    let p = vec2<i32>(position.xy) * vec2<i32>(8, 2);
    let c = mat4x4<f32>(block_rgb(p), block_rgb(p + vec2<i32>(2, 0)), block_rgb(p + vec2<i32>(4, 0)), block_rgb(p + vec2<i32>(6, 0)));
    return ChromaPlanes(params.row_u * c, params.row_v * c);
}
