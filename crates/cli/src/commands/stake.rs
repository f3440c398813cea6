//! `stake ...`: register operators, bond and delegate, unbond and withdraw,
//! rewards, and the staking views.
//!
//! Also the plumbing the `gov` and `keys node` commands share: read-only calls
//! ([`view`]), sending a call with a preflight and a receipt check
//! ([`send_call`]), and showing revert data as the named custom error with its
//! fields ([`decode_revert`]), through a small ABI codec ([`abi`]) driven by the
//! signatures of the `sol!` interfaces.

use std::path::PathBuf;

use alloy_sol_types::{SolCall, SolEvent};
use anyhow::{Context, anyhow, bail};
use primitives::abi::IStaking;
use primitives::system::Module;
use primitives::{Address, Amount, B256, Bytes, U256};
use rpc::client::{ClientError, RpcClient};
use serde_json::{Value, json};

use super::RpcArgs;
use super::keys::SignerArgs;
use crate::output::Out;

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

#[derive(clap::Subcommand, Debug)]
pub enum StakeCmd {
    /// Become an operator, with the amount as self bond.
    Register {
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
    },
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

// ---------------------------------------------------------------------------
// Plumbing shared with `gov` and `keys node`.
// ---------------------------------------------------------------------------

/// "1.5 OPEN", or the base units if the value does not fit an amount.
pub fn open(v: U256) -> String {
    match Amount::from_u256(v) {
        Ok(a) => format!("{a} OPEN"),
        Err(_) => format!("{v} wei"),
    }
}

pub fn hex_u64(v: &Value) -> anyhow::Result<u64> {
    let s = v.as_str().ok_or_else(|| anyhow!("expected a hex quantity, got {v}"))?;
    u64::from_str_radix(s.trim_start_matches("0x"), 16).with_context(|| format!("bad quantity {s}"))
}

/// The signer's address, without decrypting anything (no password prompt).
pub fn signer_address(s: &SignerArgs) -> anyhow::Result<Address> {
    match (s.from, s.dev_account) {
        (_, Some(i)) => Ok(keys::derive_account(keys::DEV_MNEMONIC, i)?.address()),
        (Some(a), None) => Ok(a),
        (None, None) => bail!("give --from ADDRESS (keystore) or --dev-account N"),
    }
}

/// The revert data of a JSON-RPC error, if it is an "execution reverted" (code 3).
fn revert_data(e: &ClientError) -> Option<Vec<u8>> {
    match e {
        ClientError::Rpc { code: 3, data: Some(d), .. } => {
            let s = d.as_str()?;
            hex::decode(s.strip_prefix("0x").unwrap_or(s)).ok()
        }
        _ => None,
    }
}

/// `eth_call` of a typed call at the head; a revert is shown by name.
pub fn view<C: SolCall>(c: &mut RpcClient, to: Address, call: &C) -> anyhow::Result<C::Return> {
    let data = Bytes::from(call.abi_encode());
    let out = match c.call("eth_call", json!([{"to": to, "data": data}, "latest"])) {
        Ok(v) => v,
        Err(e) => match revert_data(&e) {
            Some(d) => bail!("{} reverted: {}", C::SIGNATURE, decode_revert(&d)),
            None => return Err(e.into()),
        },
    };
    let s = out.as_str().ok_or_else(|| anyhow!("eth_call returned {out}"))?;
    let bytes = hex::decode(s.trim_start_matches("0x")).context("eth_call result")?;
    C::abi_decode_returns(&bytes).map_err(|e| anyhow!("cannot decode the result of {}: {e}", C::SIGNATURE))
}

pub fn head(c: &mut RpcClient) -> anyhow::Result<u64> {
    Ok(c.block_number()?)
}

/// The chain refused a transaction: its preflight reverted (nothing was sent)
/// or its receipt has status 0 (nothing changed but the fee).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Estimate the call as `from`: a revert is an error naming the custom error.
pub fn preflight(
    rpc: &RpcArgs,
    from: Address,
    to: Address,
    value: Amount,
    data: &[u8],
    what: &str,
) -> anyhow::Result<u64> {
    let mut c = rpc.client();
    let req = json!({"from": from, "to": to, "value": format!("{:#x}", value.0), "data": Bytes::copy_from_slice(data)});
    match c.call("eth_estimateGas", json!([req])) {
        Ok(g) => hex_u64(&g),
        Err(e) => match revert_data(&e) {
            Some(d) => Err(Refused(format!("{what} refused by the node (nothing sent): {}", decode_revert(&d))).into()),
            None => bail!("{what}: the node refuses this transaction: {e}"),
        },
    }
}

/// A mined, successful transaction.
pub struct Sent {
    pub hash: B256,
    pub receipt: Value,
}

impl Sent {
    pub fn block(&self) -> u64 {
        hex_u64(&self.receipt["blockNumber"]).unwrap_or(0)
    }
    pub fn gas_used(&self) -> u64 {
        hex_u64(&self.receipt["gasUsed"]).unwrap_or(0)
    }
    /// hash, blockNumber, gasUsed and status, plus `extra`'s fields.
    pub fn json(&self, extra: Value) -> Value {
        let mut v = json!({
            "hash": self.hash,
            "blockNumber": self.block(),
            "gasUsed": self.gas_used(),
            "status": self.receipt["status"],
        });
        if let (Some(m), Value::Object(e)) = (v.as_object_mut(), extra) {
            m.extend(e);
        }
        v
    }
    pub fn human(&self, what: &str) -> String {
        format!("{what}: mined {} in block {} (gas {})", self.hash, self.block(), self.gas_used())
    }
    /// The first log of event `E` emitted by `address`.
    pub fn event<E: SolEvent>(&self, address: Address) -> Option<E> {
        self.events::<E>(address).into_iter().next()
    }
    pub fn events<E: SolEvent>(&self, address: Address) -> Vec<E> {
        receipt_events(&self.receipt, address)
    }
}

/// Every log of event `E` by `address` in a receipt (or any JSON array of logs).
pub fn receipt_events<E: SolEvent>(receipt: &Value, address: Address) -> Vec<E> {
    let logs = receipt.get("logs").unwrap_or(receipt);
    logs.as_array().map(|a| a.iter().filter_map(|l| log_event::<E>(l, address)).collect()).unwrap_or_default()
}

fn log_event<E: SolEvent>(log: &Value, address: Address) -> Option<E> {
    let a: Address = log["address"].as_str()?.parse().ok()?;
    if a != address {
        return None;
    }
    let topics: Vec<B256> = log["topics"].as_array()?.iter().filter_map(|t| t.as_str()?.parse().ok()).collect();
    if topics.first() != Some(&E::SIGNATURE_HASH) {
        return None;
    }
    let data = hex::decode(log["data"].as_str()?.trim_start_matches("0x")).ok()?;
    E::decode_raw_log(topics, &data).ok()
}

/// Preflight, sign, send and wait for the receipt; a revert at either step is
/// a [`Refused`] error naming the custom error and its fields.
pub fn send_call(
    signer: &SignerArgs,
    rpc: &RpcArgs,
    to: Address,
    value: Amount,
    data: Vec<u8>,
    what: &str,
) -> anyhow::Result<Sent> {
    let from = signer_address(signer)?;
    preflight(rpc, from, to, value, &data, what)?;
    let (hash, receipt) = super::tx::send(signer, rpc, to, value, Bytes::from(data), false)?;
    let receipt = receipt.ok_or_else(|| anyhow!("no receipt for {hash}"))?;
    if receipt["status"] != "0x1" {
        let reason = receipt["revertReason"]
            .as_str()
            .and_then(|s| hex::decode(s.trim_start_matches("0x")).ok())
            .map(|d| decode_revert(&d))
            .unwrap_or_else(|| "no revert data".into());
        let block = hex_u64(&receipt["blockNumber"]).unwrap_or(0);
        return Err(Refused(format!("{what} failed in block {block} (transaction {hash}, status 0): {reason}")).into());
    }
    Ok(Sent { hash, receipt })
}

/// Revert data as `ErrorName(field: value, ...)`: the shared errors, the custom
/// errors of IStaking, IGovernance and IParams, `Error(string)` and `Panic(uint256)`.
pub fn decode_revert(data: &[u8]) -> String {
    abi::decode_error(data)
}

// ---------------------------------------------------------------------------
// Commands.
// ---------------------------------------------------------------------------

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
        StakeCmd::Register { signer, role, bond, consensus_key, node_key_dir, serving_key, commission_bps, rpc } => {
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
        }
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
        StakeCmd::Withdraw { signer, rpc } => {
            // Refuse here rather than pay gas to withdraw nothing.
            let mut c = rpc.client();
            let account = signer_address(&signer)?;
            let next = head(&mut c)? + 1; // the block the transaction lands in
            let u = view(&mut c, STAKING, &IStaking::unbondingsCall { account })?;
            let pending: Vec<u64> =
                u.amounts.iter().zip(&u.releaseHeights).filter(|(a, _)| !a.is_zero()).map(|(_, r)| *r).collect();
            if !pending.iter().any(|r| *r <= next) {
                match pending.iter().min() {
                    None => bail!("{} has no unbondings to withdraw", account.to_checksum(None)),
                    Some(r) => bail!(
                        "nothing to withdraw yet: the first unbonding is released at block {r} (head {})",
                        next - 1
                    ),
                }
            }
            let sent = staking_calls(&signer, &rpc, Amount::ZERO, IStaking::withdrawCall {}, "withdraw")?;
            let amount = sent.event::<IStaking::Withdrawn>(STAKING).map(|e| e.amount).unwrap_or_default();
            out.print(
                || format!("{}\nwithdrew {}", sent.human("withdraw"), open(amount)),
                sent.json(json!({"amount": amount.to_string()})),
            );
        }
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
        StakeCmd::Validators { height, rpc } => {
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
                    let mut s =
                        format!("validator set at block {height}: {} validators, power {}\n", rows.len(), open(total));
                    for ((o, k), p) in v.operators.iter().zip(&v.consensusKeys).zip(&v.powers) {
                        s += &format!("{}  {k}  {}\n", o.to_checksum(None), open(*p));
                    }
                    s.trim_end().to_string()
                },
                json!({"height": height, "validators": rows, "totalPower": total.to_string()}),
            );
        }
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
        StakeCmd::Unbondings { account, rpc } => {
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
        }
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
            if !allow_empty_pool {
                let mut c = rpc.client();
                let role = if pool == Pool::Validators { Role::Validator } else { Role::Serving }.id();
                let mut staked = false;
                for op in view(&mut c, STAKING, &IStaking::operatorsCall { role, offset: 0, limit: 256 })? {
                    let i = view(&mut c, STAKING, &IStaking::operatorInfoCall { operator: op })?;
                    if i.jailedUntil == 0 && !(i.selfBond + i.delegated).is_zero() {
                        staked = true;
                        break;
                    }
                }
                if !staked {
                    bail!(
                        "pool {} has no active operator with stake: the chain would send the amount to the treasury \
                         (pass --allow-empty-pool to do that anyway)",
                        pool.name()
                    );
                }
            }
            let call = IStaking::depositRewardsCall { amount: amount.to_u256(), pool: pool.name().into() };
            let sent = staking_calls(&signer, &rpc, amount, call, "deposit rewards")?;
            out.print(
                || format!("{}\ndeposited {amount} OPEN to pool {}", sent.human("deposit rewards"), pool.name()),
                sent.json(json!({"amount": amount.0.to_string(), "pool": pool.name()})),
            );
        }
    }
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
        let logs = c.call(
            "eth_getLogs",
            json!([{
                "fromBlock": format!("{start:#x}"),
                "toBlock": format!("{end:#x}"),
                "address": STAKING,
                "topics": [IStaking::Bonded::SIGNATURE_HASH, operator.into_word()],
            }]),
        )?;
        for e in receipt_events::<IStaking::Bonded>(&logs, STAKING) {
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

/// A small ABI codec for the system contracts' functions and errors, driven by
/// the `SIGNATURE`s of the `sol!` types: elementary types, `bytes`, `string`
/// and dynamic arrays of them (what the interfaces use; no tuples).
pub mod abi {
    use alloy_sol_types::{SolError, SolInterface};
    use anyhow::{anyhow, bail};
    use primitives::abi::{self as sol, IBank, IGovernance, IParams, IStaking};
    use primitives::system::{Module, TREASURY};
    use primitives::{Address, Amount, U256, keccak256};

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Ty {
        Address,
        Bool,
        Uint(usize),
        Int(usize),
        FixedBytes(usize),
        Bytes,
        String,
        Array(Box<Ty>),
    }

    impl Ty {
        pub fn parse(s: &str) -> anyhow::Result<Ty> {
            let s = s.trim();
            if let Some(inner) = s.strip_suffix("[]") {
                return Ok(Ty::Array(Box::new(Ty::parse(inner)?)));
            }
            let bits = |rest: &str| -> anyhow::Result<usize> {
                if rest.is_empty() {
                    return Ok(256);
                }
                let n: usize = rest.parse().map_err(|_| anyhow!("bad ABI type {s:?}"))?;
                if n == 0 || n > 256 || n % 8 != 0 {
                    bail!("bad ABI type {s:?}");
                }
                Ok(n)
            };
            Ok(match s {
                "address" => Ty::Address,
                "bool" => Ty::Bool,
                "bytes" => Ty::Bytes,
                "string" => Ty::String,
                _ if s.starts_with("uint") => Ty::Uint(bits(&s[4..])?),
                _ if s.starts_with("int") => Ty::Int(bits(&s[3..])?),
                _ if s.starts_with("bytes") => {
                    let n: usize = s[5..].parse().map_err(|_| anyhow!("bad ABI type {s:?}"))?;
                    if !(1..=32).contains(&n) {
                        bail!("bad ABI type {s:?}");
                    }
                    Ty::FixedBytes(n)
                }
                _ => bail!("ABI type {s:?} is not supported here"),
            })
        }

        fn dynamic(&self) -> bool {
            matches!(self, Ty::Bytes | Ty::String | Ty::Array(_))
        }
    }

    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Val {
        Address(Address),
        Bool(bool),
        Uint(U256),
        /// Two's complement, as on the wire.
        Int(U256),
        FixedBytes(Vec<u8>),
        Bytes(Vec<u8>),
        String(String),
        Array(Vec<Val>),
    }

    /// `name(t1,t2)` → ("name", [t1, t2]).
    pub fn split_signature(sig: &str) -> anyhow::Result<(&str, Vec<Ty>)> {
        let (name, rest) = sig.split_once('(').ok_or_else(|| anyhow!("bad signature {sig:?}"))?;
        let inner = rest.strip_suffix(')').ok_or_else(|| anyhow!("bad signature {sig:?}"))?;
        if inner.contains('(') {
            bail!("tuple arguments are not supported ({sig})");
        }
        let types =
            if inner.is_empty() { vec![] } else { inner.split(',').map(Ty::parse).collect::<Result<_, _>>()? };
        Ok((name, types))
    }

    fn word(data: &[u8], at: usize) -> anyhow::Result<&[u8]> {
        data.get(at..at + 32).ok_or_else(|| anyhow!("ABI data too short"))
    }

    fn usize_at(data: &[u8], at: usize) -> anyhow::Result<usize> {
        let v = U256::from_be_slice(word(data, at)?);
        usize::try_from(v).ok().filter(|n| *n <= data.len()).ok_or_else(|| anyhow!("bad ABI offset or length"))
    }

    /// Decode a tuple of `types` encoded in `data`.
    pub fn decode(types: &[Ty], data: &[u8]) -> anyhow::Result<Vec<Val>> {
        let mut out = Vec::with_capacity(types.len());
        for (i, t) in types.iter().enumerate() {
            let head = i * 32;
            out.push(if t.dynamic() {
                let off = usize_at(data, head)?;
                decode_dynamic(t, &data[off..])?
            } else {
                decode_static(t, word(data, head)?)?
            });
        }
        Ok(out)
    }

    fn decode_static(t: &Ty, w: &[u8]) -> anyhow::Result<Val> {
        Ok(match t {
            Ty::Address => Val::Address(Address::from_slice(&w[12..])),
            Ty::Bool => Val::Bool(w[31] != 0),
            Ty::Uint(_) => Val::Uint(U256::from_be_slice(w)),
            Ty::Int(_) => Val::Int(U256::from_be_slice(w)),
            Ty::FixedBytes(n) => Val::FixedBytes(w[..*n].to_vec()),
            _ => unreachable!("dynamic type"),
        })
    }

    fn decode_dynamic(t: &Ty, data: &[u8]) -> anyhow::Result<Val> {
        let len = usize_at(data, 0)?;
        Ok(match t {
            Ty::Bytes | Ty::String => {
                let b = data.get(32..32 + len).ok_or_else(|| anyhow!("ABI data too short"))?.to_vec();
                if *t == Ty::String { Val::String(String::from_utf8_lossy(&b).into_owned()) } else { Val::Bytes(b) }
            }
            Ty::Array(inner) => Val::Array(decode(&vec![(**inner).clone(); len], &data[32..])?),
            _ => unreachable!("static type"),
        })
    }

    fn pad(b: &[u8]) -> Vec<u8> {
        let mut v = b.to_vec();
        v.resize(b.len().div_ceil(32) * 32, 0);
        v
    }

    /// Encode a tuple of values.
    pub fn encode(vals: &[Val]) -> Vec<u8> {
        let mut head = Vec::new();
        let mut tail = Vec::new();
        let head_len = vals.len() * 32;
        for v in vals {
            match v {
                Val::Address(a) => head.extend_from_slice(&a.into_word().0),
                Val::Bool(b) => head.extend_from_slice(&U256::from(*b as u8).to_be_bytes::<32>()),
                Val::Uint(x) | Val::Int(x) => head.extend_from_slice(&x.to_be_bytes::<32>()),
                Val::FixedBytes(b) => head.extend_from_slice(&pad(b)),
                Val::Bytes(_) | Val::String(_) | Val::Array(_) => {
                    head.extend_from_slice(&U256::from(head_len + tail.len()).to_be_bytes::<32>());
                    match v {
                        Val::Bytes(b) => {
                            tail.extend_from_slice(&U256::from(b.len()).to_be_bytes::<32>());
                            tail.extend_from_slice(&pad(b));
                        }
                        Val::String(s) => {
                            tail.extend_from_slice(&U256::from(s.len()).to_be_bytes::<32>());
                            tail.extend_from_slice(&pad(s.as_bytes()));
                        }
                        Val::Array(items) => {
                            tail.extend_from_slice(&U256::from(items.len()).to_be_bytes::<32>());
                            tail.extend_from_slice(&encode(items));
                        }
                        _ => unreachable!(),
                    }
                }
            }
        }
        head.extend_from_slice(&tail);
        head
    }

    pub fn fmt_val(v: &Val) -> String {
        match v {
            Val::Address(a) => a.to_checksum(None),
            Val::Bool(b) => b.to_string(),
            Val::Uint(x) => x.to_string(),
            Val::Int(x) => {
                if x.bit(255) {
                    format!("-{}", (!*x).wrapping_add(U256::from(1)))
                } else {
                    x.to_string()
                }
            }
            Val::FixedBytes(b) | Val::Bytes(b) => format!("0x{}", hex::encode(b)),
            Val::String(s) => format!("{s:?}"),
            Val::Array(items) => format!("[{}]", items.iter().map(fmt_val).collect::<Vec<_>>().join(", ")),
        }
    }

    /// Parse a command-line argument as a value of type `t`. Integers are
    /// decimal or 0x hex base units, or amounts with a unit: "1.5OPEN", "10wei".
    /// Addresses may also be a module name ("staking") or "treasury".
    pub fn parse_arg(t: &Ty, s: &str) -> anyhow::Result<Val> {
        let bad = |what: &str| anyhow!("{s:?} is not {what}");
        Ok(match t {
            Ty::Address => {
                if s == "treasury" {
                    Val::Address(TREASURY)
                } else if let Some(m) = Module::from_name(s) {
                    Val::Address(m.address())
                } else {
                    Val::Address(s.parse().map_err(|_| bad("an address"))?)
                }
            }
            Ty::Bool => match s {
                "true" => Val::Bool(true),
                "false" => Val::Bool(false),
                _ => return Err(bad("true or false")),
            },
            Ty::Uint(bits) => {
                let v = parse_uint(s)?;
                if *bits < 256 && v >= (U256::from(1) << *bits) {
                    bail!("{s} does not fit uint{bits}");
                }
                Val::Uint(v)
            }
            Ty::FixedBytes(n) => {
                let b = hex::decode(s.strip_prefix("0x").ok_or_else(|| bad("0x hex"))?).map_err(|_| bad("0x hex"))?;
                if b.len() != *n {
                    bail!("{s:?} has {} bytes, bytes{n} needs {n}", b.len());
                }
                Val::FixedBytes(b)
            }
            Ty::Bytes => Val::Bytes(hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|_| bad("hex bytes"))?),
            Ty::String => Val::String(s.to_string()),
            // `[1,2,3]` or `1,2,3` (e.g. models.approve [2,3]); items of a simple type.
            Ty::Array(inner) => {
                let body = s.trim().trim_start_matches('[').trim_end_matches(']');
                let items: Vec<&str> = body.split(',').map(str::trim).filter(|x| !x.is_empty()).collect();
                Val::Array(items.into_iter().map(|x| parse_arg(inner, x)).collect::<anyhow::Result<_>>()?)
            }
            Ty::Int(_) => bail!("arguments of type {t:?} are not supported by --call; use --raw"),
        })
    }

    pub fn parse_uint(s: &str) -> anyhow::Result<U256> {
        let t = s.trim();
        if let Some(h) = t.strip_prefix("0x") {
            return U256::from_str_radix(h, 16).map_err(|_| anyhow!("{s:?} is not a hex integer"));
        }
        if t.ends_with("OPEN") || t.ends_with("wei") {
            return Ok(t.parse::<Amount>().map_err(|e| anyhow!("{e}"))?.to_u256());
        }
        U256::from_str_radix(t, 10)
            .map_err(|_| anyhow!("{s:?} is not an integer (base units; or write an amount like 1.5OPEN)"))
    }

    /// Split a command line like a shell: whitespace separates, quotes group,
    /// backslash escapes inside double quotes and outside quotes.
    pub fn split_words(s: &str) -> anyhow::Result<Vec<String>> {
        let mut words = Vec::new();
        let mut cur = String::new();
        let mut in_word = false;
        let mut chars = s.chars();
        while let Some(ch) = chars.next() {
            match ch {
                '"' => {
                    in_word = true;
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some('\\') => cur.push(chars.next().ok_or_else(|| anyhow!("unfinished escape in {s:?}"))?),
                            Some(c) => cur.push(c),
                            None => bail!("unclosed double quote in {s:?}"),
                        }
                    }
                }
                '\'' => {
                    in_word = true;
                    loop {
                        match chars.next() {
                            Some('\'') => break,
                            Some(c) => cur.push(c),
                            None => bail!("unclosed single quote in {s:?}"),
                        }
                    }
                }
                '\\' => {
                    in_word = true;
                    cur.push(chars.next().ok_or_else(|| anyhow!("unfinished escape in {s:?}"))?);
                }
                c if c.is_whitespace() => {
                    if in_word {
                        words.push(std::mem::take(&mut cur));
                        in_word = false;
                    }
                }
                c => {
                    in_word = true;
                    cur.push(c);
                }
            }
        }
        if in_word {
            words.push(cur);
        }
        Ok(words)
    }

    /// Function signatures of the module's interface, if this CLI knows it.
    pub fn function_signatures(m: Module) -> Option<&'static [&'static str]> {
        Some(match m {
            Module::Bank => IBank::IBankCalls::SIGNATURES,
            Module::Params => IParams::IParamsCalls::SIGNATURES,
            Module::Staking => IStaking::IStakingCalls::SIGNATURES,
            Module::Governance => IGovernance::IGovernanceCalls::SIGNATURES,
            Module::Datanets => sol::IDatanets::IDatanetsCalls::SIGNATURES,
            Module::Models => sol::IModels::IModelsCalls::SIGNATURES,
            Module::Inference => sol::IInference::IInferenceCalls::SIGNATURES,
            Module::Attribution => sol::IAttribution::IAttributionCalls::SIGNATURES,
            _ => return None,
        })
    }

    /// Check that `data` decodes as a call of the module's interface.
    fn typecheck(m: Module, data: &[u8]) -> anyhow::Result<()> {
        let r = match m {
            Module::Bank => IBank::IBankCalls::abi_decode(data).map(|_| ()),
            Module::Params => IParams::IParamsCalls::abi_decode(data).map(|_| ()),
            Module::Staking => IStaking::IStakingCalls::abi_decode(data).map(|_| ()),
            Module::Governance => IGovernance::IGovernanceCalls::abi_decode(data).map(|_| ()),
            Module::Datanets => sol::IDatanets::IDatanetsCalls::abi_decode(data).map(|_| ()),
            Module::Models => sol::IModels::IModelsCalls::abi_decode(data).map(|_| ()),
            Module::Inference => sol::IInference::IInferenceCalls::abi_decode(data).map(|_| ()),
            Module::Attribution => sol::IAttribution::IAttributionCalls::abi_decode(data).map(|_| ()),
            _ => Ok(()),
        };
        r.map_err(|e| anyhow!("encoded call does not decode: {e}"))
    }

    /// `MODULE.FUNCTION ARG ...` → (target, calldata, signature).
    pub fn encode_call_text(text: &str) -> anyhow::Result<(Address, Vec<u8>, &'static str)> {
        let words = split_words(text)?;
        let (head, args) = words.split_first().ok_or_else(|| anyhow!("empty --call"))?;
        let (module, function) = head
            .split_once('.')
            .ok_or_else(|| anyhow!("--call {text:?}: start with MODULE.FUNCTION, e.g. params.set"))?;
        let m = Module::from_name(module).ok_or_else(|| anyhow!("unknown module {module:?}"))?;
        let sigs = function_signatures(m)
            .ok_or_else(|| anyhow!("module {module} has no interface in this CLI; use --raw ADDRESS:0xCALLDATA"))?;
        let named: Vec<&'static str> =
            sigs.iter().copied().filter(|s| s.split_once('(').map(|(n, _)| n) == Some(function)).collect();
        if named.is_empty() {
            let mut all: Vec<&str> = sigs.to_vec();
            all.sort();
            bail!("{module} has no function {function:?}; it has:\n  {}", all.join("\n  "));
        }
        let mut last_err = None;
        for sig in &named {
            let (_, types) = split_signature(sig)?;
            if types.len() != args.len() {
                last_err = Some(anyhow!("{module}.{sig} takes {} arguments, got {}", types.len(), args.len()));
                continue;
            }
            let vals = types
                .iter()
                .zip(args)
                .enumerate()
                .map(|(i, (t, a))| parse_arg(t, a).map_err(|e| anyhow!("{module}.{sig} argument {}: {e}", i + 1)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let mut data = keccak256(sig.as_bytes())[..4].to_vec();
            data.extend(encode(&vals));
            typecheck(m, &data)?;
            return Ok((m.address(), data, sig));
        }
        Err(last_err.unwrap_or_else(|| anyhow!("no matching signature")))
    }

    /// A call to a system contract as `module.function(args)`, or hex if unknown.
    pub fn describe_call(target: &Address, data: &[u8]) -> String {
        let Some(m) = Module::from_address(target) else {
            return format!("{}: 0x{}", target.to_checksum(None), hex::encode(data));
        };
        let known = data.get(..4).and_then(|sel| {
            let sel: [u8; 4] = sel.try_into().ok()?;
            let sig = match m {
                Module::Bank => IBank::IBankCalls::signature_by_selector(sel),
                Module::Params => IParams::IParamsCalls::signature_by_selector(sel),
                Module::Staking => IStaking::IStakingCalls::signature_by_selector(sel),
                Module::Governance => IGovernance::IGovernanceCalls::signature_by_selector(sel),
                Module::Datanets => sol::IDatanets::IDatanetsCalls::signature_by_selector(sel),
                Module::Models => sol::IModels::IModelsCalls::signature_by_selector(sel),
                Module::Inference => sol::IInference::IInferenceCalls::signature_by_selector(sel),
                Module::Attribution => sol::IAttribution::IAttributionCalls::signature_by_selector(sel),
                _ => None,
            }?;
            let (name, types) = split_signature(sig).ok()?;
            let vals = decode(&types, &data[4..]).ok()?;
            Some(format!("{}.{name}({})", m.name(), vals.iter().map(fmt_val).collect::<Vec<_>>().join(", ")))
        });
        known.unwrap_or_else(|| format!("{}: 0x{}", m.name(), hex::encode(data)))
    }

    /// Declares the field names of every custom error, checked against the
    /// `sol!` structs at compile time (a renamed or missing field fails to build).
    macro_rules! error_fields {
        ($($($p:ident)::+ { $($f:ident),* });* $(;)?) => {
            const ERROR_FIELDS: &[(&str, &[&str])] = &[
                $( (<$($p)::+ as SolError>::SIGNATURE, &[$(stringify!($f)),*]) ),*
            ];
            #[allow(dead_code, unused_variables, clippy::redundant_pattern)]
            fn _error_fields_are_the_structs_fields() {
                $( let _ = |e: $($p)::+| { let $($p)::+ { $($f),* } = e; }; )*
            }
            /// The shared errors (declared outside any interface).
            const SHARED_ERRORS: &[([u8; 4], &str)] = &[
                (<sol::Unauthorized as SolError>::SELECTOR, <sol::Unauthorized as SolError>::SIGNATURE),
                (<sol::UnknownFunction as SolError>::SELECTOR, <sol::UnknownFunction as SolError>::SIGNATURE),
                (<sol::InvalidArguments as SolError>::SELECTOR, <sol::InvalidArguments as SolError>::SIGNATURE),
                (<sol::NonPayable as SolError>::SELECTOR, <sol::NonPayable as SolError>::SIGNATURE),
                (<sol::OutOfGas as SolError>::SELECTOR, <sol::OutOfGas as SolError>::SIGNATURE),
                (<sol::InsufficientBalance as SolError>::SELECTOR, <sol::InsufficientBalance as SolError>::SIGNATURE),
                (<sol::Overflow as SolError>::SELECTOR, <sol::Overflow as SolError>::SIGNATURE),
            ];
        };
    }

    error_fields! {
        sol::Unauthorized { caller };
        sol::UnknownFunction { selector };
        sol::InvalidArguments {};
        sol::NonPayable {};
        sol::OutOfGas { required, available };
        sol::InsufficientBalance { available, required };
        sol::Overflow {};
        IParams::UnknownParam { name };
        IParams::ParamOutOfRange { name, value, min, max };
        IStaking::NotOperator { account };
        IStaking::AlreadyRegistered { operator };
        IStaking::BelowMinimumBond { amount, minimum };
        IStaking::InsufficientStake { available, requested };
        IStaking::OperatorJailed { operator, until };
        IStaking::NotJailed { operator };
        IStaking::UnknownRole { role };
        IStaking::UnknownPool { pool };
        IStaking::InvalidKey {};
        IStaking::InvalidFraction { fractionPpm };
        IStaking::TooManyUnbondings { max };
        IStaking::ValueMismatch { expected, sent };
        IGovernance::BelowProposalThreshold { power, threshold };
        IGovernance::DepositMismatch { required, sent };
        IGovernance::EmptyProposal {};
        IGovernance::TooManyCalls { max };
        IGovernance::TargetNotSystem { target };
        IGovernance::UnknownProposal { id };
        IGovernance::VotingClosed { id, voteStart, voteEnd, height };
        IGovernance::AlreadyVoted { id, voter };
        IGovernance::NoVotingPower { voter };
        IGovernance::InvalidSupport { support };
        IGovernance::NotQueued { id, state };
        IGovernance::TimelockNotExpired { id, eta, height };
        IGovernance::NotProposer { caller };
        IGovernance::VotingStarted { id };
        IGovernance::ProposalCallFailed { index, reason };
        IGovernance::TooManyOpenProposals { max };
        sol::IModels::UnknownModel { id };
        sol::IModels::NotOwner { caller };
        sol::IModels::InvalidTransition { id, from, to };
        sol::IModels::InvalidModel { reason };
        sol::IModels::UnknownDatanetVersion { datanetId, version };
        sol::IModels::VersionClosed { datanetId, version };
        sol::IModels::NonCommercialLicence { datanetId, licence };
        sol::IModels::AlreadyRetired { id };
    }

    fn error_signature(sel: [u8; 4]) -> Option<&'static str> {
        IStaking::IStakingErrors::signature_by_selector(sel)
            .or_else(|| IGovernance::IGovernanceErrors::signature_by_selector(sel))
            .or_else(|| IParams::IParamsErrors::signature_by_selector(sel))
            .or_else(|| sol::IDatanets::IDatanetsErrors::signature_by_selector(sel))
            .or_else(|| sol::IModels::IModelsErrors::signature_by_selector(sel))
            .or_else(|| sol::IInference::IInferenceErrors::signature_by_selector(sel))
            .or_else(|| sol::IAttribution::IAttributionErrors::signature_by_selector(sel))
            .or_else(|| SHARED_ERRORS.iter().find(|(s, _)| *s == sel).map(|(_, sig)| *sig))
            .or(match sel {
                [0x08, 0xc3, 0x79, 0xa0] => Some("Error(string)"),
                [0x4e, 0x48, 0x7b, 0x71] => Some("Panic(uint256)"),
                _ => None,
            })
    }

    /// Revert data as `Name(field: value, ...)`.
    pub fn decode_error(data: &[u8]) -> String {
        if data.is_empty() {
            return "reverted without data".into();
        }
        let raw = || format!("unknown error 0x{}", hex::encode(data));
        let Some(sel) = data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else { return raw() };
        let Some(sig) = error_signature(sel) else { return raw() };
        let Ok((name, types)) = split_signature(sig) else { return raw() };
        let Ok(vals) = decode(&types, &data[4..]) else {
            return format!("{name}(undecodable: 0x{})", hex::encode(data));
        };
        let names = ERROR_FIELDS.iter().find(|(s, _)| *s == sig).map(|(_, n)| *n).filter(|n| n.len() == vals.len());
        let fields: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let shown = match (name, v) {
                    // A proposal's failed call: decode the inner revert too.
                    ("ProposalCallFailed", Val::Bytes(b)) if i == 1 => decode_error(b),
                    ("NotQueued", Val::Uint(s)) if i == 1 => {
                        format!("{} ({s})", runtime::governance::state_name(s.saturating_to::<u8>()))
                    }
                    _ => fmt_val(v),
                };
                match names {
                    Some(n) => format!("{}: {shown}", n[i]),
                    None => shown,
                }
            })
            .collect();
        format!("{name}({})", fields.join(", "))
    }
}
