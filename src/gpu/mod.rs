//! The WebGPU plumbing, written once: context, tensors, the shader index and dispatch records.
//!
//! Model code builds `Dispatch` lists once and replays them every step; nothing here allocates
//! on the training hot path.

mod context;
mod kernels;
pub mod params;
mod profile;
mod split;
mod tensor;
pub mod tune;
mod variants;

pub use context::{Gpu, NO_ADAPTER_HELP};
pub use kernels::{grid_1d, Dispatch, Grid, Kernel, Kernels, Program, SHADERS};
pub use profile::{by_kernel, profile};
pub use split::{split_scratch_words, ProductPlan, SplitK, SplitScratch};
pub use tensor::{map_and_read, read_bytes, uniform, Bind, GpuTensor};
pub use variants::{
    rewrite_consts, specialise, unrolled_entry, AttentionRows, Epilogue, KernelOptions, MatmulVariant, NormVariant,
    Tile, LARGE_MATMUL_WORK, NARROW_SIDE, SMALL_MATMUL_WORK,
};
