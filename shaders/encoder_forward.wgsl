// encoder_forward: the token embedding plus the learned position embedding.
// Legend: B batch, T time, C channels, V vocabulary. Twin: cpu::encoder_forward.
//   out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]
// wte may be split by rows over several buffers: this dispatch binds the one holding rows
// [row0, row0 + rows) and writes only the positions whose token is there, so each output has
// one writer however many buffers there are.

struct Params { b: u32, t: u32, c: u32, row0: u32, rows: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>; // (B, T, C)
@group(0) @binding(2) var<storage, read> tokens: array<u32>;    // (B, T)
@group(0) @binding(3) var<storage, read> wte: array<f32>;       // (rows, C): wte[row0..row0+rows]
@group(0) @binding(4) var<storage, read> wpe: array<f32>;       // (maxT, C)

@compute @workgroup_size(256)
fn encoder_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_index) lid: u32) {
    let i = (wid.x + wid.y * nwg.x) * 256u + lid;
    if (i >= p.b * p.t * p.c) { return; }
    let bt = i / p.c;
    let ch = i % p.c;
    let t = bt % p.t;
    let token = tokens[bt];
    if (token < p.row0 || token >= p.row0 + p.rows) { return; }
    out[i] = wte[(token - p.row0) * p.c + ch] + wpe[t * p.c + ch];
}
