//! The mutator: new inputs from corpus entries by bit flips, byte
//! changes, insertions, deletions, duplications, splices with another
//! entry, boundary integers and (for text targets) the target's tokens.
//! Deterministic for a seed, so a run can be repeated.

/// The largest input made.
pub const MAX_INPUT: usize = 64 << 10;

/// A small, fast generator (xorshift64*): mutation does not need a
/// cryptographic one.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (any value; 0 is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Integers that sit on boundaries, little-endian.
const INTERESTING: &[u64] = &[
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// A new input from `base`, with `other` (another corpus entry) to
/// splice from and `tokens` to insert.
pub fn mutate(rng: &mut Rng, base: &[u8], other: &[u8], tokens: &[&str]) -> Vec<u8> {
    let mut data = base.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        let choices = if tokens.is_empty() { 8 } else { 10 };
        match rng.below(choices) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(data.len() + 1);
                let n = 1 + rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                data.splice(i..i, bytes);
            }
            3 if !data.is_empty() => {
                let i = rng.below(data.len());
                let n = 1 + rng.below((data.len() - i).min(64));
                data.drain(i..i + n);
            }
            4 if !data.is_empty() => {
                let i = rng.below(data.len());
                let n = 1 + rng.below((data.len() - i).min(256));
                let chunk = data[i..i + n].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = 1 + rng.below((other.len() - i).min(512));
                let at = rng.below(data.len() + 1);
                data.splice(at..at, other[i..i + n].iter().copied());
            }
            6 if !data.is_empty() => {
                let value = INTERESTING[rng.below(INTERESTING.len())];
                let width = [1, 2, 4, 8][rng.below(4)];
                let i = rng.below(data.len());
                for (k, b) in value.to_le_bytes().iter().take(width).enumerate() {
                    if let Some(slot) = data.get_mut(i + k) {
                        *slot = *b;
                    }
                }
            }
            7 if !data.is_empty() => {
                // Cut the tail: truncated input is where decoders break.
                let n = rng.below(data.len());
                data.truncate(n);
            }
            8 | 9 => {
                let token = tokens[rng.below(tokens.len())].as_bytes();
                let at = rng.below(data.len() + 1);
                if rng.below(2) == 0 || data.is_empty() {
                    data.splice(at..at, token.iter().copied());
                } else {
                    let n = (1 + rng.below(16)).min(data.len() - at.min(data.len()));
                    let at = at.min(data.len());
                    data.splice(at..at + n, token.iter().copied());
                }
            }
            _ => {}
        }
    }
    data.truncate(MAX_INPUT);
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: the same seed makes the same inputs, inputs stay within
    /// [`MAX_INPUT`], and mutation changes its input.
    #[test]
    fn mutation_is_repeatable_bounded_and_changes_things() {
        let base = b"SELECT count(*) FROM logs".to_vec();
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .map(|_| mutate(&mut rng, &base, b"other", &["WHERE"]))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert!(a.iter().all(|d| d.len() <= MAX_INPUT));
        assert!(a.iter().filter(|d| **d != base).count() > 150);
    }
}
