// kv_store_rows: stores the keys and values of a whole prompt's positions in one layer's KV cache,
// after a forward pass over the prompt at once (the generator's prefill), so that decoding goes
// on from the cache as if each position had been fed alone.
// Legend: C channels, N rows (positions 0..N), maxT the block size (N <= maxT). No CPU twin, as
// for kv_append: the test compares the logits after a prefill with the CPU model's.
//   cache_k[n,:] = qkv[n, C:2C]; cache_v[n,:] = qkv[n, 2C:3C]   for n < N

struct Params { c: u32, rows: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> cache_k: array<f32>; // (maxT, C)
@group(0) @binding(2) var<storage, read_write> cache_v: array<f32>; // (maxT, C)
@group(0) @binding(3) var<storage, read> qkv: array<f32>;           // (N, 3C)

@compute @workgroup_size(64)
fn kv_store_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (i >= p.rows * p.c) { return; }
    let n = i / p.c;
    let ch = i % p.c;
    cache_k[i] = qkv[n * 3u * p.c + p.c + ch];
    cache_v[i] = qkv[n * 3u * p.c + 2u * p.c + ch];
}
