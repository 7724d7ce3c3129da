// streamlib segment layer: a person mask (the model's output, a small R8 texture) applied to
// the layer's input at full resolution. The mask is upscaled by the sampler and its edge
// softened with a smoothstep around `threshold`; colours are premultiplied throughout.
//   MODE 0 blur:    person over the blurred input (`background`: the input downscaled and
//                   tent-filtered by `fs_tent`, so one sample here)
//   MODE 1 replace: person over another texture (`background`: an input, stretched)
//   MODE 2 color:   person over `color`
//   MODE 3 cutout:  person alone, the background transparent
//   MODE 4 mask:    the mask itself, white on black
// The mode is a pipeline constant, not a uniform: llvmpipe runs every path of a shader for
// every pixel, so one shader with all of them cost 35 ms a 720p frame; each alone costs what
// its own samples do.

struct Params {
    // The input's region the mask covers: u0, v0, u1, v1.
    crop: vec4<f32>,
    // Premultiplied replacement colour (mode 2).
    color: vec4<f32>,
    // One texel of `background` (for `fs_tent`), in its texture coordinates.
    background_texel: vec2<f32>,
    threshold: f32,
    softness: f32,
    mode: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

override MODE: u32 = 0u;

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

// A 3 × 3 tent over the downscaled input's neighbouring texels, into a texture of its size:
// with the downscale, a wide smooth blur, paid for at a fraction of the frame's pixels.
@fragment
fn fs_tent(in: VsOut) -> @location(0) vec4<f32> {
    let uv = in.uv;
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
    if MODE == 4u {
        return vec4<f32>(m, m, m, 1.0);
    }
    let uv = mix(params.crop.xy, params.crop.zw, in.uv);
    let person = textureSampleLevel(input, linear_sampler, uv, 0.0);
    if MODE == 3u {
        return person * m;
    }
    if MODE == 2u {
        return mix(params.color, person, m);
    }
    // Blur samples the background where the person is; replace stretches it over the layer.
    let at = select(in.uv, uv, MODE == 0u);
    return mix(textureSampleLevel(background, linear_sampler, at, 0.0), person, m);
}
