//! The structural scanner: which bytes of a line can end a free-text value.
//!
//! A text format's free-text and token values end where the literal after
//! them starts, so the only places worth looking at are the bytes equal to
//! the first byte of such a literal (for Envoy's and Istio's formats: a space
//! or a quote). [`ByteSet::block`] marks them in 64 bytes of a line at a
//! time, as a bitmask (SSE2 compares on x86_64, a table elsewhere), and a
//! [`Cursor`] hands the marked positions to the plan walk in order, each
//! 64-byte block scanned once per walk however many steps look into it.
//! This replaces one `memmem` search per step (each with its own start-up
//! cost, for values that are mostly a few bytes long).

/// How many bytes the vector compare handles; a larger set uses the table.
const VECTOR_BYTES: usize = 4;

/// A set of bytes, marked 64 bytes of a line at a time.
#[derive(Clone, Debug)]
pub(crate) struct ByteSet {
    /// The distinct bytes, for the vector compare (`len` of them).
    bytes: [u8; VECTOR_BYTES],
    len: usize,
    /// Membership for every byte: the portable path, and sets too large for the vector one.
    table: [bool; 256],
}

impl ByteSet {
    /// The set of `bytes` (duplicates are fine).
    pub(crate) fn new(bytes: impl IntoIterator<Item = u8>) -> ByteSet {
        let mut table = [false; 256];
        for b in bytes {
            table[usize::from(b)] = true;
        }
        let mut set = ByteSet {
            bytes: [0; VECTOR_BYTES],
            len: 0,
            table,
        };
        let members = (0..=255u8).filter(|&b| table[usize::from(b)]);
        if members.clone().count() <= VECTOR_BYTES {
            for b in members {
                set.bytes[set.len] = b;
                set.len += 1;
            }
        } else {
            // Marks `len > VECTOR_BYTES`: the table decides.
            set.len = usize::MAX;
        }
        set
    }

    /// Returns true if and only if `b` is in the set.
    pub(crate) fn contains(&self, b: u8) -> bool {
        self.table[usize::from(b)]
    }

    /// Bit `i` is set if and only if `line[base + i]` is in the set (`i < 64`,
    /// and only bits inside the line are ever set).
    pub(crate) fn block(&self, line: &[u8], base: usize) -> u64 {
        let rest = line.get(base..).unwrap_or_default();
        match rest.first_chunk::<64>() {
            Some(block) => self.block64(block),
            None => {
                // The line's last, partial block: copy it into a full one and
                // drop the bits past its end (the padding may be a member).
                let mut block = [0u8; 64];
                block[..rest.len()].copy_from_slice(rest);
                self.block64(&block) & ((1u64 << rest.len()) - 1)
            }
        }
    }

    fn block64(&self, block: &[u8; 64]) -> u64 {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        if self.len <= VECTOR_BYTES {
            return sse2::block(block, &self.bytes[..self.len]);
        }
        self.block_scalar(block)
    }

    /// The portable path, and the reference the vector path is tested against.
    pub(crate) fn block_scalar(&self, block: &[u8; 64]) -> u64 {
        block
            .iter()
            .enumerate()
            .fold(0, |m, (i, &b)| m | (u64::from(self.contains(b)) << i))
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128,
    };

    /// Marks the bytes of `block` found in `set`: four 16-byte loads, one
    /// compare per member per load, one movemask per load.
    pub(super) fn block(block: &[u8; 64], set: &[u8]) -> u64 {
        // SAFETY: SSE2 is part of the x86_64 baseline (and this module is only
        // compiled with it enabled); every load is unaligned (`loadu`) and reads
        // 16 bytes at offset 0, 16, 32 or 48 of a 64-byte array, so in bounds.
        unsafe {
            let p = block.as_ptr().cast::<__m128i>();
            let chunks = [
                _mm_loadu_si128(p),
                _mm_loadu_si128(p.add(1)),
                _mm_loadu_si128(p.add(2)),
                _mm_loadu_si128(p.add(3)),
            ];
            let mut hits = [_mm_setzero_si128(); 4];
            for &b in set {
                let needle = _mm_set1_epi8(b as i8);
                for (hit, &chunk) in hits.iter_mut().zip(&chunks) {
                    *hit = _mm_or_si128(*hit, _mm_cmpeq_epi8(chunk, needle));
                }
            }
            hits.iter().enumerate().fold(0u64, |m, (k, &h)| {
                // movemask gives 16 bits in the low half of an i32.
                m | (u64::from(_mm_movemask_epi8(h) as u16) << (16 * k))
            })
        }
    }
}

/// The marked positions of one line, in order, computed a block at a time.
pub(crate) struct Cursor<'a> {
    line: &'a [u8],
    set: &'a ByteSet,
    /// Start of the block `bits` describes (a multiple of 64), or `usize::MAX` before the first.
    base: usize,
    bits: u64,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(line: &'a [u8], set: &'a ByteSet) -> Cursor<'a> {
        Cursor {
            line,
            set,
            base: usize::MAX,
            bits: 0,
        }
    }

    /// The first marked position at or after `pos`. Calls must not go
    /// backwards (`pos` at least the previous call's): positions before the
    /// last answer may be forgotten.
    pub(crate) fn next_from(&mut self, pos: usize) -> Option<usize> {
        if pos >= self.line.len() {
            return None;
        }
        let mut base = pos & !63;
        if base != self.base {
            self.base = base;
            self.bits = self.set.block(self.line, base);
        }
        // Forget the marks before `pos`.
        self.bits &= u64::MAX << (pos - base);
        while self.bits == 0 {
            base += 64;
            if base >= self.line.len() {
                return None;
            }
            self.base = base;
            self.bits = self.set.block(self.line, base);
        }
        Some(self.base + self.bits.trailing_zeros() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reference(line: &[u8], set: &ByteSet, from: usize) -> Vec<usize> {
        (from..line.len())
            .filter(|&i| set.contains(line[i]))
            .collect()
    }

    proptest! {
        /// The vector and the portable block masks agree, and the cursor
        /// yields exactly the members' positions in order, for sets of every
        /// size (vector and table), lines of every length (partial blocks)
        /// and any starting point.
        #[test]
        fn issue_11_1_scanner_marks_exactly_the_set(
            line in prop::collection::vec(prop_oneof![
                Just(b' '), Just(b'"'), Just(0u8), Just(0xffu8), any::<u8>()
            ], 0..300),
            members in prop::collection::vec(prop_oneof![
                Just(b' '), Just(b'"'), Just(0u8), any::<u8>()
            ], 0..8),
            from in 0usize..320,
            step in 1usize..40,
        ) {
            let set = ByteSet::new(members.iter().copied());
            for base in (0..line.len()).step_by(64) {
                let mut block = [0u8; 64];
                let n = (line.len() - base).min(64);
                block[..n].copy_from_slice(&line[base..base + n]);
                let mask = if n == 64 { u64::MAX } else { (1u64 << n) - 1 };
                prop_assert_eq!(set.block(&line, base), set.block_scalar(&block) & mask);
            }
            let want = reference(&line, &set, from);
            let mut cursor = Cursor::new(&line, &set);
            let mut got = Vec::new();
            let mut pos = from;
            while let Some(p) = cursor.next_from(pos) {
                got.push(p);
                pos = p + 1;
            }
            prop_assert_eq!(&got, &want);
            // Jumps forward (as number steps make) skip exactly what they pass.
            let mut cursor = Cursor::new(&line, &set);
            let mut pos = from;
            while let Some(p) = cursor.next_from(pos) {
                prop_assert_eq!(Some(&p), want.iter().find(|&&w| w >= pos));
                pos = p + step;
            }
        }
    }

    #[test]
    fn issue_11_1_scanner_block_edges() {
        let set = ByteSet::new(*b" \"");
        let mut line = vec![b'x'; 200];
        for i in [0, 15, 16, 63, 64, 127, 128, 199] {
            line[i] = if i % 2 == 0 { b' ' } else { b'"' };
        }
        let mut cursor = Cursor::new(&line, &set);
        let mut got = Vec::new();
        let mut pos = 0;
        while let Some(p) = cursor.next_from(pos) {
            got.push(p);
            pos = p + 1;
        }
        assert_eq!(got, [0, 15, 16, 63, 64, 127, 128, 199]);
        // A zero byte is a member only when asked for, padding never.
        let zero = ByteSet::new([0u8]);
        assert_eq!(zero.block(&[1, 0, 1], 0), 0b010);
        assert_eq!(Cursor::new(&[1, 1, 1], &zero).next_from(0), None);
        assert_eq!(Cursor::new(&[], &zero).next_from(0), None);
    }
}
