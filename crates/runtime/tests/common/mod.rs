//! What the runtime's integration tests share: an in-memory state.

#![allow(dead_code)]

use std::collections::BTreeMap;

use primitives::state::{StateError, StateRead};

/// State held in a map; blocks' writes are applied to it.
pub struct Mem(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl StateRead for Mem {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(k).cloned())
    }
}

impl Mem {
    pub fn apply(&mut self, w: BTreeMap<Vec<u8>, Option<Vec<u8>>>) {
        for (k, v) in w {
            match v {
                Some(v) => self.0.insert(k, v),
                None => self.0.remove(&k),
            };
        }
    }
}
