//! The economic simulator (`openledger sim`): who ends up paid under a set of
//! parameters, and whether spammers, copycats or a forging operator can game it.
//!
//! It runs the real runtime in-process over state held in memory: a genesis,
//! then one block per height at a fixed block time, each block's transactions
//! signed by simulated participants and applied by `runtime::apply_transaction`
//! between `begin_block` and `end_block`, exactly as the chain applies them. The
//! supply equation is checked after every block. Contributions are generated
//! files that go through the real ingest (`ingest::ingest_file`: parsing,
//! duplicate detection against each Datanet's index of approved rows, scoring),
//! and the attester's EIP-712 attestation carries what ingest found; curators
//! decide on those findings. Nothing is assumed about outcomes: earnings are
//! read back from balances, stakes and the runtime's events.
//!
//! Participants ([`world::Role`]): validators and delegators (delegations follow
//! stake), honest contributors of a latent quality (defects in their rows grow as
//! it falls), spammers, copycats (copies of approved rows, exact or with words
//! changed), curators (honest: approve on quality and duplicates; lazy: approve
//! everything), model builders (a model on the latest Datanet versions every few
//! days, made live by a governance proposal everyone with stake votes for), apps
//! paying for inference, serving operators (settle signed receipts in batches
//! of up to 256, post the answer's true attribution record), a forging operator
//! (credits its own contributor account instead, part of the time), validators
//! watching a share of records and challenging those that differ from the
//! recomputation (the runtime's challenge, reveal and signed verdict), and
//! share traders (buy 1% lots of models' revenue shares from their builders).
//!
//! A run is a pure function of its [`Scenario`]: one seeded generator
//! ([`rng::Rng`]), no clock, no hash-map iteration in anything that decides an
//! action; parallel work (signing) does not change results.

pub mod chain;
pub mod corpus;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod world;

pub use report::{Report, SweepRow};
pub use scenario::Scenario;

/// Why a simulation cannot run or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("scenario {file}: {msg}")]
    Scenario { file: String, msg: String },
    #[error("unknown governed parameter {0:?} (`openledger query params` lists them)")]
    UnknownParam(String),
    #[error("parameter {name} = {value} is out of range [{min}, {max}]")]
    ParamOutOfRange { name: String, value: u128, min: u128, max: u128 },
    #[error("parameter {name}: {why}")]
    BadValue { name: String, why: String },
    #[error("scenario: {0}")]
    Invalid(String),
    #[error("the supply equation broke after block {height}: supply {supply}, balances sum to {balances}")]
    SupplyBroken { height: u64, supply: u128, balances: u128 },
    #[error("runtime: {0}")]
    Runtime(String),
    #[error("{0}")]
    Io(String),
}

/// Run one scenario to the end; `progress` is called once per simulated day.
pub fn run(scn: &Scenario, progress: &mut dyn FnMut(&world::World)) -> Result<Report, SimError> {
    let started = std::time::Instant::now();
    let mut w = world::World::new(scn)?;
    w.run(progress)?;
    Ok(Report::new(&w, started.elapsed()))
}

/// A sweep point's parameter values, by name.
pub type SweepLabels = [(String, u128)];

/// Run every point of the scenario's sweep (just the scenario without one);
/// `progress` gets the point's index, the number of points and its values.
pub fn sweep(scn: &Scenario, progress: &mut dyn FnMut(usize, usize, &SweepLabels)) -> Result<Vec<SweepRow>, SimError> {
    let points = scn.sweep_points();
    let n = points.len();
    let mut rows = vec![];
    for (i, (labels, s)) in points.into_iter().enumerate() {
        progress(i, n, &labels);
        let r = run(&s, &mut |_| {})?;
        rows.push(SweepRow::new(labels, &r));
    }
    Ok(rows)
}

/// A small scenario end to end (a unit test: no test binary of its own).
#[cfg(test)]
mod tests;
