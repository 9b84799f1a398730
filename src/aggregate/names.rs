//! Names and small sets: interned ids for destinations, sources and streams,
//! and "one value or many" for attribution.

use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

/// Maps names to dense ids; released ids are reused, so memory follows live names only.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct Interner {
    pub(super) ids: HashMap<Box<[u8]>, u32>,
    pub(super) names: Vec<Box<[u8]>>,
    pub(super) free: Vec<u32>,
}

impl Interner {
    pub(super) fn intern(&mut self, key: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(key) {
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                self.names[id as usize] = key.into();
                id
            }
            None => {
                self.names.push(key.into());
                (self.names.len() - 1) as u32
            }
        };
        self.ids.insert(key.into(), id);
        id
    }

    pub(super) fn name(&self, id: u32) -> &[u8] {
        &self.names[id as usize]
    }

    /// Forgets a name; its id will be handed out again. Releasing an id
    /// twice is harmless (a freed id must never be handed out twice).
    pub(super) fn release(&mut self, id: u32) {
        let name = std::mem::take(&mut self.names[id as usize]);
        if self.ids.get(&name) == Some(&id) {
            self.ids.remove(&name);
            self.free.push(id);
        } else {
            self.names[id as usize] = name;
        }
    }
}

/// Remembers at most one value, and whether more than one was seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum OneOf {
    #[default]
    None,
    One(u32),
    Many,
}

impl OneOf {
    pub(super) fn note(&mut self, v: u32) {
        *self = match *self {
            OneOf::None => OneOf::One(v),
            OneOf::One(x) if x == v => OneOf::One(x),
            _ => OneOf::Many,
        }
    }

    pub(super) fn merge(&mut self, other: OneOf, map: impl Fn(u32) -> u32) {
        match other {
            OneOf::None => {}
            OneOf::One(v) => self.note(map(v)),
            OneOf::Many => *self = OneOf::Many,
        }
    }
}
