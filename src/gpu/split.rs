//! Matrix products split over K. A weight gradient (C x OC outputs, each a sum over the batch's
//! B*T rows) has few output tiles and a long K: `tiny`'s attention projection is one 64x64 tile
//! over 1024 rows, one workgroup, which leaves a second core of lavapipe idle, and at the
//! `shakespeare` shape (384 channels over 16384 rows) 36 tiles of 64 would leave most of a GPU
//! idle. Such a product runs its slices of K side by side (workgroup z of the register-tiled
//! kernels, each writing a partial product into scratch) and `matmul_split_sum` adds them up.
//! Here: the option (`SplitK`, chosen by the trial), the number of slices a product takes, the
//! scratch the partial products need, and the dispatches of one product.
//! Not here: the kernels' tiles (`variants.rs`) and the narrow products (`gpt::Rec::matmul`).

use super::kernels::{Dispatch, Grid, Kernel, Kernels};
use super::params::{MatmulParams, SplitSumParams};
use super::tensor::Bind;
use super::variants::MatmulVariant;
use super::Gpu;
use std::fmt;

/// The fewest workgroups a product should launch: a product of fewer output tiles is split
/// over K into enough slices to reach it (each at least `MIN_SLICE` terms of K, and as many as
/// the scratch holds). 0: never split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitK(pub u32);

impl SplitK {
    pub const OFF: SplitK = SplitK(0);
    /// What the trial times: off; enough to fill a CPU's cores; a few GPU cores' worth; a
    /// large GPU's (an H200 has 132 multiprocessors).
    pub const CANDIDATES: &'static [SplitK] = &[SplitK(0), SplitK(8), SplitK(64), SplitK(512)];
    /// The fewest terms of K a slice takes: shorter slices would spend more on writing and
    /// adding partial products than they save. A multiple of every tile's BK.
    pub const MIN_SLICE: u32 = 128;

    /// Reads what `Display` writes: "off" or a count of workgroups.
    pub fn parse(s: &str) -> Result<SplitK, String> {
        match (s, s.parse::<u32>()) {
            ("off", _) => Ok(SplitK::OFF),
            (_, Ok(n)) => Ok(SplitK(n)),
            _ => Err(format!("split-K target '{s}' is neither \"off\" nor a count of workgroups")),
        }
    }

    /// (slices, terms of K a slice) for a product of `tiles` output tiles over `k` terms, in
    /// steps of `bk`, with room for `room` partial products: (1, k) where it is not split.
    /// Every slice but the last is a whole number of steps, so no step reads into the next.
    pub fn slices(self, tiles: u32, k: u32, bk: u32, room: usize) -> (u32, u32) {
        if self.0 <= tiles {
            return (1, k);
        }
        let most = (k / SplitK::MIN_SLICE).min(room.min(u32::MAX as usize) as u32);
        let wanted = self.0.div_ceil(tiles).min(most);
        if wanted < 2 {
            return (1, k);
        }
        let slice = k.div_ceil(wanted).next_multiple_of(bk);
        match k.div_ceil(slice) {
            s if s >= 2 => (s, slice),
            _ => (1, k),
        }
    }
}

impl fmt::Display for SplitK {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("off"),
            n => write!(f, "{n}"),
        }
    }
}

/// Words of scratch for the partial products of a model of `rows` (B*T) rows and `channels`
/// (C): as many as one (N, C) activation. A weight gradient of C x OC outputs then takes up to
/// N / OC slices: at least 2 wherever the batch has twice the rows a 4C layer has outputs.
pub fn split_scratch_words(rows: usize, channels: usize) -> usize {
    rows * channels
}

/// Scratch for split products: a buffer and how many words of it may hold partial products.
#[derive(Clone, Copy)]
pub struct SplitScratch<'a> {
    pub bind: Bind<'a>,
    pub words: usize,
}

impl<'a> SplitScratch<'a> {
    /// All of `t`.
    pub fn of(t: &'a super::GpuTensor) -> SplitScratch<'a> {
        SplitScratch { bind: t.bind(), words: t.len }
    }
}

/// How one tiled product runs: its variant, its grid of output tiles (x over N, y over M), and
/// its slices of K (1: not split) of `slice` terms each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProductPlan {
    pub variant: MatmulVariant,
    pub tiles: [u32; 2],
    pub slices: u32,
    pub slice: u32,
}

impl Kernels {
    /// The plan of out = op(a) @ op(b) (see matmul.wgsl) on the options' variant for its size:
    /// split over K where scratch of `room` words is given and the product has no bias,
    /// residual or scale and too few tiles (see `SplitK`).
    pub fn matmul_plan(&self, p: &MatmulParams, room: Option<usize>) -> ProductPlan {
        let (variant, grid) = self.matmul_launch(p.m, p.n, p.k);
        let Grid::Tiles([x, y, _]) = grid else { unreachable!("matmul_launch gives tiles") };
        let plain = p.has_bias == 0 && p.has_residual == 0 && p.scaled == 0;
        let (slices, slice) = match (room, variant.shape()) {
            (Some(words), Some(tile)) if plain => {
                self.options.split.slices(x * y, p.k, tile.bk, words / (p.m as usize * p.n as usize).max(1))
            }
            _ => (1, p.k),
        };
        ProductPlan { variant, tiles: [x, y], slices, slice }
    }

    /// The dispatches of the product `matmul_plan` plans: one, or for a split product its
    /// slices into `scratch` and their sum into out. `bufs`: out, a, b, bias, residual (bound
    /// even where unused).
    pub fn matmul_dispatches(
        &self,
        gpu: &Gpu,
        p: MatmulParams,
        bufs: &[Bind<'_>; 5],
        scratch: Option<SplitScratch<'_>>,
    ) -> Vec<Dispatch> {
        let ProductPlan { variant, tiles: [x, y], slices, slice } = self.matmul_plan(&p, scratch.map(|s| s.words));
        let Some(scratch) = scratch.filter(|_| slices > 1) else {
            let p = MatmulParams { k_slice: 0, ..p };
            let grid = Grid::Tiles([x, y, 1]);
            return vec![self.dispatch_specialised(
                gpu,
                variant.kernel(),
                &variant.consts_for(&p, self.options.epilogue),
                &p,
                bufs,
                grid,
            )];
        };
        // The slices write plain partial products from word 0 of the scratch; the sum does the
        // rest of the epilogue (accumulate: add into out).
        let part = MatmulParams { accumulate: 0, out_offset: 0, k_slice: slice, ..p };
        let part_bufs = [scratch.bind, bufs[1], bufs[2], bufs[3], bufs[4]];
        let consts = variant.consts_for(&part, self.options.epilogue);
        let count = p.m * p.n;
        let sum = SplitSumParams { count, splits: slices, out_offset: p.out_offset, accumulate: p.accumulate };
        vec![
            self.dispatch_specialised(gpu, variant.kernel(), &consts, &part, &part_bufs, Grid::Tiles([x, y, slices])),
            self.dispatch(gpu, Kernel::MatmulSplitSum, &sum, &[bufs[0], scratch.bind], Grid::Threads(count as usize)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::SplitK;

    /// Slices reach the target where K and the scratch allow, each but the last a whole number of
    /// steps of at least MIN_SLICE terms, together covering K exactly once; products with tiles
    /// enough, or K too short, or no room, are not split.
    #[test]
    fn slices_cover_k_in_whole_steps() {
        let room = usize::MAX;
        assert_eq!(SplitK(8).slices(1, 1024, 16, room), (8, 128));
        assert_eq!(SplitK(8).slices(3, 1024, 16, room), (3, 352));
        assert_eq!(SplitK(64).slices(1, 1024, 8, room), (8, 128));
        assert_eq!(SplitK(8).slices(1, 1024, 16, 2), (2, 512));
        assert_eq!(SplitK::OFF.slices(1, 1024, 16, room), (1, 1024));
        assert_eq!(SplitK(8).slices(8, 1024, 16, room), (1, 1024));
        assert_eq!(SplitK(8).slices(1, 255, 16, room), (1, 255));
        assert_eq!(SplitK(8).slices(1, 4096, 16, 1), (1, 4096));
        for (target, tiles, k, bk) in [(64, 3, 515, 16), (512, 36, 16384, 8), (8, 1, 300, 16), (64, 5, 1000, 8)] {
            let (s, slice) = SplitK(target).slices(tiles, k, bk, room);
            assert!(s >= 2 && slice % bk == 0 && slice >= SplitK::MIN_SLICE, "{target} {tiles} {k}: {s} x {slice}");
            assert!((s - 1) * slice < k && s * slice >= k, "{target} {tiles} {k}: {s} x {slice} misses K");
        }
    }

    #[test]
    fn parses_what_it_writes() {
        for v in SplitK::CANDIDATES {
            assert_eq!(SplitK::parse(&v.to_string()), Ok(*v));
        }
        assert!(SplitK::parse("many").is_err());
    }
}
