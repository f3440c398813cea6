//! `inference`: paying for inference, and the two phases of attribution.
//!
//! - **Escrow and allowances.** A payer deposits OPEN into its free escrow and
//!   grants each serving operator an allowance out of it (a cap, like a payment
//!   channel). Allowances are backed: the OPEN moves out of the free escrow, so
//!   two operators never spend the same OPEN. `release` asks for unspent
//!   allowance back; it stays spendable by the operator for
//!   `inference.release_delay_blocks` (settlement takes the allowance first,
//!   then the pending release), after which `completeRelease` returns it.
//! - **API keys.** The blake3 hash of a key (`httpapi::auth::api_key_hash`) binds
//!   once, to the caller; only its owner revokes it. The node resolves keys
//!   through [`InferenceRead::api_key_owner`] (or the `apiKeyOwner` view).
//! - **Endpoints.** Bonded serving operators announce a URL and the models they serve.
//! - **Settlement.** The operator settles receipts it signed with its serving
//!   key (EIP-712, [`primitives::abi::receipt_signing_hash`]), in batches, all or
//!   nothing. A receipt settles once: its nonce must exceed the last settled one
//!   of its (payer, operator). Its model must be live, or retired after it
//!   was live with the receipt issued (`issuedAt`, a block height) before the
//!   retirement and settled within `inference.retired_grace_blocks` of it; no
//!   receipt is from the future. The model must have the
//!   receipt's adapter hash and exactly its current prices: repricing a model
//!   invalidates receipts at the old prices that were not settled yet. Its cost
//!   is [`primitives::abi::receipt_cost`] (`ceil((in × priceIn + out × priceOut) / 1000)`),
//!   split by the `inference.split_*_bps` parameters, each part rounded down,
//!   the treasury taking the cost minus the other parts (so dust and any
//!   remainder go to it). The data part is held per receipt hash; a model
//!   without Datanet versions (the base model) sends it to the treasury.
//!   Settling while jailed is allowed (the payer's allowance authorised it);
//!   rotating the serving key invalidates unsettled receipts signed by the old one.
//! - **Attribution.** The settling operator posts a record's hash and credits
//!   (at most `inference.max_credits` contributions of the model's Datanet
//!   versions, weights summing to 1,000,000 ppm) before
//!   `settledAt + inference.attribution_timeout_blocks`. Credits stay pending for
//!   `inference.challenge_window_blocks`, then anyone finalizes them into
//!   per-contribution totals (`Credited` logs carry the per-inference detail;
//!   state keeps totals). Each credit is `floor(hold × weight / 1e6)`; the dust
//!   goes to the treasury at finalization.
//! - **Challenges** (the `attribution` module): while a challenge of a posted
//!   record is open its credits wait (`UnderChallenge`); a record found wrong
//!   is replaced by the fallback. A contribution flagged (duplicated,
//!   adversarial) before finalization forfeits its pending credit to the
//!   treasury (`CreditForfeited`) and earns no fallback share from then on.
//! - **Fallback.** An empty record, or none before the timeout (`expireAttribution`,
//!   anyone), splits the hold over the model's Datanet versions by their live
//!   rows (`floor(hold × rows_v / Σ rows)`) into each Datanet's reward-per-row
//!   accumulator ([`accumulator`]); contributions claim their share when they
//!   choose, so a fallback never touches every contribution.
//!   A version's part `P` over `R` live rows adds `floor(P × 1e18 / R)` per row;
//!   the version is credited `ceil(perRow × R / 1e18)` (≤ `P`), the rest goes to
//!   the treasury; claims round down, so the pool never owes more than it holds
//!   (what no claim can reach, below one base unit per deposit and contribution,
//!   stays in it). A contribution's weight is its live rows now (`rowCount −
//!   tombstoned`), never more than it had in the version, so tombstones only
//!   leave unclaimable remainders.
//! - **Claims.** The contributor claims its finalized credits plus its fallback share.
//! - **Parameters** are read when used: a changed window, timeout or split applies
//!   to holds already open. If the five split parameters sum to more than 10,000,
//!   settlement applies their defaults (30/40/15/10/5 %).
//!
//! Everything the module holds is in its bank balance and reported by kind in
//! [`InferenceHoldings`] (the supply report's `inference` term).

pub mod accumulator;
pub mod records;
pub mod state_key;
pub mod view;

use std::collections::BTreeMap;

use alloy_primitives::U256;
use alloy_sol_types::SolCall;
use primitives::abi::IInference::{self, IInferenceCalls};
use primitives::abi::{
    AttributionHold, Credit, Overflow, ServingEndpoint, receipt_cost, receipt_hash, receipt_signing_hash,
    recover_receipt_signer,
};
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, B256, Bytes, ModelId};

use crate::bank::BankWrite;
use crate::codec::store;
use crate::context::{CallCtx, CallFail};
use crate::datanets::{APPROVED, DatanetsRead};
use crate::models::{LIVE, ModelRecord, ModelsRead, RETIRED};
use crate::params::{self, ParamSpec, ParamsRead};
use crate::staking::{ROLE_SERVING, StakingRead, StakingWrite};
use crate::{Overlay, revert};
pub use records::*;
pub use view::{InferenceRead, InferenceWrite};

pub const ADDRESS: Address = Module::Inference.address();
/// Most receipts in one `settle`.
pub const MAX_RECEIPTS: usize = 256;
/// Most registered endpoints (the `endpoints()` view returns them all).
pub const MAX_ENDPOINTS: usize = 256;
/// Most models one endpoint lists.
pub const MAX_ENDPOINT_MODELS: usize = 64;
/// Longest endpoint URL (bytes).
pub const MAX_URL: usize = 256;
/// Credit weights are parts per million.
pub const PPM: u32 = 1_000_000;

/// Gas of a fallback payout (expiry, or an empty record): priced for a model
/// with up to 8 Datanet versions, each a Fenwick update of at most 32 nodes.
const FALLBACK_GAS: u64 = 400_000;

/// Gas charged on top of intrinsic gas (which already prices calldata by the byte).
///
/// | function | gas |
/// |---|---|
/// | `deposit`, `withdraw` | 30,000 |
/// | `allow`, `release`, `completeRelease` | 40,000 |
/// | `bindApiKey`, `revokeApiKey` | 25,000 |
/// | `registerEndpoint` | 60,000 + 5,000 per model + 20 per URL byte |
/// | `removeEndpoint` | 40,000 |
/// | `settle` | 50,000 + 45,000 per receipt (signature recovery ≈ 20,000, model, allowance and hold) |
/// | `postAttribution` | 50,000 + 20,000 per credit; 400,000 with no credits (the fallback) |
/// | `finalizeAttribution` | 680,000 (40,000 + 20,000 per credit, priced at the default 32 credits) |
/// | `expireAttribution` | 400,000 (the fallback, priced for up to 8 Datanet versions) |
/// | `claim` | 100,000 (a Fenwick query of at most 32 nodes) |
/// | views | 5,000 |
pub fn gas_cost(call: &IInferenceCalls) -> u64 {
    use IInferenceCalls::*;
    match call {
        deposit(_) | withdraw(_) => 30_000,
        allow(_) | release(_) | completeRelease(_) => 40_000,
        bindApiKey(_) | revokeApiKey(_) => 25_000,
        registerEndpoint(c) => 60_000 + 5_000 * c.modelIds.len() as u64 + 20 * c.url.len() as u64,
        removeEndpoint(_) => 40_000,
        settle(c) => 50_000 + 45_000 * c.receipts.len() as u64,
        postAttribution(c) if c.credits.is_empty() => FALLBACK_GAS,
        postAttribution(c) => 50_000 + 20_000 * c.credits.len() as u64,
        finalizeAttribution(_) => 40_000 + 20_000 * 32,
        expireAttribution(_) => FALLBACK_GAS,
        claim(_) => 100_000,
        escrowOf(_) | allowance(_) | apiKeyOwner(_) | endpoint(_) | endpoints(_) | hold(_) | pendingCredits(_)
        | claimable(_) | accrued(_) | versionFallback(_) | holdings(_) | receiptDigest(_) => 5_000,
    }
}

pub fn decode(input: &[u8]) -> Result<IInferenceCalls, CallFail> {
    crate::executor::decode_calls::<IInferenceCalls>(input)
}

fn overflow() -> CallFail {
    revert(Overflow {})
}

fn add(a: Amount, b: u128) -> Result<Amount, CallFail> {
    a.checked_add(Amount(b)).map_err(|_| overflow())
}

/// Totals are kept in step with every record, so a shortfall is a bug; it
/// reverts the call rather than halting the chain.
fn sub(a: Amount, b: u128) -> Result<Amount, CallFail> {
    a.checked_sub(Amount(b)).map_err(|_| overflow())
}

fn blocks(st: &Overlay, spec: &ParamSpec) -> Result<u64, CallFail> {
    Ok(u64::try_from(st.param(spec)?).unwrap_or(u64::MAX))
}

fn put_escrow(st: &mut Overlay, payer: &Address, a: Amount) {
    let v = if a == Amount::ZERO { None } else { Some(a.to_be_bytes().to_vec()) };
    st.put(state_key::escrow(payer), v);
}

fn put_amount(st: &mut Overlay, key: Vec<u8>, a: Amount) {
    st.put(key, Some(a.to_be_bytes().to_vec()));
}

fn put_holdings(st: &mut Overlay, t: &InferenceHoldings) {
    st.put(state_key::totals(), Some(t.encode()));
}

/// `operator` as a serving operator; `active` also requires it unjailed with at least the minimum self bond.
fn serving_operator(
    st: &Overlay,
    operator: &Address,
    active: bool,
) -> Result<crate::staking::OperatorRecord, CallFail> {
    let not = || revert(IInference::NotServingOperator { operator: *operator });
    let op = st.operator(operator)?.filter(|o| o.role == ROLE_SERVING).ok_or_else(not)?;
    if active && (op.jailed || op.selfBond < U256::from(st.param(&params::STAKING_MIN_SELF_BOND)?)) {
        return Err(not());
    }
    Ok(op)
}

/// The fee split in basis points: owner, data, serving, stakers (the treasury takes the rest).
/// Parameters that sum to more than 10,000 are not applied: the defaults are.
fn split_bps(st: &Overlay) -> Result<[u128; 4], CallFail> {
    let specs = [
        params::INFERENCE_SPLIT_OWNER_BPS,
        params::INFERENCE_SPLIT_DATA_BPS,
        params::INFERENCE_SPLIT_SERVING_BPS,
        params::INFERENCE_SPLIT_STAKERS_BPS,
        params::INFERENCE_SPLIT_TREASURY_BPS,
    ];
    let mut v = [0u128; 5];
    for (i, s) in specs.iter().enumerate() {
        v[i] = st.param(s)?;
    }
    if v.iter().sum::<u128>() > 10_000 {
        for (i, s) in specs.iter().enumerate() {
            v[i] = s.default;
        }
    }
    Ok([v[0], v[1], v[2], v[3]])
}

fn get_hold(st: &Overlay, h: &B256) -> Result<HoldRecord, CallFail> {
    st.hold(h)?.ok_or_else(|| revert(IInference::UnknownReceipt { receiptHash: *h }))
}

fn get_model(st: &Overlay, id: u64) -> Result<ModelRecord, CallFail> {
    st.model(ModelId(id))?.ok_or_else(|| revert(IInference::UnknownModel { modelId: id }))
}

fn bad_credits(reason: String) -> CallFail {
    revert(IInference::BadCredits { reason })
}

/// Check a record's credits against the model and compute each amount,
/// `floor(hold × weight / 1e6)`.
fn check_credits(
    st: &Overlay,
    model: &ModelRecord,
    hold: u128,
    credits: &[Credit],
) -> Result<PendingCredits, CallFail> {
    let max = st.param(&params::INFERENCE_MAX_CREDITS)?;
    if credits.len() as u128 > max {
        return Err(bad_credits(format!("at most {max} credits")));
    }
    let mut sum = 0u64;
    let mut pc = PendingCredits { contributionIds: vec![], amounts: vec![] };
    for (i, c) in credits.iter().enumerate() {
        let id = c.contributionId;
        if c.weightPpm == 0 {
            return Err(bad_credits(format!("contribution {id} has zero weight")));
        }
        if credits[..i].iter().any(|p| p.contributionId == id) {
            return Err(bad_credits(format!("contribution {id} is credited twice")));
        }
        let rec = st.contribution(id)?.ok_or_else(|| bad_credits(format!("unknown contribution {id}")))?;
        let in_model = rec.status == APPROVED
            && model
                .datanetIds
                .iter()
                .zip(&model.datanetVersions)
                .any(|(d, v)| *d == rec.datanetId && rec.version <= *v);
        if !in_model {
            return Err(bad_credits(format!("contribution {id} is not approved in the model's Datanet versions")));
        }
        sum += c.weightPpm as u64;
        pc.contributionIds.push(id);
        pc.amounts.push(Amount(hold).mul_div(c.weightPpm as u128, PPM as u128).map_err(|_| overflow())?.0);
    }
    if sum != PPM as u64 {
        return Err(bad_credits(format!("weights sum to {sum}, not 1000000")));
    }
    Ok(pc)
}

/// Pay a hold (status OPEN or POSTED, counted in that bucket of `t`) to the
/// reward-per-row accumulators of its model's Datanet versions, pro rata to
/// their live rows; what rounding leaves goes to the treasury. Sets the status.
fn pay_fallback(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    t: &mut InferenceHoldings,
    h: &B256,
    hold: &mut HoldRecord,
) -> Result<(), CallFail> {
    let model = get_model(st, hold.modelId)?;
    let mut rows = Vec::with_capacity(model.datanetIds.len());
    for (d, v) in model.datanetIds.iter().zip(&model.datanetVersions) {
        let r = if (1..=accumulator::CAPACITY).contains(v) {
            st.version(*d, *v)?.map(|x| x.liveRows).unwrap_or(0)
        } else {
            0
        };
        rows.push(r);
    }
    let total_rows: u128 = rows.iter().map(|r| *r as u128).sum();
    let mut paid = 0u128;
    if total_rows > 0 {
        for (i, (d, v)) in model.datanetIds.iter().zip(&model.datanetVersions).enumerate() {
            if rows[i] == 0 {
                continue;
            }
            let r = U256::from(rows[i]);
            let part = U256::from(hold.amount) * r / U256::from(total_rows);
            let per_row = part * accumulator::scale() / r;
            if per_row.is_zero() {
                continue;
            }
            // What the version's contributions can ever claim of this deposit, rounded
            // up (never above `part`); claims round down, so the pool stays solvent.
            let credited = (per_row * r).div_ceil(accumulator::scale()).to::<u128>();
            accumulator::add(st, *d, *v, per_row)?;
            let key = state_key::version_fallback(*d, *v);
            let total = add(st.version_fallback(*d, *v)?, credited)?;
            put_amount(st, key, total);
            paid += credited;
            ctx.emit(
                ADDRESS,
                &IInference::FallbackPaid { receiptHash: *h, datanetId: *d, version: *v, amount: credited },
            );
        }
    }
    st.transfer(&ADDRESS, &TREASURY, Amount(hold.amount - paid))?;
    match hold.status {
        OPEN => t.open_holds = sub(t.open_holds, hold.amount)?,
        _ => t.pending_attributions = sub(t.pending_attributions, hold.amount)?,
    }
    t.fallback_pool = add(t.fallback_pool, paid)?;
    hold.status = FALLBACK;
    Ok(())
}

impl InferenceWrite for Overlay<'_> {
    fn replace_pending(
        &mut self,
        ctx: &mut CallCtx,
        receipt_hash: &B256,
        record_hash: B256,
        credits: &[Credit],
    ) -> Result<(), CallFail> {
        let mut hold = get_hold(self, receipt_hash)?;
        if hold.status != POSTED {
            return Err(revert(IInference::HoldClosed { receiptHash: *receipt_hash, status: hold.status }));
        }
        // Check before writing or logging anything, so a refusal leaves no trace
        // even if the caller does not revert.
        let pc = if credits.is_empty() {
            None
        } else {
            let model = get_model(self, hold.modelId)?;
            Some(check_credits(self, &model, hold.amount, credits)?)
        };
        let mut t = self.holdings()?;
        hold.recordHash = record_hash;
        let posted = IInference::AttributionPosted {
            receiptHash: *receipt_hash,
            recordHash: record_hash,
            credits: credits.len() as u32,
        };
        ctx.emit(ADDRESS, &posted);
        match pc {
            Some(pc) => store(self, state_key::pending_credits(receipt_hash), &pc),
            None => {
                self.put(state_key::pending_credits(receipt_hash), None);
                pay_fallback(self, ctx, &mut t, receipt_hash, &mut hold)?;
            }
        }
        store(self, state_key::hold(receipt_hash), &hold);
        put_holdings(self, &t);
        Ok(())
    }
}

fn endpoint_info(operator: Address, r: EndpointRecord) -> ServingEndpoint {
    ServingEndpoint { operator, url: r.url, modelIds: r.modelIds, updatedAt: r.updatedAt }
}

pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IInferenceCalls) -> Result<Bytes, CallFail> {
    use IInferenceCalls as C;
    let height = ctx.env.number;
    let sender = ctx.sender;
    let mut t = st.holdings()?;
    let before = t;
    let out: Bytes = match call {
        C::deposit(_) => {
            let v = ctx.value;
            if v == Amount::ZERO {
                return Err(revert(IInference::ZeroAmount {}));
            }
            // The value already sits at the module's address.
            let e = add(st.escrow(&sender)?, v.0)?;
            put_escrow(st, &sender, e);
            t.free_escrow = add(t.free_escrow, v.0)?;
            ctx.emit(ADDRESS, &IInference::EscrowDeposited { payer: sender, amount: v.0 });
            IInference::depositCall::abi_encode_returns(&IInference::depositReturn {}).into()
        }
        C::withdraw(c) => {
            let e = st.escrow(&sender)?;
            if c.amount == 0 {
                return Err(revert(IInference::ZeroAmount {}));
            }
            if c.amount > e.0 {
                return Err(revert(IInference::InsufficientEscrow { available: e.0, required: c.amount }));
            }
            put_escrow(st, &sender, Amount(e.0 - c.amount));
            t.free_escrow = sub(t.free_escrow, c.amount)?;
            st.transfer(&ADDRESS, &sender, Amount(c.amount))?;
            ctx.emit(ADDRESS, &IInference::EscrowWithdrawn { payer: sender, amount: c.amount });
            IInference::withdrawCall::abi_encode_returns(&IInference::withdrawReturn {}).into()
        }
        C::allow(c) => {
            serving_operator(st, &c.operator, true)?;
            let e = st.escrow(&sender)?;
            if c.amount == 0 {
                return Err(revert(IInference::ZeroAmount {}));
            }
            if c.amount > e.0 {
                return Err(revert(IInference::InsufficientEscrow { available: e.0, required: c.amount }));
            }
            put_escrow(st, &sender, Amount(e.0 - c.amount));
            let mut al = st.allowance(&sender, &c.operator)?;
            al.remaining = add(Amount(al.remaining), c.amount)?.0;
            store(st, state_key::allowance(&sender, &c.operator), &al);
            t.free_escrow = sub(t.free_escrow, c.amount)?;
            t.allowances = add(t.allowances, c.amount)?;
            ctx.emit(
                ADDRESS,
                &IInference::AllowanceGranted {
                    payer: sender,
                    operator: c.operator,
                    amount: c.amount,
                    remaining: al.remaining,
                },
            );
            IInference::allowCall::abi_encode_returns(&IInference::allowReturn {}).into()
        }
        C::release(c) => {
            let mut al = st.allowance(&sender, &c.operator)?;
            if c.amount == 0 {
                return Err(revert(IInference::ZeroAmount {}));
            }
            if c.amount > al.remaining {
                return Err(revert(IInference::InsufficientEscrow { available: al.remaining, required: c.amount }));
            }
            // A further request adds to the pending amount and restarts its delay.
            let release_at = height.saturating_add(blocks(st, &params::INFERENCE_RELEASE_DELAY_BLOCKS)?);
            al.remaining -= c.amount;
            al.pendingRelease += c.amount;
            al.releaseAt = release_at;
            store(st, state_key::allowance(&sender, &c.operator), &al);
            t.allowances = sub(t.allowances, c.amount)?;
            t.pending_releases = add(t.pending_releases, c.amount)?;
            ctx.emit(
                ADDRESS,
                &IInference::ReleaseRequested {
                    payer: sender,
                    operator: c.operator,
                    amount: c.amount,
                    releaseAt: release_at,
                },
            );
            IInference::releaseCall::abi_encode_returns(&IInference::releaseReturn {}).into()
        }
        C::completeRelease(c) => {
            let mut al = st.allowance(&sender, &c.operator)?;
            if al.pendingRelease == 0 {
                return Err(revert(IInference::NothingToRelease { payer: sender, operator: c.operator }));
            }
            if height < al.releaseAt {
                return Err(revert(IInference::ReleaseNotReady { releaseAt: al.releaseAt, height }));
            }
            let amount = std::mem::take(&mut al.pendingRelease);
            al.releaseAt = 0;
            store(st, state_key::allowance(&sender, &c.operator), &al);
            let e = add(st.escrow(&sender)?, amount)?;
            put_escrow(st, &sender, e);
            t.pending_releases = sub(t.pending_releases, amount)?;
            t.free_escrow = add(t.free_escrow, amount)?;
            ctx.emit(ADDRESS, &IInference::ReleaseCompleted { payer: sender, operator: c.operator, amount });
            IInference::completeReleaseCall::abi_encode_returns(&IInference::completeReleaseReturn {}).into()
        }
        C::bindApiKey(c) => {
            if c.keyHash == B256::ZERO {
                return Err(revert(IInference::BadKeyHash {}));
            }
            if let Some(owner) = st.api_key_owner(&c.keyHash)? {
                return Err(revert(IInference::KeyTaken { keyHash: c.keyHash, owner }));
            }
            st.put(state_key::api_key(&c.keyHash), Some(sender.to_vec()));
            ctx.emit(ADDRESS, &IInference::ApiKeyBound { keyHash: c.keyHash, owner: sender });
            IInference::bindApiKeyCall::abi_encode_returns(&IInference::bindApiKeyReturn {}).into()
        }
        C::revokeApiKey(c) => {
            if st.api_key_owner(&c.keyHash)? != Some(sender) {
                return Err(revert(IInference::NotKeyOwner { caller: sender }));
            }
            st.put(state_key::api_key(&c.keyHash), None);
            ctx.emit(ADDRESS, &IInference::ApiKeyRevoked { keyHash: c.keyHash, owner: sender });
            IInference::revokeApiKeyCall::abi_encode_returns(&IInference::revokeApiKeyReturn {}).into()
        }
        C::registerEndpoint(c) => {
            serving_operator(st, &sender, true)?;
            let invalid = |r: String| revert(IInference::InvalidEndpoint { reason: r });
            let url = c.url.trim();
            if url.is_empty() || url.len() > MAX_URL || !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("the url must be an http(s) URL of at most 256 bytes".into()));
            }
            if c.modelIds.is_empty() || c.modelIds.len() > MAX_ENDPOINT_MODELS {
                return Err(invalid("1 to 64 models".into()));
            }
            for (i, id) in c.modelIds.iter().enumerate() {
                if c.modelIds[..i].contains(id) {
                    return Err(invalid(format!("model m{id} is named twice")));
                }
                if st.model(ModelId(*id))?.is_none() {
                    return Err(invalid(format!("unknown model m{id}")));
                }
            }
            let mut list = st.endpoint_operators()?;
            if !list.contains(&sender) {
                if list.len() >= MAX_ENDPOINTS {
                    return Err(revert(IInference::TooManyEndpoints { max: U256::from(MAX_ENDPOINTS) }));
                }
                list.push(sender);
                store(st, state_key::endpoints(), &list);
            }
            let rec = EndpointRecord { url: url.to_string(), modelIds: c.modelIds.clone(), updatedAt: height };
            store(st, state_key::endpoint(&sender), &rec);
            ctx.emit(ADDRESS, &IInference::EndpointRegistered { operator: sender, url: rec.url, modelIds: c.modelIds });
            IInference::registerEndpointCall::abi_encode_returns(&IInference::registerEndpointReturn {}).into()
        }
        C::removeEndpoint(_) => {
            if st.endpoint(&sender)?.is_none() {
                return Err(revert(IInference::UnknownEndpoint { operator: sender }));
            }
            let mut list = st.endpoint_operators()?;
            list.retain(|a| *a != sender);
            store(st, state_key::endpoints(), &list);
            st.put(state_key::endpoint(&sender), None);
            ctx.emit(ADDRESS, &IInference::EndpointRemoved { operator: sender });
            IInference::removeEndpointCall::abi_encode_returns(&IInference::removeEndpointReturn {}).into()
        }
        C::settle(c) => {
            let n = c.receipts.len();
            let batch = |r: &str| revert(IInference::InvalidBatch { reason: r.into() });
            if n == 0 || n > MAX_RECEIPTS {
                return Err(batch("1 to 256 receipts"));
            }
            if c.signatures.len() != n {
                return Err(batch("one signature per receipt"));
            }
            let op = serving_operator(st, &sender, false)?;
            let [owner_bps, data_bps, serving_bps, stakers_bps] = split_bps(st)?;
            let mut owners: BTreeMap<Address, u128> = BTreeMap::new();
            let (mut serving, mut stakers, mut treasury) = (0u128, 0u128, 0u128);
            for (i, (r, sig)) in c.receipts.iter().zip(&c.signatures).enumerate() {
                let index = U256::from(i);
                if r.operator != sender {
                    return Err(revert(IInference::NotReceiptOperator { index, operator: r.operator }));
                }
                let signer = recover_receipt_signer(r, ctx.env.chain_id, sig);
                if op.servingKey == Address::ZERO || signer != Some(op.servingKey) {
                    return Err(revert(IInference::BadSignature { index }));
                }
                let mut al = st.allowance(&r.payer, &sender)?;
                if r.nonce <= al.lastNonce {
                    return Err(revert(IInference::NonceReused {
                        payer: r.payer,
                        nonce: r.nonce,
                        lastNonce: al.lastNonce,
                    }));
                }
                let model = get_model(st, r.modelId)?;
                let out_of_time = |not_after: u64| {
                    revert(IInference::ReceiptOutOfTime { index, issuedAt: r.issuedAt, notAfter: not_after })
                };
                if r.issuedAt > height {
                    return Err(out_of_time(height));
                }
                match (model.state, st.retired_at(ModelId(r.modelId))?) {
                    (LIVE, _) => {}
                    (RETIRED, Some(retired)) => {
                        // Issued while live, settled within the grace period.
                        let grace = blocks(st, &params::INFERENCE_RETIRED_GRACE_BLOCKS)?;
                        if r.issuedAt > retired || height > retired.saturating_add(grace) {
                            return Err(out_of_time(retired));
                        }
                    }
                    _ => {
                        return Err(revert(IInference::ModelNotServable { modelId: r.modelId, state: model.state }));
                    }
                }
                if model.adapterHash != r.adapterHash {
                    return Err(revert(IInference::AdapterMismatch {
                        modelId: r.modelId,
                        expected: model.adapterHash,
                        got: r.adapterHash,
                    }));
                }
                if (model.priceInPer1k, model.priceOutPer1k) != (r.priceInPer1k, r.priceOutPer1k) {
                    return Err(revert(IInference::PriceMismatch {
                        modelId: r.modelId,
                        priceInPer1k: model.priceInPer1k,
                        priceOutPer1k: model.priceOutPer1k,
                    }));
                }
                let cost = receipt_cost(r).ok_or_else(overflow)?;
                let available = al.remaining.saturating_add(al.pendingRelease);
                if cost > available {
                    return Err(revert(IInference::AllowanceExceeded {
                        payer: r.payer,
                        operator: sender,
                        available,
                        required: cost,
                    }));
                }
                // The allowance first, then the pending release.
                let from_remaining = cost.min(al.remaining);
                let from_pending = cost - from_remaining;
                al.remaining -= from_remaining;
                al.pendingRelease -= from_pending;
                if al.pendingRelease == 0 {
                    al.releaseAt = 0;
                }
                al.lastNonce = r.nonce;
                store(st, state_key::allowance(&r.payer, &sender), &al);
                t.allowances = sub(t.allowances, from_remaining)?;
                t.pending_releases = sub(t.pending_releases, from_pending)?;

                let part = |bps: u128| Amount(cost).mul_div(bps, 10_000).map(|a| a.0).map_err(|_| overflow());
                let owner_part = part(owner_bps)?;
                let mut data_part = part(data_bps)?;
                let serving_part = part(serving_bps)?;
                let stakers_part = part(stakers_bps)?;
                // Each part is rounded down and the four sum to at most the cost.
                let mut treasury_part = cost - owner_part - data_part - serving_part - stakers_part;
                if model.datanetIds.is_empty() {
                    treasury_part += data_part;
                    data_part = 0;
                }
                let h = receipt_hash(r);
                if data_part > 0 {
                    if st.hold(&h)?.is_some() {
                        // Unreachable while nonces are strictly increasing; kept as a guard.
                        return Err(batch("receipt already settled"));
                    }
                    let hold = HoldRecord {
                        amount: data_part,
                        modelId: r.modelId,
                        operator: sender,
                        settledAt: height,
                        status: OPEN,
                        postedAt: 0,
                        recordHash: B256::ZERO,
                    };
                    store(st, state_key::hold(&h), &hold);
                    t.open_holds = add(t.open_holds, data_part)?;
                }
                *owners.entry(model.owner).or_default() += owner_part;
                serving += serving_part;
                stakers += stakers_part;
                treasury += treasury_part;
                ctx.emit(
                    ADDRESS,
                    &IInference::ReceiptSettled {
                        receiptHash: h,
                        payer: r.payer,
                        operator: sender,
                        modelId: r.modelId,
                        cost,
                        dataShare: data_part,
                    },
                );
            }
            for (owner, amount) in owners {
                st.transfer(&ADDRESS, &owner, Amount(amount))?;
            }
            st.transfer(&ADDRESS, &sender, Amount(serving))?;
            st.transfer(&ADDRESS, &TREASURY, Amount(treasury))?;
            if stakers > 0 {
                st.deposit_rewards(ctx, &ADDRESS, Amount(stakers), "serving")?;
            }
            IInference::settleCall::abi_encode_returns(&IInference::settleReturn {}).into()
        }
        C::postAttribution(c) => {
            let h = c.receiptHash;
            let mut hold = get_hold(st, &h)?;
            if hold.operator != sender {
                return Err(revert(IInference::NotSettlingOperator { caller: sender }));
            }
            if hold.status != OPEN {
                return Err(revert(IInference::HoldClosed { receiptHash: h, status: hold.status }));
            }
            let deadline = hold.settledAt.saturating_add(blocks(st, &params::INFERENCE_ATTRIBUTION_TIMEOUT_BLOCKS)?);
            if height >= deadline {
                return Err(revert(IInference::AttributionTimedOut { receiptHash: h, deadline }));
            }
            hold.recordHash = c.recordHash;
            ctx.emit(
                ADDRESS,
                &IInference::AttributionPosted {
                    receiptHash: h,
                    recordHash: c.recordHash,
                    credits: c.credits.len() as u32,
                },
            );
            if c.credits.is_empty() {
                pay_fallback(st, ctx, &mut t, &h, &mut hold)?;
            } else {
                let model = get_model(st, hold.modelId)?;
                let pc = check_credits(st, &model, hold.amount, &c.credits)?;
                store(st, state_key::pending_credits(&h), &pc);
                hold.status = POSTED;
                hold.postedAt = height;
                t.open_holds = sub(t.open_holds, hold.amount)?;
                t.pending_attributions = add(t.pending_attributions, hold.amount)?;
            }
            store(st, state_key::hold(&h), &hold);
            IInference::postAttributionCall::abi_encode_returns(&IInference::postAttributionReturn {}).into()
        }
        C::finalizeAttribution(c) => {
            let h = c.receiptHash;
            let mut hold = get_hold(st, &h)?;
            if hold.status != POSTED {
                return Err(revert(IInference::HoldClosed { receiptHash: h, status: hold.status }));
            }
            let until = hold.postedAt.saturating_add(blocks(st, &params::INFERENCE_CHALLENGE_WINDOW_BLOCKS)?);
            if height < until {
                return Err(revert(IInference::ChallengeWindowOpen { receiptHash: h, until }));
            }
            if crate::attribution::AttributionRead::under_challenge(&*st, &h)? {
                return Err(revert(IInference::UnderChallenge { receiptHash: h }));
            }
            let pc = st.pending_credits(&h)?.unwrap_or(PendingCredits { contributionIds: vec![], amounts: vec![] });
            let mut credited = 0u128;
            for (id, amount) in pc.contributionIds.iter().zip(&pc.amounts) {
                // A contribution flagged (duplicated, adversarial) since the record was
                // posted stops earning: its credit goes to the treasury with the dust.
                if st.contribution(*id)?.is_none_or(|c| c.status != APPROVED) {
                    ctx.emit(
                        ADDRESS,
                        &IInference::CreditForfeited { receiptHash: h, contributionId: *id, amount: *amount },
                    );
                    continue;
                }
                let mut a = st.contribution_account(*id)?;
                a.accrued = add(Amount(a.accrued), *amount)?.0;
                a.totalCredited = add(Amount(a.totalCredited), *amount)?.0;
                store(st, state_key::contribution(*id), &a);
                credited += amount;
                ctx.emit(ADDRESS, &IInference::Credited { receiptHash: h, contributionId: *id, amount: *amount });
            }
            let dust = hold.amount - credited;
            st.transfer(&ADDRESS, &TREASURY, Amount(dust))?;
            st.put(state_key::pending_credits(&h), None);
            t.pending_attributions = sub(t.pending_attributions, hold.amount)?;
            t.accrued_credits = add(t.accrued_credits, credited)?;
            hold.status = FINALIZED;
            store(st, state_key::hold(&h), &hold);
            ctx.emit(ADDRESS, &IInference::AttributionFinalized { receiptHash: h, credited, dust });
            IInference::finalizeAttributionCall::abi_encode_returns(&IInference::finalizeAttributionReturn {}).into()
        }
        C::expireAttribution(c) => {
            let h = c.receiptHash;
            let mut hold = get_hold(st, &h)?;
            if hold.status != OPEN {
                return Err(revert(IInference::HoldClosed { receiptHash: h, status: hold.status }));
            }
            let deadline = hold.settledAt.saturating_add(blocks(st, &params::INFERENCE_ATTRIBUTION_TIMEOUT_BLOCKS)?);
            if height < deadline {
                return Err(revert(IInference::NotTimedOut { receiptHash: h, deadline }));
            }
            pay_fallback(st, ctx, &mut t, &h, &mut hold)?;
            store(st, state_key::hold(&h), &hold);
            IInference::expireAttributionCall::abi_encode_returns(&IInference::expireAttributionReturn {}).into()
        }
        C::claim(c) => {
            let id = c.contributionId;
            let rec =
                st.contribution(id)?.ok_or_else(|| revert(IInference::UnknownContribution { contributionId: id }))?;
            if rec.contributor != sender {
                return Err(revert(IInference::NotContributor { caller: sender }));
            }
            let mut a = st.contribution_account(id)?;
            let (fallback, index) = st.fallback_owed(&rec, &a)?;
            let total = add(fallback, a.accrued)?.0;
            if total == 0 {
                return Err(revert(IInference::NothingToClaim { contributionId: id }));
            }
            t.accrued_credits = sub(t.accrued_credits, a.accrued)?;
            t.fallback_pool = sub(t.fallback_pool, fallback.0)?;
            a.accrued = 0;
            a.paidIndex = index;
            store(st, state_key::contribution(id), &a);
            st.transfer(&ADDRESS, &sender, Amount(total))?;
            ctx.emit(ADDRESS, &IInference::Claimed { contributionId: id, contributor: sender, amount: total });
            IInference::claimCall::abi_encode_returns(&total).into()
        }
        C::escrowOf(c) => IInference::escrowOfCall::abi_encode_returns(&st.escrow(&c.payer)?.0).into(),
        C::allowance(c) => {
            let a = st.allowance(&c.payer, &c.operator)?;
            IInference::allowanceCall::abi_encode_returns(&IInference::allowanceReturn {
                remaining: a.remaining,
                pendingRelease: a.pendingRelease,
                releaseAt: a.releaseAt,
                lastNonce: a.lastNonce,
            })
            .into()
        }
        C::apiKeyOwner(c) => {
            IInference::apiKeyOwnerCall::abi_encode_returns(&st.api_key_owner(&c.keyHash)?.unwrap_or(Address::ZERO))
                .into()
        }
        C::endpoint(c) => {
            let r = st
                .endpoint(&c.operator)?
                .ok_or_else(|| revert(IInference::UnknownEndpoint { operator: c.operator }))?;
            IInference::endpointCall::abi_encode_returns(&endpoint_info(c.operator, r)).into()
        }
        C::endpoints(_) => {
            let mut list = vec![];
            for a in st.endpoint_operators()? {
                if let Some(r) = st.endpoint(&a)? {
                    list.push(endpoint_info(a, r));
                }
            }
            IInference::endpointsCall::abi_encode_returns(&list).into()
        }
        C::hold(c) => {
            let h = get_hold(st, &c.receiptHash)?;
            IInference::holdCall::abi_encode_returns(&AttributionHold {
                amount: h.amount,
                modelId: h.modelId,
                operator: h.operator,
                settledAt: h.settledAt,
                status: h.status,
                postedAt: h.postedAt,
                recordHash: h.recordHash,
            })
            .into()
        }
        C::pendingCredits(c) => {
            let pc = st
                .pending_credits(&c.receiptHash)?
                .unwrap_or(PendingCredits { contributionIds: vec![], amounts: vec![] });
            IInference::pendingCreditsCall::abi_encode_returns(&IInference::pendingCreditsReturn {
                contributionIds: pc.contributionIds,
                amounts: pc.amounts,
            })
            .into()
        }
        C::claimable(c) => IInference::claimableCall::abi_encode_returns(&st.claimable(c.contributionId)?.0).into(),
        C::accrued(c) => {
            let a = st.contribution_account(c.contributionId)?;
            IInference::accruedCall::abi_encode_returns(&IInference::accruedReturn {
                unclaimed: a.accrued,
                total: a.totalCredited,
            })
            .into()
        }
        C::versionFallback(c) => {
            IInference::versionFallbackCall::abi_encode_returns(&st.version_fallback(c.datanetId, c.version)?.0).into()
        }
        C::holdings(_) => {
            let h = st.holdings()?;
            IInference::holdingsCall::abi_encode_returns(&IInference::holdingsReturn {
                freeEscrow: h.free_escrow.0,
                allowances: h.allowances.0,
                pendingReleases: h.pending_releases.0,
                openHolds: h.open_holds.0,
                pendingAttributions: h.pending_attributions.0,
                accruedCredits: h.accrued_credits.0,
                fallbackPool: h.fallback_pool.0,
            })
            .into()
        }
        C::receiptDigest(c) => IInference::receiptDigestCall::abi_encode_returns(&IInference::receiptDigestReturn {
            receiptHash: receipt_hash(&c.receipt),
            signingHash: receipt_signing_hash(&c.receipt, ctx.env.chain_id),
        })
        .into(),
    };
    if t != before {
        put_holdings(st, &t);
    }
    Ok(out)
}
