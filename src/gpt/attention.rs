//! Causal self-attention over a block's fused q,k,v projection, forward and backward: the one
//! place that records the attention kernels, used by training, prefill and `kiln bench`.
//!
//! Two ways, chosen by head size: flash-style kernels (attention_forward_flash,
//! attention_backward_dq, attention_backward_dkv) for heads of at most `FLASH_HS_MAX` channels,
//! which keep only a log-sum-exp per row, so memory grows linearly in T; and the first kernels
//! (attention_forward, attention_backward_dpreatt, attention_backward_dqkv) for wider heads,
//! which keep the (B, NH, T, T) probabilities.
//!
//! Legend: B batch, T time, C channels, NH heads, hs = C/NH.

use super::forward::Rec;
use crate::gpu::params::*;
use crate::gpu::{Bind, Grid, Kernel};

/// The widest head the flash kernels take (their `HS_MAX`): GPT-2's 64 at every size.
pub const FLASH_HS_MAX: usize = 64;
/// The most invocations of a flash workgroup (their `WG`), each taking ROWS rows of queries
/// (forward, dq) or keys (dkv).
const FLASH_INVOCATIONS: u32 = 64;
/// The fewest: dkv stages 16 rows of lse and delta with an invocation each.
const FLASH_INVOCATIONS_MIN: u32 = 16;

/// The buffers attention reads and writes, forward and backward.
pub(crate) struct AttentionBufs<'a> {
    pub qkv: Bind<'a>, // (B, T, 3C)
    pub out: Bind<'a>, // (B, T, C)
    /// What the forward pass keeps for the backward pass: the log-sum-exp (B, NH, T) of each
    /// row's scores (flash), or the probabilities (B, NH, T, T).
    pub kept: Bind<'a>,
}

/// The backward pass's own buffers.
pub(crate) struct AttentionGrads<'a> {
    pub dout: Bind<'a>, // (B, T, C)
    pub dqkv: Bind<'a>, // (B, T, 3C), written
    /// Each row's delta (B, NH, T) (flash), or the score gradients (B, NH, T, T).
    pub scratch: Bind<'a>,
}

/// Whether heads of `hs` channels take the flash kernels.
pub fn is_flash(hs: usize) -> bool {
    hs <= FLASH_HS_MAX
}

/// Words of what the forward pass keeps per layer, and of the backward pass's scratch.
pub(crate) fn kept_words(b: usize, nh: usize, t: usize, hs: usize) -> (usize, usize) {
    if is_flash(hs) {
        (b * nh * t, b * nh * t)
    } else {
        (b * nh * t * t, b * nh * t * t)
    }
}

fn dims(b: usize, t: usize, c: usize, nh: usize) -> AttentionParams {
    AttentionParams { b: u(b), t: u(t), c: u(c), nh: u(nh) }
}

/// Invocations of a flash workgroup for a block of `t` rows at `rows` an invocation: 64, or the
/// power of two from 16 that covers the block, which then takes one workgroup a head. A
/// workgroup of 64 at 4 rows takes 256 rows, so at `tiny`'s block of 64 three quarters of its
/// invocations had nothing to do: on lavapipe that attention's forward + backward (B 16, 2 heads
/// of 32) took 11.6-12.2 ms with 64 and 7.2-7.3 ms with 16 (BENCHMARKS.md, eighth round).
pub fn flash_invocations(t: usize, rows: u32) -> u32 {
    let needed = u(t.div_ceil(rows as usize)).next_power_of_two();
    needed.clamp(FLASH_INVOCATIONS_MIN, FLASH_INVOCATIONS)
}

/// The flash kernels' constants: the head size rounded up to a vec4, so that their loops over
/// channels have constant bounds (compilers unroll them and keep the rows in registers; with
/// the widest bound for every head, a 32-channel head did twice the work), the rows an
/// invocation takes (`KernelOptions::attention`, chosen by the trial), and the invocations of a
/// workgroup (`flash_invocations`).
pub fn flash_consts(hs: usize, rows: u32, invocations: u32) -> [(&'static str, u32); 3] {
    [("HS_MAX", u(hs.div_ceil(4) * 4)), ("ROWS", rows), ("WG", invocations)]
}

/// One flash workgroup per `invocations` * `rows` rows (queries, or keys for dkv) of one (b, h).
pub fn flash_tiles(b: usize, t: usize, nh: usize, rows: u32, invocations: u32) -> [u32; 3] {
    [u(t.div_ceil((invocations * rows) as usize)), u(b * nh), 1]
}

/// The flash kernels' constants and grid, for the rows an invocation the recorder's options say.
fn flash_launch(r: &Rec, [b, t, c, nh]: [usize; 4]) -> ([(&'static str, u32); 3], Grid) {
    let rows = r.k.options.attention.0;
    let invocations = flash_invocations(t, rows);
    (flash_consts(c / nh, rows, invocations), Grid::Tiles(flash_tiles(b, t, nh, rows, invocations)))
}

/// out = softmax(q k^T / sqrt(hs), causal) v, per head.
pub(crate) fn attention_forward(r: &mut Rec, x: &AttentionBufs, [b, t, c, nh]: [usize; 4]) {
    if is_flash(c / nh) {
        let (consts, grid) = flash_launch(r, [b, t, c, nh]);
        r.push_specialised(Kernel::AttentionForwardFlash, &consts, dims(b, t, c, nh), &[x.out, x.kept, x.qkv], grid);
    } else {
        r.push(Kernel::AttentionForward, dims(b, t, c, nh), &[x.out, x.kept, x.qkv], Grid::Threads(b * nh * t));
    }
}

/// dqkv from dout, given what the forward pass kept.
pub(crate) fn attention_backward(r: &mut Rec, x: &AttentionBufs, d: &AttentionGrads, [b, t, c, nh]: [usize; 4]) {
    let p = dims(b, t, c, nh);
    if is_flash(c / nh) {
        let (consts, grid) = flash_launch(r, [b, t, c, nh]);
        let bufs = [d.dqkv, d.scratch, d.dout, x.qkv, x.out, x.kept];
        r.push_specialised(Kernel::AttentionBackwardDq, &consts, p, &bufs, grid);
        let bufs = [d.dqkv, d.dout, x.qkv, x.kept, d.scratch];
        r.push_specialised(Kernel::AttentionBackwardDkv, &consts, p, &bufs, grid);
    } else {
        let rows = Grid::Threads(b * nh * t);
        r.push(Kernel::AttentionBackwardDpreatt, p, &[d.scratch, d.dout, x.qkv, x.kept], rows);
        r.push(Kernel::AttentionBackwardDqkv, p, &[d.dqkv, d.dout, x.qkv, x.kept, d.scratch], rows);
    }
}
