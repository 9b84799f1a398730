//! A HyperLogLog sketch: how many distinct sources were folded away, in constant memory.

use serde::{Deserialize, Serialize};

/// A HyperLogLog sketch (2^10 registers, ~3% error): how many distinct
/// sources were folded, in constant memory and independent of order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sketch {
    registers: Box<[u8]>,
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch {
            registers: vec![0; 1024].into(),
        }
    }
}

impl Sketch {
    pub(super) fn insert(&mut self, item: &[u8]) {
        use std::hash::{Hash, Hasher};
        // SipHash with fixed keys: the same estimate on every run and thread.
        let mut h = std::hash::DefaultHasher::new();
        item.hash(&mut h);
        let x = h.finish();
        let index = (x >> 54) as usize;
        let rank = ((x << 10) | (1 << 9)).leading_zeros() as u8 + 1;
        self.registers[index] = self.registers[index].max(rank);
    }

    pub(super) fn merge(&mut self, o: &Sketch) {
        for (a, b) in self.registers.iter_mut().zip(o.registers.iter()) {
            *a = (*a).max(*b);
        }
    }

    /// Returns true if and only if the sketch has its 2^10 registers (one read from a state file may not).
    pub(super) fn is_well_formed(&self) -> bool {
        self.registers.len() == 1024
    }

    /// The estimated number of distinct items inserted.
    pub fn estimate(&self) -> u64 {
        let m = 1024.0f64;
        let sum: f64 = self.registers.iter().map(|&r| 2f64.powi(-(r as i32))).sum();
        let raw = 0.7213 / (1.0 + 1.079 / m) * m * m / sum;
        let zeros = self.registers.iter().filter(|&&r| r == 0).count();
        let est = if raw <= 2.5 * m && zeros > 0 {
            m * (m / zeros as f64).ln()
        } else {
            raw
        };
        est.round() as u64
    }
}
