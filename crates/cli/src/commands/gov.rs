//! `gov ...` (written next).

use crate::output::Out;

#[derive(clap::Subcommand, Debug)]
pub enum GovCmd {}

pub fn run(c: GovCmd, _out: Out) -> anyhow::Result<()> {
    match c {}
}
