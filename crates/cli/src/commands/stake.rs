//! `stake ...`: register operators, bond and delegate, unbond and withdraw,
//! rewards, and the staking views.

use std::path::PathBuf;

use alloy_sol_types::{SolCall, SolEvent};
use anyhow::bail;
use primitives::abi::IStaking;
use primitives::system::Module;
use primitives::{Address, Amount, B256, U256};
use rpc::client::RpcClient;
use rpc::types::Filter;
use serde_json::{Value, json};

use super::RpcArgs;
use super::keys::SignerArgs;
use crate::contract::{Sent, head, log_events, send_call, signer_address, view};
use crate::output::{Out, open};

const STAKING: Address = Module::Staking.address();

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Produces blocks and signs verdicts (needs a consensus key).
    Validator,
    /// Serves models and signs receipts (needs a serving key).
    Serving,
}

impl Role {
    fn id(self) -> u8 {
        match self {
            Role::Validator => runtime::staking::ROLE_VALIDATOR,
            Role::Serving => runtime::staking::ROLE_SERVING,
        }
    }
}

/// Name of a staking role id.
pub fn role_name(role: u8) -> &'static str {
    match role {
        runtime::staking::ROLE_VALIDATOR => "validator",
        runtime::staking::ROLE_SERVING => "serving",
        _ => "unknown",
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    /// Stakers of validators.
    Validators,
    /// Stakers of serving operators.
    Serving,
}

impl Pool {
    fn name(self) -> &'static str {
        match self {
            Pool::Validators => "validators",
            Pool::Serving => "serving",
        }
    }
}

/// The arguments of `stake register`.
#[derive(clap::Args, Debug)]
pub struct RegisterArgs {
    #[command(flatten)]
    signer: SignerArgs,
    #[arg(long, value_enum)]
    role: Role,
    /// Self bond: OPEN ("1000") or base units ("123wei").
    #[arg(long)]
    bond: Amount,
    /// The validator's ed25519 consensus public key (32 bytes of hex).
    #[arg(long, conflicts_with = "node_key_dir")]
    consensus_key: Option<B256>,
    /// Take the consensus key and the serving key from this node keys directory
    /// (see `openledger keys node`); --serving-key still overrides the latter.
    #[arg(long)]
    node_key_dir: Option<PathBuf>,
    /// Address of the key that signs the operator's receipts.
    #[arg(long)]
    serving_key: Option<Address>,
    /// Commission on delegators' rewards, in basis points (500 = 5%).
    #[arg(long, default_value_t = 0)]
    commission_bps: u16,
    #[command(flatten)]
    rpc: RpcArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum StakeCmd {
    /// Become an operator, with the amount as self bond.
    Register(RegisterArgs),
    /// Add stake at an operator: a self bond if you are the operator, else a delegation.
    Bond {
        operator: Address,
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Delegate to an operator (bond, for accounts that are not the operator).
    Delegate {
        operator: Address,
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Start unbonding your stake at an operator; withdraw it after the cooldown.
    Unbond {
        operator: Address,
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Move your matured unbondings to your balance.
    Withdraw {
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Claim your rewards at an operator.
    Claim {
        operator: Address,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// An account's stake and pending rewards at an operator (default: the operator's own).
    Rewards {
        operator: Address,
        account: Option<Address>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// An operator: role, bonds, commission, keys, jail status and its stakers.
    Show {
        operator: Address,
        /// First block scanned for stakers (Bonded logs).
        #[arg(long, default_value_t = 0)]
        from_block: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// The validator set in force at a height (default: the head).
    Validators {
        #[arg(long)]
        height: Option<u64>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// An account's voting power (its own stake), now or after block --height.
    Power {
        account: Address,
        #[arg(long)]
        height: Option<u64>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// An account's pending unbondings.
    Unbondings {
        account: Address,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Leave jail once the jail period is over.
    Unjail {
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Change your commission (basis points).
    SetCommission {
        bps: u16,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Pay an amount to the stakers of a pool, pro rata to stake.
    DepositRewards {
        amount: Amount,
        #[arg(long, value_enum)]
        pool: Pool,
        /// Deposit even if no active operator stakes in the pool (the chain then
        /// sends the amount to the treasury).
        #[arg(long)]
        allow_empty_pool: bool,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

fn staking_calls(
    signer: &SignerArgs,
    rpc: &RpcArgs,
    value: Amount,
    call: impl SolCall,
    what: &str,
) -> anyhow::Result<Sent> {
    send_call(signer, rpc, STAKING, value, call.abi_encode(), what)
}

/// Public identity of a node key in a node keys directory, if there.
fn node_key(dir: &std::path::Path, kind: keys::NodeKeyKind) -> anyhow::Result<Option<keys::NodeKeyId>> {
    if !dir.is_dir() {
        bail!("node keys directory {} does not exist", dir.display());
    }
    Ok(keys::NodeKeys::open(dir)?.identity(kind)?)
}

pub fn run(c: StakeCmd, out: Out) -> anyhow::Result<()> {
    match c {
        StakeCmd::Register(a) => register(a, out)?,
        StakeCmd::Bond { operator, amount, signer, rpc } => bond(operator, amount, &signer, &rpc, out, false)?,
        StakeCmd::Delegate { operator, amount, signer, rpc } => bond(operator, amount, &signer, &rpc, out, true)?,
        StakeCmd::Unbond { operator, amount, signer, rpc } => {
            let sent = staking_calls(
                &signer,
                &rpc,
                Amount::ZERO,
                IStaking::unbondCall { operator, amount: amount.to_u256() },
                "unbond",
            )?;
            let release = sent.event::<IStaking::UnbondStarted>(STAKING).map(|e| e.releaseHeight);
            out.print(
                || {
                    format!(
                        "{}\nunbonding {amount} OPEN from {}; withdrawable from block {}",
                        sent.human("unbond"),
                        operator.to_checksum(None),
                        release.map(|r| r.to_string()).unwrap_or_else(|| "?".into())
                    )
                },
                sent.json(json!({"operator": operator, "amount": amount.0.to_string(), "releaseHeight": release})),
            );
        }
        StakeCmd::Withdraw { signer, rpc } => withdraw(&signer, &rpc, out)?,
        StakeCmd::Claim { operator, signer, rpc } => {
            let sent =
                staking_calls(&signer, &rpc, Amount::ZERO, IStaking::claimRewardsCall { operator }, "claim rewards")?;
            let amount = sent.event::<IStaking::RewardsClaimed>(STAKING).map(|e| e.amount).unwrap_or_default();
            out.print(
                || format!("{}\nclaimed {}", sent.human("claim rewards"), open(amount)),
                sent.json(json!({"operator": operator, "amount": amount.to_string()})),
            );
        }
        StakeCmd::Rewards { operator, account, rpc } => {
            let account = account.unwrap_or(operator);
            let r = view(&mut rpc.client(), STAKING, &IStaking::stakeOfCall { operator, account })?;
            out.print(
                || {
                    format!(
                        "stake {}\npending rewards {}\n(account {} at operator {})",
                        open(r.amount),
                        open(r.pendingRewards),
                        account.to_checksum(None),
                        operator.to_checksum(None)
                    )
                },
                json!({"operator": operator, "account": account, "stake": r.amount.to_string(), "pendingRewards": r.pendingRewards.to_string()}),
            );
        }
        StakeCmd::Show { operator, from_block, rpc } => show(operator, from_block, &rpc, out)?,
        StakeCmd::Validators { height, rpc } => validators(height, &rpc, out)?,
        StakeCmd::Power { account, height, rpc } => {
            let mut c = rpc.client();
            let (power, at) = match height {
                Some(h) => (view(&mut c, STAKING, &IStaking::votingPowerAtCall { account, height: h })?, h),
                None => (view(&mut c, STAKING, &IStaking::votingPowerCall { account })?, head(&mut c)?),
            };
            let total = view(&mut c, STAKING, &IStaking::totalVotingPowerAtCall { height: at })?;
            out.print(
                || {
                    let share = if total.is_zero() {
                        0.0
                    } else {
                        (power * U256::from(1_000_000u32) / total).to::<u64>() as f64 / 10_000.0
                    };
                    format!("voting power {} of {} ({share:.2}%) after block {at}", open(power), open(total))
                },
                json!({"account": account, "height": at, "power": power.to_string(), "totalPower": total.to_string()}),
            );
        }
        StakeCmd::Unbondings { account, rpc } => unbondings(account, &rpc, out)?,
        StakeCmd::Unjail { signer, rpc } => {
            let sent = staking_calls(&signer, &rpc, Amount::ZERO, IStaking::unjailCall {}, "unjail")?;
            out.print(|| sent.human("unjail"), sent.json(json!({})));
        }
        StakeCmd::SetCommission { bps, signer, rpc } => {
            if bps > 10_000 {
                bail!("commission {bps} bps is above 10000 (100%)");
            }
            let sent = staking_calls(
                &signer,
                &rpc,
                Amount::ZERO,
                IStaking::setCommissionCall { commissionBps: bps },
                "set commission",
            )?;
            out.print(
                || format!("{}\ncommission now {bps} bps", sent.human("set commission")),
                sent.json(json!({"commissionBps": bps})),
            );
        }
        StakeCmd::DepositRewards { amount, pool, allow_empty_pool, signer, rpc } => {
            deposit_rewards(amount, pool, allow_empty_pool, &signer, &rpc, out)?
        }
    }
    Ok(())
}

/// `stake register`.
fn register(a: RegisterArgs, out: Out) -> anyhow::Result<()> {
    let RegisterArgs { signer, role, bond, consensus_key, node_key_dir, serving_key, commission_bps, rpc } = a;
    let mut consensus = consensus_key.unwrap_or(B256::ZERO);
    let mut serving = serving_key.unwrap_or(Address::ZERO);
    if let Some(dir) = &node_key_dir {
        if let Some(k) = node_key(dir, keys::NodeKeyKind::Consensus)? {
            consensus = k.public_key().unwrap_or_default();
        }
        if serving_key.is_none()
            && let Some(k) = node_key(dir, keys::NodeKeyKind::Serving)?
        {
            serving = k.address().unwrap_or_default();
        }
    }
    if role == Role::Validator && consensus == B256::ZERO {
        bail!(
            "a validator needs a consensus key: give --consensus-key, or --node-key-dir with a consensus key \
             (`openledger keys node new consensus`)"
        );
    }
    if role == Role::Serving && serving == Address::ZERO {
        bail!(
            "a serving operator needs a serving key: give --serving-key, or --node-key-dir with a serving key \
             (`openledger keys node new serving`)"
        );
    }
    if commission_bps > 10_000 {
        bail!("--commission-bps {commission_bps} is above 10000 (100%)");
    }
    let operator = signer_address(&signer)?;
    let call = IStaking::registerOperatorCall {
        role: role.id(),
        consensusKey: consensus,
        servingKey: serving,
        commissionBps: commission_bps,
    };
    let sent = staking_calls(&signer, &rpc, bond, call, "register")?;
    out.print(
        || {
            format!(
                "{}\n{} registered as {} operator with a self bond of {bond} OPEN\nconsensus key {consensus}\nserving key   {}\ncommission    {commission_bps} bps",
                sent.human("register"),
                operator.to_checksum(None),
                role_name(role.id()),
                serving.to_checksum(None)
            )
        },
        sent.json(json!({
            "operator": operator,
            "role": role_name(role.id()),
            "bond": bond.0.to_string(),
            "consensusKey": consensus,
            "servingKey": serving,
            "commissionBps": commission_bps,
        })),
    );
    Ok(())
}

/// `stake withdraw`.
fn withdraw(signer: &SignerArgs, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    // Refuse here rather than pay gas to withdraw nothing.
    let mut c = rpc.client();
    let account = signer_address(signer)?;
    let next = head(&mut c)? + 1; // the block the transaction lands in
    let u = view(&mut c, STAKING, &IStaking::unbondingsCall { account })?;
    let pending: Vec<u64> =
        u.amounts.iter().zip(&u.releaseHeights).filter(|(a, _)| !a.is_zero()).map(|(_, r)| *r).collect();
    if !pending.iter().any(|r| *r <= next) {
        match pending.iter().min() {
            None => bail!("{} has no unbondings to withdraw", account.to_checksum(None)),
            Some(r) => {
                bail!("nothing to withdraw yet: the first unbonding is released at block {r} (head {})", next - 1)
            }
        }
    }
    let sent = staking_calls(signer, rpc, Amount::ZERO, IStaking::withdrawCall {}, "withdraw")?;
    let amount = sent.event::<IStaking::Withdrawn>(STAKING).map(|e| e.amount).unwrap_or_default();
    out.print(
        || format!("{}\nwithdrew {}", sent.human("withdraw"), open(amount)),
        sent.json(json!({"amount": amount.to_string()})),
    );
    Ok(())
}

/// `stake validators`.
fn validators(height: Option<u64>, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let height = match height {
        Some(h) => h,
        None => head(&mut c)?,
    };
    let v = view(&mut c, STAKING, &IStaking::validatorSetAtCall { height })?;
    let total: U256 = v.powers.iter().copied().sum();
    let rows: Vec<Value> = v
        .operators
        .iter()
        .zip(&v.consensusKeys)
        .zip(&v.powers)
        .map(|((o, k), p)| json!({"operator": o, "consensusKey": k, "power": p.to_string()}))
        .collect();
    out.print(
        || {
            let mut s = format!("validator set at block {height}: {} validators, power {}\n", rows.len(), open(total));
            for ((o, k), p) in v.operators.iter().zip(&v.consensusKeys).zip(&v.powers) {
                s += &format!("{}  {k}  {}\n", o.to_checksum(None), open(*p));
            }
            s.trim_end().to_string()
        },
        json!({"height": height, "validators": rows, "totalPower": total.to_string()}),
    );
    Ok(())
}

/// `stake unbondings`.
fn unbondings(account: Address, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let now = head(&mut c)?;
    let u = view(&mut c, STAKING, &IStaking::unbondingsCall { account })?;
    let rows: Vec<(Address, U256, u64)> = u
        .operators
        .iter()
        .zip(&u.amounts)
        .zip(&u.releaseHeights)
        .map(|((o, a), r)| (*o, *a, *r))
        .filter(|(_, a, _)| !a.is_zero())
        .collect();
    out.print(
        || {
            if rows.is_empty() {
                return format!("no pending unbondings for {}", account.to_checksum(None));
            }
            rows.iter()
                .map(|(o, a, r)| {
                    let when = if *r <= now {
                        "ready to withdraw".to_string()
                    } else {
                        format!("withdrawable at block {r}")
                    };
                    format!("{}  unbonding from {}  {when}", open(*a), o.to_checksum(None))
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
        json!({
            "account": account,
            "head": now,
            "unbondings": rows.iter().map(|(o, a, r)| json!({"operator": o, "amount": a.to_string(), "releaseHeight": r, "ready": *r <= now})).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}

/// `stake deposit-rewards`.
fn deposit_rewards(
    amount: Amount,
    pool: Pool,
    allow_empty_pool: bool,
    signer: &SignerArgs,
    rpc: &RpcArgs,
    out: Out,
) -> anyhow::Result<()> {
    if !allow_empty_pool {
        let mut c = rpc.client();
        let staked = view(&mut c, STAKING, &IStaking::poolStakeCall { pool: pool.name().into() })?;
        if staked.is_zero() {
            bail!(
                "pool {} has no active operator with stake: the chain would send the amount to the treasury \
                 (pass --allow-empty-pool to do that anyway)",
                pool.name()
            );
        }
    }
    let call = IStaking::depositRewardsCall { amount: amount.to_u256(), pool: pool.name().into() };
    let sent = staking_calls(signer, rpc, amount, call, "deposit rewards")?;
    out.print(
        || format!("{}\ndeposited {amount} OPEN to pool {}", sent.human("deposit rewards"), pool.name()),
        sent.json(json!({"amount": amount.0.to_string(), "pool": pool.name()})),
    );
    Ok(())
}

fn bond(
    operator: Address,
    amount: Amount,
    signer: &SignerArgs,
    rpc: &RpcArgs,
    out: Out,
    delegate: bool,
) -> anyhow::Result<()> {
    let account = signer_address(signer)?;
    if delegate && account == operator {
        bail!("{} is the operator itself: use `openledger stake bond` for a self bond", operator.to_checksum(None));
    }
    let what = if account == operator { "self bond" } else { "delegation" };
    let sent = staking_calls(signer, rpc, amount, IStaking::bondCall { operator }, what)?;
    out.print(
        || format!("{}\n{what} of {amount} OPEN at {}", sent.human(what), operator.to_checksum(None)),
        sent.json(json!({"operator": operator, "account": account, "amount": amount.0.to_string(), "kind": what})),
    );
    Ok(())
}

/// Accounts that ever bonded at `operator` (from its Bonded logs), first seen first.
fn stakers(c: &mut RpcClient, operator: Address, from: u64, to: u64) -> anyhow::Result<Vec<Address>> {
    let mut seen = Vec::new();
    let mut start = from;
    while start <= to {
        let end = to.min(start + rpc::MAX_LOG_BLOCK_RANGE - 1);
        let filter = Filter::new()
            .from_block(start)
            .to_block(end)
            .address(STAKING)
            .event_signature(IStaking::Bonded::SIGNATURE_HASH)
            .topic1(operator.into_word());
        for e in log_events::<IStaking::Bonded>(&c.logs(&filter)?, STAKING) {
            if !seen.contains(&e.account) {
                seen.push(e.account);
            }
        }
        start = end + 1;
    }
    Ok(seen)
}

fn show(operator: Address, from_block: u64, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let now = head(&mut c)?;
    let info = view(&mut c, STAKING, &IStaking::operatorInfoCall { operator })?;
    let mut accounts = vec![operator];
    for a in stakers(&mut c, operator, from_block, now)? {
        if !accounts.contains(&a) {
            accounts.push(a);
        }
    }
    let mut rows = Vec::new();
    for a in accounts {
        let s = view(&mut c, STAKING, &IStaking::stakeOfCall { operator, account: a })?;
        if a == operator || !s.amount.is_zero() || !s.pendingRewards.is_zero() {
            rows.push((a, s.amount, s.pendingRewards));
        }
    }
    let jailed = info.jailedUntil != 0;
    let total = info.selfBond + info.delegated;
    out.print(
        || {
            let status = if !jailed {
                "active".to_string()
            } else if now >= info.jailedUntil {
                format!("jailed until block {} (over: `openledger stake unjail` to leave)", info.jailedUntil)
            } else {
                format!("jailed until block {} (head {now})", info.jailedUntil)
            };
            let mut s = format!(
                "operator     {} ({})\nself bond    {}\ndelegated    {}\ntotal stake  {}\ncommission   {} bps\nconsensus    {}\nserving key  {}\nstatus       {status}\nstakers:",
                operator.to_checksum(None),
                role_name(info.role),
                open(info.selfBond),
                open(info.delegated),
                open(total),
                info.commissionBps,
                info.consensusKey,
                info.servingKey.to_checksum(None),
            );
            for (a, amount, rewards) in &rows {
                let me = if *a == operator { " (self)" } else { "" };
                s += &format!("\n  {}{me}  {}  rewards {}", a.to_checksum(None), open(*amount), open(*rewards));
            }
            s
        },
        json!({
            "operator": operator,
            "role": role_name(info.role),
            "roleId": info.role,
            "selfBond": info.selfBond.to_string(),
            "delegated": info.delegated.to_string(),
            "total": total.to_string(),
            "commissionBps": info.commissionBps,
            "consensusKey": info.consensusKey,
            "servingKey": info.servingKey,
            "jailed": jailed,
            "jailedUntil": info.jailedUntil,
            "head": now,
            "stakers": rows.iter().map(|(a, s, r)| json!({"account": a, "amount": s.to_string(), "pendingRewards": r.to_string()})).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}
