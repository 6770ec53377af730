// crossentropy_softmax: softmax and cross-entropy fused, forward and backward at once.
// Legend: N rows (B*T), V vocabulary. Twin: cpu::crossentropy_softmax.
//   losses[n] = log(sum_v exp(l[v])) - l[target]   (computed with the row maximum subtracted)
//   dlogits[n,v] = (softmax(l)[v] - [v == target]) * dloss
// The gradient overwrites the logits in place: the logits are not needed after this kernel,
// and a (B*T, V) buffer is the largest activation. One workgroup per row.

struct Params { n: u32, v: u32, dloss: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> losses: array<f32>; // (N)
@group(0) @binding(2) var<storage, read_write> logits: array<f32>; // (N, V) in, dlogits out
@group(0) @binding(3) var<storage, read> targets: array<u32>;      // (N)

const WG: u32 = 64u;
var<workgroup> red: array<f32, 64>;

fn workgroup_reduce(v: f32, lid: u32, take_max: bool) -> f32 {
    red[lid] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s) {
            if (take_max) { red[lid] = max(red[lid], red[lid + s]); } else { red[lid] += red[lid + s]; }
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn crossentropy_softmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let row = wid.x + wid.y * nwg.x;
    if (row >= p.n) { return; }
    let base = row * p.v;
    var m = -3.0e38;
    for (var i = lid; i < p.v; i += WG) { m = max(m, logits[base + i]); }
    let maxv = workgroup_reduce(m, lid, true);
    var s = 0.0;
    for (var i = lid; i < p.v; i += WG) { s += exp(logits[base + i] - maxv); }
    let sum = workgroup_reduce(s, lid, false);
    let tgt = targets[row];
    // Every invocation has read what it needs before anyone overwrites the row.
    let target_logit = logits[base + tgt];
    workgroupBarrier();
    if (lid == 0u) { losses[row] = log(sum) + maxv - target_logit; }
    for (var i = lid; i < p.v; i += WG) {
        let prob = exp(logits[base + i] - maxv) / sum;
        let hit = select(0.0, 1.0, i == tgt);
        logits[base + i] = (prob - hit) * p.dloss;
    }
}
