// classifier_loss: each row's cross-entropy from its softmax statistics, and their mean over the
// rows whose target counts (a target of 0xffffffff is ignored, like PyTorch's -100: prompt
// tokens and padding when fine-tuning). One workgroup, rows summed in a fixed order.
// Legend: N rows. Twin: cpu::crossentropy_softmax's losses and their masked mean.
//   losses[n] = m + log(s) - l[target]   (0 for an ignored row)
//   training (accumulate = 0): out = [mean loss, 1 / count]: the second is dloss for the backward
//   evaluation (accumulate = 1): out += [sum of losses, count], summed over batches

struct Params { n: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;    // (2)
@group(0) @binding(2) var<storage, read_write> losses: array<f32>; // (N)
@group(0) @binding(3) var<storage, read> stats: array<f32>;        // (N, 3): max, sum, target logit
@group(0) @binding(4) var<storage, read> targets: array<u32>;      // (N)

const IGNORE: u32 = 0xffffffffu;
var<workgroup> red_loss: array<f32, 256>;
var<workgroup> red_count: array<f32, 256>;

@compute @workgroup_size(256)
fn classifier_loss(@builtin(local_invocation_index) lid: u32) {
    var s = 0.0;
    var c = 0.0;
    for (var i = lid; i < p.n; i += 256u) {
        var l = 0.0;
        if (targets[i] != IGNORE) {
            l = stats[3u * i] + log(stats[3u * i + 1u]) - stats[3u * i + 2u];
            c += 1.0;
        }
        losses[i] = l;
        s += l;
    }
    red_loss[lid] = s;
    red_count[lid] = c;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k >>= 1u) {
        if (lid < k) {
            red_loss[lid] += red_loss[lid + k];
            red_count[lid] += red_count[lid + k];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        let sum = red_loss[0];
        let count = red_count[0];
        if (p.accumulate == 1u) {
            out[0] += sum;
            out[1] += count;
        } else if (count > 0.0) {
            out[0] = sum / count;
            out[1] = 1.0 / count;
        } else {
            out[0] = 0.0;
            out[1] = 0.0;
        }
    }
}
