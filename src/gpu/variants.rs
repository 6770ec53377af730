//! Kernel variants and the options pipelines are built with: which matrix-product kernel and
//! tile shape (chosen per adapter by a timed trial, see `tune`), and whether native shader
//! modules keep wgpu's runtime bounds checks.
//!
//! A tiled variant is matmul_tiled.wgsl with its tile constants rewritten; every candidate is
//! validated by naga and tested against the CPU twin like any kernel.

use std::fmt;

/// How matrix products are computed: the simple 64x64 kernel (matmul.wgsl), or the
/// register-tiled one (matmul_tiled.wgsl) with a tile shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    Simple,
    /// matmul_vec4.wgsl: the 16x16:4x4:16 tile with named registers instead of arrays.
    Vec4,
    /// WX x WY invocations, each owning TM x TN outputs, K staged BK at a time.
    Tiled {
        wx: u32,
        wy: u32,
        tm: u32,
        tn: u32,
        bk: u32,
    },
}

impl MatmulVariant {
    /// Used where no trial has chosen (the page, tests, a failed trial): the fastest on lavapipe
    /// in this session's trial, and a usual shape for GPUs (128 invocations, 32 outputs each).
    pub const DEFAULT: MatmulVariant = MatmulVariant::Tiled { wx: 16, wy: 8, tm: 8, tn: 4, bk: 16 };

    /// What a trial times: the simple kernel and tile shapes sized for real GPUs (64 to 256
    /// invocations, 4x4 to 8x8 outputs each) as well as for CPU rasterisers.
    pub const CANDIDATES: &'static [MatmulVariant] = &[
        MatmulVariant::Simple,
        MatmulVariant::Vec4,
        MatmulVariant::Tiled { wx: 16, wy: 16, tm: 4, tn: 4, bk: 16 },
        MatmulVariant::Tiled { wx: 16, wy: 16, tm: 8, tn: 8, bk: 8 },
        MatmulVariant::Tiled { wx: 16, wy: 8, tm: 8, tn: 4, bk: 16 },
        MatmulVariant::Tiled { wx: 8, wy: 16, tm: 4, tn: 8, bk: 16 },
        MatmulVariant::Tiled { wx: 16, wy: 16, tm: 4, tn: 8, bk: 16 },
        MatmulVariant::Tiled { wx: 16, wy: 16, tm: 8, tn: 4, bk: 16 },
        MatmulVariant::Tiled { wx: 8, wy: 8, tm: 8, tn: 8, bk: 16 },
        MatmulVariant::Tiled { wx: 8, wy: 8, tm: 4, tn: 8, bk: 32 },
    ];

    /// Rows and columns of the output tile one workgroup computes.
    pub fn tile(self) -> (u32, u32) {
        match self {
            MatmulVariant::Simple | MatmulVariant::Vec4 => (64, 64),
            MatmulVariant::Tiled { wx, wy, tm, tn, .. } => (wy * tm, wx * tn),
        }
    }

    /// Whether this adapter can run it: invocations per workgroup and workgroup memory.
    pub fn fits(self, limits: &wgpu::Limits) -> bool {
        let MatmulVariant::Tiled { wx, wy, tm, tn, bk } = self else { return true };
        let (bm, bn) = self.tile();
        // Outputs come in blocks of 4 (vec4s), and the tile loads take a fixed count of rounds
        // (see matmul_tiled.wgsl).
        tm % 4 == 0
            && tn % 4 == 0
            && (bk * bm / 4) % (wx * wy) == 0
            && (bk * bn / 4) % (wx * wy) == 0
            && wx * wy <= limits.max_compute_invocations_per_workgroup
            && wx <= limits.max_compute_workgroup_size_x
            && wy <= limits.max_compute_workgroup_size_y
            && 4 * bk * (bm + bn) <= limits.max_compute_workgroup_storage_size
    }

    /// The constants of matmul_tiled.wgsl that make this variant (none for the others).
    pub fn consts(self) -> Vec<(&'static str, u32)> {
        let MatmulVariant::Tiled { wx, wy, tm, tn, bk } = self else { return vec![] };
        vec![("WX", wx), ("WY", wy), ("TM", tm), ("TN", tn), ("BK", bk)]
    }

    /// The kernel that runs this variant.
    pub fn kernel(self) -> super::Kernel {
        match self {
            MatmulVariant::Simple => super::Kernel::Matmul,
            MatmulVariant::Vec4 => super::Kernel::MatmulVec4,
            MatmulVariant::Tiled { .. } => super::Kernel::MatmulTiled,
        }
    }

    /// The WGSL source of a tiled variant: matmul_tiled.wgsl with its constants rewritten.
    pub fn tiled_source(self) -> Option<String> {
        let MatmulVariant::Tiled { .. } = self else { return None };
        Some(rewrite_consts(super::Kernel::MatmulTiled.source(), &self.consts()))
    }

    /// Reads what `Display` writes: "simple" or "16x8:8x4:16" (WXxWY:TMxTN:BK).
    pub fn parse(s: &str) -> Result<MatmulVariant, String> {
        match s {
            "simple" => return Ok(MatmulVariant::Simple),
            "vec4" => return Ok(MatmulVariant::Vec4),
            _ => {}
        }
        let bad = || format!("matmul variant '{s}' is not 'simple', 'vec4' or WXxWY:TMxTN:BK, such as 16x8:8x4:16");
        let nums: Vec<u32> =
            s.split([':', 'x']).map(|p| p.parse::<u32>().map_err(|_| bad())).collect::<Result<_, _>>()?;
        let [wx, wy, tm, tn, bk] = nums[..] else { return Err(bad()) };
        let ok = |v: u32, max: u32| (1..=max).contains(&v);
        if !(ok(wx, 64) && ok(wy, 64) && ok(tm, 16) && ok(tn, 16) && ok(bk, 64)) {
            return Err(format!(
                "matmul variant '{s}': sizes out of range (threads 1-64 a side, outputs 1-16, BK 1-64)"
            ));
        }
        Ok(MatmulVariant::Tiled { wx, wy, tm, tn, bk })
    }
}

impl fmt::Display for MatmulVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatmulVariant::Simple => write!(f, "simple"),
            MatmulVariant::Vec4 => write!(f, "vec4"),
            MatmulVariant::Tiled { wx, wy, tm, tn, bk } => write!(f, "{wx}x{wy}:{tm}x{tn}:{bk}"),
        }
    }
}

/// `source` with each line `const NAME: u32 = ...;` of `consts` given the new value. Panics
/// where a name has no such line: a kernel and its caller disagree (tests build every variant).
pub fn rewrite_consts(source: &str, consts: &[(&str, u32)]) -> String {
    let mut out = String::with_capacity(source.len());
    let mut seen = 0;
    for line in source.lines() {
        match consts.iter().find(|(name, _)| line.starts_with(&format!("const {name}: u32 = "))) {
            Some((name, v)) => {
                out.push_str(&format!("const {name}: u32 = {v}u;"));
                seen += 1;
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    assert_eq!(seen, consts.len(), "a constant of {consts:?} is not declared in the shader");
    out
}

/// How LayerNorm's row reductions run: a workgroup per row with tree sums in workgroup memory
/// (layernorm_forward.wgsl), or an invocation per row with no barriers (layernorm_*_rows.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormVariant {
    Workgroup,
    Rows,
}

impl NormVariant {
    pub const CANDIDATES: &'static [NormVariant] = &[NormVariant::Workgroup, NormVariant::Rows];

    pub fn parse(s: &str) -> Result<NormVariant, String> {
        match s {
            "workgroup" => Ok(NormVariant::Workgroup),
            "rows" => Ok(NormVariant::Rows),
            _ => Err(format!("layernorm variant '{s}' is neither 'workgroup' nor 'rows'")),
        }
    }

    /// The forward and input-gradient kernels, and the grid for N rows.
    pub fn launch(self, n: usize) -> (super::Kernel, super::Kernel, super::Grid) {
        use super::{Grid, Kernel};
        match self {
            NormVariant::Workgroup => (Kernel::LayernormForward, Kernel::LayernormBackwardDinp, Grid::Groups(n)),
            NormVariant::Rows => (Kernel::LayernormForwardRows, Kernel::LayernormBackwardDinpRows, Grid::Threads(n)),
        }
    }
}

impl fmt::Display for NormVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NormVariant::Workgroup => "workgroup",
            NormVariant::Rows => "rows",
        })
    }
}

/// Products of fewer multiply-adds than this (M N K) take `KernelOptions::matmul_small`: the
/// best tile for a narrow product (64 channels, a few thousand rows) is not the best for a wide
/// one (measured on lavapipe: `tiny` 5388-6037 tokens/s with 16x8:8x4:16, 3702-4230 with
/// 16x16:4x8:16, which is 11% faster on `small`).
pub const SMALL_MATMUL_WORK: u64 = 1 << 25;

/// What the pipelines are built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Matrix products of at least SMALL_MATMUL_WORK multiply-adds.
    pub matmul: MatmulVariant,
    /// Smaller ones.
    pub matmul_small: MatmulVariant,
    pub norm: NormVariant,
    /// Keep wgpu's runtime bounds checks in native shader modules (the browser always keeps
    /// its own). Off by default: every kernel guards its own indexing, as the tests show.
    pub checked: bool,
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            matmul: MatmulVariant::DEFAULT,
            matmul_small: MatmulVariant::DEFAULT,
            norm: NormVariant::Workgroup,
            checked: false,
        }
    }
}
