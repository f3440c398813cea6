//! The participants and what they do, block by block.

use std::collections::{BTreeMap, HashMap};

use alloy_primitives::U256;
use alloy_sol_types::{SolCall, SolEvent, SolInterface, SolStruct};
use keys::SecretKey;
use primitives::abi::IAssets;
use primitives::abi::IAttribution::{self, IAttributionCalls};
use primitives::abi::IBank;
use primitives::abi::IDatanets::{self, IDatanetsCalls};
use primitives::abi::IGovernance::{self, IGovernanceCalls};
use primitives::abi::IInference::{self, IInferenceCalls};
use primitives::abi::IModels::{self, IModelsCalls};
use primitives::abi::IShareToken;
use primitives::abi::IStaking::{self, IStakingCalls};
use primitives::abi::{
    ContributionAttestation, Credit, DatanetLimits, DatanetVersionRef, InferenceReceipt, ModelRegistration,
};
use primitives::block::Receipt;
use primitives::rows::Row;
use primitives::system::Module;
use primitives::{Address, Amount, B256, Bytes, ONE_OPEN};
use rayon::prelude::*;

use crate::SimError;
use crate::chain::{Chain, GENESIS_TIME, Intent, Outcome};
use crate::corpus;
use crate::rng::Rng;
use crate::scenario::Scenario;

/// What a participant is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Validator,
    Delegator,
    Contributor,
    Spammer,
    Copycat,
    Curator,
    LazyCurator,
    ModelBuilder,
    App,
    Operator,
    ForgingOperator,
    Trader,
    /// The ingest node whose attestations the Datanets trust.
    Attester,
}

impl Role {
    pub const ALL: [Role; 13] = [
        Role::Validator,
        Role::Delegator,
        Role::Contributor,
        Role::Spammer,
        Role::Copycat,
        Role::Curator,
        Role::LazyCurator,
        Role::ModelBuilder,
        Role::App,
        Role::Operator,
        Role::ForgingOperator,
        Role::Trader,
        Role::Attester,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Validator => "validator",
            Role::Delegator => "delegator",
            Role::Contributor => "honest contributor",
            Role::Spammer => "spammer",
            Role::Copycat => "copycat",
            Role::Curator => "honest curator",
            Role::LazyCurator => "lazy curator",
            Role::ModelBuilder => "model builder",
            Role::App => "app",
            Role::Operator => "honest operator",
            Role::ForgingOperator => "forging operator",
            Role::Trader => "share trader",
            Role::Attester => "ingest attester",
        }
    }

    fn contributes(self) -> bool {
        matches!(self, Role::Contributor | Role::Spammer | Role::Copycat)
    }
}

/// What happened to one participant (amounts in base units).
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub files: u64,
    pub refused_by_ingest: u64,
    pub approved: u64,
    pub rejected: u64,
    pub rows_approved: u64,
    pub bond_slashed: u128,
    pub credits_claimed: u128,
    /// Credits accrued but not claimed at the end.
    pub credits_unclaimed: u128,
    pub gas_paid: u128,
    pub inferences_paid: u64,
    pub inference_spend: u128,
    pub receipts_served: u64,
    pub records_forged: u64,
    pub challenges_opened: u64,
    pub challenges_won: u64,
    pub challenges_lost: u64,
    pub stake_slashed: u128,
    pub share_earnings: u128,
}

/// One participant.
pub struct Participant {
    pub role: Role,
    pub address: Address,
    /// A contributor's latent quality (the chance a row it writes is clean), in basis points.
    pub quality_bps: u32,
    /// Balance at genesis plus any bond made at genesis.
    pub initial: u128,
    /// Net position at the end: balance, stake, pending rewards, claimable
    /// credits and bonds still held, minus `initial`.
    pub net: i128,
    pub stats: Stats,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Approved,
    Rejected,
}

struct Contribution {
    datanet: usize,
    owner: usize,
    rows: Vec<String>,
    parsed: Vec<Row>,
    quality_bps: u16,
    duplicates: u32,
    kept_rows: u32,
    bond: u128,
    status: Status,
    version: u64,
}

struct Datanet {
    id: u64,
    curator: usize,
    lazy: bool,
    index: ingest::DedupIndex,
    pending: Vec<u64>,
    version: u64,
    approved: Vec<u64>,
}

struct Model {
    id: u64,
    owner: usize,
    adapter: B256,
    price_in: u128,
    price_out: u128,
    /// Creditable contributions and their influence (kept rows × quality), with the running sums.
    creditable: Vec<(u64, u64)>,
    cum: Vec<u64>,
    share_token: Option<Address>,
}

struct Served {
    receipt: InferenceReceipt,
    truth: Vec<Credit>,
    model: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum HoldState {
    Open,
    Posted,
    Challenged,
    Closed,
}

struct Hold {
    op: usize,
    truth: Vec<Credit>,
    posted_at: u64,
    record: Vec<u8>,
    forged: bool,
    state: HoldState,
    challenger: usize,
}

/// Why an intent was sent, to read its receipt.
enum Tag {
    Setup,
    CreateDatanet(usize),
    Submit(Box<Contribution>),
    Review(u64, bool),
    Register(usize, Box<Model>, Vec<(usize, u64)>),
    ProposeModel,
    GovPropose(Vec<usize>),
    Vote,
    GovExecute(Vec<usize>),
    Split(usize),
    Settle(usize, Vec<Served>),
    Post(B256),
    Finalize(B256),
    Challenge(B256),
    Reveal(B256),
    Verdict(B256),
    Resolve(B256),
    Claim(u64),
    Other,
}

/// Work scheduled for a later block.
enum Later {
    Finalize(B256),
    Reveal(B256),
    Verdict(B256),
    ResolveUnrevealed(B256),
    Votes(u64, Vec<usize>, u64),
    Execute(u64, Vec<usize>),
}

/// Per simulated day, for the report's charts.
#[derive(Clone, Debug, Default)]
pub struct Day {
    pub inferences: u64,
    pub spend: u128,
    pub treasury: u128,
    pub files: u64,
    pub spam_approved: u64,
    pub spam_rejected: u64,
    pub live_models: u64,
    pub challenges: u64,
}

/// Totals over the run that the report and the tests check.
#[derive(Clone, Debug, Default)]
pub struct Totals {
    pub receipts_settled: u64,
    pub settled_cost: u128,
    pub data_held: u128,
    pub credited: u128,
    pub dust: u128,
    pub fallback: u128,
    pub forfeited: u128,
    pub claimed: u128,
    pub settle_failures: u64,
    pub reverted: BTreeMap<String, u64>,
    pub dropped: u64,
    pub challenges_opened: u64,
    pub challenges_upheld: u64,
    pub challenges_defaulted: u64,
    pub challenges_rejected: u64,
    pub challenges_lapsed: u64,
    pub challenges_unaffordable: u64,
    /// Flagged records a watcher did not challenge: the bond at risk outweighed the expected reward.
    pub challenges_declined: u64,
    pub false_alarms: u64,
    pub forged_records: u64,
    pub forged_unchallenged: u64,
    pub models_live: u64,
    pub proposals_failed: u64,
    pub treasury_start: u128,
    pub treasury_end: u128,
    /// The treasury's part of every settled receipt (the cost minus the four
    /// other parts, each rounded down), computed as the runtime does.
    pub treasury_from_inference: u128,
    /// Contributor bonds slashed on rejection (the treasury's).
    pub treasury_from_rejections: u128,
    pub issued: u128,
    pub burned: u128,
    pub supply_checks: u64,
    pub blocks: u64,
    /// Blocks that carried no transaction (only the runtime's block hooks ran).
    pub empty_blocks: u64,
    pub txs: u64,
    pub open_holds_at_end: u64,
    pub escrow_spent: u128,
}

pub struct World {
    pub scn: Scenario,
    rng: Rng,
    pub chain: Chain,
    keys: Vec<SecretKey>,
    serving: HashMap<usize, SecretKey>,
    consensus: Vec<keys::ConsensusKey>,
    pub people: Vec<Participant>,
    by_role: BTreeMap<Role, Vec<usize>>,
    operators: Vec<usize>,
    sybil_of: BTreeMap<usize, usize>,
    attester: usize,
    datanets: Vec<Datanet>,
    contributions: BTreeMap<u64, Contribution>,
    models: Vec<Model>,
    live: Vec<usize>,
    served: Vec<Vec<Served>>,
    oldest: Vec<u64>,
    allowance: Vec<u128>,
    receipt_nonce: Vec<u64>,
    holds: HashMap<B256, Hold>,
    queue: Vec<Intent<Tag>>,
    later: BTreeMap<u64, Vec<Later>>,
    contribute_at: BTreeMap<u64, Vec<usize>>,
    open_challenges: usize,
    inference_acc: u64,
    blocks_per_day: u64,
    end_of_activity: u64,
    pub days: Vec<Day>,
    pub totals: Totals,
    stake_final: Vec<(usize, u128)>,
    pending_props: usize,
    p: Params,
}

/// Governed parameters the participants act on (fixed for a run: no proposal changes them).
struct Params {
    window: u64,
    reveal: u64,
    verdict: u64,
    timelock: u64,
    deposit: u128,
    challenge_bond: u128,
    slash_ppm: u128,
    reporter_bps: u128,
    /// Owner, data, serving and stakers basis points of the fee split.
    split: [u128; 4],
}

const DATANETS: Address = Module::Datanets.address();
const MODELS: Address = Module::Models.address();
const INFERENCE: Address = Module::Inference.address();
const ATTRIBUTION: Address = Module::Attribution.address();
const STAKING: Address = Module::Staking.address();
const GOVERNANCE: Address = Module::Governance.address();
const ASSETS: Address = Module::Assets.address();
const BANK: Address = Module::Bank.address();
const BASE_HASH: B256 = B256::repeat_byte(0xba);
const CHAIN_ID: u64 = 31_337;
const MICRO: u128 = ONE_OPEN / 1_000_000;

fn key_for(seed: u64, label: &str, i: usize) -> SecretKey {
    let h = primitives::content_hash(format!("openledger sim {seed} {label} {i}").as_bytes());
    SecretKey::from_bytes(&h.0).expect("a blake3 digest is a valid key with overwhelming probability")
}

fn record_bytes(h: &B256, credits: &[Credit]) -> Vec<u8> {
    let mut v = b"openledger-sim-record".to_vec();
    v.extend_from_slice(h.as_slice());
    for c in credits {
        v.extend_from_slice(&c.contributionId.to_be_bytes());
        v.extend_from_slice(&c.weightPpm.to_be_bytes());
    }
    v
}

/// Every participant's role and starting balance (whole OPEN), in account order.
fn roles_of(scn: &Scenario) -> Vec<(Role, u64)> {
    let (p, b) = (&scn.population, &scn.balances);
    let mut roles: Vec<(Role, u64)> = vec![];
    roles.extend(std::iter::repeat_n((Role::Validator, b.validator), p.validators));
    roles.extend(std::iter::repeat_n((Role::Delegator, b.delegator), p.delegators));
    roles.extend(std::iter::repeat_n((Role::Contributor, b.contributor), p.honest_contributors));
    roles.extend(std::iter::repeat_n((Role::Spammer, b.contributor), p.spammers));
    roles.extend(std::iter::repeat_n((Role::Copycat, b.contributor), p.copycats));
    for i in 0..p.datanets {
        roles.push((if i < p.lazy_curators { Role::LazyCurator } else { Role::Curator }, b.curator));
    }
    roles.extend(std::iter::repeat_n((Role::ModelBuilder, b.builder), p.model_builders));
    roles.extend(std::iter::repeat_n((Role::App, b.app), p.apps));
    roles.extend(std::iter::repeat_n((Role::Operator, b.operator), p.honest_operators));
    // A forging operator and its contributor account (both its own).
    roles.extend(std::iter::repeat_n((Role::ForgingOperator, b.operator), 2 * p.forging_operators));
    roles.extend(std::iter::repeat_n((Role::Trader, b.trader), p.traders));
    roles.push((Role::Attester, 1));
    roles
}

impl World {
    pub fn new(scn: &Scenario) -> Result<World, SimError> {
        let scn = scn.clone();
        let rng = Rng::new(scn.seed);
        let p = &scn.population;
        let b = &scn.balances;
        let mut people = vec![];
        let mut by_role: BTreeMap<Role, Vec<usize>> = BTreeMap::new();
        let roles = roles_of(&scn);
        let keys: Vec<SecretKey> = (0..roles.len()).into_par_iter().map(|i| key_for(scn.seed, "account", i)).collect();
        let mut qrng = rng.fork(1);
        for (i, (role, open)) in roles.iter().enumerate() {
            let quality_bps = match role {
                Role::Contributor | Role::ForgingOperator => qrng.range(2_000, 10_000) as u32,
                _ => 0,
            };
            people.push(Participant {
                role: *role,
                address: keys[i].address(),
                quality_bps,
                initial: *open as u128 * ONE_OPEN,
                net: 0,
                stats: Stats::default(),
            });
            by_role.entry(*role).or_default().push(i);
        }
        let mut operators: Vec<usize> = by_role.get(&Role::Operator).cloned().unwrap_or_default();
        let mut sybil_of = BTreeMap::new();
        let forgers = by_role.get(&Role::ForgingOperator).cloned().unwrap_or_default();
        for pair in forgers.chunks(2) {
            operators.push(pair[0]);
            sybil_of.insert(pair[0], pair[1]);
            people[pair[0]].quality_bps = 0;
            // Its contributor account writes well, so its files are approved and creditable.
            people[pair[1]].quality_bps = 9_500;
        }
        let attester = people.len() - 1;
        let serving: HashMap<usize, SecretKey> =
            operators.iter().map(|o| (*o, key_for(scn.seed, "serving", *o))).collect();
        let consensus: Vec<keys::ConsensusKey> = (0..p.validators)
            .map(|i| keys::ConsensusKey::dev(&format!("openledger sim {} validator {i}", scn.seed)))
            .collect();
        let mut operators_genesis = vec![];
        let mut srng = rng.fork(2);
        for (n, v) in by_role.get(&Role::Validator).cloned().unwrap_or_default().into_iter().enumerate() {
            let bond = b.validator_bond as u128 * ONE_OPEN * srng.pareto_ppm(b.stake_pareto_alpha_pct) / 1_000_000;
            people[v].initial += bond;
            operators_genesis.push(runtime::staking::genesis::GenesisOperator {
                operator: people[v].address,
                role: 1,
                consensus_key: consensus[n].public(),
                serving_key: Address::ZERO,
                commission_bps: 1_000,
                bond: Amount(bond),
            });
        }
        for o in &operators {
            let bond = b.operator_bond as u128 * ONE_OPEN;
            people[*o].initial += bond;
            operators_genesis.push(runtime::staking::genesis::GenesisOperator {
                operator: people[*o].address,
                role: 2,
                consensus_key: B256::ZERO,
                serving_key: serving[o].address(),
                commission_bps: 500,
                bond: Amount(bond),
            });
        }
        let params = scn.genesis_params()?;
        let g = runtime::Genesis {
            chain_id: CHAIN_ID,
            timestamp: GENESIS_TIME,
            alloc: people.iter().map(|p| (p.address, Amount(p.initial))).collect(),
            params: params.clone(),
            operators: operators_genesis,
            base_model: Some(runtime::genesis::BaseModelGenesis {
                name: "openledger-base".into(),
                base_hash: BASE_HASH,
            }),
            calls: vec![],
        };
        let gas_limit = u64::try_from(scn.param("block.gas_limit")?).unwrap_or(u64::MAX);
        let min_base_fee = u64::try_from(scn.param("gas.min_base_fee")?).unwrap_or(u64::MAX);
        let chain = Chain::new(&g, scn.block_seconds, gas_limit, min_base_fee)?;
        let blocks_per_day = (86_400 / scn.block_seconds).max(1);
        let napps = p.apps;
        let nops = operators.len();
        let treasury = chain.balance(&primitives::system::TREASURY);
        let blocks = |n: &str| -> Result<u64, SimError> { Ok(u64::try_from(scn.param(n)?).unwrap_or(u64::MAX)) };
        let p = Params {
            window: blocks("inference.challenge_window_blocks")?,
            reveal: blocks("attribution.reveal_blocks")?,
            verdict: blocks("attribution.verdict_blocks")?,
            timelock: blocks("governance.timelock")?,
            deposit: scn.param("governance.deposit")?,
            challenge_bond: scn.param("attribution.challenge_bond")?,
            slash_ppm: scn.param("attribution.challenge_slash_ppm")?,
            reporter_bps: scn.param("staking.slash_reporter_bps")?,
            split: [
                scn.param("inference.split_owner_bps")?,
                scn.param("inference.split_data_bps")?,
                scn.param("inference.split_serving_bps")?,
                scn.param("inference.split_stakers_bps")?,
            ],
        };
        Ok(World {
            end_of_activity: blocks_per_day * scn.days as u64,
            scn,
            rng,
            chain,
            keys,
            serving,
            consensus,
            people,
            by_role,
            served: (0..nops).map(|_| vec![]).collect(),
            oldest: vec![0; nops],
            operators,
            sybil_of,
            attester,
            datanets: vec![],
            contributions: BTreeMap::new(),
            models: vec![],
            live: vec![],
            allowance: vec![0; napps * nops],
            receipt_nonce: vec![0; napps * nops],
            holds: HashMap::new(),
            queue: vec![],
            later: BTreeMap::new(),
            contribute_at: BTreeMap::new(),
            open_challenges: 0,
            inference_acc: 0,
            blocks_per_day,
            days: vec![],
            totals: Totals { treasury_start: treasury, ..Totals::default() },
            stake_final: vec![],
            pending_props: 0,
            p,
        })
    }

    fn role(&self, r: Role) -> Vec<usize> {
        self.by_role.get(&r).cloned().unwrap_or_default()
    }

    fn send(&mut self, from: usize, to: Address, value: u128, data: Vec<u8>, gas: u64, tag: Tag) {
        self.queue.push(Intent { from, to, value, data, gas, tag });
    }

    fn day_of(&self, h: u64) -> usize {
        ((h.saturating_sub(1)) / self.blocks_per_day) as usize
    }

    fn day_mut(&mut self, h: u64) -> &mut Day {
        let d = self.day_of(h);
        while self.days.len() <= d {
            self.days.push(Day::default());
        }
        &mut self.days[d]
    }

    /// Run the whole scenario.
    pub fn run(&mut self, progress: &mut dyn FnMut(&World)) -> Result<(), SimError> {
        self.setup();
        let p = &self.p;
        let drain_until = self.end_of_activity + p.window + p.reveal + p.verdict + 120;
        loop {
            let h = self.chain.height + 1;
            if h > self.end_of_activity && (h > drain_until || self.idle()) {
                break;
            }
            self.act(h)?;
            self.block()?;
            if h.is_multiple_of(self.blocks_per_day) {
                let t = self.chain.balance(&primitives::system::TREASURY);
                self.day_mut(h).treasury = t;
                progress(self);
            }
        }
        // Everything left: claims of credits, share earnings and rewards.
        self.final_claims()?;
        self.block()?;
        self.block()?;
        self.settle_accounts()?;
        Ok(())
    }

    fn idle(&self) -> bool {
        self.queue.is_empty()
            && self.later.is_empty()
            && self.served.iter().all(|s| s.is_empty())
            && self.holds.values().all(|h| h.state == HoldState::Closed)
            && self.pending_props == 0
    }

    /// Block 1's work: Datanets, delegations, escrows, allowances.
    fn setup(&mut self) {
        let b = self.scn.balances.clone();
        let curators: Vec<usize> =
            self.role(Role::Curator).into_iter().chain(self.role(Role::LazyCurator)).collect::<Vec<_>>();
        let mut curators = curators;
        curators.sort();
        let attester = self.people[self.attester].address;
        for (n, c) in curators.iter().enumerate() {
            let create = IDatanetsCalls::createDatanet(IDatanets::createDatanetCall {
                name: format!("topic-{n}"),
                summary: String::new(),
                description: String::new(),
                tags: vec![],
                dataType: 0,
                licence: "CC-BY-4.0".into(),
                policy: 0,
                contributorBond: U256::from(b.contributor_bond_micro_open as u128 * MICRO),
                curators: vec![self.people[*c].address],
                attesters: vec![attester],
                limits: DatanetLimits {
                    maxSubmissionBytes: 0,
                    contributorDailyBytes: 0,
                    datanetDailyBytes: 0,
                    contributorDailyFiles: 0,
                },
            });
            self.send(*c, DATANETS, 0, create.abi_encode(), 1_000_000, Tag::CreateDatanet(n));
            self.datanets.push(Datanet {
                id: 0,
                curator: *c,
                lazy: self.people[*c].role == Role::LazyCurator,
                index: ingest::DedupIndex::new(&ingest::NearDupConfig::default()),
                pending: vec![],
                version: 0,
                approved: vec![],
            });
        }
        // Delegators pick validators in proportion to their bonds: stake attracts stake.
        let validators = self.role(Role::Validator);
        let weights: Vec<u64> = validators
            .iter()
            .map(|v| ((self.people[*v].initial - b.validator as u128 * ONE_OPEN) / MICRO).max(1) as u64)
            .collect();
        let total: u64 = weights.iter().sum();
        let mut r = self.rng.fork(3);
        for d in self.role(Role::Delegator) {
            let mut x = r.below(total);
            let mut pick = 0;
            for (i, w) in weights.iter().enumerate() {
                if x < *w {
                    pick = i;
                    break;
                }
                x -= w;
            }
            let amount = self.people[d].initial * 8 / 10;
            let call = IStakingCalls::bond(IStaking::bondCall { operator: self.people[validators[pick]].address });
            self.send(d, STAKING, amount, call.abi_encode(), 1_000_000, Tag::Setup);
        }
        let nops = self.operators.len() as u128;
        for (ai, a) in self.role(Role::App).into_iter().enumerate() {
            let deposit = self.people[a].initial * 9 / 10;
            let per_op = deposit / nops;
            self.send(
                a,
                INFERENCE,
                deposit,
                IInferenceCalls::deposit(IInference::depositCall {}).abi_encode(),
                200_000,
                Tag::Setup,
            );
            for (oi, o) in self.operators.clone().into_iter().enumerate() {
                let allow =
                    IInferenceCalls::allow(IInference::allowCall { operator: self.people[o].address, amount: per_op });
                self.send(a, INFERENCE, 0, allow.abi_encode(), 200_000, Tag::Setup);
                self.allowance[ai * self.operators.len() + oi] = per_op;
            }
        }
        // The forging operator's own account contributes honestly-looking data first.
        for s in self.sybil_of.values().copied().collect::<Vec<_>>() {
            self.contribute_at.entry(2).or_default().push(s);
            self.contribute_at.entry(3).or_default().push(s);
        }
    }

    /// Everything participants decide to do at height `h`.
    fn act(&mut self, h: u64) -> Result<(), SimError> {
        let active = h <= self.end_of_activity;
        if let Some(work) = self.later.remove(&h) {
            for w in work {
                self.do_later(h, w)?;
            }
        }
        if !active {
            for oi in 0..self.operators.len() {
                if !self.served[oi].is_empty() {
                    self.settle(oi, h);
                }
            }
            return Ok(());
        }
        if h % self.blocks_per_day == 1 || self.blocks_per_day == 1 {
            self.schedule_day(h);
        }
        if let Some(who) = self.contribute_at.remove(&h) {
            for c in who {
                self.contribute(c, h);
            }
        }
        let every = self.scn.behaviour.review_every_blocks;
        for d in 0..self.datanets.len() {
            if (h + d as u64).is_multiple_of(every) {
                self.review(d);
            }
        }
        // Builders train a quarter of a day in (Datanets have versions by then), staggered,
        // and not in the last tenth of the run (a model must have time to earn).
        let day = self.day_of(h) as u64;
        let model_every = self.scn.behaviour.model_every_days as u64;
        let bpd = self.blocks_per_day;
        for (bi, b) in self.role(Role::ModelBuilder).into_iter().enumerate() {
            let offset = bpd / 4 + (bi as u64 * 37) % (bpd / 2).max(1);
            let due = day * bpd + offset == h && day % model_every == (bi as u64) % model_every;
            if due && h + bpd / 10 < self.end_of_activity {
                self.register_model(b, bi, h);
            }
        }
        self.inferences(h);
        for oi in 0..self.operators.len() {
            let full = self.served[oi].len() >= runtime::inference::MAX_RECEIPTS;
            let old = !self.served[oi].is_empty() && h >= self.oldest[oi] + self.scn.behaviour.settle_every_blocks;
            if full || old {
                self.settle(oi, h);
            }
        }
        let claim_every = self.scn.behaviour.claim_every_days as u64 * self.blocks_per_day;
        if h % claim_every == claim_every / 2 {
            self.claims(h)?;
        }
        Ok(())
    }

    /// Decide who contributes on the day starting at `h`.
    fn schedule_day(&mut self, h: u64) {
        let mut r = self.rng.fork(100 + h);
        let bps = self.scn.behaviour.contribute_bps_per_day;
        let start = h.max(2);
        let span = self.blocks_per_day.min(self.end_of_activity.saturating_sub(start) + 1).max(1);
        for (i, p) in self.people.iter().enumerate() {
            if p.role.contributes() && r.chance(bps) {
                self.contribute_at.entry(start + r.below(span)).or_default().push(i);
            }
        }
        for s in self.sybil_of.values() {
            if r.chance(bps) {
                self.contribute_at.entry(start + r.below(span)).or_default().push(*s);
            }
        }
    }

    /// A participant writes a file, runs it through ingest, and submits it with the attestation.
    fn contribute(&mut self, who: usize, h: u64) {
        let role = self.people[who].role;
        let d = who % self.datanets.len();
        if self.datanets[d].id == 0 {
            return;
        }
        let mut r = self.rng.fork(0x1000_0000 + h * 65_537 + who as u64);
        let b = &self.scn.behaviour;
        let n = r.range(b.rows_per_file_min as u64, b.rows_per_file_max as u64) as usize;
        let rows: Vec<String> = match role {
            Role::Spammer => (0..n).map(|_| corpus::spam_row(&mut r)).collect(),
            Role::Copycat => {
                let approved = &self.datanets[d].approved;
                if approved.is_empty() {
                    return;
                }
                (0..n)
                    .map(|_| {
                        let c = &self.contributions[&approved[r.below(approved.len() as u64) as usize]];
                        let row = c.rows[r.below(c.rows.len() as u64) as usize].clone();
                        corpus::copy_row(&mut r, &row)
                    })
                    .collect()
            }
            _ => (0..n).map(|_| corpus::honest_row(&mut r, self.people[who].quality_bps)).collect(),
        };
        let bytes = corpus::text_file(&rows);
        self.people[who].stats.files += 1;
        self.day_mut(h).files += 1;
        let cfg = ingest::IngestConfig::default();
        let (parsed, analysis) = match ingest::ingest_file(&bytes, ingest::FileKind::Txt, &self.datanets[d].index, &cfg)
        {
            Ok(x) => x,
            Err(_) => {
                self.people[who].stats.refused_by_ingest += 1;
                return;
            }
        };
        let bond = self.scn.balances.contributor_bond_micro_open as u128 * MICRO;
        let a = ContributionAttestation {
            datanetId: self.datanets[d].id,
            contributor: self.people[who].address,
            contentHash: analysis.content_hash,
            rowsRoot: analysis.rows_root,
            rowCount: parsed.len() as u32,
            byteSize: bytes.len() as u64,
            qualityBps: analysis.quality_bps,
            scorerVersion: analysis.scorer_version,
            exactDuplicates: analysis.exact_duplicates,
            nearDuplicates: analysis.near_duplicates,
            findingsHash: analysis.config_digest,
            issuedAt: GENESIS_TIME + h * self.chain.block_seconds,
        };
        let sig = self.keys[self.attester].sign_hash(&a.eip712_signing_hash(&Module::Datanets.eip712_domain(CHAIN_ID)));
        let call = IDatanetsCalls::submitContribution(IDatanets::submitContributionCall {
            attestation: a,
            signature: sig.as_bytes().to_vec().into(),
        });
        let c = Contribution {
            datanet: d,
            owner: who,
            rows: parsed
                .iter()
                .map(|r| match r {
                    Row::Text { text } => text.clone(),
                    Row::PromptCompletion { prompt, completion } => format!("{prompt}\n{completion}"),
                })
                .collect(),
            parsed,
            quality_bps: analysis.quality_bps,
            duplicates: analysis.exact_duplicates + analysis.near_duplicates,
            kept_rows: analysis.kept_rows,
            bond,
            status: Status::Pending,
            version: 0,
        };
        self.send(who, DATANETS, bond, call.abi_encode(), 1_500_000, Tag::Submit(Box::new(c)));
    }

    /// A curator's review of its Datanet's pending contributions.
    fn review(&mut self, d: usize) {
        let pending = std::mem::take(&mut self.datanets[d].pending);
        let b = &self.scn.behaviour;
        let (min_q, max_dup) = (b.curator_min_quality_bps, b.curator_max_duplicate_pct);
        let curator = self.datanets[d].curator;
        for id in pending {
            let c = &self.contributions[&id];
            let rows = c.parsed.len().max(1) as u32;
            let dup_pct = c.duplicates * 100 / rows;
            let ok = self.datanets[d].lazy || (c.quality_bps as u32 >= min_q && dup_pct <= max_dup);
            let call = if ok {
                IDatanetsCalls::approve(IDatanets::approveCall { contributionId: id })
            } else {
                let reason = if dup_pct > max_dup { 2 } else { 1 };
                IDatanetsCalls::reject(IDatanets::rejectCall {
                    contributionId: id,
                    reason,
                    note: if reason == 2 { "duplicates".into() } else { "low quality".into() },
                })
            };
            self.send(curator, DATANETS, 0, call.abi_encode(), 3_000_000, Tag::Review(id, ok));
        }
    }

    /// A builder trains a model on the Datanets' latest versions and registers it.
    fn register_model(&mut self, b: usize, bi: usize, h: u64) {
        let mut r = self.rng.fork(0x2000_0000 + h * 131 + bi as u64);
        let with_data: Vec<usize> = (0..self.datanets.len()).filter(|d| self.datanets[*d].version > 0).collect();
        if with_data.is_empty() {
            return;
        }
        let first = with_data[(bi + r.below(with_data.len() as u64) as usize) % with_data.len()];
        let mut picked = vec![first];
        if with_data.len() > 1 && r.chance(5_000) {
            let second = with_data[r.below(with_data.len() as u64) as usize];
            if second != first {
                picked.push(second);
            }
        }
        let refs: Vec<(usize, u64)> = picked.iter().map(|d| (*d, self.datanets[*d].version)).collect();
        let mut creditable = vec![];
        for (d, v) in &refs {
            for id in &self.datanets[*d].approved {
                let c = &self.contributions[id];
                if c.version <= *v && c.kept_rows > 0 && c.quality_bps > 0 {
                    creditable.push((*id, c.kept_rows as u64 * c.quality_bps as u64));
                }
            }
        }
        if creditable.is_empty() {
            return;
        }
        let mut cum = vec![];
        let mut s = 0;
        for (_, w) in &creditable {
            s += w;
            cum.push(s);
        }
        let bh = &self.scn.behaviour;
        let adapter = primitives::content_hash(format!("sim adapter {h} {bi}").as_bytes());
        let m = Model {
            id: 0,
            owner: b,
            adapter,
            price_in: bh.price_in_micro_open as u128 * MICRO,
            price_out: bh.price_out_micro_open as u128 * MICRO,
            creditable,
            cum,
            share_token: None,
        };
        let reg = ModelRegistration {
            name: format!("sim-model-{h}-{bi}"),
            baseModelHash: BASE_HASH,
            adapterHash: adapter,
            datanets: refs
                .iter()
                .map(|(d, v)| DatanetVersionRef { datanetId: self.datanets[*d].id, version: *v })
                .collect(),
            hyperparams: Bytes::from_static(b"rank=8"),
            metrics: Bytes::from_static(b"loss=1"),
            trainingLogHash: adapter,
            checkpointHashes: vec![],
            checkpointLearningRates: vec![],
            sketchHash: B256::ZERO,
            sketchSeed: 0,
            sketchK: 0,
            priceInPer1k: m.price_in,
            priceOutPer1k: m.price_out,
        };
        let call = IModelsCalls::register(IModels::registerCall { registration: reg });
        self.send(b, MODELS, 0, call.abi_encode(), 2_000_000, Tag::Register(b, Box::new(m), refs));
    }

    /// The apps' requests of this block, served by the operators (receipts signed at settlement).
    fn inferences(&mut self, h: u64) {
        if self.live.is_empty() {
            return;
        }
        self.inference_acc += self.scn.behaviour.inferences_per_day;
        let n = self.inference_acc / self.blocks_per_day;
        self.inference_acc %= self.blocks_per_day;
        let apps = self.role(Role::App);
        let nops = self.operators.len();
        let mut r = self.rng.fork(0x3000_0000 + h);
        let b = self.scn.behaviour.clone();
        for _ in 0..n {
            let ai = r.below(apps.len() as u64) as usize;
            let oi = r.below(nops as u64) as usize;
            let mi = self.live[r.below(self.live.len() as u64) as usize];
            let m = &self.models[mi];
            let input = r.range(b.input_tokens_min, b.input_tokens_max);
            let output = r.range(b.output_tokens_min, b.output_tokens_max);
            let slot = ai * nops + oi;
            let nonce = self.receipt_nonce[slot] + 1;
            let receipt = InferenceReceipt {
                requestHash: primitives::keccak256(format!("request {h} {ai} {nonce}")),
                responseHash: primitives::keccak256(format!("response {h} {ai} {nonce}")),
                modelId: m.id,
                adapterHash: m.adapter,
                inputTokens: input,
                outputTokens: output,
                priceInPer1k: m.price_in,
                priceOutPer1k: m.price_out,
                payer: self.people[apps[ai]].address,
                operator: self.people[self.operators[oi]].address,
                nonce,
                issuedAt: h,
                retrievalHash: B256::ZERO,
            };
            let Some(cost) = primitives::abi::receipt_cost(&receipt) else { continue };
            if cost > self.allowance[slot] {
                continue;
            }
            self.allowance[slot] -= cost;
            self.receipt_nonce[slot] = nonce;
            // The answer's true attribution: contributions drawn by influence.
            let total = *m.cum.last().expect("a live model has creditable contributions");
            let mut picks: Vec<usize> = vec![];
            for _ in 0..b.credits_per_answer * 3 {
                if picks.len() == b.credits_per_answer as usize {
                    break;
                }
                let x = r.below(total);
                let i = m.cum.partition_point(|c| *c <= x);
                if !picks.contains(&i) {
                    picks.push(i);
                }
            }
            picks.sort();
            let wsum: u64 = picks.iter().map(|i| m.creditable[*i].1).sum();
            let mut truth: Vec<Credit> = picks
                .iter()
                .map(|i| Credit {
                    contributionId: m.creditable[*i].0,
                    weightPpm: ((m.creditable[*i].1 as u128 * 1_000_000) / wsum as u128).max(1) as u32,
                })
                .collect();
            let s: u64 = truth.iter().map(|c| c.weightPpm as u64).sum();
            let fix = &mut truth[0].weightPpm;
            *fix = (*fix as i64 + 1_000_000 - s as i64) as u32;
            if self.served[oi].is_empty() {
                self.oldest[oi] = h;
            }
            self.served[oi].push(Served { receipt, truth, model: mi });
        }
    }

    /// Operator `oi` settles up to 256 of its receipts, signed by its serving key.
    fn settle(&mut self, oi: usize, _h: u64) {
        let n = self.served[oi].len().min(runtime::inference::MAX_RECEIPTS);
        let batch: Vec<Served> = self.served[oi].drain(..n).collect();
        if let Some(first) = self.served[oi].first() {
            self.oldest[oi] = first.receipt.issuedAt;
        }
        let op = self.operators[oi];
        let key = &self.serving[&op];
        let signatures: Vec<Bytes> = batch
            .par_iter()
            .map(|s| {
                let hash = primitives::abi::receipt_signing_hash(&s.receipt, CHAIN_ID);
                Bytes::from(key.sign_hash(&hash).as_bytes().to_vec())
            })
            .collect();
        let call = IInferenceCalls::settle(IInference::settleCall {
            receipts: batch.iter().map(|s| s.receipt.clone()).collect(),
            signatures,
        });
        let gas = 100_000 + 60_000 * n as u64;
        self.send(op, INFERENCE, 0, call.abi_encode(), gas, Tag::Settle(oi, batch));
    }

    /// Contributors claim what their approved contributions accrued.
    fn claims(&mut self, _h: u64) -> Result<(), SimError> {
        let min = 300_000u128 * self.chain.base_fee as u128;
        let ids: Vec<(u64, usize)> = self
            .contributions
            .iter()
            .filter(|(_, c)| c.status == Status::Approved)
            .map(|(id, c)| (*id, c.owner))
            .collect();
        for (id, owner) in ids {
            let due = self.chain.view(INFERENCE, IInference::claimableCall { contributionId: id })?;
            if due > min {
                let call = IInferenceCalls::claim(IInference::claimCall { contributionId: id });
                self.send(owner, INFERENCE, 0, call.abi_encode(), 300_000, Tag::Claim(id));
            }
        }
        Ok(())
    }

    fn do_later(&mut self, h: u64, w: Later) -> Result<(), SimError> {
        match w {
            Later::Finalize(rh) => {
                let Some(hold) = self.holds.get(&rh) else { return Ok(()) };
                if hold.state != HoldState::Posted {
                    return Ok(());
                }
                let op = self.operators[hold.op];
                let call =
                    IInferenceCalls::finalizeAttribution(IInference::finalizeAttributionCall { receiptHash: rh });
                self.send(op, INFERENCE, 0, call.abi_encode(), 1_500_000, Tag::Finalize(rh));
            }
            Later::Reveal(rh) => {
                let Some(hold) = self.holds.get(&rh) else { return Ok(()) };
                let op = self.operators[hold.op];
                let call = IAttributionCalls::reveal(IAttribution::revealCall {
                    receiptHash: rh,
                    record: hold.record.clone().into(),
                    prompt: Bytes::from(vec![1, 0, 0, 0, 2, 0, 0, 0]),
                });
                self.send(op, ATTRIBUTION, 0, call.abi_encode(), 500_000, Tag::Reveal(rh));
            }
            Later::Verdict(rh) => {
                let Some(hold) = self.holds.get(&rh) else { return Ok(()) };
                let (challenger, correct) = (hold.challenger, !hold.forged);
                let opened = self.chain.view(ATTRIBUTION, IAttribution::challengeOfCall { receiptHash: rh })?.openedAt;
                // The validators' verifiers recompute the record and sign what they found.
                let d = primitives::abi::verdict_digest(CHAIN_ID, rh, opened, correct);
                let call = IAttributionCalls::submitVerdict(IAttribution::submitVerdictCall {
                    receiptHash: rh,
                    recordCorrect: correct,
                    consensusKeys: self.consensus.iter().map(|k| k.public()).collect(),
                    signatures: self.consensus.iter().map(|k| Bytes::from(k.sign(d.as_slice()).to_vec())).collect(),
                });
                self.send(challenger, ATTRIBUTION, 0, call.abi_encode(), 3_000_000, Tag::Verdict(rh));
            }
            Later::ResolveUnrevealed(rh) => {
                let Some(hold) = self.holds.get(&rh) else { return Ok(()) };
                let call =
                    IAttributionCalls::resolveUnrevealed(IAttribution::resolveUnrevealedCall { receiptHash: rh });
                self.send(hold.challenger, ATTRIBUTION, 0, call.abi_encode(), 3_000_000, Tag::Resolve(rh));
            }
            Later::Votes(id, models, vote_end) => {
                for v in self.role(Role::Validator).into_iter().chain(self.role(Role::Delegator)) {
                    let call = IGovernanceCalls::castVote(IGovernance::castVoteCall { id, support: 1 });
                    self.send(v, GOVERNANCE, 0, call.abi_encode(), 300_000, Tag::Vote);
                }
                let at = (vote_end + self.p.timelock + 2).max(h + 1);
                self.later.entry(at).or_default().push(Later::Execute(id, models));
            }
            Later::Execute(id, models) => {
                let v0 = self.role(Role::Validator)[0];
                let call = IGovernanceCalls::execute(IGovernance::executeCall { id });
                self.send(v0, GOVERNANCE, 0, call.abi_encode(), 3_000_000, Tag::GovExecute(models));
            }
        }
        Ok(())
    }

    /// Build and run the next block from the queue; read what happened.
    fn block(&mut self) -> Result<(), SimError> {
        let n = self.chain.fitting(&self.queue);
        let rest = self.queue.split_off(n);
        let now = std::mem::replace(&mut self.queue, rest);
        if now.is_empty() {
            self.totals.empty_blocks += 1;
        }
        let results = self.chain.block(now, &self.keys)?;
        self.totals.supply_checks += 1;
        let h = self.chain.height;
        for (intent, outcome) in results {
            match outcome {
                Outcome::Dropped(why) => {
                    self.totals.dropped += 1;
                    *self.totals.reverted.entry(format!("dropped: {why}")).or_default() += 1;
                    if let Tag::Settle(_, batch) = intent.tag {
                        self.totals.settle_failures += batch.len() as u64;
                    }
                }
                Outcome::Included(r) => {
                    self.people[intent.from].stats.gas_paid += r.gas_used as u128 * r.effective_gas_price;
                    self.outcome(h, intent.from, intent.tag, r)?;
                }
            }
        }
        Ok(())
    }

    fn revert_reason(r: &Receipt) -> String {
        let d = &r.revert_data;
        if let Ok(e) = primitives::abi::IInference::IInferenceErrors::abi_decode(d) {
            return format!("inference: {e:?}").chars().take(80).collect();
        }
        if let Ok(e) = primitives::abi::IAttribution::IAttributionErrors::abi_decode(d) {
            return format!("attribution: {e:?}").chars().take(80).collect();
        }
        if let Ok(e) = primitives::abi::IDatanets::IDatanetsErrors::abi_decode(d) {
            return format!("datanets: {e:?}").chars().take(80).collect();
        }
        if let Ok(e) = primitives::abi::IGovernance::IGovernanceErrors::abi_decode(d) {
            return format!("governance: {e:?}").chars().take(80).collect();
        }
        if let Ok(e) = primitives::abi::IModels::IModelsErrors::abi_decode(d) {
            return format!("models: {e:?}").chars().take(80).collect();
        }
        format!("0x{}", alloy_primitives::hex::encode(d.get(..4).unwrap_or(d)))
    }

    fn outcome(&mut self, h: u64, from: usize, tag: Tag, r: Receipt) -> Result<(), SimError> {
        if !r.success {
            self.failed(tag, &r);
            return Ok(());
        }
        let logs = &r.logs;
        match tag {
            Tag::Setup | Tag::Other | Tag::Vote | Tag::ProposeModel => {}
            Tag::CreateDatanet(n) => {
                for l in logs {
                    if let Ok(e) = IDatanets::DatanetCreated::decode_log_data(&l.data) {
                        self.datanets[n].id = e.id;
                    }
                }
            }
            Tag::Submit(c) => {
                for l in logs {
                    if let Ok(e) = IDatanets::ContributionSubmitted::decode_log_data(&l.data) {
                        self.datanets[c.datanet].pending.push(e.contributionId);
                        self.contributions.insert(e.contributionId, *c);
                        break;
                    }
                }
            }
            Tag::Review(id, approved) => self.reviewed(h, id, approved, logs),
            Tag::Register(b, m, _refs) => self.registered(b, *m, logs),
            Tag::GovPropose(models) => {
                for l in logs {
                    if let Ok(e) = IGovernance::ProposalCreated::decode_log_data(&l.data) {
                        self.later.entry(e.voteStart.max(h + 1)).or_default().push(Later::Votes(
                            e.id,
                            models.clone(),
                            e.voteEnd,
                        ));
                    }
                }
            }
            Tag::GovExecute(models) => self.executed(h, models),
            Tag::Split(mi) => self.split_done(mi, logs),
            Tag::Settle(oi, batch) => self.settled(h, oi, batch, logs),
            Tag::Post(rh) => self.posted(h, rh)?,
            Tag::Challenge(rh) => {
                self.totals.challenges_opened += 1;
                self.people[from].stats.challenges_opened += 1;
                self.day_mut(h).challenges += 1;
                let forged = self.holds.get(&rh).is_some_and(|h| h.forged);
                if !forged || self.scn.behaviour.forger_reveals {
                    self.later.entry(h + 1).or_default().push(Later::Reveal(rh));
                } else {
                    self.later.entry(h + self.p.reveal + 1).or_default().push(Later::ResolveUnrevealed(rh));
                }
            }
            Tag::Reveal(rh) => {
                self.later.entry(h + 1).or_default().push(Later::Verdict(rh));
            }
            Tag::Verdict(rh) | Tag::Resolve(rh) => self.resolved(rh, logs),
            Tag::Finalize(rh) => {
                if let Some(hd) = self.holds.get_mut(&rh) {
                    hd.state = HoldState::Closed;
                }
                self.money_events(logs);
            }
            Tag::Claim(id) => {
                for l in logs {
                    if let Ok(e) = IInference::Claimed::decode_log_data(&l.data) {
                        let owner = self.contributions[&id].owner;
                        self.people[owner].stats.credits_claimed += e.amount;
                        self.totals.claimed += e.amount;
                    }
                }
            }
        }
        Ok(())
    }

    /// A transaction that reverted: count why, and undo what its sending assumed.
    fn failed(&mut self, tag: Tag, r: &Receipt) {
        *self.totals.reverted.entry(Self::revert_reason(r)).or_default() += 1;
        match tag {
            Tag::Settle(_, batch) => self.totals.settle_failures += batch.len() as u64,
            Tag::Challenge(rh) => {
                self.open_challenges -= 1;
                if let Some(hd) = self.holds.get_mut(&rh) {
                    hd.state = HoldState::Posted;
                }
            }
            Tag::GovExecute(_) => {
                self.totals.proposals_failed += 1;
                self.pending_props -= 1;
            }
            Tag::Review(id, _) => self.datanets[self.contributions[&id].datanet].pending.push(id),
            _ => {}
        }
    }

    /// A contribution reviewed: approved (its rows join the Datanet's index) or rejected.
    fn reviewed(&mut self, h: u64, id: u64, approved: bool, logs: &[alloy_primitives::Log]) {
        let spam = self.people[self.contributions[&id].owner].role == Role::Spammer;
        if approved {
            let mut version = 0;
            for l in logs {
                if let Ok(e) = IDatanets::ContributionApproved::decode_log_data(&l.data) {
                    version = e.version;
                }
            }
            let c = self.contributions.get_mut(&id).expect("reviewed contributions are known");
            c.status = Status::Approved;
            c.version = version;
            let d = c.datanet;
            let owner = c.owner;
            let rows = c.parsed.len() as u64;
            for (i, row) in c.parsed.iter().enumerate() {
                self.datanets[d].index.insert(primitives::rows::RowId { contribution: id, index: i as u32 }, row);
            }
            self.datanets[d].version = version;
            self.datanets[d].approved.push(id);
            let s = &mut self.people[owner].stats;
            s.approved += 1;
            s.rows_approved += rows;
            if spam {
                self.day_mut(h).spam_approved += 1;
            }
        } else {
            let c = self.contributions.get_mut(&id).expect("reviewed contributions are known");
            c.status = Status::Rejected;
            let owner = c.owner;
            for l in logs {
                if let Ok(e) = IDatanets::ContributionRejected::decode_log_data(&l.data) {
                    self.people[owner].stats.bond_slashed += e.slashed.to::<u128>();
                    self.totals.treasury_from_rejections += e.slashed.to::<u128>();
                }
            }
            self.people[owner].stats.rejected += 1;
            if spam {
                self.day_mut(h).spam_rejected += 1;
            }
        }
    }

    /// A model registered: propose it, and have governance vote it live.
    fn registered(&mut self, b: usize, mut m: Model, logs: &[alloy_primitives::Log]) {
        for l in logs {
            if let Ok(e) = IModels::ModelRegistered::decode_log_data(&l.data) {
                m.id = e.id;
            }
        }
        let mi = self.models.len();
        self.models.push(m);
        let id = self.models[mi].id;
        let call = IModelsCalls::propose(IModels::proposeCall { id });
        self.send(b, MODELS, 0, call.abi_encode(), 500_000, Tag::ProposeModel);
        // Governance approves it: the first validator proposes, everyone with stake votes.
        let v0 = self.role(Role::Validator)[0];
        let approve = IModelsCalls::approve(IModels::approveCall { ids: vec![id] }).abi_encode();
        let call = IGovernanceCalls::propose(IGovernance::proposeCall {
            description: format!("make model {id} live"),
            targets: vec![MODELS],
            calldatas: vec![approve.into()],
        });
        let deposit = self.p.deposit;
        self.send(v0, GOVERNANCE, deposit, call.abi_encode(), 2_000_000, Tag::GovPropose(vec![mi]));
        self.pending_props += 1;
    }

    /// A proposal executed: its models are live; builders split their revenue.
    fn executed(&mut self, h: u64, models: Vec<usize>) {
        self.pending_props -= 1;
        for mi in models {
            self.live.push(mi);
            self.totals.models_live += 1;
            let b = &self.scn.behaviour;
            if b.shares_sold_bps > 0 && !self.role(Role::Trader).is_empty() {
                let owner = self.models[mi].owner;
                let call = IAssets::splitCall {
                    assetId: runtime::assets::model_asset(self.models[mi].id),
                    supply: U256::from(1_000_000u64) * U256::from(ONE_OPEN),
                    symbol: format!("M{}", self.models[mi].id),
                };
                self.send(owner, ASSETS, 0, call.abi_encode(), 1_000_000, Tag::Split(mi));
            }
        }
        self.day_mut(h).live_models = self.live.len() as u64;
    }

    /// A model split: traders buy the sold shares.
    fn split_done(&mut self, mi: usize, logs: &[alloy_primitives::Log]) {
        for l in logs {
            if let Ok(e) = IAssets::Split::decode_log_data(&l.data) {
                self.models[mi].share_token = Some(e.shareToken);
            }
        }
        // Traders buy the sold share, 1% lots, paying the builder through the bank.
        let Some(token) = self.models[mi].share_token else { return };
        let owner = self.models[mi].owner;
        let traders = self.role(Role::Trader);
        let lots = (self.scn.behaviour.shares_sold_bps / 100) as usize;
        let price = self.scn.behaviour.share_price_micro_open_per_pct as u128 * MICRO;
        let mut r = self.rng.fork(0x4000_0000 + mi as u64);
        for _ in 0..lots {
            let t = traders[r.below(traders.len() as u64) as usize];
            let pay = IBank::transferCall { to: self.people[owner].address, amount: U256::from(price) };
            self.send(t, BANK, 0, pay.abi_encode(), 200_000, Tag::Other);
            let give = IShareToken::transferCall {
                to: self.people[t].address,
                value: U256::from(10_000u64) * U256::from(ONE_OPEN),
            };
            self.send(owner, token, 0, give.abi_encode(), 300_000, Tag::Other);
        }
    }

    /// Receipts settled: count them, and post each one's record (true, or forged).
    fn settled(&mut self, h: u64, oi: usize, batch: Vec<Served>, logs: &[alloy_primitives::Log]) {
        let mut by_hash: HashMap<B256, (u128, u128)> = HashMap::new();
        for l in logs {
            if let Ok(e) = IInference::ReceiptSettled::decode_log_data(&l.data) {
                by_hash.insert(e.receiptHash, (e.cost, e.dataShare));
            }
        }
        let op = self.operators[oi];
        let sybil = self.sybil_of.get(&op).copied();
        let forge_bps = self.scn.behaviour.forge_bps;
        let mut r = self.rng.fork(0x5000_0000 + h * 7 + oi as u64);
        let apps = self.role(Role::App);
        for s in batch {
            let rh = primitives::abi::receipt_hash(&s.receipt);
            let Some((cost, data)) = by_hash.get(&rh).copied() else { continue };
            self.totals.receipts_settled += 1;
            self.totals.settled_cost += cost;
            self.totals.data_held += data;
            let parts: u128 = self.p.split.iter().map(|bps| cost * bps / 10_000).sum();
            self.totals.treasury_from_inference += cost - parts;
            let ai = apps.iter().position(|a| self.people[*a].address == s.receipt.payer).unwrap_or(0);
            let st = &mut self.people[apps[ai]].stats;
            st.inferences_paid += 1;
            st.inference_spend += cost;
            self.people[op].stats.receipts_served += 1;
            let day = self.day_mut(h);
            day.inferences += 1;
            day.spend += cost;
            if data == 0 {
                continue;
            }
            // The record it posts: the truth, or (a forger) its own contributions.
            let mut credits = s.truth.clone();
            let mut forged = false;
            if let Some(sy) = sybil
                && r.chance(forge_bps)
            {
                let own: Vec<u64> = self.models[s.model]
                    .creditable
                    .iter()
                    .map(|(id, _)| *id)
                    .filter(|id| self.contributions[id].owner == sy)
                    .collect();
                if let Some(id) = own.first()
                    && credits != vec![Credit { contributionId: *id, weightPpm: 1_000_000 }]
                {
                    credits = vec![Credit { contributionId: *id, weightPpm: 1_000_000 }];
                    forged = true;
                }
            }
            let record = record_bytes(&rh, &credits);
            let call = IInferenceCalls::postAttribution(IInference::postAttributionCall {
                receiptHash: rh,
                recordHash: primitives::content_hash(&record),
                credits: credits.clone(),
            });
            self.send(op, INFERENCE, 0, call.abi_encode(), 400_000 + 40_000 * credits.len() as u64, Tag::Post(rh));
            self.holds.insert(
                rh,
                Hold { op: oi, truth: s.truth, posted_at: 0, record, forged, state: HoldState::Open, challenger: 0 },
            );
        }
    }

    /// A record posted: schedule its finalization; a watcher may audit and challenge it.
    fn posted(&mut self, h: u64, rh: B256) -> Result<(), SimError> {
        self.later.entry(h + self.p.window).or_default().push(Later::Finalize(rh));
        let audit = self.scn.behaviour.audit_bps;
        let mut r = self.rng.fork(0x6000_0000 ^ u64::from_be_bytes(rh.0[..8].try_into().expect("8 bytes")));
        let x = r.below(1 << 32);
        let hold = self.holds.get_mut(&rh).expect("posted holds are known");
        hold.state = HoldState::Posted;
        hold.posted_at = h;
        let forged = hold.forged;
        let op = hold.op;
        if forged {
            self.totals.forged_records += 1;
            self.people[self.operators[op]].stats.records_forged += 1;
        }
        // A watcher recomputes a share of records and flags one that differs (or, a false
        // alarm, an honest one: recomputation matches only within a tolerance). It
        // challenges when the expected reward beats the expected loss of the bond.
        let b = &self.scn.behaviour;
        let audited = (x % 10_000) < audit as u64;
        let false_alarm = !forged && r.chance(b.false_alarm_bps);
        if audited && (forged || false_alarm) {
            let validators = self.role(Role::Validator);
            let w = validators[(x as usize / 7) % validators.len()];
            let bond = runtime::attribution::required_bond(self.p.challenge_bond, self.open_challenges);
            let operator = self.people[self.operators[op]].address;
            let info = self.chain.view(STAKING, IStaking::operatorInfoCall { operator })?;
            let reward = info.selfBond.to::<u128>() * self.p.slash_ppm / 1_000_000 * self.p.reporter_bps / 10_000;
            // Precision from every resolved challenge so far, with a prior of
            // `watcher_prior_precision_bps` worth ten challenges.
            let t = &self.totals;
            let won = (t.challenges_upheld + t.challenges_defaulted) as u128;
            let lost = t.challenges_rejected as u128;
            let prior = b.watcher_prior_precision_bps as u128;
            let precision_bps = (won * 10_000 + prior * 10) / (won + lost + 10);
            let worth = precision_bps * reward > (10_000 - precision_bps) * bond;
            if !worth {
                self.totals.challenges_declined += 1;
                if forged {
                    self.totals.forged_unchallenged += 1;
                }
            } else if self.chain.balance(&self.people[w].address) < bond + ONE_OPEN {
                self.totals.challenges_unaffordable += 1;
                if forged {
                    self.totals.forged_unchallenged += 1;
                }
            } else {
                if false_alarm {
                    self.totals.false_alarms += 1;
                }
                self.open_challenges += 1;
                let hold = self.holds.get_mut(&rh).expect("known");
                hold.state = HoldState::Challenged;
                hold.challenger = w;
                let call = IAttributionCalls::challenge(IAttribution::challengeCall {
                    receiptHash: rh,
                    challengerRecordHash: primitives::content_hash(&record_bytes(&rh, &hold.truth)),
                });
                self.send(w, ATTRIBUTION, bond, call.abi_encode(), 1_000_000, Tag::Challenge(rh));
            }
        } else if forged {
            self.totals.forged_unchallenged += 1;
        }
        Ok(())
    }

    fn money_events(&mut self, logs: &[alloy_primitives::Log]) {
        for l in logs {
            if let Ok(e) = IInference::AttributionFinalized::decode_log_data(&l.data) {
                self.totals.credited += e.credited;
                self.totals.dust += e.dust;
            } else if let Ok(e) = IInference::FallbackPaid::decode_log_data(&l.data) {
                self.totals.fallback += e.amount;
            } else if let Ok(e) = IInference::CreditForfeited::decode_log_data(&l.data) {
                self.totals.forfeited += e.amount;
            }
        }
    }

    fn resolved(&mut self, rh: B256, logs: &[alloy_primitives::Log]) {
        self.money_events(logs);
        for l in logs {
            if let Ok(e) = IAttribution::ChallengeResolved::decode_log_data(&l.data) {
                self.open_challenges -= 1;
                let hold = self.holds.get_mut(&rh).expect("challenged holds are known");
                let (op, challenger) = (self.operators[hold.op], hold.challenger);
                match e.status {
                    runtime::attribution::UPHELD | runtime::attribution::DEFAULTED => {
                        hold.state = HoldState::Closed;
                        if e.status == runtime::attribution::UPHELD {
                            self.totals.challenges_upheld += 1;
                        } else {
                            self.totals.challenges_defaulted += 1;
                        }
                        self.people[challenger].stats.challenges_won += 1;
                        self.people[op].stats.stake_slashed += e.slashed.to::<u128>();
                    }
                    runtime::attribution::REJECTED => {
                        hold.state = HoldState::Posted;
                        self.totals.challenges_rejected += 1;
                        self.people[challenger].stats.challenges_lost += 1;
                        // If the window passed while it was challenged, finalize now (else
                        // the finalization scheduled at posting still comes).
                        let due = hold.posted_at + self.p.window;
                        if self.chain.height + 1 > due {
                            self.later.entry(self.chain.height + 1).or_default().push(Later::Finalize(rh));
                        }
                    }
                    _ => {
                        hold.state = HoldState::Closed;
                        self.totals.challenges_lapsed += 1;
                    }
                }
            }
        }
    }

    /// After activity: everyone claims what is due (credits, share earnings).
    fn final_claims(&mut self) -> Result<(), SimError> {
        self.claims(0)?;
        let mut holders: Vec<(usize, Address)> = vec![];
        for m in &self.models {
            if let Some(t) = m.share_token {
                holders.push((m.owner, t));
                for tr in self.role(Role::Trader) {
                    holders.push((tr, t));
                }
            }
        }
        for (who, token) in holders {
            let earned = self.chain.view(token, IShareToken::earnedCall { holder: self.people[who].address })?;
            if earned > U256::from(300_000u128 * self.chain.base_fee as u128) {
                self.people[who].stats.share_earnings += earned.to::<u128>();
                self.send(who, token, 0, IShareToken::claimCall {}.abi_encode(), 500_000, Tag::Other);
            }
        }
        Ok(())
    }

    /// Everyone's net position: balance, stake and pending rewards, credits
    /// not yet claimed, bonds still held, share earnings not claimed.
    fn settle_accounts(&mut self) -> Result<(), SimError> {
        while !self.queue.is_empty() {
            self.block()?;
        }
        let validators = self.role(Role::Validator);
        let mut staked: Vec<u128> = self.people.iter().map(|_| 0).collect();
        for v in &validators {
            let va = self.people[*v].address;
            let s = self.chain.view(STAKING, IStaking::stakeOfCall { operator: va, account: va })?;
            staked[*v] += s.amount.to::<u128>() + s.pendingRewards.to::<u128>();
        }
        for d in self.role(Role::Delegator) {
            for v in &validators {
                let va = self.people[*v].address;
                let s = self
                    .chain
                    .view(STAKING, IStaking::stakeOfCall { operator: va, account: self.people[d].address })?;
                staked[d] += s.amount.to::<u128>() + s.pendingRewards.to::<u128>();
            }
        }
        for o in self.operators.clone() {
            let oa = self.people[o].address;
            let s = self.chain.view(STAKING, IStaking::stakeOfCall { operator: oa, account: oa })?;
            staked[o] += s.amount.to::<u128>() + s.pendingRewards.to::<u128>();
        }
        let mut extra: Vec<u128> = self.people.iter().map(|_| 0).collect();
        for (id, c) in &self.contributions {
            match c.status {
                Status::Pending => extra[c.owner] += c.bond,
                Status::Approved => {
                    let due = self.chain.view(INFERENCE, IInference::claimableCall { contributionId: *id })?;
                    extra[c.owner] += due;
                    self.people[c.owner].stats.credits_unclaimed += due;
                }
                Status::Rejected => {}
            }
        }
        for m in &self.models {
            if let Some(t) = m.share_token {
                for who in std::iter::once(m.owner).chain(self.role(Role::Trader)) {
                    extra[who] +=
                        self.chain.view(t, IShareToken::earnedCall { holder: self.people[who].address })?.to::<u128>();
                }
            }
        }
        for (i, p) in self.people.iter_mut().enumerate() {
            let now = self.chain.balance(&p.address) + staked[i] + extra[i];
            p.net = now as i128 - p.initial as i128;
        }
        for (ai, a) in self.role(Role::App).into_iter().enumerate() {
            let _ = ai;
            let escrow = self.chain.view(INFERENCE, IInference::escrowOfCall { payer: self.people[a].address })?;
            let mut left = escrow;
            for o in &self.operators {
                let al = self.chain.view(
                    INFERENCE,
                    IInference::allowanceCall { payer: self.people[a].address, operator: self.people[*o].address },
                )?;
                left += al.remaining + al.pendingRelease;
            }
            let deposit = self.people[a].initial * 9 / 10;
            self.totals.escrow_spent += deposit - left;
            self.people[a].net += left as i128;
        }
        self.stake_final = validators
            .iter()
            .map(|v| {
                let info = self.chain.view(STAKING, IStaking::operatorInfoCall { operator: self.people[*v].address });
                (*v, info.map(|i| (i.selfBond + i.delegated).to::<u128>()).unwrap_or(0))
            })
            .collect();
        let s = runtime::supply_report(&self.chain.mem).map_err(|e| SimError::Runtime(e.0))?;
        self.totals.issued = s.issued.0;
        self.totals.burned = s.burned.0;
        self.totals.treasury_end = s.treasury.0;
        self.totals.blocks = self.chain.blocks;
        self.totals.txs = self.chain.txs;
        self.totals.open_holds_at_end = self.holds.values().filter(|h| h.state != HoldState::Closed).count() as u64;
        Ok(())
    }

    /// Validators' final stake (self bond plus delegations).
    pub fn stakes(&self) -> &[(usize, u128)] {
        &self.stake_final
    }
}
