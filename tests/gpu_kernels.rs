//! Every WGSL kernel against its CPU twin, on awkward shapes: B*T not a multiple of any
//! workgroup size, C = 48, one head, T = 1. Tolerances are f32 summation-order noise.

mod common;
use common::{assert_close, gpu, random, random_tokens};
use kiln::cpu;
use kiln::gpt::IGNORE;
use kiln::gpu::params::*;
use kiln::gpu::{
    grid_1d, AttentionRows, Epilogue, Gpu, GpuTensor, Grid, Kernel, KernelOptions, Kernels, MatmulVariant, NormVariant,
    Program, SplitK, SplitScratch,
};

const RTOL: f32 = 1e-4;
const ATOL: f32 = 1e-5;

struct Bench {
    gpu: Gpu,
    kernels: Kernels,
}

impl Bench {
    fn new() -> Option<Bench> {
        let gpu = gpu()?;
        let kernels = Kernels::new(&gpu);
        Some(Bench { gpu, kernels })
    }
    /// One bench per matmul candidate this adapter can run, each with its own pipelines, and
    /// the same again with the epilogue tested at run time.
    fn each_matmul() -> Vec<Bench> {
        let mut all = Bench::each_matmul_with(Epilogue::Compiled);
        all.extend(Bench::each_matmul_with(Epilogue::Tested));
        all
    }
    fn each_matmul_with(epilogue: Epilogue) -> Vec<Bench> {
        let Some(first) = gpu() else { return vec![] };
        let fits: Vec<_> = MatmulVariant::CANDIDATES.iter().filter(|v| v.fits(&first.limits)).collect();
        assert!(fits.len() >= 2, "the adapter fits only {} matmul candidates", fits.len());
        fits.into_iter()
            .map(|&matmul| {
                let gpu = gpu().expect("the adapter went away");
                let kernels = Kernels::with(&gpu, matmul.everywhere(KernelOptions { epilogue, ..Default::default() }));
                Bench { gpu, kernels }
            })
            .collect()
    }
    fn f(&self, data: &[f32]) -> GpuTensor {
        GpuTensor::from_f32(&self.gpu, "test", data)
    }
    fn u(&self, data: &[u32]) -> GpuTensor {
        GpuTensor::from_u32(&self.gpu, "test", data)
    }
    /// One dispatch of `kernel` with its `Params` (a typed struct, or plain words in its order).
    fn run<P: bytemuck::Pod>(&self, kernel: Kernel, params: &P, buffers: &[&GpuTensor], groups: [u32; 3]) {
        let bufs: Vec<_> = buffers.iter().map(|t| t.bind()).collect();
        let mut prog = Program::default();
        prog.push(self.kernels.dispatch(&self.gpu, kernel, params, &bufs, Grid::Tiles(groups)));
        prog.submit(&self.gpu);
    }
    /// `run` with some of the kernel's constants rewritten.
    fn run_specialised<P: bytemuck::Pod>(
        &self,
        kernel: Kernel,
        consts: &[(&'static str, u32)],
        params: &P,
        buffers: &[&GpuTensor],
        groups: [u32; 3],
    ) {
        let bufs: Vec<_> = buffers.iter().map(|t| t.bind()).collect();
        let mut prog = Program::default();
        prog.push(self.kernels.dispatch_specialised(&self.gpu, kernel, consts, params, &bufs, Grid::Tiles(groups)));
        prog.submit(&self.gpu);
    }
    fn read(&self, t: &GpuTensor) -> Vec<f32> {
        pollster::block_on(t.read_f32(&self.gpu)).unwrap()
    }
    /// out = op(a) @ op(b) (+ bias) with p's shape, flags and offsets.
    fn matmul(&self, out: &GpuTensor, a: &GpuTensor, b: &GpuTensor, bias: Option<&GpuTensor>, p: MatmulParams) {
        self.matmul_residual(out, a, b, bias, None, p);
    }
    /// `matmul` with an (M, N) residual added as well.
    fn matmul_residual(
        &self,
        out: &GpuTensor,
        a: &GpuTensor,
        b: &GpuTensor,
        bias: Option<&GpuTensor>,
        residual: Option<&GpuTensor>,
        p: MatmulParams,
    ) {
        let dummy = self.f(&[0.0]);
        let p = MatmulParams { has_bias: bias.is_some() as u32, has_residual: residual.is_some() as u32, ..p };
        let bufs = [out.bind(), a.bind(), b.bind(), bias.unwrap_or(&dummy).bind(), residual.unwrap_or(&dummy).bind()];
        let prog = Program { dispatches: self.kernels.matmul_dispatches(&self.gpu, p, &bufs, None), clears: vec![] };
        prog.submit(&self.gpu);
    }
}

/// Shapes (B, T, C, NH) that stress edges: odd rows, C = 48, one head, T = 1.
const SHAPES: &[(usize, usize, usize, usize)] = &[(3, 5, 48, 4), (2, 7, 48, 1), (4, 1, 16, 2), (1, 70, 24, 3)];

#[test]
fn encoder_forward_and_backward() {
    let Some(g) = Bench::new() else { return };
    for &(b, t, c, _) in SHAPES {
        let (v, n) = (11, b * t);
        let tokens = random_tokens(n, v, 1);
        let (wte, wpe) = (random(v * c, 2, 1.0), random(t * c, 3, 1.0));
        let mut want = vec![0.0; n * c];
        cpu::encoder_forward(&mut want, &tokens, &wte, &wpe, b, t, c);
        // wte split over two buffers, rows [0, 6) and [6, 11), as a large vocabulary is.
        let parts = [(0usize, 6usize), (6, 5)];
        let out = g.f(&vec![0.0; n * c]);
        let (tok, wpe_g) = (g.u(&tokens), g.f(&wpe));
        for (row0, rows) in parts {
            let part = g.f(&wte[row0 * c..(row0 + rows) * c]);
            let p = EncoderParams { b: u(b), t: u(t), c: u(c), row0: u(row0), rows: u(rows) };
            g.run(Kernel::EncoderForward, &p, &[&out, &tok, &part, &wpe_g], grid_1d((n * c).div_ceil(256)));
        }
        assert_close("encoder_forward", &g.read(&out), &want, RTOL, ATOL);

        // dwte is added into (it already holds the LM head's share); dwpe is written.
        let dout = random(n * c, 4, 1.0);
        let dwte0 = random(v * c, 5, 1.0);
        let (mut dwte, mut dwpe) = (dwte0.clone(), vec![0.0; t * c]);
        cpu::encoder_backward(&mut dwte, &mut dwpe, &dout, &tokens, b, t, c);
        let (dwpe_g, dout_g) = (g.f(&random(t * c, 6, 1.0)), g.f(&dout));
        let buckets = g.u(&kiln::gpt::token_buckets(&tokens));
        let mut got_dwte = Vec::new();
        for (row0, rows) in parts {
            let part = g.f(&dwte0[row0 * c..(row0 + rows) * c]);
            let p = EncoderBackwardWteParams { n: u(n), c: u(c), row0: u(row0), rows: u(rows) };
            g.run(Kernel::EncoderBackwardWte, &p, &[&part, &dout_g, &buckets], grid_1d((n * c).div_ceil(256)));
            got_dwte.extend(g.read(&part));
        }
        g.run(
            Kernel::EncoderBackwardWpe,
            &[b as u32, t as u32, c as u32],
            &[&dwpe_g, &dout_g],
            grid_1d((t * c).div_ceil(256)),
        );
        assert_close("encoder_backward dwte", &got_dwte, &dwte, RTOL, ATOL);
        assert_close("encoder_backward dwpe", &g.read(&dwpe_g), &dwpe, RTOL, ATOL);
    }
}

#[test]
fn layernorm_forward_and_backward() {
    let Some(g) = Bench::new() else { return };
    // Every variant the adapter runs; one more shape with rows across several 64-invocation
    // workgroups, and one with C past a workgroup's stride.
    for &norm in NormVariant::CANDIDATES {
        if !norm.available(g.gpu.features) {
            println!("SKIP layernorm variant {norm}: the adapter has no subgroup operations");
            continue;
        }
        for &(b, t, c, _) in SHAPES.iter().chain(&[(3, 67, 40, 1), (2, 5, 200, 1)]) {
            layernorm_forward_and_backward_on(&g, norm, b * t, c);
        }
    }
}

fn layernorm_forward_and_backward_on(g: &Bench, norm: NormVariant, n: usize, c: usize) {
    let (forward, backward, grid) = norm.launch(n);
    let grid = match grid {
        Grid::Groups(n) => grid_1d(n),
        Grid::Threads(n) => grid_1d(n.div_ceil(64)),
        Grid::Tiles(g) => g,
    };
    let inp: Vec<f32> = random(n * c, 7, 2.0).iter().map(|x| x + 0.5).collect();
    let (w, bias) = (random(c, 8, 1.0), random(c, 9, 1.0));
    let (mut out, mut mean, mut rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
    cpu::layernorm_forward(&mut out, &mut mean, &mut rstd, &inp, &w, &bias, n, c);
    let (out_g, mean_g, rstd_g) = (g.f(&vec![0.0; n * c]), g.f(&vec![0.0; n]), g.f(&vec![0.0; n]));
    let (inp_g, w_g, b_g) = (g.f(&inp), g.f(&w), g.f(&bias));
    g.run(forward, &[n as u32, c as u32], &[&out_g, &mean_g, &rstd_g, &inp_g, &w_g, &b_g], grid);
    assert_close("layernorm_forward out", &g.read(&out_g), &out, RTOL, ATOL);
    assert_close("layernorm_forward mean", &g.read(&mean_g), &mean, RTOL, ATOL);
    assert_close("layernorm_forward rstd", &g.read(&rstd_g), &rstd, RTOL, ATOL);
    // The same rows again give the same bits (the subgroups' sums included).
    let again = g.f(&vec![0.0; n * c]);
    g.run(forward, &[n as u32, c as u32], &[&again, &mean_g, &rstd_g, &inp_g, &w_g, &b_g], grid);
    let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
    assert_eq!(bits(g.read(&again)), bits(g.read(&out_g)), "layernorm_forward ({norm}) is not deterministic");

    let dout = random(n * c, 10, 1.0);
    let dinp0 = random(n * c, 11, 1.0);
    let (mut dinp, mut dw, mut db) = (dinp0.clone(), vec![0.0; c], vec![0.0; c]);
    cpu::layernorm_backward(&mut dinp, &mut dw, &mut db, &dout, &inp, &w, &mean, &rstd, n, c);
    let (dinp_g, dw_g, db_g, dout_g) = (g.f(&dinp0), g.f(&random(c, 12, 1.0)), g.f(&random(c, 13, 1.0)), g.f(&dout));
    let p = [n as u32, c as u32];
    g.run(backward, &p, &[&dinp_g, &dout_g, &inp_g, &w_g, &mean_g, &rstd_g], grid);
    g.run(
        Kernel::LayernormBackwardDparams,
        &p,
        &[&dw_g, &db_g, &dout_g, &inp_g, &mean_g, &rstd_g],
        [c.div_ceil(16) as u32, 1, 1], // 16 channels a workgroup
    );
    assert_close("layernorm_backward dinp", &g.read(&dinp_g), &dinp, RTOL, ATOL);
    assert_close("layernorm_backward dweight", &g.read(&dw_g), &dw, RTOL, ATOL);
    assert_close("layernorm_backward dbias", &g.read(&db_g), &db, RTOL, ATOL);
}

/// Every matmul candidate: the simple kernel and each tile shape of the tiled one.
#[test]
fn matmul_forward_and_backward() {
    for g in Bench::each_matmul() {
        println!("matmul variant {}, epilogue {}", g.kernels.options.matmul, g.kernels.options.epilogue);
        matmul_forward_and_backward_on(&g);
    }
}

/// matmul_narrow (one invocation an output: products with a side under NARROW_SIDE) against
/// plain loops: every layout, operands and output at offsets, and each epilogue (bias and
/// residual; scaled and accumulated), on a sliver of columns, a sliver of rows, one row, and K
/// of 1 and of 1024.
#[test]
fn matmul_narrow_against_loops() {
    let Some(g) = Bench::new() else { return };
    for &(m, n, k) in &[(1024, 1, 64), (1, 64, 1024), (37, 8, 5), (5, 70, 1), (1, 1, 3)] {
        for (ta, tb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let (a, b, product, p) = product_at_offsets([m, n, k], (ta, tb), [3, 5, 2], 61);
            let oo = p.out_offset as usize;
            let (bias, residual, out0) = (random(n, 63, 1.0), random(m * n, 64, 1.0), random(m * n, 65, 1.0));
            let (a_g, b_g, bias_g, res_g) = (g.f(&a), g.f(&b), g.f(&bias), g.f(&residual));
            let start: Vec<f32> = [vec![7.0; oo], out0.clone()].concat();
            let epilogues = [
                ("bias and residual", MatmulParams { has_bias: 1, has_residual: 1, ..p }),
                ("scaled and accumulated", MatmulParams { scaled: 1, scale: 0.5, accumulate: 1, ..p }),
            ];
            for (what, q) in epilogues {
                let want: Vec<f32> = (0..m * n)
                    .map(|i| match q.accumulate {
                        1 => out0[i] + 0.5 * product[i],
                        _ => product[i] + bias[i % n] + residual[i],
                    })
                    .collect();
                let out = g.f(&start);
                let grid = grid_1d((m * n).div_ceil(64));
                g.run(Kernel::MatmulNarrow, &q, &[&out, &a_g, &b_g, &bias_g, &res_g], grid);
                let got = g.read(&out);
                let what = format!("matmul_narrow {m}x{n}x{k} trans ({ta}, {tb}), {what}");
                assert!(got[..oo].iter().all(|&x| x == 7.0), "{what}: wrote before its offset");
                assert_close(&what, &got[oo..], &want, RTOL, ATOL);
            }
        }
    }
}

/// Operands of out (M, N) = op(A) @ op(B) with the transpositions (trans_a, trans_b), stored
/// after `ao` and `bo` words of their buffers (out after `oo`), from seeds `seed` and
/// `seed + 1`, and their product by plain loops: (a, b, product, params).
fn product_at_offsets(
    [m, n, k]: [usize; 3],
    (ta, tb): (u32, u32),
    [ao, bo, oo]: [usize; 3],
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>, MatmulParams) {
    let a = random(ao + m * k, seed, 1.0);
    let b = random(bo + k * n, seed + 1, 1.0);
    let at = |r: usize, kk: usize| a[ao + if ta == 1 { kk * m + r } else { r * k + kk }];
    let bt = |kk: usize, c: usize| b[bo + if tb == 1 { c * k + kk } else { kk * n + c }];
    let product: Vec<f32> = (0..m * n).map(|i| (0..k).map(|kk| at(i / n, kk) * bt(kk, i % n)).sum::<f32>()).collect();
    let p = MatmulParams {
        m: u(m),
        n: u(n),
        k: u(k),
        trans_a: ta,
        trans_b: tb,
        a_offset: u(ao),
        b_offset: u(bo),
        out_offset: u(oo),
        ..Default::default()
    };
    (a, b, product, p)
}

/// The sum of a split product's partials against its twin, bit for bit (both add in slice
/// order), written and accumulated, at an offset into out.
#[test]
fn matmul_split_sum_against_twin() {
    let Some(g) = Bench::new() else { return };
    for &(count, splits) in &[(1000usize, 3usize), (4096, 8), (5, 2)] {
        let partials = random(count * splits, 71, 1.0);
        let out0 = random(count, 72, 1.0);
        for accumulate in [false, true] {
            let mut want = out0.clone();
            cpu::matmul_split_sum(&mut want, &partials, accumulate);
            let oo = 3;
            let out = g.f(&[vec![7.0; oo], out0.clone()].concat());
            let p =
                SplitSumParams { count: u(count), splits: u(splits), out_offset: u(oo), accumulate: accumulate as u32 };
            g.run(Kernel::MatmulSplitSum, &p, &[&out, &g.f(&partials)], grid_1d(count.div_ceil(256)));
            let got = g.read(&out);
            let what = format!("matmul_split_sum {count} x {splits}, accumulate {accumulate}");
            assert!(got[..oo].iter().all(|&x| x == 7.0), "{what}: wrote before its offset");
            assert_eq!(&got[oo..], &want[..], "{what}");
        }
    }
}

/// Products split over K (a weight gradient's shape: few tiles, long K) against plain loops, for
/// every matmul candidate: K a multiple of every step and not (the last slice short), sides that
/// are not multiples of any tile, each transposition, written at an offset and accumulated. Each
/// case checks that the product really was split (two dispatches); the scratch starts as NaN,
/// so a partial product left unwritten shows.
#[test]
fn matmul_split_over_k_against_loops() {
    // The simple kernel takes all of K: never split.
    for g in Bench::each_matmul().into_iter().filter(|g| g.kernels.options.matmul.shape().is_some()) {
        let options = KernelOptions { split: SplitK(64), ..g.kernels.options };
        let kernels = Kernels::with(&g.gpu, options);
        for &(m, n, k) in &[(64, 64, 1024), (37, 70, 515), (16, 130, 300)] {
            for (ta, tb) in [(1, 0), (0, 1)] {
                let (a, b, product, p) = product_at_offsets([m, n, k], (ta, tb), [3, 5, 2], 81);
                let oo = p.out_offset as usize;
                let out0 = random(m * n, 83, 1.0);
                for accumulate in [0, 1] {
                    let p = MatmulParams { accumulate, ..p };
                    let (a_g, b_g, dummy) = (g.f(&a), g.f(&b), g.f(&[0.0]));
                    let out = g.f(&[vec![7.0; oo], out0.clone()].concat());
                    let scratch = g.f(&vec![f32::NAN; kiln::gpu::split_scratch_words(k, m.min(n))]);
                    let bufs = [out.bind(), a_g.bind(), b_g.bind(), dummy.bind(), dummy.bind()];
                    let dispatches = kernels.matmul_dispatches(&g.gpu, p, &bufs, Some(SplitScratch::of(&scratch)));
                    let what = format!("{} {m}x{n}x{k} trans ({ta}, {tb}), accumulate {accumulate}", options.matmul);
                    assert_eq!(dispatches.len(), 2, "{what}: not split");
                    Program { dispatches, clears: vec![] }.submit(&g.gpu);
                    let want: Vec<f32> =
                        (0..m * n).map(|i| if accumulate == 1 { out0[i] + product[i] } else { product[i] }).collect();
                    let got = g.read(&out);
                    assert!(got[..oo].iter().all(|&x| x == 7.0), "{what}: wrote before its offset");
                    assert_close(&what, &got[oo..], &want, RTOL, ATOL);
                }
            }
        }
    }
}

/// Both operands transposed and read from offsets into their buffers, written at an offset
/// (products no layer records, but the kernels take): out = A^T B^T against plain loops, on
/// sizes across the tiles' edges and their 4-word reads.
#[test]
fn matmul_both_transposed_at_offsets() {
    for g in Bench::each_matmul() {
        for &(m, n, k) in &[(5, 7, 3), (67, 130, 37), (128, 64, 20)] {
            let (ao, bo, oo) = (3, 5, 2);
            let a = random(ao + k * m, 21, 1.0); // A^T stored (K, M) after ao words
            let b = random(bo + n * k, 22, 1.0); // B^T stored (N, K) after bo words
            let mut want = vec![0.0f32; m * n];
            for (i, row) in want.chunks_mut(n).enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x = (0..k).map(|kk| a[ao + kk * m + i] * b[bo + j * k + kk]).sum();
                }
            }
            let out = g.f(&vec![0.0; oo + m * n]);
            let p = MatmulParams {
                m: u(m),
                n: u(n),
                k: u(k),
                trans_a: 1,
                trans_b: 1,
                a_offset: u(ao),
                b_offset: u(bo),
                out_offset: u(oo),
                ..Default::default()
            };
            g.matmul(&out, &g.f(&a), &g.f(&b), None, p);
            let what = format!("matmul A^T B^T {m}x{n}x{k}, {}", g.kernels.options.matmul);
            let got = g.read(&out);
            assert_eq!(&got[..oo], &[0.0; 2], "{what}: wrote before its offset");
            assert_close(&what, &got[oo..], &want, RTOL, ATOL);
        }
    }
}

/// Products of whole tiles (M, N and K multiples of the variant's BM, BN and BK), which compile
/// without bounds tests (`MatmulVariant::consts_for`), on every candidate: each layout, with and
/// without a bias, with a residual, added into out, operands and output at offsets, against
/// plain loops; and the same shapes scaled, one row short or a step of K short keep the tests.
#[test]
fn matmul_of_whole_tiles() {
    for g in Bench::each_matmul() {
        let v = g.kernels.options.matmul;
        let ((bm, bn), bk) = (v.tile(), v.shape().map_or(16, |t| t.bk));
        let whole = |p: &MatmulParams| v.consts_for(p, g.kernels.options.epilogue).contains(&("WHOLE", 1));
        for (i, &(m, n, k)) in [(bm, bn, bk), (2 * bm, 3 * bn, 2 * bk)].iter().enumerate() {
            let (m, n, k) = (m as usize, n as usize, k as usize);
            for (ta, tb) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let (a, b, product, p) = product_at_offsets([m, n, k], (ta, tb), [5 * i, 3 * i, 7 * i], 51);
                let (oo, bias, with_bias) = (7 * i, random(n, 53, 1.0), ta == tb);
                let want: Vec<f32> =
                    (0..m * n).map(|j| product[j] + if with_bias { bias[j % n] } else { 0.0 }).collect();
                let what = format!("whole tiles {m}x{n}x{k} trans ({ta}, {tb}), bias {with_bias}, {v}");
                assert_eq!(whole(&p), v.shape().is_some(), "{what}: not compiled as whole tiles");
                let out = g.f(&vec![0.0; oo + m * n]);
                let bias_g = g.f(&bias);
                g.matmul(&out, &g.f(&a), &g.f(&b), with_bias.then_some(&bias_g), p);
                let got = g.read(&out);
                assert!(got[..oo].iter().all(|&x| x == 0.0), "{what}: wrote before its offset");
                assert_close(&what, &got[oo..], &want, RTOL, ATOL);
                // With a residual added by the epilogue: still whole tiles.
                let residual = random(m * n, 54, 1.0);
                let mut want_res = vec![0.0; m * n];
                cpu::residual_forward(&mut want_res, &want, &residual);
                let q = MatmulParams { has_residual: 1, ..p };
                assert_eq!(whole(&q), v.shape().is_some(), "{what}: with a residual, not compiled as whole tiles");
                g.matmul_residual(&out, &g.f(&a), &g.f(&b), with_bias.then_some(&bias_g), Some(&g.f(&residual)), p);
                assert_close(&format!("{what}, residual"), &g.read(&out)[oo..], &want_res, RTOL, ATOL);
                // Added into what out holds (the residual's result): still whole tiles.
                let q = MatmulParams { accumulate: 1, ..p };
                assert_eq!(whole(&q), v.shape().is_some(), "{what}: accumulated, not compiled as whole tiles");
                g.matmul(&out, &g.f(&a), &g.f(&b), with_bias.then_some(&bias_g), q);
                let want_acc: Vec<f32> = want_res.iter().zip(&want).map(|(r, x)| r + x).collect();
                let got = g.read(&out);
                assert!(got[..oo].iter().all(|&x| x == 0.0), "{what}: accumulated before its offset");
                assert_close(&format!("{what}, accumulated"), &got[oo..], &want_acc, RTOL, ATOL);
                for (name, q) in [
                    ("scaled", MatmulParams { scaled: 1, scale: 0.5, ..p }),
                    ("a row short", MatmulParams { m: p.m - 1, ..p }),
                    ("a step of K short", MatmulParams { k: p.k - 1, ..p }),
                ] {
                    assert!(!whole(&q), "{what}: {name} compiled as whole tiles");
                }
            }
        }
    }
}

/// With the epilogue tested at run time one pipeline serves a tile's products with and without
/// a residual, added into out or not (with it compiled in, one each), and each does only what
/// its Params say: a residual bound but not asked for is not added, nor is what out held.
#[test]
fn a_tested_epilogue_does_what_the_params_say_in_one_pipeline() {
    let Some(first) = gpu() else { return };
    let (m, n, k) = (128, 128, 64);
    let (a, b, residual, held) =
        (random(m * k, 81, 1.0), random(k * n, 82, 1.0), random(m * n, 83, 1.0), random(m * n, 84, 1.0));
    let mut product = vec![0.0; m * n];
    cpu::matmul_forward(&mut product, &a, &b, None, m, k, n);
    let p = MatmulParams { m: u(m), n: u(n), k: u(k), ..Default::default() };
    let cases = [
        ("plain", p, product.clone()),
        ("residual", MatmulParams { has_residual: 1, ..p }, (0..m * n).map(|i| product[i] + residual[i]).collect()),
        ("added into out", MatmulParams { accumulate: 1, ..p }, (0..m * n).map(|i| held[i] + product[i]).collect()),
        (
            "both",
            MatmulParams { has_residual: 1, accumulate: 1, ..p },
            (0..m * n).map(|i| held[i] + product[i] + residual[i]).collect::<Vec<f32>>(),
        ),
    ];
    let variant = *MatmulVariant::CANDIDATES
        .iter()
        .find(|v| v.fits(&first.limits) && v.shape().is_some())
        .expect("the adapter fits no tiled matmul candidate");
    for (epilogue, pipelines) in [(Epilogue::Tested, 1), (Epilogue::Compiled, 4)] {
        let gpu = gpu().expect("the adapter went away");
        let g = Bench {
            kernels: Kernels::with(&gpu, variant.everywhere(KernelOptions { epilogue, ..Default::default() })),
            gpu,
        };
        let before = g.gpu.pipelines_compiled();
        let (a_g, b_g, res_g, none) = (g.f(&a), g.f(&b), g.f(&residual), g.f(&[0.0]));
        for (what, q, want) in &cases {
            let out = g.f(&held);
            let bufs = [out.bind(), a_g.bind(), b_g.bind(), none.bind(), res_g.bind()];
            let prog = Program { dispatches: g.kernels.matmul_dispatches(&g.gpu, *q, &bufs, None), clears: vec![] };
            prog.submit(&g.gpu);
            assert_close(&format!("{variant}, epilogue {epilogue}, {what}"), &g.read(&out), want, RTOL, ATOL);
        }
        assert_eq!(
            g.gpu.pipelines_compiled() - before,
            pipelines,
            "{variant}, epilogue {epilogue}: pipelines compiled"
        );
    }
}

fn matmul_forward_and_backward_on(g: &Bench) {
    // (N, C, OC): odd rows, widths below, at and across every tile (up to 128 wide).
    for &(n, c, oc) in &[(15, 48, 144), (70, 24, 96), (1, 16, 48), (129, 65, 67), (131, 9, 260)] {
        let (inp, w, bias) = (random(n * c, 14, 1.0), random(c * oc, 15, 1.0), random(oc, 16, 1.0));
        let mut out = vec![0.0; n * oc];
        cpu::matmul_forward(&mut out, &inp, &w, Some(&bias), n, c, oc);
        let (out_g, inp_g, w_g, bias_g) = (g.f(&vec![0.0; n * oc]), g.f(&inp), g.f(&w), g.f(&bias));
        g.matmul(
            &out_g,
            &inp_g,
            &w_g,
            Some(&bias_g),
            MatmulParams { m: u(n), n: u(oc), k: u(c), ..Default::default() },
        );
        assert_close("matmul forward", &g.read(&out_g), &out, RTOL, ATOL);
        // Scaled (LoRA's alpha / rank) and added into what is there: out + 0.375 * (inp @ w) + bias.
        let scaled =
            MatmulParams { m: u(n), n: u(oc), k: u(c), accumulate: 1, scaled: 1, scale: 0.375, ..Default::default() };
        let (base, mut plain) = (random(n * oc, 18, 1.0), vec![0.0; n * oc]);
        cpu::matmul_forward(&mut plain, &inp, &w, None, n, c, oc);
        let want: Vec<f32> = (0..n * oc).map(|i| base[i] + 0.375 * plain[i] + bias[i % oc]).collect();
        let acc_g = g.f(&base);
        g.matmul(&acc_g, &inp_g, &w_g, Some(&bias_g), scaled);
        assert_close("matmul scaled, accumulated", &g.read(&acc_g), &want, RTOL, ATOL);
        // A block's residual connection added by the epilogue: residual + inp @ w + bias.
        let residual = random(n * oc, 19, 1.0);
        let mut want = vec![0.0; n * oc];
        cpu::residual_forward(&mut want, &residual, &out);
        let res_g = g.f(&residual);
        let p = MatmulParams { m: u(n), n: u(oc), k: u(c), ..Default::default() };
        g.matmul_residual(&out_g, &inp_g, &w_g, Some(&bias_g), Some(&res_g), p);
        assert_close("matmul with a residual", &g.read(&out_g), &want, RTOL, ATOL);
        // One row (decoding) through matmul_narrow, written at an offset, without and with a
        // residual.
        let row_g = g.f(&vec![0.0; oc + 3]);
        let p = MatmulParams { m: 1, n: u(oc), k: u(c), has_bias: 1, out_offset: 3, ..Default::default() };
        let (row_in, unused) = (g.f(&inp[..c]), g.f(&[0.0]));
        g.run(Kernel::MatmulNarrow, &p, &[&row_g, &row_in, &w_g, &bias_g, &unused], grid_1d(oc.div_ceil(64)));
        assert_close("one row", &g.read(&row_g)[3..], &out[..oc], RTOL, ATOL);
        let p = MatmulParams { has_residual: 1, ..p };
        let residual_row = g.f(&residual[..oc]);
        g.run(Kernel::MatmulNarrow, &p, &[&row_g, &row_in, &w_g, &bias_g, &residual_row], grid_1d(oc.div_ceil(64)));
        assert_close("one row with a residual", &g.read(&row_g)[3..], &want[..oc], RTOL, ATOL);

        let dout = random(n * oc, 17, 1.0);
        let (mut dinp, mut dw, mut db) = (vec![0.0; n * c], vec![0.0; c * oc], vec![0.0; oc]);
        cpu::matmul_backward(&mut dinp, &mut dw, Some(&mut db), &dout, &inp, &w, n, c, oc);
        let (dinp_g, dw_g, db_g, dout_g) =
            (g.f(&random(n * c, 1, 1.0)), g.f(&random(c * oc, 2, 1.0)), g.f(&random(oc, 3, 1.0)), g.f(&dout));
        g.matmul(
            &dinp_g,
            &dout_g,
            &w_g,
            None,
            MatmulParams { m: u(n), n: u(c), k: u(oc), trans_b: 1, ..Default::default() },
        );
        g.matmul(
            &dw_g,
            &inp_g,
            &dout_g,
            None,
            MatmulParams { m: u(c), n: u(oc), k: u(n), trans_a: 1, ..Default::default() },
        );
        g.run(Kernel::MatmulBackwardBias, &[n as u32, oc as u32], &[&db_g, &dout_g], [oc.div_ceil(16) as u32, 1, 1]);
        // The same with the groups folded into y, as grid_1d folds more than 65,535.
        let db_folded = g.f(&random(oc, 4, 1.0));
        g.run(
            Kernel::MatmulBackwardBias,
            &[n as u32, oc as u32],
            &[&db_folded, &dout_g],
            [1, oc.div_ceil(16) as u32, 1],
        );
        assert_close("matmul backward dbias, folded grid", &g.read(&db_folded), &db, RTOL, ATOL);
        assert_close("matmul backward dinp", &g.read(&dinp_g), &dinp, RTOL, ATOL);
        assert_close("matmul backward dweight", &g.read(&dw_g), &dw, RTOL, ATOL);
        assert_close("matmul backward dbias", &g.read(&db_g), &db, RTOL, ATOL);
    }
}

/// The tied LM head as the chunked classifier runs it: vocabulary chunks read at an offset into
/// wte, the input gradient summed over chunks (accumulate), wte's gradient written at an offset.
#[test]
fn lm_head_through_matmul() {
    for g in Bench::each_matmul() {
        lm_head_through_matmul_on(&g);
    }
}

fn lm_head_through_matmul_on(g: &Bench) {
    let (n, c, v) = (21, 48, 67);
    let (x, wte) = (random(n * c, 18, 1.0), random(v * c, 19, 1.0));
    let mut logits = vec![0.0; n * v];
    cpu::lm_head_forward(&mut logits, &x, &wte, n, c, v);
    let dlogits = random(n * v, 20, 1.0);
    let (mut dx, mut dwte) = (vec![0.0; n * c], vec![0.0; v * c]);
    cpu::lm_head_backward(&mut dx, &mut dwte, &dlogits, &x, &wte, n, c, v);

    let (x_g, wte_g) = (g.f(&x), g.f(&wte));
    let (dx_g, dwte_g) = (g.f(&vec![7.0; n * c]), g.f(&vec![7.0; v * c]));
    let mut got_logits = vec![0.0; n * v];
    for (i, (v0, w)) in [(0usize, 30usize), (30, 30), (60, 7)].into_iter().enumerate() {
        let chunk = g.f(&vec![0.0; n * w]);
        let p = MatmulParams { m: u(n), n: u(w), k: u(c), trans_b: 1, b_offset: u(v0 * c), ..Default::default() };
        g.matmul(&chunk, &x_g, &wte_g, None, p);
        for (row, out) in g.read(&chunk).chunks(w).enumerate() {
            got_logits[row * v + v0..row * v + v0 + w].copy_from_slice(out);
        }
        let dl: Vec<f32> = (0..n).flat_map(|row| dlogits[row * v + v0..row * v + v0 + w].to_vec()).collect();
        let dl_g = g.f(&dl);
        let p = MatmulParams {
            m: u(n),
            n: u(c),
            k: u(w),
            accumulate: (i > 0) as u32,
            b_offset: u(v0 * c),
            ..Default::default()
        };
        g.matmul(&dx_g, &dl_g, &wte_g, None, p);
        let p = MatmulParams { m: u(w), n: u(c), k: u(n), trans_a: 1, out_offset: u(v0 * c), ..Default::default() };
        g.matmul(&dwte_g, &dl_g, &x_g, None, p);
    }
    assert_close("lm head forward", &got_logits, &logits, RTOL, ATOL);
    // The last row's logits through matmul_narrow (decoding), from rows 30.. of wte.
    let row_g = g.f(&vec![0.0; v - 30]);
    let p = MatmulParams { m: 1, n: u(v - 30), k: u(c), trans_b: 1, b_offset: u(30 * c), ..Default::default() };
    let last_row = g.f(&x[(n - 1) * c..]);
    g.run(Kernel::MatmulNarrow, &p, &[&row_g, &last_row, &wte_g, &g.f(&[0.0]), &g.f(&[0.0])], grid_1d(1));
    assert_close("lm head, one row", &g.read(&row_g), &logits[(n - 1) * v + 30..], RTOL, ATOL);
    assert_close("lm head dx", &g.read(&dx_g), &dx, RTOL, ATOL);
    assert_close("lm head dwte", &g.read(&dwte_g), &dwte, RTOL, ATOL);
}

#[test]
fn attention_forward_and_backward() {
    let Some(g) = Bench::new() else { return };
    for &(b, t, c, nh) in SHAPES {
        let n = b * t;
        let inp = random(n * 3 * c, 21, 1.0);
        let (mut out, mut att) = (vec![0.0; n * c], vec![0.0; b * nh * t * t]);
        cpu::attention_forward(&mut out, &mut att, &inp, b, t, c, nh);
        let (out_g, att_g, inp_g) = (g.f(&vec![0.0; n * c]), g.f(&random(b * nh * t * t, 22, 1.0)), g.f(&inp));
        let dims = [b as u32, t as u32, c as u32, nh as u32];
        let rows = grid_1d((b * nh * t).div_ceil(64));
        g.run(Kernel::AttentionForward, &dims, &[&out_g, &att_g, &inp_g], rows);
        assert_close("attention_forward out", &g.read(&out_g), &out, RTOL, ATOL);
        assert_close("attention_forward att", &g.read(&att_g), &att, RTOL, ATOL);

        let dout = random(n * c, 23, 1.0);
        let mut dinp = vec![0.0; n * 3 * c];
        cpu::attention_backward(&mut dinp, &dout, &inp, &att, b, t, c, nh);
        let (dinp_g, dout_g, dpre_g) = (g.f(&random(n * 3 * c, 24, 1.0)), g.f(&dout), g.f(&vec![0.0; b * nh * t * t]));
        g.run(Kernel::AttentionBackwardDpreatt, &dims, &[&dpre_g, &dout_g, &inp_g, &att_g], rows);
        g.run(Kernel::AttentionBackwardDqkv, &dims, &[&dinp_g, &dout_g, &inp_g, &att_g, &dpre_g], rows);
        assert_close("attention_backward dinp", &g.read(&dinp_g), &dinp, RTOL, ATOL);
    }
}

/// The flash kernels against the same twin: out, each row's log-sum-exp (made here from the
/// scores), and dq, dk, dv; on the awkward shapes and on rows across several workgroups,
/// head sizes not a multiple of 4, one row, the widest head (64), and rows across two
/// workgroups of 4 rows an invocation (301).
#[test]
fn attention_flash_forward_and_backward() {
    let Some(g) = Bench::new() else { return };
    let more = [(1, 130, 64, 1), (2, 67, 30, 2), (1, 1, 64, 1), (1, 200, 20, 4), (1, 301, 32, 2)];
    for &(b, t, c, nh) in SHAPES.iter().chain(&more) {
        let (n, hs) = (b * t, c / nh);
        assert!(kiln::gpt::attention_is_flash(hs));
        let inp = random(n * 3 * c, 31, 1.0);
        let (mut out, mut att) = (vec![0.0; n * c], vec![0.0; b * nh * t * t]);
        cpu::attention_forward(&mut out, &mut att, &inp, b, t, c, nh);
        let mut lse = vec![0.0f32; b * nh * t];
        for bb in 0..b {
            for h in 0..nh {
                for t1 in 0..t {
                    let q = &inp[(bb * t + t1) * 3 * c + h * hs..][..hs];
                    let scores: Vec<f32> = (0..=t1)
                        .map(|t2| {
                            let k = &inp[(bb * t + t2) * 3 * c + c + h * hs..][..hs];
                            q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / (hs as f32).sqrt()
                        })
                        .collect();
                    let m = scores.iter().cloned().fold(f32::MIN, f32::max);
                    lse[(bb * nh + h) * t + t1] = m + scores.iter().map(|s| (s - m).exp()).sum::<f32>().ln();
                }
            }
        }
        // Compiled for the widest head (64), and for this head rounded up to a vec4, as
        // training compiles them; for each count of rows an invocation `--attention-rows`
        // takes; and with the invocations a workgroup training takes for this block (16 at
        // T 5, 32 at T 70 with 3 or 4 rows) and with 64 (rows across several workgroups).
        let compiled = [64, hs.div_ceil(4) * 4].into_iter().flat_map(|hs_max| {
            (1..=AttentionRows::MAX).flat_map(move |rows| {
                let mut wgs = vec![kiln::gpt::flash_invocations(t, rows), 64];
                wgs.sort();
                wgs.dedup();
                wgs.into_iter().map(move |wg| kiln::gpt::flash_consts(hs_max, rows, wg))
            })
        });
        for consts in compiled {
            let (out_g, lse_g, inp_g) = (g.f(&random(n * c, 32, 1.0)), g.f(&random(b * nh * t, 33, 1.0)), g.f(&inp));
            let dims = [b as u32, t as u32, c as u32, nh as u32];
            let tiles = kiln::gpt::flash_tiles(b, t, nh, consts[1].1, consts[2].1);
            g.run_specialised(Kernel::AttentionForwardFlash, &consts, &dims, &[&out_g, &lse_g, &inp_g], tiles);
            assert_close("attention_forward_flash out", &g.read(&out_g), &out, RTOL, ATOL);
            assert_close("attention_forward_flash lse", &g.read(&lse_g), &lse, RTOL, ATOL);

            let dout = random(n * c, 34, 1.0);
            let mut dinp = vec![0.0; n * 3 * c];
            cpu::attention_backward(&mut dinp, &dout, &inp, &att, b, t, c, nh);
            let (dinp_g, delta_g, dout_g) =
                (g.f(&random(n * 3 * c, 35, 1.0)), g.f(&random(b * nh * t, 36, 1.0)), g.f(&dout));
            let out_g = g.f(&out);
            let bufs = [&dinp_g, &delta_g, &dout_g, &inp_g, &out_g, &lse_g];
            g.run_specialised(Kernel::AttentionBackwardDq, &consts, &dims, &bufs, tiles);
            let bufs = [&dinp_g, &dout_g, &inp_g, &lse_g, &delta_g];
            g.run_specialised(Kernel::AttentionBackwardDkv, &consts, &dims, &bufs, tiles);
            assert_close("attention flash backward dinp", &g.read(&dinp_g), &dinp, RTOL, ATOL);
        }
    }
}

#[test]
fn gelu_and_residual() {
    let Some(g) = Bench::new() else { return };
    let n = 1000; // not a multiple of 256
                  // Includes large arguments, where an unclamped tanh can turn into NaN on some drivers.
    let mut inp = random(n, 25, 4.0);
    inp[0] = 30.0;
    inp[1] = -30.0;
    let mut out = vec![0.0; n];
    cpu::gelu_forward(&mut out, &inp);
    let (out_g, inp_g) = (g.f(&vec![0.0; n]), g.f(&inp));
    g.run(Kernel::GeluForward, &[n as u32], &[&out_g, &inp_g], grid_1d(n.div_ceil(256)));
    assert_close("gelu_forward", &g.read(&out_g), &out, RTOL, ATOL);

    let dout = random(n, 26, 1.0);
    let mut dinp = vec![0.0; n];
    cpu::gelu_backward(&mut dinp, &inp, &dout);
    let (dinp_g, dout_g) = (g.f(&random(n, 27, 1.0)), g.f(&dout));
    g.run(Kernel::GeluBackward, &[n as u32], &[&dinp_g, &inp_g, &dout_g], grid_1d(n.div_ceil(256)));
    assert_close("gelu_backward", &g.read(&dinp_g), &dinp, RTOL, ATOL);
}

/// The chunked classifier (statistics chunk by chunk, the loss, the gradient chunk by chunk)
/// against the CPU's one-pass softmax and cross-entropy, with ignored targets.
#[test]
fn classifier_in_chunks() {
    let Some(g) = Bench::new() else { return };
    for &(n, v, width) in &[(15, 67, 67), (15, 67, 10), (1, 3, 2), (33, 300, 64)] {
        let logits: Vec<f32> = random(n * v, 30, 5.0);
        let mut targets = random_tokens(n, v, 31);
        if n > 2 {
            targets[1] = IGNORE;
        }
        let count = targets.iter().filter(|&&t| t != IGNORE).count();
        let dloss = 1.0 / count as f32;
        let (mut losses, mut dlogits) = (vec![0.0; n], vec![0.0; n * v]);
        for r in 0..n {
            if targets[r] == IGNORE {
                continue;
            }
            let row = r * v..(r + 1) * v;
            let (mut l, mut d) = ([0.0], vec![0.0; v]);
            cpu::crossentropy_softmax(&mut l, &mut d, &logits[row.clone()], &targets[r..r + 1], 1, v, dloss);
            losses[r] = l[0];
            dlogits[row].copy_from_slice(&d);
        }
        let mean = losses.iter().sum::<f32>() / count as f32;

        let chunks: Vec<(usize, usize)> = (0..v).step_by(width).map(|v0| (v0, width.min(v - v0))).collect();
        let chunk_logits = |v0: usize, w: usize| -> Vec<f32> {
            (0..n).flat_map(|r| logits[r * v + v0..r * v + v0 + w].to_vec()).collect()
        };
        let (stats, targets_g, losses_g, loss_g) =
            (g.f(&vec![0.0; n * 3]), g.u(&targets), g.f(&vec![9.0; n]), g.f(&[9.0, 9.0]));
        // Every way of reducing a row the adapter runs (see NormVariant::classifier_stats); the
        // workgroup's last, for the gradient below.
        let norms = [NormVariant::Rows, NormVariant::Subgroup, NormVariant::Workgroup];
        for norm in norms.into_iter().filter(|v| v.available(g.gpu.features)) {
            let (kernel, grid) = norm.classifier_stats(n);
            let grid = match grid {
                Grid::Groups(n) => grid_1d(n),
                Grid::Threads(n) => grid_1d(n.div_ceil(64)),
                Grid::Tiles(g) => g,
            };
            for (i, &(v0, w)) in chunks.iter().enumerate() {
                let p = ClassifierStatsParams { n: u(n), vc: u(w), v0: u(v0), first: (i == 0) as u32 };
                g.run(kernel, &p, &[&stats, &g.f(&chunk_logits(v0, w)), &targets_g], grid);
            }
            let p = ClassifierLossParams { n: u(n), accumulate: 0 };
            g.run(Kernel::ClassifierLoss, &p, &[&loss_g, &losses_g, &stats, &targets_g], [1, 1, 1]);
            assert_close(&format!("classifier losses ({norm})"), &g.read(&losses_g), &losses, RTOL, ATOL);
            assert_close(&format!("classifier mean and dloss ({norm})"), &g.read(&loss_g), &[mean, dloss], RTOL, ATOL);
        }
        let mut got = vec![0.0; n * v];
        for &(v0, w) in &chunks {
            let chunk = g.f(&chunk_logits(v0, w));
            let p = ClassifierBackwardParams { n: u(n), vc: u(w), v0: u(v0) };
            g.run(
                Kernel::ClassifierBackward,
                &p,
                &[&chunk, &stats, &targets_g, &loss_g],
                grid_1d((n * w).div_ceil(256)),
            );
            for (r, row) in g.read(&chunk).chunks(w).enumerate() {
                got[r * v + v0..r * v + v0 + w].copy_from_slice(row);
            }
        }
        assert_close("classifier dlogits", &got, &dlogits, RTOL, ATOL);

        // Evaluation adds the summed loss and the count into its accumulator.
        let acc = g.f(&[1.0, 2.0]);
        let p = ClassifierLossParams { n: u(n), accumulate: 1 };
        g.run(Kernel::ClassifierLoss, &p, &[&acc, &losses_g, &stats, &targets_g], [1, 1, 1]);
        let sum = losses.iter().sum::<f32>();
        assert_close("classifier accumulate", &g.read(&acc), &[1.0 + sum, 2.0 + count as f32], RTOL, ATOL);
    }
}

#[test]
fn grad_norm_clip_and_adamw_over_one_arena() {
    let Some(g) = Bench::new() else { return };
    // Two tensors in one arena, as src/gpt/arena.rs packs them: a decaying one of 1000 words at
    // 0, then zero padding, then one of 37 words at 1024 that does not decay. The norm spans
    // both; clipping is active (norm > 1).
    let sizes = [1000usize, 37];
    let (starts, words, decayed) = ([0usize, 1024], 1064usize, 1000usize);
    let grads: Vec<Vec<f32>> = sizes.iter().enumerate().map(|(i, &s)| random(s, 40 + i as u64, 0.2)).collect();
    let norm = cpu::global_grad_norm(&grads.iter().map(|g| g.as_slice()).collect::<Vec<_>>());
    assert!(norm > 1.0, "test data should trigger clipping, norm {norm}");
    let max_norm = 1.0f32;
    let scale = cpu::clip_scale(norm, max_norm);
    // Fills an arena with one vector per tensor, zeros between them.
    let arena = |parts: [&Vec<f32>; 2]| {
        let mut out = vec![0.0f32; words];
        for (part, &at) in parts.iter().zip(&starts) {
            out[at..at + part.len()].copy_from_slice(part);
        }
        out
    };

    let partials = g.f(&[0.0; 4]);
    let norm_g = g.f(&[0.0; 4]);
    let loss_g = g.f(&[2.5, 0.0]);
    let grad_g = g.f(&arena([&grads[0], &grads[1]]));
    g.run(Kernel::GradNormPartial, &[words as u32, 1], &[&partials, &grad_g], [3, 1, 1]);
    g.run(Kernel::GradNormFinalize, &[4, max_norm.to_bits()], &[&norm_g, &partials, &loss_g], [1, 1, 1]);
    // A finite loss and norm: no skip, none skipped so far.
    assert!(cpu::step_is_finite(2.5, norm));
    assert_close("grad norm, clip scale, skip", &g.read(&norm_g), &[norm, scale, 0.0, 0.0], RTOL, ATOL);

    let (lr, b1, b2, eps, wd) = (1e-2f32, 0.9f32, 0.95f32, 1e-8f32, 0.1f32);
    let mut p: Vec<Vec<f32>> = sizes.iter().enumerate().map(|(i, &s)| random(s, 50 + i as u64, 1.0)).collect();
    let mut m: Vec<Vec<f32>> = sizes.iter().map(|&s| random(s, 60, 0.01)).collect();
    let mut v: Vec<Vec<f32>> = sizes.iter().map(|&s| random(s, 61, 0.01).iter().map(|x| x.abs()).collect()).collect();
    let p0 = p.clone();
    let (p_g, m_g, v_g) = (g.f(&arena([&p[0], &p[1]])), g.f(&arena([&m[0], &m[1]])), g.f(&arena([&v[0], &v[1]])));
    let step_u = kiln::gpu::uniform(&g.gpu, "step", &[0; 4]);
    let params = [words as u32, decayed as u32, wd.to_bits(), b1.to_bits(), b2.to_bits(), eps.to_bits()];
    let mut prog = Program::default();
    let bufs = [(&step_u).into(), p_g.bind(), grad_g.bind(), m_g.bind(), v_g.bind(), norm_g.bind()];
    prog.push(g.kernels.dispatch(&g.gpu, Kernel::AdamwUpdate, &params, &bufs, Grid::Threads(words / 4)));
    for step in 1..=3u32 {
        for i in 0..2 {
            let wd = if i == 0 { wd } else { 0.0 };
            cpu::adamw_update(&mut p[i], &grads[i], &mut m[i], &mut v[i], lr, b1, b2, eps, wd, step, scale);
        }
        let (bc1, bc2) = (1.0 - b1.powi(step as i32), 1.0 - b2.powi(step as i32));
        g.gpu.queue.write_buffer(&step_u, 0, bytemuck::cast_slice(&[lr.to_bits(), bc1.to_bits(), bc2.to_bits(), 0]));
        prog.submit(&g.gpu);
    }
    // Each tensor as its twin says, and the padding still zero in all three arenas.
    for (what, got, want) in [("param", &p_g, &p), ("m", &m_g, &m), ("v", &v_g, &v)] {
        assert_close(&format!("adamw {what}"), &g.read(got), &arena([&want[0], &want[1]]), RTOL, ATOL);
    }
    for i in 0..2 {
        assert!(p[i].iter().zip(&p0[i]).any(|(a, b)| a != b), "the update changed nothing");
    }
}

#[test]
fn a_step_with_a_non_finite_loss_or_norm_is_skipped() {
    let Some(g) = Bench::new() else { return };
    let size = 300usize;
    let (p0, m0, v0) = (
        random(size, 1, 1.0),
        random(size, 2, 0.1),
        random(size, 3, 0.1).iter().map(|x| x.abs()).collect::<Vec<f32>>(),
    );
    let step_u = kiln::gpu::uniform(&g.gpu, "step", &[1e-2f32.to_bits(), 0.1f32.to_bits(), 0.05f32.to_bits(), 0]);
    // Cases: (loss, one gradient value): NaN loss, an infinite gradient, a NaN gradient, and a
    // sane step last. The count of skipped steps accumulates in norm[3].
    let cases = [(f32::NAN, 0.5f32), (1.0, f32::INFINITY), (1.0, f32::NAN), (f32::NEG_INFINITY, 0.5), (1.0, 0.5)];
    let norm_g = g.f(&[0.0; 4]);
    let mut skipped = 0.0;
    for (i, &(loss, poison)) in cases.iter().enumerate() {
        let mut grad = random(size, 4, 0.1);
        grad[17] = poison;
        let norm = cpu::global_grad_norm(&[&grad]);
        let skip = !cpu::step_is_finite(loss, norm);
        skipped += skip as u8 as f32;
        let (p_g, m_g, v_g, grad_g, loss_g) = (g.f(&p0), g.f(&m0), g.f(&v0), g.f(&grad), g.f(&[loss, 0.0]));
        let partials = g.f(&[0.0]);
        g.run(Kernel::GradNormPartial, &[size as u32, 0], &[&partials, &grad_g], [1, 1, 1]);
        g.run(Kernel::GradNormFinalize, &[1, 1f32.to_bits()], &[&norm_g, &partials, &loss_g], [1, 1, 1]);
        let flags = g.read(&norm_g);
        assert_eq!((flags[2], flags[3]), (skip as u8 as f32, skipped), "case {i}: skip flag and count");
        let params =
            [size as u32, size as u32, 0.1f32.to_bits(), 0.9f32.to_bits(), 0.95f32.to_bits(), 1e-8f32.to_bits()];
        let mut prog = Program::default();
        let bufs = [(&step_u).into(), p_g.bind(), grad_g.bind(), m_g.bind(), v_g.bind(), norm_g.bind()];
        prog.push(g.kernels.dispatch(&g.gpu, Kernel::AdamwUpdate, &params, &bufs, Grid::Threads(size / 4)));
        prog.submit(&g.gpu);
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (p, m, v) = (g.read(&p_g), g.read(&m_g), g.read(&v_g));
        if skip {
            assert_eq!(bits(&p), bits(&p0), "case {i}: weights changed on a skipped step");
            assert_eq!((bits(&m), bits(&v)), (bits(&m0), bits(&v0)), "case {i}: moments changed on a skipped step");
        } else {
            assert!(p.iter().all(|x| x.is_finite()) && p != p0, "case {i}: a sane step must update");
        }
    }
}

/// The kernel choice both front ends keep reads back as chosen, each size class its own; a kept
/// choice missing a class, attention's rows or the split over K (an older build's) reads as
/// none, so the trial runs again; one without an epilogue has it compiled in, as every trial
/// chose, and an unknown epilogue reads as none.
#[test]
fn the_kept_kernel_choice_reads_back() {
    use kiln::gpu::tune::{options_from_json, options_json};
    let Some(g) = Bench::new() else { return };
    let fits: Vec<_> = MatmulVariant::CANDIDATES.iter().copied().filter(|v| v.fits(&g.gpu.limits)).collect();
    assert!(fits.len() >= 3, "the adapter fits only {} matmul candidates", fits.len());
    let options = KernelOptions {
        matmul: fits[0],
        matmul_small: fits[1],
        matmul_large: fits[2],
        norm: NormVariant::Rows,
        attention: AttentionRows(4),
        split: SplitK(64),
        epilogue: Epilogue::Tested,
        checked: false,
    };
    let json = options_json(&options);
    assert_eq!(options_from_json(&json, &g.gpu, false), Some(options));
    for older in ["matmul_large", "attention_rows", "split_k"] {
        let mut json = json.clone();
        json.as_object_mut().unwrap().remove(older);
        assert_eq!(options_from_json(&json, &g.gpu, false), None, "a choice without {older}");
    }
    let mut json = json.clone();
    json.as_object_mut().unwrap().remove("epilogue");
    let compiled = KernelOptions { epilogue: Epilogue::Compiled, ..options };
    assert_eq!(options_from_json(&json, &g.gpu, false), Some(compiled), "a choice without an epilogue");
    json["epilogue"] = "inlined".into();
    assert_eq!(options_from_json(&json, &g.gpu, false), None, "an unknown epilogue");
}

/// Each product takes its size class's variant: small under 2^25 multiply-adds, the middle
/// under 2^29, large from there (the boundaries exactly), with a grid of its tile.
#[test]
fn products_take_their_size_class_variant() {
    use kiln::gpu::{LARGE_MATMUL_WORK, SMALL_MATMUL_WORK};
    let Some(g) = Bench::new() else { return };
    let fits: Vec<_> = MatmulVariant::CANDIDATES.iter().copied().filter(|v| v.fits(&g.gpu.limits)).collect();
    assert!(fits.len() >= 3, "the adapter fits only {} matmul candidates", fits.len());
    let (matmul, matmul_small, matmul_large) = (fits[0], fits[1], fits[2]);
    let options = KernelOptions { matmul, matmul_small, matmul_large, ..Default::default() };
    let kernels = Kernels::with(&g.gpu, options);
    // M x 1024 x 1024 products: M = work / 2^20.
    let cases = [
        (SMALL_MATMUL_WORK - (1 << 20), matmul_small),
        (SMALL_MATMUL_WORK, matmul),
        (LARGE_MATMUL_WORK - (1 << 20), matmul),
        (LARGE_MATMUL_WORK, matmul_large),
    ];
    for (work, want) in cases {
        let m = (work >> 20) as u32;
        let (v, grid) = kernels.matmul_launch(m, 1024, 1024);
        assert_eq!(v, want, "{work} multiply-adds");
        let (bm, bn) = want.tile();
        let Grid::Tiles(groups) = grid else { panic!("{work}: not a tiled grid") };
        assert_eq!(groups, [1024u32.div_ceil(bn), m.div_ceil(bm), 1], "{work}: grid");
    }
}

/// The per-adapter trial times every kind: each list holds candidates only, fastest first, with
/// finite positive times; every matmul candidate that fits is timed for the middle and small
/// classes, the large class only among the middle class's close ones, and both LayerNorm
/// kernels, every count of attention rows and every split over K; its choice is each list's
/// first.
#[test]
fn the_trial_times_every_kind() {
    let Some(g) = Bench::new() else { return };
    let origin = std::time::Instant::now();
    let now = move || origin.elapsed().as_secs_f64();
    let clock = kiln::gpu::tune::TrialClock { now: &now, stop: &|| false };
    let trial = pollster::block_on(kiln::gpu::tune::time_candidates(&g.gpu, false, &clock)).expect("the trial ran");
    fn check<V: PartialEq + std::fmt::Debug + Copy>(kind: &str, list: &[(V, f64)], allowed: &[V]) {
        assert!(!list.is_empty(), "{kind}: nothing timed");
        for w in list.windows(2) {
            assert!(w[0].1 <= w[1].1, "{kind}: not fastest first: {list:?}");
        }
        for (v, t) in list {
            assert!(allowed.contains(v), "{kind}: {v:?} is not a candidate");
            assert!(t.is_finite() && *t > 0.0, "{kind}: {v:?} took {t} s");
        }
    }
    let fits: Vec<_> = MatmulVariant::CANDIDATES.iter().copied().filter(|v| v.fits(&g.gpu.limits)).collect();
    check("matmul", &trial.matmul, &fits);
    check("matmul_small", &trial.matmul_small, &fits);
    check("matmul_large", &trial.matmul_large, &fits);
    let norms = NormVariant::candidates_for(g.gpu.features);
    check("norm", &trial.norm, &norms);
    check("attention", &trial.attention, AttentionRows::CANDIDATES);
    check("split", &trial.split, SplitK::CANDIDATES);
    assert_eq!(trial.matmul.len(), fits.len());
    assert_eq!(trial.matmul_small.len(), fits.len());
    assert_eq!(trial.norm.len(), norms.len());
    assert_eq!(trial.attention.len(), AttentionRows::CANDIDATES.len());
    assert_eq!(trial.split.len(), SplitK::CANDIDATES.len());
    let best = trial.matmul[0].1;
    for (v, _) in &trial.matmul_large {
        let middle = trial.matmul.iter().find(|c| c.0 == *v).unwrap().1;
        assert!(middle <= 2.0 * best, "{v} timed for large products though its middle time {middle} is over 2x {best}");
    }
    let chosen = trial.options(false);
    assert_eq!(
        (chosen.matmul, chosen.matmul_small, chosen.matmul_large, chosen.norm, chosen.attention, chosen.split),
        (
            trial.matmul[0].0,
            trial.matmul_small[0].0,
            trial.matmul_large[0].0,
            trial.norm[0].0,
            trial.attention[0].0,
            trial.split[0].0
        )
    );
}

/// A trial asked to stop ends at the next candidate's program, with `STOPPED` (the page stops
/// the trial it runs while idle as soon as the visitor asks for the GPU): here `stop` says true
/// on its third question, and it is not asked again; told at once, it compiles nothing.
#[test]
fn the_trial_stops_when_asked() {
    let Some(g) = Bench::new() else { return };
    let origin = std::time::Instant::now();
    let now = move || origin.elapsed().as_secs_f64();
    let asked = std::cell::Cell::new(0);
    let stop = || {
        asked.set(asked.get() + 1);
        asked.get() >= 3
    };
    let clock = kiln::gpu::tune::TrialClock { now: &now, stop: &stop };
    let result = pollster::block_on(kiln::gpu::tune::time_candidates(&g.gpu, false, &clock));
    assert_eq!(result.err().as_deref(), Some(kiln::gpu::tune::STOPPED));
    assert_eq!(asked.get(), 3, "the trial went on asking after it was told to stop");
    // Stopped before its first candidate, on a device that has compiled nothing yet, it
    // compiles nothing (a browser's GPU process would compile those before the visitor's).
    let fresh = Bench::new().expect("the adapter went away");
    let clock = kiln::gpu::tune::TrialClock { now: &now, stop: &|| true };
    let result = pollster::block_on(kiln::gpu::tune::time_candidates(&fresh.gpu, false, &clock));
    assert_eq!(result.err().as_deref(), Some(kiln::gpu::tune::STOPPED));
    assert_eq!(fresh.gpu.pipelines_compiled(), 0, "a stopped trial compiled pipelines");
}

/// Pipelines are compiled once a device: a second `Kernels` with the same options (the model
/// after the trial) takes the first one's, and other bounds checks make a new one.
#[test]
fn kernels_share_compiled_pipelines() {
    let Some(g) = Bench::new() else { return };
    let options = kiln::gpu::KernelOptions::default();
    let first = kiln::gpu::Kernels::with(&g.gpu, options);
    first.pipeline(Kernel::GeluForward);
    let compiled = g.gpu.pipelines_compiled();
    kiln::gpu::Kernels::with(&g.gpu, options).pipeline(Kernel::GeluForward);
    assert_eq!(g.gpu.pipelines_compiled(), compiled, "the same source was compiled twice");
    kiln::gpu::Kernels::with(&g.gpu, kiln::gpu::KernelOptions { checked: true, ..options })
        .pipeline(Kernel::GeluForward);
    assert_eq!(g.gpu.pipelines_compiled(), compiled + 1, "checked and unchecked modules shared a pipeline");
}

/// Kernel options change only while no model holds pipelines built with the old ones: the page
/// builds its default run with the untimed options, drops it, then sets its trial's winners.
#[test]
fn kernel_options_change_once_no_model_holds_the_old_ones() {
    let Some(gpu) = gpu() else { return };
    let cfg = kiln::config::ModelConfig { vocab_size: 13, n_layer: 1, n_head: 2, n_embd: 8, block_size: 6 };
    let params = cpu::init_params(&cfg, 5);
    let (first, other) = (KernelOptions::default(), KernelOptions { epilogue: Epilogue::Tested, ..Default::default() });
    gpu.set_kernel_options(first).unwrap();
    let model = kiln::gpt::GpuGpt::for_eval(&gpu, cfg, &params, 1, 6).unwrap();
    assert!(gpu.set_kernel_options(other).is_err(), "options changed under a model built with others");
    assert_eq!(gpu.set_kernel_options(first), Ok(()), "the same options again were refused");
    drop(model);
    assert_eq!(gpu.set_kernel_options(other), Ok(()), "refused with no model alive");
    assert_eq!(gpu.kernels().options, other);
}
