//! 64-bit FNV-1a and SplitMix64: hashes whose values never change across platforms, Rust
//! releases or runs, so they can decide data splits and fingerprint stored artefacts.

/// The FNV-1a 64-bit offset basis: the state of an unseeded hasher before any byte.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
/// The FNV 64-bit prime.
pub const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// The golden-ratio constant that spreads a seed over the offset basis.
const SEED_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

/// FNV-1a, 64 bit, over `bytes`, with `seed` mixed into the offset basis (basis XOR
/// `seed · 0x9e3779b97f4a7c15`). Seed 0 is plain FNV-1a.
///
/// ```
/// assert_eq!(rlhf_util::fnv1a(0, b"a"), 0xaf63_dc4c_8601_ec8c); // the published test vector
/// ```
pub fn fnv1a(seed: u64, bytes: &[u8]) -> u64 {
    Fnv1a::with_seed(seed).write(bytes).finish()
}

/// Incremental FNV-1a (64 bit): [`write`](Self::write) any number of byte slices, then
/// [`finish`](Self::finish). Hashing `a` then `b` equals hashing their concatenation.
///
/// Deliberately not a [`std::hash::Hasher`]: that trait's `write_u64` & co. hash native-endian
/// bytes, which would make the value depend on the platform. Write `x.to_le_bytes()` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv1a {
    state: u64,
}

impl Default for Fnv1a {
    fn default() -> Self {
        Self::new()
    }
}

impl Fnv1a {
    /// Plain FNV-1a (state = the offset basis).
    pub const fn new() -> Self {
        Self { state: FNV_OFFSET }
    }

    /// Seeded as [`fnv1a`]: `Fnv1a::with_seed(s).write(b).finish() == fnv1a(s, b)`.
    pub const fn with_seed(seed: u64) -> Self {
        Self {
            state: FNV_OFFSET ^ seed.wrapping_mul(SEED_MUL),
        }
    }

    /// Continues from a raw state: a previous [`finish`](Self::finish), or a basis of the
    /// caller's own making.
    pub const fn from_state(state: u64) -> Self {
        Self { state }
    }

    /// Feeds `bytes`.
    pub fn write(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.state ^= u64::from(b);
            self.state = self.state.wrapping_mul(FNV_PRIME);
        }
        self
    }

    /// The hash of everything written so far (the hasher can keep going).
    pub const fn finish(&self) -> u64 {
        self.state
    }
}

/// The SplitMix64 output function (Steele, Lea & Flood 2014): a bijective mixer that spreads
/// every input bit over the whole output. `splitmix64(0)` is SplitMix64's first output for
/// seed 0.
pub const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values, computed independently of this code with:
    /// ```text
    /// python3 -c "
    /// M=(1<<64)-1
    /// def fnv(seed,b):
    ///     h=0xcbf29ce484222325 ^ ((seed*0x9e3779b97f4a7c15)&M)
    ///     for x in b: h=((h^x)*0x100000001b3)&M
    ///     return h
    /// for s,b in [(0,b''),(0,b'a'),(0,b'foobar'),(42,b''),(42,b'foobar'),(7,'你好'.encode())]:
    ///     print(s,b,hex(fnv(s,b)))"
    /// ```
    /// The seed-0 values for "a" and "foobar" are also the published FNV-1a 64 test vectors.
    #[test]
    fn fnv1a_matches_independent_golden_values() {
        assert_eq!(fnv1a(0, b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(0, b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(0, b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(fnv1a(42, b""), 0x3eeb_648a_661a_7857);
        assert_eq!(fnv1a(42, b"foobar"), 0x3638_37eb_ea51_a61e);
        assert_eq!(fnv1a(7, "你好".as_bytes()), 0x1271_e613_9c60_7d98);
    }

    /// Seed 0 is plain FNV-1a: the textbook loop from the offset basis, as the sft / DPO / PPO
    /// fingerprints write it.
    #[test]
    fn seed_zero_is_plain_fnv1a() {
        let plain = |bytes: &[u8]| {
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            for &b in bytes {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h
        };
        for input in [
            &b""[..],
            b"a",
            b"foobar",
            "你好".as_bytes(),
            &[0, 255, 7, 7],
        ] {
            assert_eq!(fnv1a(0, input), plain(input), "{input:?}");
            assert_eq!(Fnv1a::new().write(input).finish(), plain(input));
            assert_eq!(Fnv1a::default().write(input).finish(), plain(input));
        }
        assert_ne!(fnv1a(1, b"a"), fnv1a(0, b"a"));
    }

    #[test]
    fn incremental_hashing_equals_one_shot_over_the_concatenation() {
        let mut h = Fnv1a::with_seed(42);
        h.write(b"foo");
        h.write(b"");
        h.write(b"bar");
        assert_eq!(h.finish(), fnv1a(42, b"foobar"));
        assert_eq!(h.finish(), 0x3638_37eb_ea51_a61e);
        // Continuing from a finished state is the same as never stopping.
        let mid = Fnv1a::new().write(b"foo").finish();
        assert_eq!(
            Fnv1a::from_state(mid).write(b"bar").finish(),
            fnv1a(0, b"foobar")
        );
        assert_eq!(Fnv1a::from_state(FNV_OFFSET), Fnv1a::new());
        // Byte order matters.
        assert_ne!(fnv1a(0, b"ab"), fnv1a(0, b"ba"));
    }

    /// `python3 -c` with the same four lines as [`splitmix64`] (masking to 64 bits) gives these;
    /// 0xe220a8397b1dcdaf is also SplitMix64's published first output for seed 0.
    #[test]
    fn splitmix64_matches_independent_golden_values() {
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
        assert_eq!(splitmix64(1), 0x910a_2dec_8902_5cc1);
        assert_eq!(splitmix64(42), 0xbdd7_3226_2feb_6e95);
    }
}
