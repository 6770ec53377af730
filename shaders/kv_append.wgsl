// kv_append: stores the key and value of the newest position in one layer's KV cache.
// Legend: C channels, maxT the block size. No CPU twin: the cache only saves recomputation; the
// test compares generation logits with the full forward pass.
//   cache_k[pos,:] = qkv[C:2C]; cache_v[pos,:] = qkv[2C:3C]

struct Params { c: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> cache_k: array<f32>; // (maxT, C)
@group(0) @binding(2) var<storage, read_write> cache_v: array<f32>; // (maxT, C)
@group(0) @binding(3) var<storage, read> qkv: array<f32>;           // (3C)
@group(0) @binding(4) var<storage, read> cursor: array<u32>;        // (2): token, pos

@compute @workgroup_size(64)
fn kv_append(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ch = gid.x;
    if (ch >= p.c) { return; }
    let pos = cursor[1];
    cache_k[pos * p.c + ch] = qkv[p.c + ch];
    cache_v[pos * p.c + ch] = qkv[2u * p.c + ch];
}
