//! A small seeded random number generator: splitmix64, plus uniform and normal draws.
//!
//! Used for parameter initialisation and the data sampler, so a seed gives the same run on every
//! platform (native and wasm32). It is not cryptographic and not meant to match PyTorch's streams.

/// splitmix64 (Steele, Lea and Flood, 2014): one 64-bit word of state, good enough statistics for
/// initialisation and sampling, and a full period of 2^64.
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The whole state: `Rng::new(rng.state())` continues exactly where `rng` is (resuming).
    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1): the top 24 bits, so every value is exactly representable and 1.0 never
    /// appears (rounding a wider integer could round up to 1.0).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniform in [0, 1) with 53 bits, for Box-Muller where the tails need the extra precision.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal by Box-Muller. The second value of each pair is dropped: simpler state,
    /// and initialisation is not hot.
    pub fn normal(&mut self) -> f32 {
        // 1 - u lies in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        let r = (-2.0 * u1.ln()).sqrt();
        (r * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    }
}
