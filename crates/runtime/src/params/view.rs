//! Typed reads and writes of parameters.

use primitives::state::{StateError, StateRead};

use super::{ParamSpec, spec, state_key};
use crate::Overlay;

/// Reads of governed parameters. Every module reads its parameters through this.
pub trait ParamsRead {
    /// The current value of a registered parameter (its default if never set).
    fn param(&self, spec: &ParamSpec) -> Result<u128, StateError>;
    /// By name; `None` for an unregistered name.
    fn param_by_name(&self, name: &str) -> Result<Option<u128>, StateError>;
    /// The value in force after block `height` (its default before the first
    /// change): what a verifier judges a record made at `height` by, whatever
    /// governance changed since. O(log changes) reads.
    fn param_at(&self, spec: &ParamSpec, height: u64) -> Result<u128, StateError>;
}

fn u64_at(b: &[u8], what: &str) -> Result<u64, StateError> {
    Ok(u64::from_be_bytes(b.try_into().map_err(|_| StateError(format!("{what} record")))?))
}

/// One change of a parameter's history: (height, value).
fn change<S: StateRead + ?Sized>(st: &S, name: &str, i: u64) -> Result<(u64, u128), StateError> {
    let b = st.get(&state_key::history(name, i))?.ok_or_else(|| StateError(format!("param {name} change {i}")))?;
    if b.len() != 24 {
        return Err(StateError(format!("param {name} change {i} record")));
    }
    Ok((u64_at(&b[..8], name)?, u128::from_be_bytes(b[8..].try_into().unwrap_or_default())))
}

fn history_len<S: StateRead + ?Sized>(st: &S, name: &str) -> Result<u64, StateError> {
    match st.get(&state_key::history_len(name))? {
        Some(b) => u64_at(&b, name),
        None => Ok(0),
    }
}

impl<S: StateRead + ?Sized> ParamsRead for S {
    fn param(&self, spec: &ParamSpec) -> Result<u128, StateError> {
        match self.get(&state_key::value(spec.name))? {
            Some(b) => Ok(u128::from_be_bytes(
                b.as_slice().try_into().map_err(|_| StateError(format!("param {} record", spec.name)))?,
            )),
            None => Ok(spec.default),
        }
    }
    fn param_by_name(&self, name: &str) -> Result<Option<u128>, StateError> {
        match spec(name) {
            Some(s) => self.param(s).map(Some),
            None => Ok(None),
        }
    }
    fn param_at(&self, spec: &ParamSpec, height: u64) -> Result<u128, StateError> {
        // The last change at or before `height`: binary search over the changes,
        // which are appended in height order.
        let (mut lo, mut hi) = (0u64, history_len(self, spec.name)?);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if change(self, spec.name, mid)?.0 <= height {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if lo == 0 { Ok(spec.default) } else { Ok(change(self, spec.name, lo - 1)?.1) }
    }
}

/// Writes of parameters; bounds are checked by the caller ([`super::set`]).
pub trait ParamsWrite {
    /// Set `name` to `value` from block `height` on, appending the change to
    /// its history (one write, whatever the history's length).
    fn put_param(&mut self, name: &str, value: u128, height: u64) -> Result<(), StateError>;
}

impl ParamsWrite for Overlay<'_> {
    fn put_param(&mut self, name: &str, value: u128, height: u64) -> Result<(), StateError> {
        self.put(state_key::value(name), Some(value.to_be_bytes().to_vec()));
        let n = history_len(self, name)?;
        let mut rec = height.to_be_bytes().to_vec();
        rec.extend_from_slice(&value.to_be_bytes());
        self.put(state_key::history(name, n), Some(rec));
        self.put(state_key::history_len(name), Some((n + 1).to_be_bytes().to_vec()));
        Ok(())
    }
}
