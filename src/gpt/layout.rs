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
    /// one buffer of wte and at most `logits_chunk_bytes` of logits.
    pub fn vocab_chunks(&self, v: usize, c: usize, n: usize) -> Vec<VocabChunk> {
        let width = ((self.logits_chunk_bytes / (4 * n.max(1) as u64)) as usize).max(1);
        let mut chunks = Vec::new();
        for (part, (row0, rows)) in self.split_rows(v, c).into_iter().enumerate() {
            let mut local0 = 0;
            while local0 < rows {
                let w = width.min(rows - local0);
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
}
