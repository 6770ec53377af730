//! Where tensors go when one storage binding cannot hold them: how many rows of a tensor each
//! buffer holds, and how the vocabulary is cut into chunks for the LM head and its loss.
//!
//! WebGPU binds at most `max_storage_buffer_binding_size` bytes (128 MiB in browsers and on
//! lavapipe), while GPT-2's token embedding is 154 MB. Tensors over the limit are split by rows
//! over several buffers; kernels that read them take a `row0`/`rows` pair or an offset. The
//! (batch x block x vocabulary) logits are never made whole: the LM head and the cross-entropy
//! run one vocabulary chunk at a time (see `classifier_stats.wgsl`).

/// Limits that decide the splits; `for_limits` takes them from the adapter, tests shrink them
/// to exercise the split paths on small models.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The largest buffer one binding may cover, in bytes.
    pub max_buffer_bytes: u64,
    /// The most bytes one chunk of logits (rows x chunk width) may take.
    pub logits_chunk_bytes: u64,
}

/// One chunk of the vocabulary: tokens [v0, v0 + width), held by wte's buffer `part` from its
/// row `local0` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VocabChunk {
    pub part: usize,
    pub v0: usize,
    pub local0: usize,
    pub width: usize,
}

/// Vocabulary chunks are multiples of this many tokens, but for one narrow chunk a buffer of
/// wte (the remainder): the LM head's products then run on whole tiles of 64 (the tile side of
/// the small products' kernels) and the remainder on matmul_narrow. Put first, the remainder is
/// remade for the backward pass rather than a whole chunk, and the whole chunk whose logits the
/// forward pass leaves in place starts the input gradient's sum (a product that writes, not
/// adds: whole tiles again). On lavapipe, over 65 characters, each of the LM head's three
/// products took 3.0-6.4 ms as one chunk, where 64 tokens of whole tiles took 1.2-2.8 ms.
const CHUNK_ALIGN: usize = 64;

/// Logit chunks are kept at most this large (64 MiB) even where a binding could hold more:
/// larger ones only cost memory.
const LOGITS_CHUNK_CAP: u64 = 64 << 20;

impl Layout {
    pub fn for_limits(limits: &wgpu::Limits) -> Layout {
        let max = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        Layout { max_buffer_bytes: max, logits_chunk_bytes: max.min(LOGITS_CHUNK_CAP) }
    }

    /// How a (rows, cols) tensor is split: (first row, row count) of each buffer.
    pub fn split_rows(&self, rows: usize, cols: usize) -> Vec<(usize, usize)> {
        let per = ((self.max_buffer_bytes / (4 * cols.max(1) as u64)) as usize).max(1);
        (0..rows.max(1)).step_by(per).map(|r0| (r0, per.min(rows.max(1) - r0))).collect()
    }

    /// The vocabulary chunks for `n` rows of logits over `v` tokens of `c` channels: each inside
    /// one buffer of wte and at most `logits_chunk_bytes` of logits. Where a buffer's rows are
    /// not a multiple of `CHUNK_ALIGN`, the remainder is a chunk of its own, the buffer's first,
    /// and the others are multiples of `CHUNK_ALIGN` (so whole tiles: see `CHUNK_ALIGN`).
    pub fn vocab_chunks(&self, v: usize, c: usize, n: usize) -> Vec<VocabChunk> {
        let most = ((self.logits_chunk_bytes / (4 * n.max(1) as u64)) as usize).max(1);
        let width = if most >= CHUNK_ALIGN { most - most % CHUNK_ALIGN } else { most };
        let mut chunks = Vec::new();
        for (part, (row0, rows)) in self.split_rows(v, c).into_iter().enumerate() {
            let sliver = if width >= CHUNK_ALIGN && rows > CHUNK_ALIGN { rows % CHUNK_ALIGN } else { 0 };
            let mut local0 = 0;
            while local0 < rows {
                let w = if local0 == 0 && sliver > 0 { sliver } else { width.min(rows - local0) };
                chunks.push(VocabChunk { part, v0: row0 + local0, local0, width: w });
                local0 += w;
            }
        }
        chunks
    }

    /// The widest chunk, which sizes the logits buffer.
    pub fn widest_chunk(&self, v: usize, c: usize, n: usize) -> usize {
        self.vocab_chunks(v, c, n).iter().map(|k| k.width).max().unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_cover_every_row_once() {
        let layout = Layout { max_buffer_bytes: 4 * 10 * 7, logits_chunk_bytes: 4 * 3 * 4 };
        assert_eq!(layout.split_rows(25, 10), vec![(0, 7), (7, 7), (14, 7), (21, 4)]);
        let chunks = layout.vocab_chunks(25, 10, 3);
        let mut next = 0;
        for k in &chunks {
            assert_eq!(k.v0, next);
            assert!(k.width <= 4 && k.local0 + k.width <= 7);
            next += k.width;
        }
        assert_eq!(next, 25);
        assert_eq!(layout.widest_chunk(25, 10, 3), 4);
    }

    /// Each buffer's remainder past a multiple of CHUNK_ALIGN comes first, alone; the other chunks
    /// are multiples of it; where no chunk can hold CHUNK_ALIGN tokens, or a buffer holds fewer,
    /// nothing changes.
    #[test]
    fn chunks_are_whole_multiples_after_a_narrow_first() {
        let widths = |l: &Layout, v, n| l.vocab_chunks(v, 4, n).iter().map(|k| (k.part, k.width)).collect::<Vec<_>>();
        let roomy = Layout { max_buffer_bytes: 1 << 30, logits_chunk_bytes: 4 * 8 * 200 };
        assert_eq!(widths(&roomy, 65, 8), vec![(0, 1), (0, 64)]);
        assert_eq!(widths(&roomy, 64, 8), vec![(0, 64)]);
        assert_eq!(widths(&roomy, 40, 8), vec![(0, 40)]);
        // 200 tokens of logits a chunk: 192, the multiple of 64 below.
        assert_eq!(widths(&roomy, 450, 8), vec![(0, 2), (0, 192), (0, 192), (0, 64)]);
        let split = Layout { max_buffer_bytes: 4 * 4 * 100, logits_chunk_bytes: 4 * 8 * 200 };
        assert_eq!(widths(&split, 230, 8), vec![(0, 36), (0, 64), (1, 36), (1, 64), (2, 30)]);
        let tight = Layout { max_buffer_bytes: 1 << 30, logits_chunk_bytes: 4 * 8 * 50 };
        assert_eq!(widths(&tight, 130, 8), vec![(0, 50), (0, 50), (0, 30)]);
    }
}
