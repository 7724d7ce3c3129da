// streamlib segment layer: a person mask (the model's output, a small R8 texture) applied to
// the layer's input at full resolution. The mask is upscaled by the sampler and its edge
// softened with a smoothstep around `threshold`; colours are premultiplied throughout.
//   mode 0 blur:    person over the blurred input (`background`: the input downscaled)
//   mode 1 replace: person over another texture (`background`: an input, stretched)
//   mode 2 color:   person over `color`
//   mode 3 cutout:  person alone, the background transparent
//   mode 4 mask:    the mask itself, white on black

struct Params {
    // The input's region the mask covers: u0, v0, u1, v1.
    crop: vec4<f32>,
    // Premultiplied replacement colour (mode 2).
    color: vec4<f32>,
    // One texel of `background` (mode 0), in its texture coordinates.
    background_texel: vec2<f32>,
    threshold: f32,
    softness: f32,
    mode: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var input: texture_2d<f32>;
@group(0) @binding(1) var background: texture_2d<f32>;
@group(0) @binding(2) var mask: texture_2d<f32>;
@group(0) @binding(3) var linear_sampler: sampler;
@group(0) @binding(4) var<uniform> params: Params;

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// The whole target as a four-vertex triangle strip.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VsOut {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    var out: VsOut;
    out.position = vec4<f32>(corner.x * 2.0 - 1.0, 1.0 - corner.y * 2.0, 0.0, 1.0);
    out.uv = corner;
    return out;
}

// A 3 × 3 tent over the downscaled input's neighbouring texels: with the downscale, a wide
// smooth blur for nine taps.
fn blurred(uv: vec2<f32>) -> vec4<f32> {
    let d = params.background_texel * 1.5;
    var sum = textureSampleLevel(background, linear_sampler, uv, 0.0) * 4.0;
    sum += textureSampleLevel(background, linear_sampler, uv + vec2<f32>(d.x, 0.0), 0.0) * 2.0;
    sum += textureSampleLevel(background, linear_sampler, uv - vec2<f32>(d.x, 0.0), 0.0) * 2.0;
    sum += textureSampleLevel(background, linear_sampler, uv + vec2<f32>(0.0, d.y), 0.0) * 2.0;
    sum += textureSampleLevel(background, linear_sampler, uv - vec2<f32>(0.0, d.y), 0.0) * 2.0;
    sum += textureSampleLevel(background, linear_sampler, uv + d, 0.0);
    sum += textureSampleLevel(background, linear_sampler, uv - d, 0.0);
    sum += textureSampleLevel(background, linear_sampler, uv + vec2<f32>(d.x, -d.y), 0.0);
    sum += textureSampleLevel(background, linear_sampler, uv + vec2<f32>(-d.x, d.y), 0.0);
    return sum / 16.0;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    let raw = textureSampleLevel(mask, linear_sampler, in.uv, 0.0).r;
    let soft = max(params.softness, 1.0 / 512.0);
    let m = smoothstep(params.threshold - soft, params.threshold + soft, raw);
    if params.mode == 4u {
        return vec4<f32>(m, m, m, 1.0);
    }
    let uv = mix(params.crop.xy, params.crop.zw, in.uv);
    let person = textureSampleLevel(input, linear_sampler, uv, 0.0);
    var behind = vec4<f32>(0.0);
    switch params.mode {
        case 0u: { behind = blurred(uv); }
        case 1u: { behind = textureSampleLevel(background, linear_sampler, in.uv, 0.0); }
        case 2u: { behind = params.color; }
        default: {}
    }
    return mix(behind, person, m);
}
