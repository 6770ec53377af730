//! Tokenizers, all through Hugging Face's `tokenizers` crate so every one saves and loads as a
//! `tokenizer.json` that `transformers` reads too.
//!
//! - char: the vocabulary is the sorted set of characters of the corpus (a BPE model with no
//!   merges, so each character is one token); characters outside it are dropped when encoding.
//! - bpe:N: a byte-level BPE of N tokens trained on the corpus, GPT-2's scheme.

use std::collections::BTreeSet;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::models::bpe::{BpeTrainerBuilder, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, TokenizerBuilder};

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
            .special_tokens(vec![AddedToken::from("<|endoftext|>", true)])
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .build();
        let mut inner = TokenizerBuilder::new()
            .with_model(BPE::default())
            .with_normalizer(None::<tokenizers::NormalizerWrapper>)
            .with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
            .with_post_processor(None::<tokenizers::PostProcessorWrapper>)
            .with_decoder(Some(ByteLevelDecoder::default()))
            .build()
            .map_err(|e| e.to_string())?;
        inner.train(&mut trainer, text.lines().map(|l| format!("{l}\n"))).map_err(|e| e.to_string())?;
        Ok(Tokenizer { inner: inner.into() })
    }

    /// Loads a `tokenizer.json`.
    pub fn from_json(bytes: &[u8]) -> Result<Tokenizer, String> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| format!("not a valid tokenizer.json: {e}"))?;
        Ok(Tokenizer { inner })
    }

    pub fn to_json(&self) -> String {
        self.inner.to_string(true).expect("a tokenizer always serialises")
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
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
