// streamlib test pattern pipeline: every generated pattern, drawn per frame on the GPU.
// Patterns are pure functions of (pixel, frame index, size), so renders are reproducible.
// The test card's timecode text is drawn over it with glyphon by the source.

struct PatternParams {
    // Premultiplied colour parameter of the pattern.
    color: vec4<f32>,
    // Output size in pixels.
    size: vec2<f32>,
    frame: u32,
    // Nominal frames per second (for timecode and animation speed).
    fps: f32,
    // Checkerboard cell side in pixels.
    cell: f32,
    _pad0: f32,
    _pad: vec2<f32>,
};

@group(0) @binding(0) var<uniform> params: PatternParams;

// 0 smpte_bars, 1 solid, 2 gradient, 3 checkerboard, 4 moving_box, 5 test_card, 6 placeholder.
// A pipeline constant, not a uniform: each pattern gets a pipeline holding only its own code.
// With the choice in a uniform, llvmpipe (Mesa 22.3) leaked ~800 KiB on every draw of this
// shader (a malloc per 4x4 block from the JIT code, never freed; any two function calls behind
// a uniform branch did it).
override PATTERN: u32 = 6u;

// One triangle covering the whole target.
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> @builtin(position) vec4<f32> {
    let p = vec2<f32>(f32((index << 1u) & 2u), f32(index & 2u));
    return vec4<f32>(p.x * 2.0 - 1.0, 1.0 - p.y * 2.0, 0.0, 1.0);
}

fn opaque(rgb: vec3<f32>) -> vec4<f32> {
    return vec4<f32>(rgb, 1.0);
}

// SMPTE EG 1 colour bars at 75 %: seven bars, the castellations row, then -I, white, +Q and PLUGE.
fn smpte_bars(p: vec2<f32>, size: vec2<f32>) -> vec4<f32> {
    let x = p.x / size.x;
    let y = p.y / size.y;
    let bar = min(u32(x * 7.0), 6u);
    var top = array<vec3<f32>, 7>(
        vec3<f32>(0.75, 0.75, 0.75), vec3<f32>(0.75, 0.75, 0.0), vec3<f32>(0.0, 0.75, 0.75),
        vec3<f32>(0.0, 0.75, 0.0), vec3<f32>(0.75, 0.0, 0.75), vec3<f32>(0.75, 0.0, 0.0),
        vec3<f32>(0.0, 0.0, 0.75));
    if y < 0.67 {
        return opaque(top[bar]);
    }
    if y < 0.75 {
        var mid = array<vec3<f32>, 7>(
            vec3<f32>(0.0, 0.0, 0.75), vec3<f32>(0.0), vec3<f32>(0.75, 0.0, 0.75), vec3<f32>(0.0),
            vec3<f32>(0.0, 0.75, 0.75), vec3<f32>(0.0), vec3<f32>(0.75, 0.75, 0.75));
        return opaque(mid[bar]);
    }
    // Bottom row: four blocks of 5/4 bar width, then PLUGE (three thirds of a bar) and black.
    let b = x * 7.0;
    if b < 1.25 { return opaque(vec3<f32>(0.0, 0.129, 0.298)); }   // -I
    if b < 2.5 { return opaque(vec3<f32>(1.0)); }                    // 100 % white
    if b < 3.75 { return opaque(vec3<f32>(0.196, 0.0, 0.416)); }     // +Q
    if b < 5.0 { return opaque(vec3<f32>(0.0)); }
    if b < 5.0 + 1.0 / 3.0 { return opaque(vec3<f32>(0.0)); }        // below black (clipped)
    if b < 5.0 + 2.0 / 3.0 { return opaque(vec3<f32>(0.02)); }       // black
    if b < 6.0 { return opaque(vec3<f32>(0.04)); }                   // above black
    return opaque(vec3<f32>(0.0));
}

fn hue(h: f32) -> vec3<f32> {
    let k = vec3<f32>(0.0, 2.0 / 3.0, 1.0 / 3.0);
    return clamp(abs(fract(vec3<f32>(h) + k) * 6.0 - 3.0) - 1.0, vec3<f32>(0.0), vec3<f32>(1.0));
}

// Top half: a ramp from black to the colour; bottom half: a full hue sweep.
fn gradient(p: vec2<f32>, size: vec2<f32>) -> vec4<f32> {
    let t = p.x / size.x;
    if p.y < size.y * 0.5 {
        // Opaque ramp (the colour's own alpha throughout): black to colour, not transparent to colour.
        return vec4<f32>(params.color.rgb * t, params.color.a);
    }
    return opaque(hue(t));
}

fn checkerboard(p: vec2<f32>) -> vec4<f32> {
    let c = vec2<u32>(p / max(params.cell, 1.0));
    if ((c.x + c.y) & 1u) == 0u {
        return params.color;
    }
    return opaque(vec3<f32>(0.0));
}

// Distance travelled bouncing between 0 and `range`.
fn bounce(travel: f32, range: f32) -> f32 {
    let period = 2.0 * max(range, 1.0);
    let t = travel - floor(travel / period) * period;
    return select(t, period - t, t > range);
}

fn moving_box(p: vec2<f32>, size: vec2<f32>) -> vec4<f32> {
    let side = floor(size.y / 4.0);
    let f = f32(params.frame);
    let origin = floor(vec2<f32>(
        bounce(f * size.x / 160.0, size.x - side),
        bounce(f * size.y / 120.0, size.y - side)));
    if all(p >= origin) && all(p < origin + vec2<f32>(side)) {
        return params.color;
    }
    return opaque(vec3<f32>(0.1));
}

fn test_card(p: vec2<f32>, size: vec2<f32>) -> vec4<f32> {
    let unit = size.y / 9.0;
    var rgb = vec3<f32>(0.35);
    // Grid every ninth of the height, centred.
    // Measured between pixel centres so lines are whole pixels wide at any size.
    let g = abs(floor(p) - floor(size * 0.5)) / unit;
    let line = max(1.0, floor(size.y / 360.0));
    if any(abs(g - round(g)) * unit < vec2<f32>(line * 0.5)) {
        rgb = vec3<f32>(0.85);
    }
    // Centre circle outline, antialiased.
    let r = distance(p, size * 0.5);
    let ring = 1.0 - smoothstep(line * 0.5, line * 0.5 + 1.0, abs(r - unit * 3.5));
    rgb = mix(rgb, vec3<f32>(1.0), ring);
    // Colour strip above the centre.
    let strip = (p - size * 0.5) / unit;
    if abs(strip.x) < 3.0 && strip.y > -2.0 && strip.y < -1.0 {
        rgb = hue((strip.x + 3.0) / 6.0) * 0.75;
    }
    // Black box below the centre; the timecode text is drawn into it afterwards (see
    // `sources/test_pattern.rs`, `timecode_box`).
    let box_min = vec2<f32>(size.x * 0.5 - unit * 3.3, size.y * 0.5 + unit * 0.9);
    let box_max = vec2<f32>(size.x * 0.5 + unit * 3.3, size.y * 0.5 + unit * 2.1);
    if all(p >= box_min) && all(p < box_max) {
        rgb = vec3<f32>(0.0);
    }
    return opaque(rgb);
}

// Shown by a compositor with nothing to draw: a slow diagonal sweep and a pulsing bar.
fn placeholder(p: vec2<f32>, size: vec2<f32>) -> vec4<f32> {
    let t = f32(params.frame) / max(params.fps, 1.0);
    let d = (p.x + p.y) / (size.x + size.y);
    let sweep = 0.5 + 0.5 * sin(6.2831853 * (d - t * 0.25));
    var rgb = mix(vec3<f32>(0.05, 0.06, 0.10), vec3<f32>(0.12, 0.16, 0.30), sweep);
    let bar_y = abs(p.y - size.y * 0.5) < size.y * 0.02;
    let bar_x = abs(p.x - size.x * 0.5) < size.x * 0.25 * (0.6 + 0.4 * sin(t * 3.0));
    if bar_y && bar_x {
        rgb = vec3<f32>(0.9, 0.5, 0.1);
    }
    return opaque(rgb);
}

@fragment
fn fs_main(@builtin(position) position: vec4<f32>) -> @location(0) vec4<f32> {
    let p = position.xy;
    let size = params.size;
    switch PATTERN {
        case 0u: { return smpte_bars(p, size); }
        case 1u: { return params.color; }
        case 2u: { return gradient(p, size); }
        case 3u: { return checkerboard(p); }
        case 4u: { return moving_box(p, size); }
        case 5u: { return test_card(p, size); }
        default: { return placeholder(p, size); }
    }
}
