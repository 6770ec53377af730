// matmul_split_sum: the second half of a product split over K (see `gpu::SplitK`): out (=, or
// += with accumulate) the sum of its S partial products, each (M, N), added in order 0..S so
// that the result is the same bits run after run (no atomics). Twin: cpu::matmul_split_sum.
// Legend: COUNT = M * N outputs, S slices of K.
//   out[out_offset + i] (+)= sum over s of partials[s * COUNT + i]
// A product whose tiles are too few to fill the adapter (a weight gradient: C x OC outputs over
// B*T rows) runs its slices of K side by side in the register-tiled kernels (their workgroup z),
// each writing its partial product; this kernel adds them up.

struct Params { count: u32, splits: u32, out_offset: u32, accumulate: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;  // (M, N) from out_offset
@group(0) @binding(2) var<storage, read> partials: array<f32>;   // (S, M, N)

@compute @workgroup_size(256)
fn matmul_split_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.count) { return; }
    var sum = partials[i];
    for (var s = 1u; s < p.splits; s++) {
        sum += partials[s * p.count + i];
    }
    let o = p.out_offset + i;
    if (p.accumulate == 1u) { sum = out[o] + sum; }
    out[o] = sum;
}
