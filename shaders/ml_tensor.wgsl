// A model's input tensor from a layer's input texture, on the GPU: a region of the texture (a
// parallelogram: a crop, possibly rotated, possibly reaching outside `bounds` — the layer's crop
// or the whole texture — which reads as black), resized with bilinear filtering, as RGB f32 planes (NCHW) or interleaved (NHWC), each
// channel times `scale` plus `bias`, in straight (not premultiplied) colour. Only this tensor is
// read back, never the frame.

struct Params {
    // Texture coordinates of the region: origin (xy) and the step across its width (zw)...
    origin_x_axis: vec4<f32>,
    // ...and down its height (xy).
    y_axis: vec4<f32>,
    // The part of the texture that counts (u0, v0, u1, v1): outside it reads as black.
    bounds: vec4<f32>,
    scale: vec4<f32>,
    bias: vec4<f32>,
    // Tensor width and height.
    size: vec2<u32>,
    // 1: channels in B, G, R order.
    bgr: u32,
    // 1: interleaved (NHWC) rather than planar (NCHW).
    nhwc: u32,
}

@group(0) @binding(0) var input: texture_2d<f32>;
@group(0) @binding(1) var input_sampler: sampler;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read_write> tensor: array<f32>;

@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let size = params.size;
    if id.x >= size.x || id.y >= size.y {
        return;
    }
    let t = (vec2<f32>(id.xy) + vec2<f32>(0.5)) / vec2<f32>(size);
    let uv = params.origin_x_axis.xy + t.x * params.origin_x_axis.zw + t.y * params.y_axis.xy;
    let texel = textureSampleLevel(input, input_sampler, uv, 0.0);
    let inside = all(uv >= params.bounds.xy) && all(uv <= params.bounds.zw);
    let straight = select(vec3<f32>(0.0), texel.rgb / max(texel.a, 1.0 / 255.0), inside);
    let rgb = select(straight, straight.bgr, params.bgr == 1u);
    let value = rgb * params.scale.xyz + params.bias.xyz;
    let i = id.y * size.x + id.x;
    if params.nhwc == 1u {
        tensor[3u * i] = value.r;
        tensor[3u * i + 1u] = value.g;
        tensor[3u * i + 2u] = value.b;
    } else {
        let plane = size.x * size.y;
        tensor[i] = value.r;
        tensor[plane + i] = value.g;
        tensor[2u * plane + i] = value.b;
    }
}
