//! The `Params` uniform of every kernel, as `#[repr(C)]` structs that mirror the WGSL ones
//! field for field (a test compares the names and sizes with each shader's `struct Params`).
//!
//! Offsets are in 4-byte words; a `row0`/`rows` pair names the rows of a tensor split over
//! several buffers (see `gpt::Layout`) that one buffer holds.

use super::Kernel;

macro_rules! params {
    ($($(#[$doc:meta])* $name:ident for [$($kernel:ident),+] { $($field:ident: $ty:ty),* })*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
            pub struct $name { $(pub $field: $ty),* }
        )*

        /// The field names of each kernel's `Params`, in order.
        pub fn params_fields(k: Kernel) -> &'static [&'static str] {
            match k { $($(Kernel::$kernel)|+ => &[$(stringify!($field)),*],)* }
        }

        /// The size in bytes of each kernel's `Params`.
        pub fn params_size(k: Kernel) -> usize {
            match k { $($(Kernel::$kernel)|+ => std::mem::size_of::<$name>(),)* }
        }
    };
}

params! {
    /// Embedding of tokens whose id falls in [row0, row0 + rows): the rows this `wte` buffer holds.
    EncoderParams for [EncoderForward] { b: u32, t: u32, c: u32, row0: u32, rows: u32 }
    EncoderBackwardWteParams for [EncoderBackwardWte] { n: u32, c: u32, row0: u32, rows: u32 }
    EncoderBackwardWpeParams for [EncoderBackwardWpe] { b: u32, t: u32, c: u32 }
    /// N rows of C channels.
    RowsParams for [
        LayernormForward, LayernormBackwardDinp, LayernormBackwardDparams, LayernormForwardRows,
        LayernormBackwardDinpRows, LayernormForwardSubgroup, LayernormBackwardDinpSubgroup
    ] { n: u32, c: u32 }
    /// out[out_offset..] (=, or += with accumulate) op(a[a_offset..]) @ op(b[b_offset..]) (+ bias)
    /// (+ residual). With `scaled` the product is multiplied by `scale` (LoRA's alpha / rank)
    /// before the bias.
    MatmulParams for [Matmul, MatmulTiled, MatmulUnrolled, MatmulNarrow] {
        m: u32, n: u32, k: u32, trans_a: u32, trans_b: u32, has_bias: u32,
        accumulate: u32, a_offset: u32, b_offset: u32, out_offset: u32, scaled: u32, scale: f32,
        has_residual: u32, k_slice: u32
    }
    /// The sum of a split product's `splits` partial products of `count` words each, into
    /// out[out_offset..] (=, or += with accumulate).
    SplitSumParams for [MatmulSplitSum] { count: u32, splits: u32, out_offset: u32, accumulate: u32 }
    BiasBackwardParams for [MatmulBackwardBias] { n: u32, oc: u32 }
    AttentionParams for [
        AttentionForward, AttentionBackwardDpreatt, AttentionBackwardDqkv,
        AttentionForwardFlash, AttentionBackwardDq, AttentionBackwardDkv
    ] {
        b: u32, t: u32, c: u32, nh: u32
    }
    /// An elementwise kernel over n values.
    CountParams for [GeluForward, GeluBackward] { n: u32 }
    /// One chunk of vocabulary [v0, v0 + vc) of the logits; `first` starts the running statistics.
    ClassifierStatsParams for [ClassifierStats, ClassifierStatsRows, ClassifierStatsSubgroup] {
        n: u32, vc: u32, v0: u32, first: u32
    }
    ClassifierLossParams for [ClassifierLoss] { n: u32, accumulate: u32 }
    ClassifierBackwardParams for [ClassifierBackward] { n: u32, vc: u32, v0: u32 }
    GradNormPartialParams for [GradNormPartial] { numel: u32, slot: u32 }
    GradNormFinalizeParams for [GradNormFinalize] { count: u32, max_norm: f32 }
    AdamwParams for [AdamwUpdate] { words: u32, decayed: u32, weight_decay: f32, beta1: f32, beta2: f32, eps: f32 }
    DecodeEmbedParams for [DecodeEmbed] { c: u32, row0: u32, rows: u32 }
    KvAppendParams for [KvAppend] { c: u32 }
    KvStoreRowsParams for [KvStoreRows] { c: u32, rows: u32 }
    AttentionDecodeParams for [AttentionDecode] { c: u32, nh: u32, max_t: u32 }
}

/// `x as u32` for sizes and offsets, which the memory plan keeps far below 2^32 words.
pub fn u(x: usize) -> u32 {
    debug_assert!(x <= u32::MAX as usize, "{x} does not fit a u32 kernel parameter");
    x as u32
}
