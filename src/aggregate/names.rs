//! Names and small sets: interned ids for destinations, sources and streams,
//! and "one value or many" for attribution.
//!
//! Issue 11 item 3: a name is looked up by a hash its caller computed once
//! (the source bound hashes a source key anyway), and stored once: the
//! table holds ids only, the names live in `names`.

use hashbrown::HashTable;
use rustc_hash::FxHashMap as HashMap;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::bound::source_hash;

/// Maps names to dense ids; released ids are reused, so memory follows live names only.
#[derive(Clone, Debug, Default)]
pub(super) struct Interner {
    /// Live ids, found by [`source_hash`] of their name.
    table: HashTable<u32>,
    pub(super) names: Vec<Box<[u8]>>,
    pub(super) free: Vec<u32>,
}

impl Interner {
    pub(super) fn intern(&mut self, key: &[u8]) -> u32 {
        self.intern_hashed(key, source_hash(key))
    }

    /// Interns `key`, whose [`source_hash`] is `hash`.
    pub(super) fn intern_hashed(&mut self, key: &[u8], hash: u64) -> u32 {
        let names = &self.names;
        if let Some(&id) = self.table.find(hash, |&id| *names[id as usize] == *key) {
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
        let names = &self.names;
        self.table
            .insert_unique(hash, id, |&i| source_hash(&names[i as usize]));
        id
    }

    pub(super) fn name(&self, id: u32) -> &[u8] {
        &self.names[id as usize]
    }

    /// How many names are live.
    #[cfg(test)]
    pub(super) fn live(&self) -> usize {
        self.table.len()
    }

    /// The live ids.
    pub(super) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.iter().copied()
    }

    /// Forgets a name; its id will be handed out again. Releasing an id
    /// twice is harmless (a freed id must never be handed out twice).
    pub(super) fn release(&mut self, id: u32) {
        let Some(name) = self.names.get(id as usize) else {
            return;
        };
        if let Ok(entry) = self.table.find_entry(source_hash(name), |&i| i == id) {
            entry.remove();
            self.names[id as usize] = Box::default();
            self.free.push(id);
        }
    }
}

/// Encoded as before the table (name → id map, names, released ids), so
/// state files keep their layout.
impl Serialize for Interner {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Ids<'a>(&'a Interner);
        impl Serialize for Ids<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.ids().map(|id| (self.0.name(id), id)))
            }
        }
        let mut st = s.serialize_struct("Interner", 3)?;
        st.serialize_field("ids", &Ids(self))?;
        st.serialize_field("names", &self.names)?;
        st.serialize_field("free", &self.free)?;
        st.end()
    }
}

#[derive(Deserialize)]
#[serde(rename = "Interner")]
struct Encoded {
    ids: HashMap<Box<[u8]>, u32>,
    names: Vec<Box<[u8]>>,
    free: Vec<u32>,
}

/// Decodes and checks that ids and names agree (a state file comes from
/// outside: an id handed to two names would merge two callers).
impl<'de> Deserialize<'de> for Interner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let e = Encoded::deserialize(d)?;
        let bad = serde::de::Error::custom;
        let len = e.names.len();
        if len > u32::MAX as usize {
            return Err(bad("too many names"));
        }
        if e.free.iter().any(|&f| f as usize >= len) {
            return Err(bad("a released id is out of range"));
        }
        let released: std::collections::HashSet<u32> = e.free.iter().copied().collect();
        if released.len() != e.free.len() || e.ids.values().any(|id| released.contains(id)) {
            return Err(bad("a released id is still in use"));
        }
        let mut out = Interner {
            table: HashTable::with_capacity(e.ids.len()),
            names: e.names,
            free: e.free,
        };
        for (name, id) in e.ids {
            if out.names.get(id as usize).is_none_or(|n| *n != name) {
                return Err(serde::de::Error::custom(format!(
                    "id {id} does not name what it is mapped from"
                )));
            }
            let names = &out.names;
            out.table
                .insert_unique(source_hash(&name), id, |&i| source_hash(&names[i as usize]));
        }
        Ok(out)
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
