//! `gov ...`: propose, vote, show, list, execute, cancel and wait for proposals.
//!
//! A proposal is a description plus calls to system contracts, run with the
//! governance address as sender once it passed and its timelock is over. The
//! calls are built from `--set-param NAME=VALUE` (params.set), `--call
//! "MODULE.FUNCTION ARG ..."` (any function of the system contracts' interfaces,
//! with arguments of any ABI type: see `contract::args`) and `--raw
//! ADDRESS:0xCALLDATA`, in that order.

use std::time::{Duration, Instant};

use alloy_sol_types::SolCall;
use anyhow::{anyhow, bail};
use primitives::abi::{IGovernance, IParams, IStaking};
use primitives::system::Module;
use primitives::{Address, Amount, U256};
use runtime::governance::state_name;
use serde_json::{Value, json};

use super::RpcArgs;
use super::keys::SignerArgs;
use crate::contract::{Sent, abi, args, head, send_call, view};
use crate::output::{Out, open};

const GOVERNANCE: Address = Module::Governance.address();
const PARAMS: Address = Module::Params.address();

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Support {
    For,
    Against,
    Abstain,
    /// Against, and burns the deposit if vetoes pass the veto threshold.
    Veto,
}

impl Support {
    fn id(self) -> u8 {
        match self {
            Support::Against => 0,
            Support::For => 1,
            Support::Abstain => 2,
            Support::Veto => 3,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Support::Against => "against",
            Support::For => "for",
            Support::Abstain => "abstain",
            Support::Veto => "veto",
        }
    }
}

/// The proposal states by id (see `IGovernance.proposal`).
const STATES: [&str; 9] =
    ["pending", "active", "canceled", "defeated", "succeeded", "queued", "expired", "executed", "vetoed"];

fn parse_state(s: &str) -> Result<u8, String> {
    STATES
        .iter()
        .position(|n| *n == s)
        .map(|i| i as u8)
        .ok_or_else(|| format!("unknown state {s:?}; one of: {}", STATES.join(", ")))
}

#[derive(clap::Subcommand, Debug)]
pub enum GovCmd {
    /// Submit a proposal (sends the deposit `proposalDeposit()` requires now: governance.deposit, doubled per 8 open proposals).
    Propose {
        /// What the proposal does and why (may be the whole proposal, with no calls).
        #[arg(long)]
        description: String,
        /// A parameter change: NAME=VALUE (base units, or an amount like 10OPEN). Repeatable.
        #[arg(long = "set-param", value_name = "NAME=VALUE")]
        set_param: Vec<String>,
        /// A call: "MODULE.FUNCTION ARG ...", e.g. "governance.spendTreasury 0xAbc… 1OPEN" or
        /// "staking.slash 0xOp… 100000 5 'double sign' 0xReporter…". Arrays are written
        /// [a,b], structs (a,b); quote an argument with spaces inside. Repeatable.
        #[arg(long = "call", value_name = "MODULE.FUNCTION ARGS")]
        call: Vec<String>,
        /// A call given as raw calldata to a system contract. Repeatable.
        #[arg(long, value_name = "ADDRESS:0xCALLDATA")]
        raw: Vec<String>,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Vote on a proposal with your voting power at its snapshot.
    Vote {
        id: u64,
        #[arg(value_enum)]
        support: Support,
        /// Refuse at once if voting has not opened yet, instead of waiting for its first block.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// A proposal: state, voting window, eta, tallies, deposit and calls.
    Show {
        id: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Every proposal with its state and description.
    List {
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Execute a queued proposal whose timelock is over.
    Execute {
        id: u64,
        /// Refuse at once if the timelock has not expired yet, instead of waiting for it.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Cancel your proposal before its vote starts (returns the deposit).
    Cancel {
        id: u64,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Wait until a proposal reaches a state (fails early if it no longer can).
    Wait {
        id: u64,
        /// pending, active, canceled, defeated, succeeded, queued, expired, executed or vetoed.
        #[arg(long, value_parser = parse_state)]
        state: u8,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Send one call to a system contract directly, not through a proposal.
    ///
    /// Same "MODULE.FUNCTION ARG ..." syntax as `propose --call`. Privileged
    /// functions (params.set, staking.slash, governance.spendTreasury) refuse
    /// it with Unauthorized: they take calls from governance only.
    Call {
        /// "MODULE.FUNCTION ARG ...", e.g. "staking.rotateServingKey 0xAbc…".
        call: String,
        /// Value to send with the call.
        #[arg(long, default_value = "0")]
        value: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

fn gov_call(signer: &SignerArgs, rpc: &RpcArgs, value: Amount, call: impl SolCall, what: &str) -> anyhow::Result<Sent> {
    send_call(signer, rpc, GOVERNANCE, value, call.abi_encode(), what)
}

/// Whether a proposal in state `from` can still reach state `to`.
fn reachable(from: u8, to: u8) -> bool {
    use runtime::governance::*;
    match from {
        PENDING => to != PENDING,
        ACTIVE => !matches!(to, PENDING | ACTIVE | CANCELED),
        SUCCEEDED => matches!(to, QUEUED | EXECUTED | EXPIRED),
        QUEUED => matches!(to, EXECUTED | EXPIRED),
        _ => false,
    }
}

/// The calls of a proposal from the command line: (target, calldata, description).
fn build_calls(
    c: &mut rpc::client::RpcClient,
    set_param: &[String],
    calls: &[String],
    raw: &[String],
) -> anyhow::Result<Vec<(Address, Vec<u8>, String)>> {
    let mut out = Vec::new();
    if !set_param.is_empty() {
        let names = view(c, PARAMS, &IParams::namesCall {})?;
        for p in set_param {
            let (name, value) = p.split_once('=').ok_or_else(|| anyhow!("--set-param {p:?}: write NAME=VALUE"))?;
            let (name, value) = (name.trim(), value.trim());
            if !names.iter().any(|n| n == name) {
                bail!("--set-param: no parameter {name:?}; the parameters are:\n  {}", names.join("\n  "));
            }
            let v = args::parse_uint(value)?;
            if let Some(spec) = runtime::params::spec(name) {
                let ok = u128::try_from(v).is_ok_and(|x| x >= spec.min && x <= spec.max);
                if !ok {
                    bail!("--set-param {name}={v}: outside the allowed range [{}, {}]", spec.min, spec.max);
                }
            }
            let data = IParams::setCall { name: name.to_string(), value: v }.abi_encode();
            out.push((PARAMS, data, format!("params.set({name:?}, {v})")));
        }
    }
    for text in calls {
        let (to, data, _) = abi::encode_call_text(text).map_err(|e| anyhow!("--call {text:?}: {e}"))?;
        let shown = abi::describe_call(&to, &data);
        out.push((to, data, shown));
    }
    for r in raw {
        let (a, d) = r.split_once(':').ok_or_else(|| anyhow!("--raw {r:?}: write ADDRESS:0xCALLDATA"))?;
        let to = match Module::from_name(a) {
            Some(m) => m.address(),
            None => a.parse::<Address>().map_err(|_| anyhow!("--raw {r:?}: {a:?} is not an address"))?,
        };
        let data = hex::decode(d.trim().trim_start_matches("0x")).map_err(|_| anyhow!("--raw {r:?}: bad hex"))?;
        let shown = abi::describe_call(&to, &data);
        out.push((to, data, shown));
    }
    Ok(out)
}

fn proposal_json(id: u64, p: &IGovernance::proposalReturn) -> Value {
    json!({
        "id": id,
        "proposer": p.proposer,
        "state": state_name(p.state),
        "stateId": p.state,
        "voteStart": p.voteStart,
        "voteEnd": p.voteEnd,
        "eta": p.eta,
        "forVotes": p.forVotes.to_string(),
        "againstVotes": p.againstVotes.to_string(),
        "abstainVotes": p.abstainVotes.to_string(),
        "vetoVotes": p.vetoVotes.to_string(),
        "deposit": p.deposit.to_string(),
        "description": p.description,
    })
}

pub fn run(c: GovCmd, out: Out) -> anyhow::Result<()> {
    match c {
        GovCmd::Propose { description, set_param, call, raw, signer, rpc } => {
            let p = propose(&description, &set_param, &call, &raw, &signer, &rpc)?;
            let Proposed { sent, id, vote_start: start, vote_end: end, deposit, calls } = &p;
            out.print(
                || {
                    let mut s = format!(
                        "{}\nproposal {id} created, deposit {}; voting from block {} to {}",
                        sent.human("propose"),
                        open(*deposit),
                        start.map(|x| x.to_string()).unwrap_or("?".into()),
                        end.map(|x| x.to_string()).unwrap_or("?".into())
                    );
                    for (i, c) in calls.iter().enumerate() {
                        s += &format!("\n  call {i}: {}", c.2);
                    }
                    s
                },
                sent.json(json!({
                    "id": id,
                    "voteStart": start,
                    "voteEnd": end,
                    "deposit": deposit.to_string(),
                    "calls": calls.iter().map(|c| json!({"target": c.0, "calldata": format!("0x{}", hex::encode(&c.1)), "call": c.2})).collect::<Vec<_>>(),
                })),
            );
        }
        GovCmd::Vote { id, support, no_wait, signer, rpc } => {
            let (sent, weight) = vote(id, support, no_wait, &signer, &rpc)?;
            out.print(
                || format!("{}\nvoted {} on proposal {id} with {}", sent.human("vote"), support.name(), open(weight)),
                sent.json(json!({"id": id, "support": support.name(), "weight": weight.to_string()})),
            );
        }
        GovCmd::Show { id, rpc } => show(id, &rpc, out)?,
        GovCmd::List { rpc } => {
            let mut c = rpc.client();
            let count = view(&mut c, GOVERNANCE, &IGovernance::proposalCountCall {})?;
            let mut rows = Vec::new();
            for id in 1..=count {
                let p = view(&mut c, GOVERNANCE, &IGovernance::proposalCall { id })?;
                rows.push((id, p));
            }
            out.print(
                || {
                    if rows.is_empty() {
                        return "no proposals".into();
                    }
                    rows.iter()
                        .map(|(id, p)| {
                            format!(
                                "{id:>4}  {:<9}  {}",
                                state_name(p.state),
                                p.description.lines().next().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
                json!(rows.iter().map(|(id, p)| proposal_json(*id, p)).collect::<Vec<_>>()),
            );
        }
        GovCmd::Execute { id, no_wait, signer, rpc } => {
            let sent = execute(id, no_wait, &signer, &rpc)?;
            let logs = sent.receipt.inner.logs().len();
            out.print(
                || format!("{}\nproposal {id} executed ({logs} logs)", sent.human("execute")),
                sent.json(json!({"id": id, "logs": logs})),
            );
        }
        GovCmd::Cancel { id, signer, rpc } => {
            let sent = gov_call(&signer, &rpc, Amount::ZERO, IGovernance::cancelCall { id }, "cancel")?;
            out.print(
                || format!("{}\nproposal {id} canceled; deposit returned", sent.human("cancel")),
                sent.json(json!({"id": id})),
            );
        }
        GovCmd::Wait { id, state, timeout, rpc } => wait(id, state, timeout, &rpc, out)?,
        GovCmd::Call { call, value, signer, rpc } => {
            let (to, data, sig) = abi::encode_call_text(&call)?;
            let shown = abi::describe_call(&to, &data);
            let module = Module::from_address(&to).map(|m| m.name()).unwrap_or("?");
            let what = format!("{module}.{}", sig.split('(').next().unwrap_or(sig));
            let sent = send_call(&signer, &rpc, to, value, data, &what)?;
            out.print(|| format!("{}\n{shown}", sent.human(&what)), sent.json(json!({"to": to, "call": shown})));
        }
    }
    Ok(())
}

/// A proposal just created.
pub struct Proposed {
    pub sent: Sent,
    pub id: u64,
    pub vote_start: Option<u64>,
    pub vote_end: Option<u64>,
    pub deposit: U256,
    /// (target, calldata, description) of each call.
    pub calls: Vec<(Address, Vec<u8>, String)>,
}

/// `gov propose`: build the calls, pay the deposit, create the proposal.
pub fn propose(
    description: &str,
    set_param: &[String],
    call: &[String],
    raw: &[String],
    signer: &SignerArgs,
    rpc: &RpcArgs,
) -> anyhow::Result<Proposed> {
    let mut client = rpc.client();
    let calls = build_calls(&mut client, set_param, call, raw)?;
    let deposit = view(&mut client, GOVERNANCE, &IGovernance::proposalDepositCall {})?;
    let deposit_amt = Amount::from_u256(deposit).map_err(|_| anyhow!("deposit {deposit} overflows"))?;
    let p = IGovernance::proposeCall {
        description: description.to_string(),
        targets: calls.iter().map(|c| c.0).collect(),
        calldatas: calls.iter().map(|c| c.1.clone().into()).collect(),
    };
    let sent = gov_call(signer, rpc, deposit_amt, p, "propose")?;
    let (id, vote_start, vote_end) = match sent.event::<IGovernance::ProposalCreated>(GOVERNANCE) {
        Some(e) => (e.id, Some(e.voteStart), Some(e.voteEnd)),
        None => (view(&mut client, GOVERNANCE, &IGovernance::proposalCountCall {})?, None, None),
    };
    Ok(Proposed { sent, id, vote_start, vote_end, deposit, calls })
}

/// `gov vote` (waiting for the voting period's first block unless `no_wait`): the vote's weight.
pub fn vote(
    id: u64,
    support: Support,
    no_wait: bool,
    signer: &SignerArgs,
    rpc: &RpcArgs,
) -> anyhow::Result<(Sent, U256)> {
    if !no_wait {
        wait_for_voting(id, rpc)?;
    }
    let sent = gov_call(signer, rpc, Amount::ZERO, IGovernance::castVoteCall { id, support: support.id() }, "vote")?;
    let weight = sent.event::<IGovernance::VoteCast>(GOVERNANCE).map(|e| e.weight).unwrap_or_default();
    Ok((sent, weight))
}

/// `gov execute` (waiting for a queued proposal's timelock unless `no_wait`).
pub fn execute(id: u64, no_wait: bool, signer: &SignerArgs, rpc: &RpcArgs) -> anyhow::Result<Sent> {
    if !no_wait {
        wait_for_eta(id, rpc)?;
    }
    gov_call(signer, rpc, Amount::ZERO, IGovernance::executeCall { id }, "execute")
}

/// A proposal's record.
pub fn proposal(id: u64, rpc: &RpcArgs) -> anyhow::Result<IGovernance::proposalReturn> {
    view(&mut rpc.client(), GOVERNANCE, &IGovernance::proposalCall { id })
}

/// `gov show`.
fn show(id: u64, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let now = head(&mut c)?;
    let p = view(&mut c, GOVERNANCE, &IGovernance::proposalCall { id })?;
    let calls = view(&mut c, GOVERNANCE, &IGovernance::proposalCallsCall { id })?;
    // The snapshot's total power, once the snapshot block exists.
    let snapshot = p.voteStart.saturating_sub(1);
    let total = if now >= snapshot {
        Some(view(&mut c, Module::Staking.address(), &IStaking::totalVotingPowerAtCall { height: snapshot })?)
    } else {
        None
    };
    let described: Vec<(Address, String, String)> = calls
        .targets
        .iter()
        .zip(&calls.calldatas)
        .map(|(t, d)| (*t, format!("0x{}", hex::encode(d)), abi::describe_call(t, d)))
        .collect();
    let mut v = proposal_json(id, &p);
    v["head"] = json!(now);
    v["snapshotBlock"] = json!(snapshot);
    v["totalPowerAtSnapshot"] = json!(total.map(|t| t.to_string()));
    v["calls"] =
        json!(described.iter().map(|(t, d, s)| json!({"target": t, "calldata": d, "call": s})).collect::<Vec<_>>());
    out.print(
        || {
            let votes = p.forVotes + p.againstVotes + p.abstainVotes + p.vetoVotes;
            let mut s = format!(
                "proposal {id}: {}\nstate      {}\nproposer   {}\nvoting     blocks {} to {} (snapshot after block {snapshot}; head {now})\n",
                p.description,
                state_name(p.state),
                p.proposer.to_checksum(None),
                p.voteStart,
                p.voteEnd,
            );
            if p.eta != 0 {
                s += &format!("eta        block {}\n", p.eta);
            }
            s += &format!(
                "votes      for {}, against {}, abstain {}, veto {}\n",
                open(p.forVotes),
                open(p.againstVotes),
                open(p.abstainVotes),
                open(p.vetoVotes)
            );
            if let Some(t) = total.filter(|t| !t.is_zero()) {
                let pct = (votes * U256::from(10_000u32) / t).to::<u64>() as f64 / 100.0;
                s += &format!("turnout    {pct:.2}% of {}\n", open(t));
            }
            s += &format!("deposit    {}\ncalls:", open(p.deposit));
            if described.is_empty() {
                s += " none (text only)";
            }
            for (i, (_, _, d)) in described.iter().enumerate() {
                s += &format!("\n  {i}: {d}");
            }
            s
        },
        v.clone(),
    );
    Ok(())
}

/// Wait (saying so on stderr) until the next block is at least `block`, so
/// that a transaction sent now lands there: a command the README runs right
/// after the one before it waits for its block instead of failing. Bounded:
/// gives up when the chain stops producing blocks.
fn wait_for_next_block(c: &mut rpc::client::RpcClient, block: u64, why: &str) -> anyhow::Result<()> {
    let mut now = head(c)?;
    if now + 1 >= block {
        return Ok(());
    }
    eprintln!("{why} at block {block} (head {now}); waiting…");
    let mut deadline = Instant::now() + Duration::from_secs(60);
    let mut advanced = Instant::now();
    while now + 1 < block {
        if Instant::now() >= deadline {
            bail!("no new block for 60 s while waiting for block {block} (head {now}): is the node producing blocks?");
        }
        if advanced.elapsed() >= IDLE_BEFORE_MINING {
            mine_if_idle(c, block - 1 - now);
            advanced = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
        let h = head(c)?;
        if h > now {
            deadline = Instant::now() + Duration::from_secs(60);
            advanced = Instant::now();
        }
        now = h;
    }
    Ok(())
}

/// How long a wait for blocks lets the chain be idle before it seals blocks
/// itself on a dev node (longer than `up`'s block time, so a node that
/// produces blocks on its own is never pushed).
const IDLE_BEFORE_MINING: Duration = Duration::from_millis(1500);

/// On a dev node that seals only when transactions are pending (`up
/// --instant`), seal `n` empty blocks (at most 256) with `anvil_mine`, as a
/// Hardhat or Anvil script would; a node without it (a network node, or not a
/// dev chain) refuses, and the caller keeps waiting.
fn mine_if_idle(c: &mut rpc::client::RpcClient, n: u64) {
    let n = n.clamp(1, 256);
    if c.call("anvil_mine", json!([format!("{n:#x}")])).is_ok() {
        eprintln!("the dev node was idle: sealed {n} empty block{}", if n == 1 { "" } else { "s" });
    }
}

/// Before a vote: wait for the voting period's first block.
fn wait_for_voting(id: u64, rpc: &RpcArgs) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let p = view(&mut c, GOVERNANCE, &IGovernance::proposalCall { id })?;
    wait_for_next_block(&mut c, p.voteStart, &format!("proposal {id}: voting opens"))
}

/// Before an execution: wait for a queued proposal's timelock to expire.
fn wait_for_eta(id: u64, rpc: &RpcArgs) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let p = view(&mut c, GOVERNANCE, &IGovernance::proposalCall { id })?;
    if p.state != runtime::governance::QUEUED {
        return Ok(()); // the execution's own refusal says why
    }
    wait_for_next_block(&mut c, p.eta, &format!("proposal {id}: its timelock ends"))
}

/// `gov wait`.
fn wait(id: u64, state: u8, timeout: u64, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let (mut last, mut advanced) = (head(&mut c)?, Instant::now());
    loop {
        let p = view(&mut c, GOVERNANCE, &IGovernance::proposalCall { id })?;
        let now = head(&mut c)?;
        if now > last {
            (last, advanced) = (now, Instant::now());
        } else if advanced.elapsed() >= IDLE_BEFORE_MINING {
            mine_if_idle(&mut c, 1);
            advanced = Instant::now();
        }
        if p.state == state {
            out.print(
                || format!("proposal {id} is {} (head {now})", state_name(state)),
                json!({"id": id, "state": state_name(state), "head": now, "eta": p.eta}),
            );
            break;
        }
        if !reachable(p.state, state) {
            bail!("proposal {id} is {} and can no longer become {}", state_name(p.state), state_name(state));
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out after {timeout}s: proposal {id} is still {} at head {now} (waiting for {}; voting ends at block {})",
                state_name(p.state),
                state_name(state),
                p.voteEnd
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}
