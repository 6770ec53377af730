//! Tokenizers, all through Hugging Face's `tokenizers` crate so every one saves and loads as a
//! `tokenizer.json` that `transformers` reads too.
//!
//! - char: the vocabulary is the sorted set of characters of the corpus (a BPE model with no
//!   merges, so each character is one token); characters outside it are dropped when encoding.
//! - bpe:N: a byte-level BPE of N tokens trained on the corpus, GPT-2's scheme.
//! - GPT-2's own: its `vocab.json` and `merges.txt` built into the byte-level BPE that
//!   `transformers`' GPT2TokenizerFast makes of them, so the ids are the same.

use std::collections::BTreeSet;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BpeTrainerBuilder, Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, TokenizerBuilder};

/// GPT-2's end-of-text token.
const END_OF_TEXT: &str = "<|endoftext|>";

pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
}

impl Tokenizer {
    /// One token per distinct character of `text`, in sorted order.
    pub fn char_level(text: &str) -> Result<Tokenizer, String> {
        let chars: BTreeSet<char> = text.chars().collect();
        if chars.is_empty() {
            return Err("the corpus is empty".into());
        }
        let vocab: tokenizers::models::bpe::Vocab =
            chars.iter().enumerate().map(|(i, c)| (c.to_string(), i as u32)).collect();
        let bpe = BPE::builder().vocab_and_merges(vocab, vec![]).build().map_err(|e| e.to_string())?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_decoder(Some(Fuse::new()));
        Ok(Tokenizer { inner })
    }

    /// A byte-level BPE with `vocab_size` tokens (at least 256 + 1) trained on `text`.
    pub fn bpe(text: &str, vocab_size: usize) -> Result<Tokenizer, String> {
        if vocab_size < 257 {
            return Err(format!(
                "a byte-level BPE needs at least 257 tokens (256 bytes and an end-of-text token), got {vocab_size}"
            ));
        }
        let mut trainer = BpeTrainerBuilder::new()
            .vocab_size(vocab_size)
            .min_frequency(2)
            .show_progress(false)
            .special_tokens(vec![AddedToken::from(END_OF_TEXT, true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut inner = byte_level(BPE::default())?;
        inner.train(&mut trainer, text.lines().map(|l| format!("{l}\n"))).map_err(|e| e.to_string())?;
        Ok(Tokenizer { inner: inner.into() })
    }

    /// GPT-2's byte-level BPE from its `vocab.json` (token -> id) and `merges.txt` (one merge
    /// "a b" a line, in rank order, after an optional `#version` line), put together as
    /// transformers' GPT2TokenizerFast does: no normaliser, a ByteLevel pre-tokenizer without a
    /// prefix space, the ByteLevel decoder, and `<|endoftext|>` as a special token.
    pub fn from_vocab_merges(vocab_json: &[u8], merges_txt: &[u8]) -> Result<Tokenizer, String> {
        let vocab: std::collections::HashMap<String, u32> = serde_json::from_slice(vocab_json)
            .map_err(|e| format!("vocab.json is not a JSON object of token -> id: {e}"))?;
        let merges_txt = std::str::from_utf8(merges_txt).map_err(|_| "merges.txt is not UTF-8".to_string())?;
        let mut merges = Vec::new();
        for (i, line) in merges_txt.lines().enumerate() {
            if line.starts_with("#version") || line.is_empty() {
                continue;
            }
            match line.split(' ').collect::<Vec<_>>()[..] {
                [a, b] => merges.push((a.to_string(), b.to_string())),
                _ => return Err(format!("merges.txt line {}: expected two tokens separated by one space", i + 1)),
            }
        }
        let special = vocab.contains_key(END_OF_TEXT);
        let bpe = BPE::builder()
            .vocab_and_merges(vocab.into_iter().collect::<Vocab>(), merges)
            .build()
            .map_err(|e| format!("vocab.json and merges.txt do not fit together: {e}"))?;
        let mut inner = byte_level(bpe)?;
        if special {
            inner.add_special_tokens(&[AddedToken::from(END_OF_TEXT, true)]);
        }
        Ok(Tokenizer { inner: inner.into() })
    }

    /// Loads a `tokenizer.json`. The `tokenizers` crate panics on a file whose JSON is broken
    /// inside its `decoder` entry (an `expect` in its decoder deserializer) instead of returning an
    /// error: the JSON is checked first, and natively any other panic of its parser becomes an
    /// error too (tests/fuzz_loaders.rs found it).
    pub fn from_json(bytes: &[u8]) -> Result<Tokenizer, String> {
        let bad = |why: String| format!("not a valid tokenizer.json: {why}");
        serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| bad(e.to_string()))?;
        let parsed = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(bytes))
            .map_err(|_| bad("the tokenizers crate could not read it".into()))?;
        let inner = parsed.map_err(|e| bad(e.to_string()))?;
        Ok(Tokenizer { inner })
    }

    pub fn to_json(&self) -> String {
        self.inner.to_string(true).expect("a tokenizer always serialises")
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// One more than the largest token id: the vocabulary a model needs for this tokenizer.
    pub fn id_count(&self) -> usize {
        self.inner.get_vocab(true).values().max().map_or(0, |&id| id as usize + 1)
    }

    pub fn encode(&self, text: &str) -> Result<Vec<u32>, String> {
        let enc = self.inner.encode(text, false).map_err(|e| format!("could not tokenize: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.inner.decode(ids, false).unwrap_or_default()
    }

    /// The text of one token, for displays of next-token candidates.
    pub fn token_text(&self, id: u32) -> String {
        self.decode(&[id])
    }
}

/// GPT-2's byte-level pipeline around a BPE model: no normaliser, a ByteLevel pre-tokenizer
/// without a prefix space, no post-processor, the ByteLevel decoder.
type ByteLevelBpe = tokenizers::TokenizerImpl<
    BPE,
    tokenizers::NormalizerWrapper,
    ByteLevel,
    tokenizers::PostProcessorWrapper,
    ByteLevelDecoder,
>;

fn byte_level(model: BPE) -> Result<ByteLevelBpe, String> {
    TokenizerBuilder::new()
        .with_model(model)
        .with_normalizer(None::<tokenizers::NormalizerWrapper>)
        .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
        .with_post_processor(None::<tokenizers::PostProcessorWrapper>)
        .with_decoder(Some(ByteLevelDecoder::default()))
        .build()
        .map_err(|e| e.to_string())
}
