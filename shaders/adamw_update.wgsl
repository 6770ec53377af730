// adamw_update: one AdamW step for every tensor of one arena (see src/gpt/arena.rs), exactly
// PyTorch's order, four words an invocation. Twin: cpu::adamw_update, tensor by tensor.
//   g = grad * clip_scale
//   p = p * (1 - lr * wd)                      decoupled decay: wd for words below `decayed`
//                                              (2-D tensors), 0 above (1-D tensors)
//   m = m + (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2
//   p = p - (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps),  bc = 1 - beta^step
// The padding between tensors holds zeros in all four arenas, and stays zero: g = m = v = 0
// gives a step of 0 / eps, and it never decays, lying above `decayed` or inside the decaying
// run where 0 * (1 - lr wd) = 0.
// A step whose loss or gradient norm was not finite (norm[2] = 1, set by grad_norm_finalize)
// changes nothing: the weights and both moments stay as they were.
// lr, bc1 and bc2 change every step: they live in `step`, written once per step by the CPU.

struct Params { words: u32, decayed: u32, weight_decay: f32, beta1: f32, beta2: f32, eps: f32 }
struct Step { lr: f32, bias_c1: f32, bias_c2: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> step: Step;
@group(0) @binding(2) var<storage, read_write> param: array<vec4<f32>>; // (words / 4)
@group(0) @binding(3) var<storage, read> grad: array<vec4<f32>>;        // (words / 4)
@group(0) @binding(4) var<storage, read_write> m: array<vec4<f32>>;     // (words / 4)
@group(0) @binding(5) var<storage, read_write> v: array<vec4<f32>>;     // (words / 4)
@group(0) @binding(6) var<storage, read> norm: array<f32>;              // (4): norm, clip scale, skip, skipped

@compute @workgroup_size(256)
fn adamw_update(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (4u * i >= p.words || norm[2] != 0.0) { return; }
    let wd = select(0.0, p.weight_decay, 4u * i < p.decayed);
    let g = grad[i] * norm[1];
    var w = param[i] * (1.0 - step.lr * wd);
    let mi = m[i] + (1.0 - p.beta1) * (g - m[i]);
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    w -= (step.lr / step.bias_c1) * mi / (sqrt(vi) / sqrt(step.bias_c2) + p.eps);
    param[i] = w;
}
