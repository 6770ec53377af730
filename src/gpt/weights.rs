//! A model's tensors on the GPU, one entry per row of the parameter table, each split by rows
//! over as many buffers as the binding limit needs (only the token embedding of large
//! vocabularies ever is), every buffer a range of an arena (see `arena.rs`). The same shape
//! serves weights, gradients and AdamW moments.

use super::arena::{pack, ArenaSpan};
use super::Layout;
use crate::config::ModelConfig;
use crate::gpu::{Bind, Gpu, GpuTensor};
use crate::model::{param_table, ParamSpec, WTE};

/// One tensor held by one or more buffers, split along its first dimension.
#[derive(Clone)]
pub struct Split {
    /// Each buffer with the first row it holds and its row count.
    pub parts: Vec<(GpuTensor, usize, usize)>,
    /// Values per row (the product of the other dimensions).
    pub row_len: usize,
}

impl Split {
    /// The buffers of table entry `index` under `layout`: (what `alloc(words)` returns, first
    /// row, rows) for each. Only the token embedding is ever split: it is the one tensor that
    /// grows with the vocabulary, and the only one the kernels read split (the memory plan
    /// refuses a model whose other tensors do not fit one binding).
    pub fn describe<T>(
        spec: &ParamSpec,
        index: usize,
        layout: &Layout,
        mut alloc: impl FnMut(usize) -> T,
    ) -> Vec<(T, usize, usize)> {
        let rows = spec.shape.first().copied().unwrap_or(1);
        let row_len = spec.numel() / rows.max(1);
        if index != WTE {
            return vec![(alloc(spec.numel()), 0, rows)];
        }
        layout.split_rows(rows, row_len).into_iter().map(|(r0, n)| (alloc(n * row_len), r0, n)).collect()
    }

    /// The one buffer of a tensor that is not split (every tensor but a large `wte`).
    pub fn whole(&self) -> &GpuTensor {
        debug_assert_eq!(self.parts.len(), 1, "a split tensor used whole");
        &self.parts[0].0
    }

    /// Writes all of `data` (the whole tensor) into the parts. Queued.
    pub fn write(&self, gpu: &Gpu, data: &[f32]) {
        for (t, r0, n) in &self.parts {
            t.write_f32(gpu, &data[r0 * self.row_len..(r0 + n) * self.row_len]);
        }
    }

    /// The whole tensor, read back. Sync point.
    pub async fn read(&self, gpu: &Gpu) -> Result<Vec<f32>, String> {
        let mut out = Vec::new();
        for (t, _, _) in &self.parts {
            out.extend(t.read_f32(gpu).await?);
        }
        Ok(out)
    }
}

/// Every tensor of the table on the GPU, in table order.
pub struct GpuWeights {
    pub cfg: ModelConfig,
    pub table: Vec<ParamSpec>,
    pub layout: Layout,
    pub tensors: Vec<Split>,
    /// The buffers that hold every tensor, each with what it holds.
    pub arenas: Vec<(GpuTensor, ArenaSpan)>,
}

impl GpuWeights {
    /// Zeroed tensors of `cfg`'s table, labelled with `prefix` + name.
    pub fn zeros(gpu: &Gpu, cfg: ModelConfig, layout: Layout, prefix: &str) -> GpuWeights {
        GpuWeights::zeros_table(gpu, cfg, param_table(&cfg), layout, prefix)
    }

    /// Zeroed tensors of another table over the model `cfg` (LoRA adapters), packed into
    /// arenas labelled `prefix` + "arena".
    pub fn zeros_table(gpu: &Gpu, cfg: ModelConfig, table: Vec<ParamSpec>, layout: Layout, prefix: &str) -> GpuWeights {
        let packing = pack(&table, &layout, u64::from(gpu.limits.min_storage_buffer_offset_alignment));
        let label = format!("{prefix}arena");
        let arenas: Vec<(GpuTensor, ArenaSpan)> =
            packing.arenas.iter().map(|span| (GpuTensor::zeros(gpu, &label, span.words), *span)).collect();
        let tensors = table
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let row_len = spec.numel() / spec.shape.first().copied().unwrap_or(1).max(1);
                let mut places = packing.places[i].iter();
                let parts = Split::describe(spec, i, &layout, |len| {
                    let &(k, at) = places.next().expect("one place per part");
                    arenas[k].0.slice(at, len)
                });
                Split { parts, row_len }
            })
            .collect();
        GpuWeights { cfg, table, layout, tensors, arenas }
    }

    /// Uploads `params` (one Vec per table entry), checking their sizes.
    pub fn upload(gpu: &Gpu, cfg: ModelConfig, layout: Layout, params: &[Vec<f32>]) -> Result<GpuWeights, String> {
        let w = GpuWeights::zeros(gpu, cfg, layout, "");
        if params.len() != w.table.len() {
            return Err(format!("expected {} parameter tensors, got {}", w.table.len(), params.len()));
        }
        for (spec, p) in w.table.iter().zip(params) {
            if p.len() != spec.numel() {
                return Err(format!("{} has {} values, expected {:?}", spec.name, p.len(), spec.shape));
            }
        }
        w.write(gpu, params);
        Ok(w)
    }

    pub fn write(&self, gpu: &Gpu, params: &[Vec<f32>]) {
        for (t, p) in self.tensors.iter().zip(params) {
            t.write(gpu, p);
        }
    }

    /// Every tensor, read back. Sync point.
    pub async fn read(&self, gpu: &Gpu) -> Result<Vec<Vec<f32>>, String> {
        let mut out = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            out.push(t.read(gpu).await?);
        }
        Ok(out)
    }

    /// The single buffer of table entry `i` (any tensor but a split `wte`).
    pub fn buf(&self, i: usize) -> Bind<'_> {
        self.tensors[i].whole().bind()
    }
}
