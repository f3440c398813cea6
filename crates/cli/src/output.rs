//! Human or JSON output.

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
