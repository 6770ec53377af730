//! Kernel variants and the options pipelines are built with: which matrix-product kernel and
//! tile shape (chosen per adapter by a timed trial, see `tune`), and whether native shader
//! modules keep wgpu's runtime bounds checks.
//!
//! A tiled variant is matmul_tiled.wgsl with its tile constants rewritten; every candidate is
//! validated by naga and tested against the CPU twin like any kernel.

use super::split::SplitK;
use std::fmt;

/// A register tile: WX x WY invocations, each owning TM x TN outputs (multiples of 4), K staged
/// BK at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    pub wx: u32,
    pub wy: u32,
    pub tm: u32,
    pub tn: u32,
    pub bk: u32,
}

const fn tile(wx: u32, wy: u32, tm: u32, tn: u32, bk: u32) -> Tile {
    Tile { wx, wy, tm, tn, bk }
}

/// How matrix products are computed: the simple 64x64 kernel (matmul.wgsl), or a register
/// tile, with its loops over outputs as loops over arrays (matmul_tiled.wgsl) or written out
/// (matmul_unrolled.wgsl).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulVariant {
    Simple,
    Tiled(Tile),
    Unrolled(Tile),
}

impl MatmulVariant {
    /// Used where no trial has chosen (the page, tests, a failed trial): the fastest on lavapipe
    /// in an earlier session's trial, and a usual shape for GPUs (128 invocations, 32 outputs each).
    pub const DEFAULT: MatmulVariant = MatmulVariant::Tiled(tile(16, 8, 8, 4, 16));

    /// What a trial times: the simple kernel and tile shapes sized for real GPUs (64 to 256
    /// invocations, 4x4 to 8x8 outputs each) as well as for CPU rasterisers (written out, up to
    /// 16x16 outputs an invocation: lavapipe keeps a lane's sums in vector registers, spilling
    /// them cheaply, while each read of workgroup memory is a loop over its lanes). Each
    /// candidate adds seconds on SwiftShader to the page's first trial, so shapes that won
    /// nowhere were dropped (BENCHMARKS.md has the trials they lost).
    pub const CANDIDATES: &'static [MatmulVariant] = &[
        MatmulVariant::Simple,
        MatmulVariant::Tiled(tile(16, 8, 8, 4, 16)),
        MatmulVariant::Tiled(tile(8, 16, 4, 8, 16)),
        MatmulVariant::Tiled(tile(16, 16, 4, 8, 16)),
        MatmulVariant::Tiled(tile(8, 8, 8, 8, 16)),
        MatmulVariant::Unrolled(tile(8, 8, 8, 8, 16)),
        MatmulVariant::Unrolled(tile(16, 16, 8, 8, 16)),
        MatmulVariant::Unrolled(tile(16, 16, 8, 16, 8)),
        MatmulVariant::Unrolled(tile(16, 16, 16, 16, 8)),
    ];

    /// The same variant for products of every size.
    pub fn everywhere(self, base: KernelOptions) -> KernelOptions {
        KernelOptions { matmul: self, matmul_small: self, matmul_large: self, ..base }
    }

    /// The register tile, if any.
    pub fn shape(self) -> Option<Tile> {
        match self {
            MatmulVariant::Simple => None,
            MatmulVariant::Tiled(t) | MatmulVariant::Unrolled(t) => Some(t),
        }
    }

    /// Rows and columns of the output tile one workgroup computes.
    pub fn tile(self) -> (u32, u32) {
        self.shape().map_or((64, 64), |t| (t.wy * t.tm, t.wx * t.tn))
    }

    /// Whether this adapter can run it: invocations per workgroup and workgroup memory.
    pub fn fits(self, limits: &wgpu::Limits) -> bool {
        let Some(Tile { wx, wy, tm, tn, bk }) = self.shape() else { return true };
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

    /// The constants of the kernel's source that make this variant (none for the simple one).
    pub fn consts(self) -> Vec<(&'static str, u32)> {
        let Some(Tile { wx, wy, tm, tn, bk }) = self.shape() else { return vec![] };
        vec![("WX", wx), ("WY", wy), ("TM", tm), ("TN", tn), ("BK", bk)]
    }

    /// `consts` for one product: with `WHOLE` = 1 where its M, N and K are whole multiples of
    /// the tile and it is not scaled, compiled without bounds tests (on lavapipe a 1088 x 256 x
    /// 64 product's epilogue and loads took 29% of its time with them), `RESIDUAL` and
    /// `ACCUMULATE` as the product adds a residual, or adds into out, or not (or 2, tested at
    /// run time, as `epilogue` says), and `SPLIT` as it takes a slice of K (see `SplitK`) or all
    /// of it. The simple kernel has no constants.
    pub fn consts_for(self, p: &super::params::MatmulParams, epilogue: Epilogue) -> Vec<(&'static str, u32)> {
        let mut consts = self.consts();
        if let Some(t) = self.shape() {
            let (bm, bn) = self.tile();
            let whole = p.m.is_multiple_of(bm) && p.n.is_multiple_of(bn) && p.k.is_multiple_of(t.bk);
            let compiled = |flag: u32| match epilogue {
                Epilogue::Compiled => flag,
                Epilogue::Tested => 2,
            };
            consts.push(("WHOLE", (whole && p.scaled == 0) as u32));
            consts.push(("RESIDUAL", compiled(p.has_residual)));
            consts.push(("ACCUMULATE", compiled(p.accumulate)));
            consts.push(("SPLIT", (p.k_slice != 0) as u32));
        }
        consts
    }

    /// The kernel that runs this variant.
    pub fn kernel(self) -> super::Kernel {
        match self {
            MatmulVariant::Simple => super::Kernel::Matmul,
            MatmulVariant::Tiled(_) => super::Kernel::MatmulTiled,
            MatmulVariant::Unrolled(_) => super::Kernel::MatmulUnrolled,
        }
    }

    /// The WGSL source of this variant (see `specialise`).
    pub fn source(self) -> String {
        specialise(self.kernel(), &self.consts())
    }

    /// Reads what `Display` writes: "simple", "16x8:8x4:16" (WXxWY:TMxTN:BK, tiled) or
    /// "u16x16:8x16:8" (unrolled); "vec4" is an older name of u16x16:4x4:16.
    pub fn parse(s: &str) -> Result<MatmulVariant, String> {
        match s {
            "simple" => return Ok(MatmulVariant::Simple),
            "vec4" => return Ok(MatmulVariant::Unrolled(tile(16, 16, 4, 4, 16))),
            _ => {}
        }
        let bad = || {
            format!("matmul variant '{s}' is not 'simple', WXxWY:TMxTN:BK (such as 16x8:8x4:16) or the same after a 'u' (unrolled)")
        };
        let (unrolled, shape) = match s.strip_prefix('u') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let nums: Vec<u32> =
            shape.split([':', 'x']).map(|p| p.parse::<u32>().map_err(|_| bad())).collect::<Result<_, _>>()?;
        let [wx, wy, tm, tn, bk] = nums[..] else { return Err(bad()) };
        let ok = |v: u32, max: u32| (1..=max).contains(&v);
        if !(ok(wx, 64) && ok(wy, 64) && ok(tm, 16) && ok(tn, 16) && ok(bk, 64)) {
            return Err(format!(
                "matmul variant '{s}': sizes out of range (threads 1-64 a side, outputs 1-16, BK 1-64)"
            ));
        }
        if !tm.is_multiple_of(4) || !tn.is_multiple_of(4) {
            return Err(format!("matmul variant '{s}': outputs an invocation (TMxTN) come in multiples of 4"));
        }
        let t = tile(wx, wy, tm, tn, bk);
        Ok(if unrolled { MatmulVariant::Unrolled(t) } else { MatmulVariant::Tiled(t) })
    }
}

impl fmt::Display for MatmulVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (prefix, Tile { wx, wy, tm, tn, bk }) = match *self {
            MatmulVariant::Simple => return write!(f, "simple"),
            MatmulVariant::Tiled(t) => ("", t),
            MatmulVariant::Unrolled(t) => ("u", t),
        };
        write!(f, "{prefix}{wx}x{wy}:{tm}x{tn}:{bk}")
    }
}

/// The source of `kernel` with `consts` rewritten; for matmul_unrolled also its entry point
/// written for the TM x TN those constants give.
pub fn specialise(kernel: super::Kernel, consts: &[(&str, u32)]) -> String {
    let source = rewrite_consts(kernel.source(), consts);
    if kernel != super::Kernel::MatmulUnrolled {
        return source;
    }
    let get = |name: &str| consts.iter().find(|c| c.0 == name).map_or(4, |c| c.1);
    let helpers = &source[..=source.find("\n@compute").expect("matmul_unrolled.wgsl has an entry point")];
    format!("{helpers}{}", unrolled_entry(get("TM"), get("TN")))
}

/// matmul_unrolled's entry point for TM x TN outputs an invocation (multiples of 4): named
/// sums and operands, each step of k written out as TM * TN / 4 vec4 multiply-adds.
pub fn unrolled_entry(tm: u32, tn: u32) -> String {
    use std::fmt::Write;
    assert!(
        tm.is_multiple_of(4) && tn.is_multiple_of(4) && tm > 0 && tn > 0,
        "unrolled_entry: {tm} x {tn} is not in blocks of 4"
    );
    let (tm4, tn4) = (tm / 4, tn / 4);
    // Invocation (x, y) owns the blocks of 4 rows y, y + WY, ... and of 4 columns x, x + WX, ...
    let block = |lid: &str, i: u32, w: &str| if i == 0 { lid.to_string() } else { format!("{lid} + {i}u * {w}") };
    let mut s = String::new();
    s.push_str("@compute @workgroup_size(WX, WY)\n");
    s.push_str(
        "fn matmul_unrolled(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {\n",
    );
    s.push_str("    let row0 = wid.y * BM;\n    let col0 = wid.x * BN;\n    let tid = lid.y * WX + lid.x;\n");
    for i in 0..tm {
        for j in 0..tn4 {
            writeln!(s, "    var acc_{i}_{j} = vec4<f32>();").unwrap();
        }
    }
    s.push_str("    // This workgroup's slice of K, and where its sums go: all of K into out, or for a product\n");
    s.push_str("    // split over K (SPLIT, see matmul.wgsl) slice wid.z into partial product wid.z.\n");
    s.push_str("    let k_begin = select(0u, wid.z * p.k_slice, SPLIT == 1u);\n");
    s.push_str("    let k_end = select(p.k, min(p.k, k_begin + p.k_slice), SPLIT == 1u);\n");
    s.push_str("    let base = select(p.out_offset, p.out_offset + wid.z * p.m * p.n, SPLIT == 1u);\n");
    s.push_str("    for (var k0 = k_begin; k0 < k_end; k0 += BK) {\n        stage_tiles(k0, row0, col0, tid);\n");
    s.push_str("        workgroupBarrier();\n        for (var kk = 0u; kk < BK; kk++) {\n");
    for i in 0..tm4 {
        writeln!(s, "            let a_{i} = a_tile[kk * (BM / 4u) + {}];", block("lid.y", i, "WY")).unwrap();
    }
    for j in 0..tn4 {
        writeln!(s, "            let b_{j} = b_tile[kk * (BN / 4u) + {}];", block("lid.x", j, "WX")).unwrap();
    }
    for i in 0..tm {
        let a = format!("a_{}.{}", i / 4, ["x", "y", "z", "w"][i as usize % 4]);
        for j in 0..tn4 {
            writeln!(s, "            acc_{i}_{j} = fma(vec4<f32>({a}), b_{j}, acc_{i}_{j});").unwrap();
        }
    }
    s.push_str("        }\n        workgroupBarrier();\n    }\n");
    // The epilogue as a loop over the sums gathered into an array, not TM * TN / 4 inlined calls
    // of store4: on lavapipe that halved a K = 64 product's time (1024 x 192 x 64, u8x8:8x8:16
    // 4.0 -> 5.3 GFLOP/s; 1024^3 unchanged or faster), where the epilogue is most of the work.
    let names: Vec<String> = (0..tm).flat_map(|i| (0..tn4).map(move |j| format!("acc_{i}_{j}"))).collect();
    writeln!(s, "    let sums = array<vec4<f32>, {}>({});", tm * tn4, names.join(", ")).unwrap();
    writeln!(s, "    for (var i = 0u; i < {tm}u; i++) {{").unwrap();
    s.push_str("        let row = row0 + (lid.y + (i / 4u) * WY) * 4u + i % 4u;\n");
    writeln!(s, "        for (var j = 0u; j < {tn4}u; j++) {{ store4(base, row, col0 + (lid.x + j * WX) * 4u, sums[i * {tn4}u + j]); }}").unwrap();
    s.push_str("    }\n}\n");
    s
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
/// (layernorm_forward.wgsl), an invocation per row with no barriers (layernorm_*_rows.wgsl), or
/// a workgroup per row whose sums the subgroups take (layernorm_*_subgroup.wgsl; only where the
/// adapter has subgroup operations, see `available`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormVariant {
    Workgroup,
    Rows,
    Subgroup,
}

impl NormVariant {
    /// Every variant; the trial times those `available` on its adapter.
    pub const CANDIDATES: &'static [NormVariant] = &[NormVariant::Workgroup, NormVariant::Rows, NormVariant::Subgroup];

    pub fn parse(s: &str) -> Result<NormVariant, String> {
        match s {
            "workgroup" => Ok(NormVariant::Workgroup),
            "rows" => Ok(NormVariant::Rows),
            "subgroup" => Ok(NormVariant::Subgroup),
            _ => Err(format!("layernorm variant '{s}' is not 'workgroup', 'rows' or 'subgroup'")),
        }
    }

    /// The candidates an adapter with these features runs: what its trial times.
    pub fn candidates_for(features: wgpu::Features) -> Vec<NormVariant> {
        NormVariant::CANDIDATES.iter().copied().filter(|v| v.available(features)).collect()
    }

    /// Whether an adapter with these features runs the variant: the subgroup kernels need
    /// `Features::SUBGROUP` (which wgpu 30 offers natively, never in a browser).
    pub fn available(self, features: wgpu::Features) -> bool {
        self != NormVariant::Subgroup || features.contains(wgpu::Features::SUBGROUP)
    }

    /// The forward and input-gradient kernels, and the grid for N rows.
    pub fn launch(self, n: usize) -> (super::Kernel, super::Kernel, super::Grid) {
        use super::{Grid, Kernel};
        match self {
            NormVariant::Workgroup => (Kernel::LayernormForward, Kernel::LayernormBackwardDinp, Grid::Groups(n)),
            NormVariant::Rows => (Kernel::LayernormForwardRows, Kernel::LayernormBackwardDinpRows, Grid::Threads(n)),
            NormVariant::Subgroup => {
                (Kernel::LayernormForwardSubgroup, Kernel::LayernormBackwardDinpSubgroup, Grid::Groups(n))
            }
        }
    }

    /// The classifier's softmax statistics over N rows of a vocabulary chunk, reduced the same
    /// way as LayerNorm's rows: an adapter where an invocation a row beat a workgroup a row for
    /// LayerNorm has dear barriers, which the classifier's reductions pay as well; one where
    /// the subgroups' sums won has them for the classifier too.
    pub fn classifier_stats(self, n: usize) -> (super::Kernel, super::Grid) {
        use super::{Grid, Kernel};
        match self {
            NormVariant::Workgroup => (Kernel::ClassifierStats, Grid::Groups(n)),
            NormVariant::Rows => (Kernel::ClassifierStatsRows, Grid::Threads(n)),
            NormVariant::Subgroup => (Kernel::ClassifierStatsSubgroup, Grid::Groups(n)),
        }
    }
}

impl fmt::Display for NormVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NormVariant::Workgroup => "workgroup",
            NormVariant::Rows => "rows",
            NormVariant::Subgroup => "subgroup",
        })
    }
}

/// Rows of queries (attention forward, dq) or of keys (dkv) one invocation of the flash attention
/// kernels takes: each key or query read from workgroup memory then serves that many rows. On
/// lavapipe 4 rows ran attention forward + backward 2.4x faster than 1 (B 16, H 6, T 256, hs 64;
/// 2 rows 1.6x); on a GPU the registers they hold (2 to 4 vectors of hs per row) may make 1
/// faster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionRows(pub u32);

impl AttentionRows {
    /// 2 won nowhere (lavapipe and SwiftShader take 4; on a GPU one row already holds 128 to
    /// 256 floats of registers: q and o forward, q, dout and dq in dq, k, v, dk and dv in dkv),
    /// and each candidate lengthens the page's first trial.
    pub const CANDIDATES: &'static [AttentionRows] = &[AttentionRows(1), AttentionRows(4)];
    /// The most `--attention-rows` takes (every count up to it is tested): 8 rows of dkv would
    /// hold 8 KiB of private arrays an invocation, the most WGSL promises to fit.
    pub const MAX: u32 = 4;
    /// Where no trial has chosen: the fewest registers.
    pub const DEFAULT: AttentionRows = AttentionRows(1);

    pub fn parse(s: &str) -> Result<AttentionRows, String> {
        match s.parse::<u32>() {
            Ok(n @ 1..=AttentionRows::MAX) => Ok(AttentionRows(n)),
            _ => Err(format!("attention rows '{s}' is not a count of rows from 1 to {}", AttentionRows::MAX)),
        }
    }
}

impl fmt::Display for AttentionRows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// How the register-tiled products' epilogue knows whether to add a residual and whether to add
/// into out (see `MatmulVariant::consts_for`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Epilogue {
    /// Compiled in: a pipeline for each combination a model uses. Lavapipe runs both sides of a
    /// branch for its SIMD lanes, so a test at run time made it load the residual in every
    /// product (1024 x 192 x 64: 4.2-4.7 ms against 2.3-3.6).
    Compiled,
    /// Tested at run time: one pipeline serves every product of a tile, so a first step waits
    /// for fewer compiles. On SwiftShader a written-out tile takes 0.8-1.1 s to compile in the
    /// page, and the test cost nothing measurable in a step (BENCHMARKS.md).
    Tested,
}

impl Epilogue {
    pub fn parse(s: &str) -> Result<Epilogue, String> {
        match s {
            "compiled" => Ok(Epilogue::Compiled),
            "tested" => Ok(Epilogue::Tested),
            _ => Err(format!("epilogue '{s}' is not 'compiled' or 'tested'")),
        }
    }
}

impl fmt::Display for Epilogue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Epilogue::Compiled => "compiled",
            Epilogue::Tested => "tested",
        })
    }
}

/// Products of fewer multiply-adds than this (M N K) take `KernelOptions::matmul_small`: the
/// best tile for a narrow product (64 channels, a few thousand rows) is not the best for a wide
/// one (measured on lavapipe: `tiny` 5388-6037 tokens/s with 16x8:8x4:16, 3702-4230 with
/// 16x16:4x8:16, which is 11% faster on `small`).
pub const SMALL_MATMUL_WORK: u64 = 1 << 25;

/// Products with fewer rows, columns or shared terms (M, N or K) than this take `matmul_narrow`,
/// one invocation an output, whatever the options say: a tile at least 64 outputs on a side, or
/// 8 or 16 terms of K a step, would mostly compute what falls outside (the sliver of a
/// vocabulary chunk and its input gradient, a LoRA adapter's rank, a short prompt). On lavapipe
/// 1024 x 64 x 1 took 1.05-1.11 ms tiled.
pub const NARROW_SIDE: u32 = 16;

/// Products of at least this many multiply-adds take `KernelOptions::matmul_large`: on lavapipe
/// 1024^3 ran 1.4x faster with 16x16 outputs an invocation than with the 8x8 that wins on a
/// 128-channel model's products (a 256-wide tile wastes half its work where N is 128).
pub const LARGE_MATMUL_WORK: u64 = 1 << 29;

/// What the pipelines are built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelOptions {
    /// Matrix products of at least SMALL_MATMUL_WORK multiply-adds, and under LARGE_MATMUL_WORK.
    pub matmul: MatmulVariant,
    /// Smaller ones.
    pub matmul_small: MatmulVariant,
    /// Larger ones.
    pub matmul_large: MatmulVariant,
    pub norm: NormVariant,
    pub attention: AttentionRows,
    /// The fewest workgroups a product should launch before it is split over K (see `SplitK`).
    pub split: SplitK,
    /// Not timed by the trial (it changes what a first step compiles, not a step's time).
    pub epilogue: Epilogue,
    /// Keep wgpu's runtime bounds checks in native shader modules (the browser always keeps
    /// its own). Off by default: every kernel guards its own indexing, as the tests show.
    pub checked: bool,
}

impl KernelOptions {
    /// The variants before a trial has chosen (the page on a first visit, while its trial runs),
    /// or where one failed. On a CPU adapter, what the trials on both software adapters seen
    /// here chose (written-out tiles, LayerNorm by rows, 4 attention rows): on SwiftShader the
    /// page trained `tiny` at 455 tokens/s with the GPU defaults and 2170 with its trial's
    /// choice), but no split over K: SwiftShader's trials timed the split within 2-5 ms of off,
    /// and a split's pipelines are more to compile before the first step of a visitor who
    /// presses Train while the trial runs (4.9-6.7 s from the click without them, 6.5-7.0 s with
    /// them, in noisy minutes: BENCHMARKS.md); and the epilogue tested at run time, one
    /// written-out tile fewer to compile (`kiln bench --preset tiny` on SwiftShader natively:
    /// start to first step 1.9-2.7 s against 2.8-3.1 s compiled in, steps within noise). On a
    /// GPU, `default()`: usual GPU shapes, no trial's finding.
    pub fn untimed(software: bool) -> KernelOptions {
        if !software {
            return KernelOptions::default();
        }
        KernelOptions {
            matmul: MatmulVariant::Unrolled(tile(8, 8, 8, 8, 16)),
            matmul_small: MatmulVariant::Unrolled(tile(8, 8, 8, 8, 16)),
            matmul_large: MatmulVariant::Unrolled(tile(16, 16, 16, 16, 8)),
            norm: NormVariant::Rows,
            attention: AttentionRows(AttentionRows::MAX),
            split: SplitK::OFF,
            epilogue: Epilogue::Tested,
            checked: false,
        }
    }
}

impl Default for KernelOptions {
    fn default() -> Self {
        KernelOptions {
            matmul: MatmulVariant::DEFAULT,
            matmul_small: MatmulVariant::DEFAULT,
            matmul_large: MatmulVariant::DEFAULT,
            norm: NormVariant::Workgroup,
            attention: AttentionRows::DEFAULT,
            split: SplitK::OFF,
            epilogue: Epilogue::Compiled,
            checked: false,
        }
    }
}
