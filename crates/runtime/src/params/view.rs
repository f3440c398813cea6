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
}

/// Writes of parameters; bounds are checked by the caller ([`super::set`]).
pub trait ParamsWrite {
    fn put_param(&mut self, name: &str, value: u128);
}

impl ParamsWrite for Overlay<'_> {
    fn put_param(&mut self, name: &str, value: u128) {
        self.put(state_key::value(name), Some(value.to_be_bytes().to_vec()));
    }
}
