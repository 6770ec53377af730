// gelu_forward: GELU with the tanh approximation, elementwise. Twin: cpu::gelu_forward.
//   out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
// The tanh argument is clamped to +-15, where tanh is already +-1 in f32, because some
// drivers compute tanh through exp and return NaN for large arguments.

struct Params { n: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (N)
@group(0) @binding(2) var<storage, read> inp: array<f32>;       // (N)

const SQRT_2_OVER_PI: f32 = 0.7978845608028654;

@compute @workgroup_size(256)
fn gelu_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.n) { return; }
    let x = inp[i];
    let u = clamp(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x), -15.0, 15.0);
    out[i] = 0.5 * x * (1.0 + tanh(u));
}
