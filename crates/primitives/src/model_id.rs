//! Model ids: one u64 assigned by the `models` module (starting at 1, the base
//! model when the genesis names one), written `m<id>` wherever humans see it
//! (CLI, HTTP `model` fields, logs of services).

use std::fmt;
use std::str::FromStr;

/// The id of a registered model. Its text form is `m<id>` in decimal without
/// leading zeros (`m1`, `m42`), so every id has exactly one spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelId(pub u64);

impl ModelId {
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl From<u64> for ModelId {
    fn from(id: u64) -> Self {
        ModelId(id)
    }
}

impl From<ModelId> for u64 {
    fn from(id: ModelId) -> Self {
        id.0
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}", self.0)
    }
}

/// A string that is not `m<id>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a model id (expected m<id>, e.g. m1)")]
pub struct ModelIdError(pub String);

impl FromStr for ModelId {
    type Err = ModelIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ModelIdError(s.to_string());
        let digits = s.strip_prefix('m').ok_or_else(err)?;
        let canonical = !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'));
        if !canonical {
            return Err(err());
        }
        digits.parse().map(ModelId).map_err(|_| err())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_is_unique() {
        for id in [0u64, 1, 42, u64::MAX] {
            let m = ModelId(id);
            assert_eq!(m.to_string().parse::<ModelId>().unwrap(), m);
        }
        assert_eq!(ModelId(7).to_string(), "m7");
        for bad in ["", "m", "7", "M7", "m07", "m+7", "m-1", "m 7", "m7 ", "m18446744073709551616", "model7"] {
            assert!(bad.parse::<ModelId>().is_err(), "{bad:?}");
        }
    }
}
