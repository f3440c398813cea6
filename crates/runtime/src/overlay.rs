//! Pending writes on top of a read-only state, with checkpoints for reverts.

use std::collections::BTreeMap;

use primitives::state::{StateError, StateRead};

/// A pending write: a value, or `None` for a deletion.
type Write = Option<Vec<u8>>;

/// The state as a block under construction sees it.
pub struct Overlay<'a> {
    base: &'a dyn StateRead,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// (key, what `writes` held for it before) in write order, for reverts.
    undo: Vec<(Vec<u8>, Option<Write>)>,
}

/// A point to revert to.
#[derive(Clone, Copy, Debug)]
pub struct Checkpoint(usize);

impl<'a> Overlay<'a> {
    pub fn new(base: &'a dyn StateRead) -> Self {
        Overlay { base, writes: BTreeMap::new(), undo: Vec::new() }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }

    /// Set (`Some`) or delete (`None`) a key.
    pub fn put(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) {
        let prev = self.writes.insert(key.clone(), value);
        self.undo.push((key, prev));
    }

    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.undo.len())
    }

    /// Undo every write since `cp`.
    pub fn revert_to(&mut self, cp: Checkpoint) {
        while self.undo.len() > cp.0 {
            let (k, prev) = self.undo.pop().unwrap();
            match prev {
                Some(v) => {
                    self.writes.insert(k, v);
                }
                None => {
                    self.writes.remove(&k);
                }
            }
        }
    }

    /// Forget undo history (after a transaction is final) to bound memory.
    pub fn commit_checkpoints(&mut self) {
        self.undo.clear();
    }

    /// The block's net writes, sorted by key.
    pub fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.writes
    }

    pub fn writes(&self) -> &BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        &self.writes
    }
}

impl StateRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Overlay::get(self, key)
    }
}

/// An empty state (genesis starts from it).
pub struct EmptyState;

impl StateRead for EmptyState {
    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(None)
    }
}
