// streamlib vector pipeline: tessellated shapes (lyon) drawn 4x multisampled into a layer texture.
// Each vertex carries its premultiplied colour, or a paint index whose gradient is evaluated per
// fragment in the shape's own (untransformed) coordinates.

struct VectorParams {
    // x, y: target size in pixels; z, w unused.
    size: vec4<f32>,
};

struct Paint {
    // x: 1 linear, 2 radial; y: number of stops (2..4); z, w unused.
    kind: vec4<u32>,
    // linear: start.xy, end.xy; radial: centre.xy, radius, unused.
    geometry: vec4<f32>,
    // Stop offsets in 0..1.
    offsets: vec4<f32>,
    // Premultiplied stop colours.
    colors: array<vec4<f32>, 4>,
};

@group(0) @binding(0) var<uniform> params: VectorParams;
@group(0) @binding(1) var<storage, read> paints: array<Paint>;

struct VsIn {
    @location(0) position: vec2<f32>,
    @location(1) local: vec2<f32>,
    @location(2) color: vec4<f32>,
    @location(3) paint: u32,
};

struct VsOut {
    @builtin(position) position: vec4<f32>,
    @location(0) local: vec2<f32>,
    @location(1) color: vec4<f32>,
    @location(2) @interpolate(flat) paint: u32,
};

@vertex
fn vs_main(in: VsIn) -> VsOut {
    var out: VsOut;
    let ndc = in.position / params.size.xy * 2.0 - 1.0;
    out.position = vec4<f32>(ndc.x, -ndc.y, 0.0, 1.0);
    out.local = in.local;
    out.color = in.color;
    out.paint = in.paint;
    return out;
}

fn gradient(p: Paint, local: vec2<f32>) -> vec4<f32> {
    var t: f32;
    if p.kind.x == 1u {
        let d = p.geometry.zw - p.geometry.xy;
        t = dot(local - p.geometry.xy, d) / max(dot(d, d), 1e-6);
    } else {
        t = distance(local, p.geometry.xy) / max(p.geometry.z, 1e-6);
    }
    t = clamp(t, 0.0, 1.0);
    var c = p.colors[0];
    for (var i = 1u; i < min(p.kind.y, 4u); i = i + 1u) {
        let a = p.offsets[i - 1u];
        let b = p.offsets[i];
        if t >= a {
            c = mix(p.colors[i - 1u], p.colors[i], clamp((t - a) / max(b - a, 1e-6), 0.0, 1.0));
        }
    }
    return c;
}

@fragment
fn fs_main(in: VsOut) -> @location(0) vec4<f32> {
    if in.paint == 0u {
        return in.color;
    }
    // The vertex colour's alpha scales the gradient (global alpha of the draw).
    return gradient(paints[in.paint - 1u], in.local) * in.color.a;
}
