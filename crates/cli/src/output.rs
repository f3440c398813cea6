//! Human or JSON output.

use primitives::{Amount, U256};
use serde_json::Value;

#[derive(Clone, Copy)]
pub struct Out {
    pub json: bool,
}

impl Out {
    /// Print `human` or, with `--json`, `value`.
    pub fn print(&self, human: impl FnOnce() -> String, value: Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(&value).unwrap());
        } else {
            println!("{}", human());
        }
    }
}

/// "1.5 OPEN", or the base units if the value does not fit an amount.
pub fn open(v: U256) -> String {
    match Amount::from_u256(v) {
        Ok(_) => units(v, "OPEN"),
        Err(_) => format!("{v} wei"),
    }
}

/// An 18-decimal quantity with its unit ("2.5 DEMO"), or the base units if it
/// does not fit an amount.
pub fn units(v: U256, unit: &str) -> String {
    match Amount::from_u256(v) {
        Ok(a) => format!("{a} {unit}"),
        Err(_) => format!("{v} base units"),
    }
}
