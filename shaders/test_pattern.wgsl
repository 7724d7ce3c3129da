// streamlib test pattern pipeline: every generated pattern, drawn per frame on the GPU.
// Patterns are pure functions of (pixel, frame index, size), so renders are reproducible.

struct PatternParams {
    // Premultiplied colour parameter of the pattern.
    color: vec4<f32>,
    // Output size in pixels.
    size: vec2<f32>,
    frame: u32,
    // 0 smpte_bars, 1 solid, 2 gradient, 3 checkerboard, 4 moving_box, 5 test_card, 6 placeholder
    pattern: u32,
    // Nominal frames per second (for timecode and animation speed).
    fps: f32,
    // Checkerboard cell side in pixels.
    cell: f32,
    _pad: vec2<f32>,
};

@group(0) @binding(0) var<uniform> params: PatternParams;

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
        return params.color * t;
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

// Seven-segment digit coverage at local position q in a 1 x 2 cell (x right, y down).
// Segment bits: 0 a (top), 1 b, 2 c, 3 d (bottom), 4 e, 5 f, 6 g (middle).
fn seven_segment(q: vec2<f32>, digit: u32) -> f32 {
    var masks = array<u32, 10>(0x3Fu, 0x06u, 0x5Bu, 0x4Fu, 0x66u, 0x6Du, 0x7Du, 0x07u, 0x7Fu, 0x6Fu);
    let m = masks[min(digit, 9u)];
    let t = 0.18;
    let in_x = q.x > t && q.x < 1.0 - t;
    let hit_h = array<bool, 3>(abs(q.y - 0.0 - t * 0.5) < t * 0.5, abs(q.y - 1.0) < t * 0.5, abs(q.y - 2.0 + t * 0.5) < t * 0.5);
    let left = q.x >= 0.0 && q.x < t;
    let right = q.x > 1.0 - t && q.x <= 1.0;
    let upper = q.y > 0.0 && q.y < 1.0;
    let lower = q.y > 1.0 && q.y < 2.0;
    var on = false;
    on = on || ((m & 0x01u) != 0u && in_x && hit_h[0]);
    on = on || ((m & 0x02u) != 0u && right && upper);
    on = on || ((m & 0x04u) != 0u && right && lower);
    on = on || ((m & 0x08u) != 0u && in_x && hit_h[2]);
    on = on || ((m & 0x10u) != 0u && left && lower);
    on = on || ((m & 0x20u) != 0u && left && upper);
    on = on || ((m & 0x40u) != 0u && in_x && hit_h[1]);
    return select(0.0, 1.0, on);
}

// Coverage of "HH:MM:SS:FF" for frame `frame` at nominal rate `fps`, laid out from `origin` with
// digit cells `h` pixels high.
fn timecode(p: vec2<f32>, origin: vec2<f32>, h: f32, frame: u32, fps: u32) -> f32 {
    let cell = h * 0.5;       // digit cell width (cell is 1 x 2 units)
    let advance = cell * 1.4; // digit pitch
    let q = (p - origin) / cell;
    if q.y < 0.0 || q.y > 2.0 || q.x < 0.0 {
        return 0.0;
    }
    let slot = u32(q.x / 1.4);   // 0..10 over "HH:MM:SS:FF"
    if slot > 10u {
        return 0.0;
    }
    let local = vec2<f32>(q.x - f32(slot) * 1.4, q.y);
    if slot % 3u == 2u {
        // colon: two dots
        let dot1 = distance(local, vec2<f32>(0.5, 0.6)) < 0.14;
        let dot2 = distance(local, vec2<f32>(0.5, 1.4)) < 0.14;
        return select(0.0, 1.0, dot1 || dot2);
    }
    let rate = max(fps, 1u);
    let seconds = frame / rate;
    var fields = array<u32, 4>(seconds / 3600u % 100u, seconds / 60u % 60u, seconds % 60u, frame % rate);
    let value = fields[slot / 3u];
    let digit = select(value % 10u, value / 10u % 10u, slot % 3u == 0u);
    return seven_segment(local, digit);
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
    // Timecode box below the centre.
    let tc_h = unit * 0.8;
    let tc_w = tc_h * 0.5 * 1.4 * 11.0;
    let tc_origin = vec2<f32>(size.x * 0.5 - tc_w * 0.5, size.y * 0.5 + unit * 1.1);
    if all(p > tc_origin - vec2<f32>(unit * 0.2)) && all(p < tc_origin + vec2<f32>(tc_w, tc_h) + vec2<f32>(unit * 0.2)) {
        rgb = vec3<f32>(0.0);
    }
    let fps = u32(round(params.fps));
    rgb = mix(rgb, vec3<f32>(1.0), timecode(p, tc_origin, tc_h, params.frame, fps));
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
    switch params.pattern {
        case 0u: { return smpte_bars(p, size); }
        case 1u: { return params.color; }
        case 2u: { return gradient(p, size); }
        case 3u: { return checkerboard(p); }
        case 4u: { return moving_box(p, size); }
        case 5u: { return test_card(p, size); }
        default: { return placeholder(p, size); }
    }
}
