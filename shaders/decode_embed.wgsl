// decode_embed: the embedding of one token at one position, for generation with a KV cache.
// Legend: C channels. Twin: one row of cpu::encoder_forward.
//   out[:] = wte[token,:] + wpe[pos,:], with (token, pos) read from `cursor`, which the CPU
//   writes before each generated token (the only per-token upload).
// As in encoder_forward, wte may span several buffers: this one holds rows [row0, row0 + rows).

struct Params { c: u32, row0: u32, rows: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (C)
@group(0) @binding(2) var<storage, read> cursor: array<u32>;    // (2): token, pos
@group(0) @binding(3) var<storage, read> wte: array<f32>;       // (rows, C)
@group(0) @binding(4) var<storage, read> wpe: array<f32>;       // (maxT, C)

@compute @workgroup_size(64)
fn decode_embed(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ch = gid.x;
    if (ch >= p.c) { return; }
    let token = cursor[0];
    if (token < p.row0 || token >= p.row0 + p.rows) { return; }
    out[ch] = wte[(token - p.row0) * p.c + ch] + wpe[cursor[1] * p.c + ch];
}
