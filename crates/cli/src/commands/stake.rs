//! `stake ...` (written next).

use crate::output::Out;

#[derive(clap::Subcommand, Debug)]
pub enum StakeCmd {}

pub fn run(c: StakeCmd, _out: Out) -> anyhow::Result<()> {
    match c {}
}
