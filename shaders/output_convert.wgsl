// streamlib output conversion pipelines: the composited premultiplied RGBA frame becomes YUV
// planes before readback (NV12 or I420: 1.5 bytes a pixel instead of 4). Alpha is dropped, which
// for premultiplied colour is the same as compositing over black.

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

@fragment
fn fs_luma(@builtin(position) position: vec4<f32>) -> @location(0) f32 {
    return dot(params.row_y, rgb_at(vec2<i32>(position.xy)));
}

// The mean of the 2x2 block this chroma sample covers (edge pixels repeat on odd sizes).
fn block_rgb(position: vec4<f32>) -> vec4<f32> {
    let p = vec2<i32>(position.xy) * 2;
    return (rgb_at(p) + rgb_at(p + vec2<i32>(1, 0)) + rgb_at(p + vec2<i32>(0, 1)) + rgb_at(p + vec2<i32>(1, 1))) * 0.25;
}

@fragment
fn fs_chroma_nv12(@builtin(position) position: vec4<f32>) -> @location(0) vec2<f32> {
    let c = block_rgb(position);
    return vec2<f32>(dot(params.row_u, c), dot(params.row_v, c));
}

struct ChromaPlanes {
    @location(0) u: f32,
    @location(1) v: f32,
};

@fragment
fn fs_chroma_i420(@builtin(position) position: vec4<f32>) -> ChromaPlanes {
    let c = block_rgb(position);
    return ChromaPlanes(dot(params.row_u, c), dot(params.row_v, c));
}
