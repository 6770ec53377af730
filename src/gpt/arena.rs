//! Where a table's tensors live: packed into a few large buffers (arenas) rather than a buffer
//! each, so that one dispatch per arena can update every parameter (AdamW) or sum every
//! gradient (the grad norm), where a buffer each took a dispatch each (57 launches a step for
//! `tiny`). Weights, gradients and both moments of one table pack the same way, so word `i` of
//! the gradient arena belongs to word `i` of the weight arena.
//!
//! Each part (a tensor, or one buffer of a split `wte`; see `Split::describe`) starts at an
//! offset the adapter can bind (`min_storage_buffer_offset_alignment`), and no arena is larger
//! than one binding may be (`Layout::max_buffer_bytes`), so there is one arena for small models
//! and a few for GPT-2 in a browser. Tensors that decay come first: AdamW decays the words of an
//! arena below its `decayed` mark and no others. The padding between parts is never written by
//! a kernel, so it stays zero and adds nothing to the norm and changes nothing under AdamW.

use super::{Layout, Split};
use crate::model::ParamSpec;

/// The largest `min_storage_buffer_offset_alignment` WebGPU lets an adapter ask (its default).
pub const COARSEST_ALIGN_BYTES: u64 = 256;

/// What one arena holds, in 4-byte words (a multiple of 4, so kernels may read it as vec4s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaSpan {
    pub words: usize,
    /// Words [0, decayed) belong to tensors that take weight decay.
    pub decayed: usize,
}

/// The packing of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packing {
    /// Per table entry, per part in `Split::describe`'s order: (arena, first word).
    pub places: Vec<Vec<(usize, usize)>>,
    pub arenas: Vec<ArenaSpan>,
}

/// Packs `table` under `layout`, every part starting at a multiple of `align_bytes`.
pub fn pack(table: &[ParamSpec], layout: &Layout, align_bytes: u64) -> Packing {
    // vec4 granularity at least, so that every part and every arena is whole vec4s.
    let align = (align_bytes as usize / 4).max(4);
    let max_words = (layout.max_buffer_bytes / 4) as usize / 4 * 4;
    let lens: Vec<Vec<usize>> = table
        .iter()
        .enumerate()
        .map(|(i, spec)| Split::describe(spec, i, layout, |len| len).into_iter().map(|p| p.0).collect())
        .collect();
    let order = (0..table.len()).filter(|&i| table[i].decays()).chain((0..table.len()).filter(|&i| !table[i].decays()));
    let mut places: Vec<Vec<(usize, usize)>> = lens.iter().map(|parts| vec![(0, 0); parts.len()]).collect();
    let mut arenas = vec![ArenaSpan { words: 0, decayed: 0 }];
    for i in order {
        for (j, &len) in lens[i].iter().enumerate() {
            let len = len.max(1).next_multiple_of(4);
            let mut at = arenas.last().map_or(0, |a| a.words.next_multiple_of(align));
            if at > 0 && at + len > max_words {
                arenas.push(ArenaSpan { words: 0, decayed: 0 });
                at = 0;
            }
            let k = arenas.len() - 1;
            places[i][j] = (k, at);
            arenas[k].words = at + len;
            if table[i].decays() {
                arenas[k].decayed = arenas[k].words;
            }
        }
    }
    Packing { places, arenas }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::model::{param_table, WTE};

    fn cfg() -> ModelConfig {
        ModelConfig { vocab_size: 50, block_size: 8, n_layer: 2, n_head: 2, n_embd: 12 }
    }

    /// Every part inside its arena, aligned, apart from every other, with the decaying parts
    /// below their arena's mark and the others above it.
    fn check(table: &[ParamSpec], layout: &Layout, align_bytes: u64, packing: &Packing) {
        let align = (align_bytes / 4).max(4) as usize;
        let mut spans: Vec<(usize, usize, usize)> = Vec::new();
        for (i, spec) in table.iter().enumerate() {
            let lens: Vec<usize> = Split::describe(spec, i, layout, |len| len).into_iter().map(|p| p.0).collect();
            assert_eq!(lens.len(), packing.places[i].len(), "{}: one place per part", spec.name);
            for (&len, &(k, at)) in lens.iter().zip(&packing.places[i]) {
                let arena = packing.arenas[k];
                assert_eq!(at % align, 0, "{} is aligned", spec.name);
                assert!(at + len <= arena.words, "{} lies inside its arena", spec.name);
                assert!(arena.words * 4 <= layout.max_buffer_bytes as usize, "the arena fits one binding");
                assert_eq!(spec.decays(), at + len <= arena.decayed, "{}: decay mark", spec.name);
                spans.push((k, at, at + len));
            }
        }
        spans.sort();
        for w in spans.windows(2) {
            assert!(w[0].0 != w[1].0 || w[0].2 <= w[1].1, "parts overlap: {w:?}");
        }
        assert!(packing.arenas.iter().all(|a| a.words % 4 == 0 && a.decayed <= a.words));
    }

    #[test]
    fn one_arena_holds_a_small_model() {
        let (table, layout) = (param_table(&cfg()), Layout { max_buffer_bytes: 1 << 20, logits_chunk_bytes: 1 << 20 });
        for align in [4, 16, 256] {
            let packing = pack(&table, &layout, align);
            check(&table, &layout, align, &packing);
            assert_eq!(packing.arenas.len(), 1);
            let numel: usize = table.iter().map(|s| s.numel()).sum();
            assert!(packing.arenas[0].words >= numel);
        }
    }

    #[test]
    fn arenas_split_at_the_binding_limit_with_wte_split_too() {
        let table = param_table(&cfg());
        // One binding of 576 words: c_fc's 12 x 48 just fits, wte's 50 x 12 takes two buffers
        // (48 rows, then 2), and the 2,000-odd words of the model need several arenas.
        let layout = Layout { max_buffer_bytes: 4 * 576, logits_chunk_bytes: 1 << 20 };
        assert_eq!(Split::describe(&table[WTE], WTE, &layout, |l| l).len(), 2);
        for align in [4, 64, 256] {
            let packing = pack(&table, &layout, align);
            check(&table, &layout, align, &packing);
            assert!(packing.arenas.len() > 2, "{:?}", packing.arenas);
        }
    }
}
