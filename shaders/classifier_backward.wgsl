// classifier_backward: the gradient of the mean cross-entropy with respect to one vocabulary
// chunk of logits, written over those logits (they are not needed after it).
// Legend: N rows, Vc the chunk's width, v0 its first token. Twin: cpu::crossentropy_softmax's
// dlogits.
//   dl[n,j] = (exp(l[n,j] - m) / s - [v0 + j == target]) * dloss   (0 for an ignored row)
// with m, s the row's softmax statistics over the whole vocabulary and dloss = 1 / count.

struct Params { n: u32, vc: u32, v0: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> logits: array<f32>; // (N, Vc): logits in, dlogits out
@group(0) @binding(2) var<storage, read> stats: array<f32>;        // (N, 3): max, sum, target logit
@group(0) @binding(3) var<storage, read> targets: array<u32>;      // (N)
@group(0) @binding(4) var<storage, read> loss: array<f32>;         // (2): mean loss, dloss

const IGNORE: u32 = 0xffffffffu;

@compute @workgroup_size(256)
fn classifier_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                       @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.n * p.vc) { return; }
    let row = i / p.vc;
    let tgt = targets[row];
    if (tgt == IGNORE) {
        logits[i] = 0.0;
        return;
    }
    let prob = exp(logits[i] - stats[3u * row]) / stats[3u * row + 1u];
    let hit = select(0.0, 1.0, p.v0 + i % p.vc == tgt);
    logits[i] = (prob - hit) * loss[1];
}
