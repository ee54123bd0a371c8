//! A seeded random number generator for test data: SplitMix64 (Steele,
//! Lea and Flood, "Fast splittable pseudorandom number generators", 2014).
//!
//! It is a few lines, needs no crate, and gives the same numbers on every
//! platform and with every version of everything, so data made from a seed
//! (and golden files showing it) never changes under a test. Not for
//! anything that must be unpredictable.
//!
//! ```
//! use weir_testkit::rng::{Rng, hash};
//!
//! let mut a = Rng::new(7);
//! let mut b = Rng::new(7);
//! assert_eq!(a.next_u64(), b.next_u64());
//! assert!(a.below(10) < 10);
//! // `hash(x)` is the first number of `Rng::new(x)`: a fixed, random-looking
//! // value for an index.
//! assert_eq!(hash(42), Rng::new(42).next_u64());
//! ```

/// SplitMix64's increment: the golden ratio in 64 bits.
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// A SplitMix64 generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    /// A generator seeded with `seed`: the same seed, the same numbers.
    pub fn new(seed: u64) -> Self {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0), by Lemire's multiply-shift: unbiased
    /// enough for test data.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "Rng::below(0) has no number to give");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// `true` with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// `N` random bytes (an id, say), big-endian 8 at a time.
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let bits = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&bits[..chunk.len()]);
        }
        out
    }
}

/// A fixed, random-looking value for `seed`: the first number of
/// `Rng::new(seed)`. Test data addressed by index (the `i`th span's id)
/// takes its randomness from here without a generator to carry around.
pub fn hash(seed: u64) -> u64 {
    Rng::new(seed).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the numbers are SplitMix64's: the reference outputs for
    /// seed 1234567 (from the authors' C code).
    #[test]
    fn matches_the_reference_splitmix64() {
        let mut r = Rng::new(1234567);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(
            got,
            [
                6_457_827_717_110_365_317,
                3_203_168_211_198_807_973,
                9_817_491_932_198_370_423
            ]
        );
    }

    /// Guarantees: `below`, `chance` and `bytes` stay in their ranges and
    /// depend on the seed only.
    #[test]
    fn ranges_and_repeatability() {
        let mut a = Rng::new(9);
        for _ in 0..1000 {
            assert!(a.below(7) < 7);
        }
        assert!(!Rng::new(1).chance(0, 5));
        assert!(Rng::new(1).chance(5, 5));
        let (x, y): ([u8; 12], [u8; 12]) = (Rng::new(3).bytes(), Rng::new(3).bytes());
        assert_eq!(x, y);
        assert_ne!(x, Rng::new(4).bytes::<12>());
    }
}
