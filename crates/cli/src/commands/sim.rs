//! `openledger sim`: the economic simulator (the `sim` crate) over the real
//! runtime and ingest, from a scenario file; writes CSV files and an HTML report.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::json;

use crate::output::Out;

#[derive(Args)]
pub struct SimArgs {
    /// The scenario (TOML: params, population, behaviour, balances, sweep); see docs/simulator.md.
    /// Without one, the built-in defaults (docs/sim/default.toml spells them out).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Where to write summary.csv, participants.csv, daily.csv and report.html
    /// (sweep.csv and sweep.html for a sweep).
    #[arg(long, default_value = "sim-out")]
    out: PathBuf,
    /// Override the scenario's seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Override the scenario's simulated days.
    #[arg(long)]
    days: Option<u32>,
    /// Override a governed parameter, `name=value` (repeatable; value as in the scenario's [params]).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
}

pub fn run(a: SimArgs, out: Out) -> anyhow::Result<()> {
    let mut scn = match &a.scenario {
        Some(p) => sim::Scenario::load(p)?,
        None => sim::Scenario::default(),
    };
    if let Some(s) = a.seed {
        scn.seed = s;
    }
    if let Some(d) = a.days {
        scn.days = d;
    }
    for s in &a.set {
        let (name, value) = s.split_once('=').with_context(|| format!("--set {s}: expected NAME=VALUE"))?;
        scn.params.insert(name.trim().to_string(), sim::scenario::ParamValue::Text(value.trim().to_string()));
    }
    scn.check()?;
    let json = out.json;
    if !scn.sweep.params.is_empty() {
        let rows = sim::sweep(&scn, &mut |i, n, labels| {
            if !json {
                let l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                eprintln!("run {}/{n}: {}", i + 1, l.join(" "));
            }
        })?;
        sim::report::write_sweep(&rows, &a.out, &format!("OpenLedger simulation sweep: {}", scn.name))?;
        out.print(
            || format!("{} runs; wrote {}", rows.len(), a.out.join("sweep.csv").display()),
            json!({ "runs": rows.len(), "out": a.out }),
        );
        return Ok(());
    }
    let started = std::time::Instant::now();
    let report = sim::run(&scn, &mut |w| {
        if !json {
            eprintln!(
                "day {}: block {}, {} paid inferences, {:.0} s",
                w.chain.height / (86_400 / w.scn.block_seconds).max(1),
                w.chain.height,
                w.totals.receipts_settled,
                started.elapsed().as_secs_f64()
            );
        }
    })?;
    report.write(&a.out)?;
    let secs = report.elapsed.as_secs_f64();
    let t = &report.totals;
    let summary: serde_json::Map<String, serde_json::Value> =
        report.summary().into_iter().map(|(k, v)| (k, serde_json::Value::String(v))).collect();
    out.print(
        || {
            format!(
                "{} paid inferences in {:.1} s ({:.0}/s), {} blocks, {} transactions; supply equation held after every block.\n\
                 spammers: {} files, {} approved, mean net {} OPEN; forging operator net {} OPEN; challenges {} opened, {} won.\n\
                 Gini of contributors' data earnings {:.3}; Nakamoto coefficient of stake {}.\nwrote {}",
                t.receipts_settled,
                secs,
                t.receipts_settled as f64 / secs.max(1e-9),
                t.blocks,
                t.txs,
                report.role(sim::world::Role::Spammer).files,
                report.role(sim::world::Role::Spammer).approved,
                sim::report::open(report.mean_net(sim::world::Role::Spammer)),
                sim::report::open(report.role(sim::world::Role::ForgingOperator).net),
                t.challenges_opened,
                t.challenges_upheld + t.challenges_defaulted,
                report.gini_data,
                report.nakamoto,
                a.out.join("report.html").display()
            )
        },
        json!({ "seconds": secs, "summary": summary, "out": a.out }),
    );
    Ok(())
}
