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
//!   without Datanet versions (the base model) sends it to the treasury,
//!   unless the receipt's `retrievalHash` (receipt version 3) is non-zero: an
//!   answer that retrieved Datanet rows has data to attribute whatever the
//!   model, so its part is held, and the hash kept beside the hold
//!   (`retrievalHashOf`; the hold's own encoding is unchanged).
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
//! - **Retrieval.** `postAttributionRetrieved` is the same post for a receipt
//!   that retrieved rows, naming the Datanet versions it retrieved from: a
//!   canonical list ([`primitives::abi::check_retrieved`]) whose
//!   [`primitives::abi::retrieval_hash`] is the receipt's signed
//!   `retrievalHash`, each version existing. Its credits may also name
//!   contributions approved in a retrieved version (of that Datanet, at or
//!   before it). The mix of retrieved and training credits
//!   (`attribution.retrieval_share_bps`) is the record's; the chain checks only
//!   that each credit is in scope. A plain `postAttribution` on such a hold
//!   credits the model's versions only, as does a won challenge's replacement.
//! - **Challenges** (the `attribution` module): while a challenge of a posted
//!   record is open its credits wait (`UnderChallenge`); a record found wrong
//!   is replaced by the fallback. A contribution flagged (duplicated,
//!   adversarial) before finalization forfeits its pending credit to the
//!   treasury (`CreditForfeited`) and earns no fallback share from then on.
//! - **Fallback.** An empty record, or none before the timeout (`expireAttribution`,
//!   anyone), splits the hold over the model's Datanet versions by their live
//!   rows (`floor(hold × rows_v / Σ rows)`) into each Datanet's reward-per-row
//!   accumulator ([`accumulator`]); contributions claim their share when they
//!   choose, so a fallback never touches every contribution. A model without
//!   versions (a retrieval hold on the base model) sends it all to the
//!   treasury: the retrieved versions are only the operator's word until a
//!   record it signed is posted.
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
mod calls;
pub mod licences;
pub mod params;
pub mod records;
pub mod state_key;
pub mod view;

use std::collections::BTreeMap;

use alloy_primitives::U256;
use primitives::abi::IInference::{self, IInferenceCalls};
use primitives::abi::{
    Credit, DatanetVersionRef, InferenceReceipt, Overflow, check_retrieved, receipt_cost, receipt_hash,
    receipt_signing_hash, recover_receipt_signer, retrieval_hash,
};
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, B256, ModelId};

use crate::bank::BankWrite;
use crate::codec::store;
use crate::context::{CallCtx, CallFail};
use crate::datanets::{APPROVED, DatanetsRead};
use crate::dispatch::{SystemModule, calls};
use crate::models::{LIVE, ModelRecord, ModelRecordExt, ModelsRead, RETIRED};
use crate::params::{ParamSpec, ParamsRead};
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

/// Run `f` over the module's holdings by kind, writing them back if it changed them.
fn with_holdings<R>(
    st: &mut Overlay,
    f: impl FnOnce(&mut Overlay, &mut InferenceHoldings) -> Result<R, CallFail>,
) -> Result<R, CallFail> {
    let mut t = st.holdings()?;
    let before = t;
    let out = f(st, &mut t)?;
    if t != before {
        put_holdings(st, &t);
    }
    Ok(out)
}

/// `operator` as a serving operator; `active` also requires it unjailed with at least the minimum self bond.
fn serving_operator(
    st: &Overlay,
    operator: &Address,
    active: bool,
) -> Result<crate::staking::OperatorRecord, CallFail> {
    let not = || revert(IInference::NotServingOperator { operator: *operator });
    let op = st.operator(operator)?.filter(|o| o.role == ROLE_SERVING).ok_or_else(not)?;
    if active && (op.jailed || op.selfBond < U256::from(st.param(&crate::staking::params::STAKING_MIN_SELF_BOND)?)) {
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

/// What [`check_credits`] names when a credit is outside a plain record's versions.
const TRAINED_ON: &str = "the model's Datanet versions";
/// The same for a record that also credits retrieved versions.
const TRAINED_ON_OR_RETRIEVED: &str = "the model's or the retrieved Datanet versions";

/// Check a record's credits and compute each amount, `floor(hold × weight / 1e6)`.
/// A credited contribution must be approved in one of `allowed` (Datanet,
/// version): of that Datanet, at or before that version; `scope` names them in
/// the refusal.
fn check_credits(
    st: &Overlay,
    allowed: &[(u64, u64)],
    scope: &str,
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
        let in_scope =
            rec.status == APPROVED && allowed.iter().any(|(d, v)| *d == rec.attestation.datanetId && rec.version <= *v);
        if !in_scope {
            return Err(bad_credits(format!("contribution {id} is not approved in {scope}")));
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

/// Check the Datanet versions a record says its receipt retrieved from: a
/// canonical list ([`check_retrieved`]) whose [`retrieval_hash`] is the one the
/// receipt signed, each version existing.
fn check_retrieval(st: &Overlay, h: &B256, retrieved: &[DatanetVersionRef]) -> Result<(), CallFail> {
    let bad = |reason: String| revert(IInference::BadRetrieved { reason });
    check_retrieved(retrieved).map_err(bad)?;
    let (expected, got) = (st.retrieval_hash_of(h)?, retrieval_hash(retrieved));
    if expected != got {
        return Err(revert(IInference::RetrievalMismatch { receiptHash: *h, expected, got }));
    }
    for r in retrieved {
        if st.version(r.datanetId, r.version)?.is_none() {
            return Err(bad(format!("Datanet {} has no version {}", r.datanetId, r.version)));
        }
    }
    Ok(())
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
    let paid = fallback_to_versions(st, ctx, &model, hold.amount, h)?;
    st.transfer(&ADDRESS, &TREASURY, Amount(hold.amount - paid))?;
    match hold.status {
        OPEN => t.open_holds = sub(t.open_holds, hold.amount)?,
        _ => t.pending_attributions = sub(t.pending_attributions, hold.amount)?,
    }
    t.fallback_pool = add(t.fallback_pool, paid)?;
    hold.status = FALLBACK;
    Ok(())
}

/// Credit `amount` to the reward-per-row accumulators of `model`'s Datanet
/// versions, pro rata to their live rows (`FallbackPaid` logs carry `tag`);
/// returns what was credited (at most `amount`; the caller places the rest
/// and counts the credited part in the fallback pool).
fn fallback_to_versions(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    model: &ModelRecord,
    amount: u128,
    tag: &B256,
) -> Result<u128, CallFail> {
    let versions = model.versions();
    let mut rows = Vec::with_capacity(versions.len());
    for (d, v) in &versions {
        let r = if (1..=accumulator::CAPACITY).contains(v) {
            st.version(*d, *v)?.map(|x| x.liveRows).unwrap_or(0)
        } else {
            0
        };
        rows.push(r);
    }
    let total_rows: u128 = rows.iter().map(|r| *r as u128).sum();
    let mut paid = 0u128;
    if total_rows == 0 || amount == 0 {
        return Ok(0);
    }
    for (i, (d, v)) in versions.iter().enumerate() {
        if rows[i] == 0 {
            continue;
        }
        let r = U256::from(rows[i]);
        let part = U256::from(amount) * r / U256::from(total_rows);
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
            &IInference::FallbackPaid { receiptHash: *tag, datanetId: *d, version: *v, amount: credited },
        );
    }
    Ok(paid)
}

/// Inference as a system module.
pub struct Inference;

impl SystemModule for Inference {
    type Calls = IInferenceCalls;
    calls!(IInferenceCalls {
        deposit,
        withdraw,
        allow,
        release,
        completeRelease,
        bindApiKey,
        revokeApiKey,
        registerEndpoint,
        removeEndpoint,
        settle,
        postAttribution,
        postAttributionRetrieved,
        finalizeAttribution,
        expireAttribution,
        claim,
        escrowOf,
        allowance,
        apiKeyOwner,
        endpoint,
        endpoints,
        hold,
        retrievalHashOf,
        settledReceipt,
        pendingCredits,
        claimable,
        accrued,
        versionFallback,
        holdings,
        receiptDigest,
        offerLicence,
        withdrawLicenceOffer,
        buyLicence,
        closeLicence,
        licenceOffer,
        licenceOffers,
        licence,
        licenceOf
    });
}
