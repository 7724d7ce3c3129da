// A model's input tensor from a layer's input texture, on the GPU: a region of the texture,
// resized with bilinear filtering, as planar RGB (NCHW, f32), each channel times `scale` plus
// `bias`, in straight (not premultiplied) colour. Only this tensor is read back, never the frame.

struct Params {
    // The region of the texture, in normalised coordinates: u0, v0, u1, v1.
    src: vec4<f32>,
    scale: vec4<f32>,
    bias: vec4<f32>,
    // Tensor width and height.
    size: vec2<u32>,
    // 1: channels in B, G, R order.
    bgr: u32,
    pad: u32,
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
    let uv = mix(params.src.xy, params.src.zw, t);
    let texel = textureSampleLevel(input, input_sampler, uv, 0.0);
    let straight = texel.rgb / max(texel.a, 1.0 / 255.0);
    let rgb = select(straight, straight.bgr, params.bgr == 1u);
    let plane = size.x * size.y;
    let i = id.y * size.x + id.x;
    tensor[i] = rgb.r * params.scale.x + params.bias.x;
    tensor[plane + i] = rgb.g * params.scale.y + params.bias.y;
    tensor[2u * plane + i] = rgb.b * params.scale.z + params.bias.z;
}
