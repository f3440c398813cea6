//! A scenario: governed parameters, populations and behaviours, read from TOML
//! and checked before anything runs (unknown keys, unknown parameters and
//! out-of-range values are refused by name).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::SimError;

/// A governed parameter's value as a scenario writes it: an integer, or a
/// string holding a decimal integer, optionally followed by ` OPEN` (times 10^18),
/// for amounts TOML's 64-bit integers cannot hold.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ParamValue {
    Int(i64),
    Text(String),
}

impl ParamValue {
    /// The value in base units, or why it is not one.
    pub fn resolve(&self, name: &str) -> Result<u128, SimError> {
        let bad = |why: &str| SimError::BadValue { name: name.into(), why: why.into() };
        match self {
            ParamValue::Int(v) => u128::try_from(*v).map_err(|_| bad("negative")),
            ParamValue::Text(s) => {
                let s = s.trim();
                let (digits, scale) = match s.strip_suffix("OPEN") {
                    Some(d) => (d.trim(), primitives::ONE_OPEN),
                    None => (s, 1),
                };
                let v: u128 = digits
                    .replace('_', "")
                    .parse()
                    .map_err(|_| bad("expected an integer, or an integer followed by \" OPEN\""))?;
                v.checked_mul(scale).ok_or_else(|| bad("overflows 128 bits"))
            }
        }
    }
}

/// How many participants of each kind.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Population {
    pub validators: usize,
    pub delegators: usize,
    pub honest_contributors: usize,
    pub spammers: usize,
    pub copycats: usize,
    /// One curator (and owner) per Datanet.
    pub datanets: usize,
    /// How many of the Datanets' curators approve everything.
    pub lazy_curators: usize,
    pub model_builders: usize,
    pub apps: usize,
    pub honest_operators: usize,
    pub forging_operators: usize,
    pub traders: usize,
}

impl Default for Population {
    fn default() -> Self {
        Population {
            validators: 10,
            delegators: 400,
            honest_contributors: 2_500,
            spammers: 150,
            copycats: 150,
            datanets: 8,
            lazy_curators: 2,
            model_builders: 8,
            apps: 100,
            honest_operators: 5,
            forging_operators: 1,
            traders: 60,
        }
    }
}

/// What participants do. Probabilities are in basis points, amounts in whole OPEN.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// Paid inferences the apps request per simulated day, in total.
    pub inferences_per_day: u64,
    /// Chance a contributor (honest, spammer or copycat) submits a file on a given day.
    pub contribute_bps_per_day: u32,
    pub rows_per_file_min: u32,
    pub rows_per_file_max: u32,
    /// An honest curator approves a file scoring at least this and with at most
    /// `curator_max_duplicate_pct` % duplicate rows; it rejects the rest (slashing).
    pub curator_min_quality_bps: u32,
    pub curator_max_duplicate_pct: u32,
    /// Blocks between a curator's reviews.
    pub review_every_blocks: u64,
    /// Days between a model builder's new models (each trained on the Datanets' latest versions).
    pub model_every_days: u32,
    /// A model's prices per 1K tokens, in millionths of an OPEN.
    pub price_in_micro_open: u64,
    pub price_out_micro_open: u64,
    pub input_tokens_min: u64,
    pub input_tokens_max: u64,
    pub output_tokens_min: u64,
    pub output_tokens_max: u64,
    /// Contributions one answer draws on (its true attribution record's size).
    pub credits_per_answer: u32,
    /// An operator settles when it holds 256 receipts or its oldest is this old.
    pub settle_every_blocks: u64,
    /// Chance the forging operator credits its own contributions instead of the true ones.
    pub forge_bps: u32,
    /// Whether the forging operator reveals a challenged record (else it defaults).
    pub forger_reveals: bool,
    /// Chance a posted record is recomputed by a watcher (validators watch).
    pub audit_bps: u32,
    /// Chance a watcher's recomputation of an honest record differs anyway (a false alarm).
    pub false_alarm_bps: u32,
    /// What watchers believe of a flagged record's chance to be wrong before any
    /// challenge has resolved (then their shared record of wins and losses counts).
    pub watcher_prior_precision_bps: u32,
    /// Days between contributors' claims.
    pub claim_every_days: u32,
    /// Share of each model that its builder splits off and sells to traders, in basis points.
    pub shares_sold_bps: u32,
    /// What a trader pays for 1% of a model's shares, in millionths of an OPEN.
    pub share_price_micro_open_per_pct: u64,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            inferences_per_day: 8_000,
            contribute_bps_per_day: 2_500,
            rows_per_file_min: 3,
            rows_per_file_max: 10,
            curator_min_quality_bps: 6_000,
            curator_max_duplicate_pct: 20,
            review_every_blocks: 60,
            model_every_days: 3,
            price_in_micro_open: 1_000,
            price_out_micro_open: 2_000,
            input_tokens_min: 200,
            input_tokens_max: 2_000,
            output_tokens_min: 50,
            output_tokens_max: 800,
            credits_per_answer: 4,
            settle_every_blocks: 30,
            forge_bps: 5_000,
            forger_reveals: true,
            audit_bps: 3_000,
            false_alarm_bps: 100,
            watcher_prior_precision_bps: 9_000,
            claim_every_days: 2,
            shares_sold_bps: 3_000,
            share_price_micro_open_per_pct: 20_000,
        }
    }
}

/// Genesis allocations per participant, in whole OPEN.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Balances {
    /// A validator's bond is `validator_bond` times a Pareto draw (shape `stake_pareto_alpha_pct` / 100).
    pub validator_bond: u64,
    pub stake_pareto_alpha_pct: u32,
    pub validator: u64,
    pub delegator: u64,
    pub contributor: u64,
    pub curator: u64,
    pub builder: u64,
    pub app: u64,
    pub operator: u64,
    pub operator_bond: u64,
    pub trader: u64,
    /// Each Datanet's contributor bond, in millionths of an OPEN.
    pub contributor_bond_micro_open: u64,
}

impl Default for Balances {
    fn default() -> Self {
        Balances {
            validator_bond: 2_000,
            stake_pareto_alpha_pct: 150,
            validator: 2_000,
            delegator: 500,
            contributor: 20,
            curator: 100,
            builder: 500,
            app: 500,
            operator: 200,
            operator_bond: 1_000,
            trader: 200,
            contributor_bond_micro_open: 1_000_000,
        }
    }
}

/// A grid of parameter values: every combination is one run.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sweep {
    pub params: BTreeMap<String, Vec<ParamValue>>,
}

/// A scenario as read from its file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    pub name: String,
    pub seed: u64,
    /// Simulated days of activity; the run then settles what is in flight.
    pub days: u32,
    /// Seconds per block (the fixed block time).
    pub block_seconds: u64,
    /// Governed parameters set at genesis (over the simulator's own defaults, [`SIM_PARAMS`]).
    pub params: BTreeMap<String, ParamValue>,
    /// The split parameter that absorbs the difference when the five
    /// `inference.split_*_bps` do not sum to 10,000 (so a sweep of the data
    /// share moves it against this one).
    pub split_balance: String,
    pub population: Population,
    pub behaviour: Behaviour,
    pub balances: Balances,
    pub sweep: Sweep,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            seed: 1,
            days: 14,
            block_seconds: 60,
            params: BTreeMap::new(),
            split_balance: "inference.split_owner_bps".into(),
            population: Population::default(),
            behaviour: Behaviour::default(),
            balances: Balances::default(),
            sweep: Sweep::default(),
        }
    }
}

/// Governed parameters the simulator sets unless the scenario does: windows in
/// minutes rather than days (a block a minute), fast governance, and room for
/// large blocks. Everything else keeps the chain's defaults.
pub const SIM_PARAMS: &[(&str, u128)] = &[
    ("block.gas_limit", 1_000_000_000),
    ("governance.voting_delay", 1),
    ("governance.voting_period", 5),
    ("governance.timelock", 1),
    ("governance.deposit", 10 * primitives::ONE_OPEN),
    ("inference.challenge_window_blocks", 60),
    ("inference.attribution_timeout_blocks", 240),
    ("attribution.reveal_blocks", 30),
    ("attribution.verdict_blocks", 30),
    ("attribution.challenge_jail_blocks", 600),
    ("staking.unbonding_blocks", 1_440),
];

impl Scenario {
    /// Read a scenario from TOML text; `what` names it in errors.
    pub fn from_toml(text: &str, what: &str) -> Result<Scenario, SimError> {
        let s: Scenario =
            toml::from_str(text).map_err(|e| SimError::Scenario { file: what.into(), msg: e.to_string() })?;
        s.check()?;
        Ok(s)
    }

    /// Read a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SimError::Io(format!("cannot read scenario {}: {e}", path.display())))?;
        Scenario::from_toml(&text, &path.display().to_string())
    }

    /// Every governed parameter at genesis: the simulator's defaults, then the
    /// scenario's, each known and in range, with the fee split balanced.
    pub fn genesis_params(&self) -> Result<Vec<(String, u128)>, SimError> {
        let mut out: BTreeMap<String, u128> = SIM_PARAMS.iter().map(|(n, v)| (n.to_string(), *v)).collect();
        for (name, v) in &self.params {
            let v = v.resolve(name)?;
            check_param(name, v)?;
            out.insert(name.clone(), v);
        }
        balance_split(&mut out, &self.split_balance)?;
        for (name, v) in &out {
            check_param(name, *v)?;
        }
        Ok(out.into_iter().collect())
    }

    /// A governed parameter's value in this scenario (its default if unset).
    pub fn param(&self, name: &str) -> Result<u128, SimError> {
        let all = self.genesis_params()?;
        if let Some((_, v)) = all.iter().find(|(n, _)| n == name) {
            return Ok(*v);
        }
        spec(name).map(|s| s.default)
    }

    /// Everything that can be checked before a run.
    pub fn check(&self) -> Result<(), SimError> {
        self.genesis_params()?;
        let p = &self.population;
        let b = &self.behaviour;
        let need = |ok: bool, what: &str| if ok { Ok(()) } else { Err(SimError::Invalid(what.into())) };
        need(self.days >= 1 && self.days <= 365, "days must be 1 to 365")?;
        need(self.block_seconds >= 1 && self.block_seconds <= 3_600, "block_seconds must be 1 to 3600")?;
        need(p.validators >= 1 && p.validators <= 100, "population.validators must be 1 to 100")?;
        need(p.datanets >= 1 && p.datanets <= 64, "population.datanets must be 1 to 64")?;
        need(p.lazy_curators <= p.datanets, "population.lazy_curators cannot exceed population.datanets")?;
        need(p.model_builders >= 1, "population.model_builders must be at least 1")?;
        need(p.apps >= 1, "population.apps must be at least 1")?;
        need(p.honest_operators >= 1, "population.honest_operators must be at least 1")?;
        need(p.honest_contributors >= 1, "population.honest_contributors must be at least 1")?;
        let total = p.validators
            + p.delegators
            + p.honest_contributors
            + p.spammers
            + p.copycats
            + p.datanets
            + p.model_builders
            + p.apps
            + p.honest_operators
            + 2 * p.forging_operators
            + p.traders;
        need(total <= 100_000, "at most 100,000 participants")?;
        need(
            b.rows_per_file_min >= 1 && b.rows_per_file_min <= b.rows_per_file_max,
            "rows_per_file_min must be 1 to rows_per_file_max",
        )?;
        need(b.rows_per_file_max <= 200, "rows_per_file_max must be at most 200")?;
        need(
            b.input_tokens_min >= 1 && b.input_tokens_min <= b.input_tokens_max,
            "input_tokens_min must be 1 to input_tokens_max",
        )?;
        need(b.output_tokens_min <= b.output_tokens_max, "output_tokens_min must be at most output_tokens_max")?;
        need(b.input_tokens_max <= 1_000_000 && b.output_tokens_max <= 1_000_000, "at most 1,000,000 tokens")?;
        need(b.credits_per_answer >= 1 && b.credits_per_answer <= 32, "credits_per_answer must be 1 to 32")?;
        need(b.review_every_blocks >= 1, "review_every_blocks must be at least 1")?;
        need(b.settle_every_blocks >= 1, "settle_every_blocks must be at least 1")?;
        need(b.model_every_days >= 1, "model_every_days must be at least 1")?;
        need(b.claim_every_days >= 1, "claim_every_days must be at least 1")?;
        need(b.inferences_per_day <= 10_000_000, "inferences_per_day must be at most 10,000,000")?;
        for (n, v) in [
            ("contribute_bps_per_day", b.contribute_bps_per_day),
            ("forge_bps", b.forge_bps),
            ("audit_bps", b.audit_bps),
            ("false_alarm_bps", b.false_alarm_bps),
            ("watcher_prior_precision_bps", b.watcher_prior_precision_bps),
            ("shares_sold_bps", b.shares_sold_bps),
            ("curator_min_quality_bps", b.curator_min_quality_bps),
        ] {
            need(v <= 10_000, &format!("behaviour.{n} must be at most 10000"))?;
        }
        need(b.curator_max_duplicate_pct <= 100, "curator_max_duplicate_pct must be at most 100")?;
        need(
            self.balances.validator_bond >= 1 && self.balances.stake_pareto_alpha_pct >= 50,
            "balances.validator_bond must be positive and stake_pareto_alpha_pct at least 50",
        )?;
        for (name, values) in &self.sweep.params {
            need(!values.is_empty(), &format!("sweep.params.{name} lists no value"))?;
            for v in values {
                let mut one = self.clone();
                one.params.insert(name.clone(), v.clone());
                one.genesis_params()?;
            }
        }
        Ok(())
    }

    /// The runs of the sweep: one scenario per combination, in order (the last
    /// parameter varies fastest); just this one without a sweep.
    pub fn sweep_points(&self) -> Vec<(Vec<(String, u128)>, Scenario)> {
        let mut points: Vec<(Vec<(String, u128)>, Scenario)> = vec![(vec![], self.clone())];
        for (name, values) in &self.sweep.params {
            let mut next = vec![];
            for (labels, s) in &points {
                for v in values {
                    let mut s = s.clone();
                    s.params.insert(name.clone(), v.clone());
                    let mut l = labels.clone();
                    l.push((name.clone(), v.resolve(name).unwrap_or(0)));
                    next.push((l, s));
                }
            }
            points = next;
        }
        for (_, s) in &mut points {
            s.sweep = Sweep::default();
        }
        points
    }
}

fn spec(name: &str) -> Result<&'static runtime::params::ParamSpec, SimError> {
    runtime::params::ALL.iter().find(|s| s.name == name).ok_or_else(|| SimError::UnknownParam(name.into()))
}

fn check_param(name: &str, v: u128) -> Result<(), SimError> {
    let s = spec(name)?;
    if v < s.min || v > s.max {
        return Err(SimError::ParamOutOfRange { name: name.into(), value: v, min: s.min, max: s.max });
    }
    Ok(())
}

const SPLITS: [&str; 5] = [
    "inference.split_owner_bps",
    "inference.split_data_bps",
    "inference.split_serving_bps",
    "inference.split_stakers_bps",
    "inference.split_treasury_bps",
];

/// Make the five split parameters sum to 10,000 by moving `balance`.
fn balance_split(out: &mut BTreeMap<String, u128>, balance: &str) -> Result<(), SimError> {
    if !SPLITS.contains(&balance) {
        return Err(SimError::Invalid(format!("split_balance must be one of {}", SPLITS.join(", "))));
    }
    let value = |out: &BTreeMap<String, u128>, n: &str| -> Result<u128, SimError> {
        Ok(out.get(n).copied().unwrap_or(spec(n)?.default))
    };
    let mut others = 0u128;
    for n in SPLITS.iter().filter(|n| **n != balance) {
        others += value(out, n)?;
    }
    if others > 10_000 {
        return Err(SimError::Invalid(format!(
            "the fee split parameters other than {balance} sum to {others} basis points, more than 10000"
        )));
    }
    out.insert(balance.into(), 10_000 - others);
    Ok(())
}
