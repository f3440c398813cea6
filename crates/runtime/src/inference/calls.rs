//! The functions of `IInference`, one handler each, its gas beside it.

use super::*;
use crate::assets::AssetsWrite;
use crate::dispatch::Handler;

/// Gas of a view.
pub(super) const VIEW_GAS: u64 = 5_000;

impl Handler for IInference::depositCall {
    const PAYABLE: bool = true;

    fn gas(&self) -> u64 {
        30_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        // The value already sits at the module's address.
        let (sender, v) = (ctx.sender, ctx.value);
        st.deposit_escrow(ctx, &ADDRESS, &sender, v.0)?;
        Ok(IInference::depositReturn {})
    }
}

impl Handler for IInference::withdrawCall {
    fn gas(&self) -> u64 {
        30_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        st.withdraw_escrow(ctx, &sender, &sender, self.amount)?;
        Ok(IInference::withdrawReturn {})
    }
}

impl Handler for IInference::allowCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        st.grant_allowance(ctx, &sender, &self.operator, self.amount)?;
        Ok(IInference::allowReturn {})
    }
}

impl Handler for IInference::releaseCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        st.request_release(ctx, &sender, &self.operator, self.amount)?;
        Ok(IInference::releaseReturn {})
    }
}

impl Handler for IInference::completeReleaseCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        st.complete_release(ctx, &sender, &self.operator)?;
        Ok(IInference::completeReleaseReturn {})
    }
}

impl Handler for IInference::bindApiKeyCall {
    fn gas(&self) -> u64 {
        25_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        st.bind_api_key(ctx, &sender, self.keyHash)?;
        Ok(IInference::bindApiKeyReturn {})
    }
}

impl Handler for IInference::revokeApiKeyCall {
    fn gas(&self) -> u64 {
        25_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        st.revoke_api_key(ctx, &sender, self.keyHash)?;
        Ok(IInference::revokeApiKeyReturn {})
    }
}

impl Handler for IInference::registerEndpointCall {
    /// Per model listed, and per URL byte (kept in state).
    fn gas(&self) -> u64 {
        60_000 + 5_000 * self.modelIds.len() as u64 + 20 * self.url.len() as u64
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        serving_operator(st, &sender, true)?;
        let invalid = |r: String| revert(IInference::InvalidEndpoint { reason: r });
        let url = self.url.trim();
        if url.is_empty() || url.len() > MAX_URL || !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid("the url must be an http(s) URL of at most 256 bytes".into()));
        }
        if self.modelIds.is_empty() || self.modelIds.len() > MAX_ENDPOINT_MODELS {
            return Err(invalid("1 to 64 models".into()));
        }
        for (i, id) in self.modelIds.iter().enumerate() {
            if self.modelIds[..i].contains(id) {
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
        let rec = EndpointRecord {
            operator: sender,
            url: url.to_string(),
            modelIds: self.modelIds.clone(),
            updatedAt: height,
        };
        store(st, state_key::endpoint(&sender), &rec);
        ctx.emit(ADDRESS, &IInference::EndpointRegistered { operator: sender, url: rec.url, modelIds: self.modelIds });
        Ok(IInference::registerEndpointReturn {})
    }
}

impl Handler for IInference::removeEndpointCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        if st.endpoint(&sender)?.is_none() {
            return Err(revert(IInference::UnknownEndpoint { operator: sender }));
        }
        let mut list = st.endpoint_operators()?;
        list.retain(|a| *a != sender);
        store(st, state_key::endpoints(), &list);
        st.put(state_key::endpoint(&sender), None);
        ctx.emit(ADDRESS, &IInference::EndpointRemoved { operator: sender });
        Ok(IInference::removeEndpointReturn {})
    }
}

/// The receipt's model if it may be paid for at `height`: live, or retired
/// after it was live with the receipt issued before and settled within the
/// grace period; the receipt's adapter and prices the model's own.
fn servable_model(st: &Overlay, r: &InferenceReceipt, index: U256, height: u64) -> Result<ModelRecord, CallFail> {
    let model = get_model(st, r.modelId)?;
    let out_of_time =
        |not_after: u64| revert(IInference::ReceiptOutOfTime { index, issuedAt: r.issuedAt, notAfter: not_after });
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
    Ok(model)
}

impl Handler for IInference::settleCall {
    /// Per receipt: signature recovery (≈ 20,000), the model, the allowance, the
    /// hold, the payer's agent (a read, two for an agent's wallet) and the payout
    /// record. (The node's meter takes its gas limit from this price plus
    /// intrinsic and calldata gas, so a change here needs none there.) A
    /// receipt that retrieved rows writes its retrieval hash too.
    fn gas(&self) -> u64 {
        let retrieving = self.receipts.iter().filter(|r| r.retrievalHash != B256::ZERO).count() as u64;
        50_000 + 52_000 * self.receipts.len() as u64 + RETRIEVAL_HASH_GAS * retrieving
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, t| {
            let height = ctx.env.number;
            let sender = ctx.sender;
            let n = self.receipts.len();
            let batch = |r: &str| revert(IInference::InvalidBatch { reason: r.into() });
            if n == 0 || n > MAX_RECEIPTS {
                return Err(batch("1 to 256 receipts"));
            }
            if self.signatures.len() != n {
                return Err(batch("one signature per receipt"));
            }
            let op = serving_operator(st, &sender, false)?;
            let [owner_bps, data_bps, serving_bps, stakers_bps] = split_bps(st)?;
            let royalty_bps = st.param(&crate::params::ASSETS_BASE_ROYALTY_BPS)?;
            // Owner parts by (model, owner): a split model's go to its shareholders.
            let mut owners: BTreeMap<(u64, Address), u128> = BTreeMap::new();
            let (mut serving, mut stakers, mut treasury) = (0u128, 0u128, 0u128);
            for (i, (r, sig)) in self.receipts.iter().zip(&self.signatures).enumerate() {
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
                if let Some(reason) = crate::agents::AgentsRead::settle_refusal(&*st, &r.payer, r.modelId, r.issuedAt)?
                {
                    return Err(revert(IInference::AgentRefused { index, reason }));
                }
                let model = servable_model(st, r, index, height)?;
                let h = receipt_hash(r);
                // A licence of the payer covers the receipt at its own rate, else the allowance pays.
                let cost = match licences::draw(st, ctx, t, r, h, height)? {
                    Some(drawn) => drawn,
                    None => {
                        let cost = receipt_cost(r).ok_or_else(overflow)?;
                        charge_allowance(&mut al, t, cost, r.payer, sender)?;
                        cost
                    }
                };
                al.lastNonce = r.nonce;
                store(st, state_key::allowance(&r.payer, &sender), &al);

                let part = |bps: u128| Amount(cost).mul_div(bps, 10_000).map(|a| a.0).map_err(|_| overflow());
                let owner_part = part(owner_bps)?;
                let mut data_part = part(data_bps)?;
                let serving_part = part(serving_bps)?;
                let stakers_part = part(stakers_bps)?;
                // Each part is rounded down and the four sum to at most the cost.
                let mut treasury_part = cost - owner_part - data_part - serving_part - stakers_part;
                // Nothing to attribute: no training data and no retrieved rows.
                if model.datanets.is_empty() && r.retrievalHash == B256::ZERO {
                    treasury_part += data_part;
                    data_part = 0;
                }
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
                    if r.retrievalHash != B256::ZERO {
                        st.put(state_key::retrieval_hash(&h), Some(r.retrievalHash.to_vec()));
                    }
                    t.open_holds = add(t.open_holds, data_part)?;
                }
                let paid = SettledReceipt {
                    payer: r.payer,
                    operator: sender,
                    modelId: r.modelId,
                    modelOwner: model.owner,
                    settledAt: height,
                    cost,
                    ownerPart: owner_part,
                    dataPart: data_part,
                    servingPart: serving_part,
                    stakersPart: stakers_part,
                    treasuryPart: treasury_part,
                };
                store(st, state_key::settled_receipt(&h), &paid);
                owner_parts(st, &mut owners, &model, owner_part, royalty_bps)?;
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
            for ((model, owner), amount) in owners {
                if !st.pay_model_earnings(ctx, &ADDRESS, model, Amount(amount))? {
                    st.transfer(&ADDRESS, &owner, Amount(amount))?;
                }
            }
            st.transfer(&ADDRESS, &sender, Amount(serving))?;
            st.transfer(&ADDRESS, &TREASURY, Amount(treasury))?;
            if stakers > 0 {
                st.deposit_rewards(ctx, &ADDRESS, Amount(stakers), "serving")?;
            }
            Ok(IInference::settleReturn {})
        })
    }
}

/// Take a receipt's `cost` from the payer's allowance for `operator`: the
/// allowance first, then the pending release.
fn charge_allowance(
    al: &mut AllowanceRecord,
    t: &mut InferenceHoldings,
    cost: u128,
    payer: Address,
    operator: Address,
) -> Result<(), CallFail> {
    let available = al.remaining.saturating_add(al.pendingRelease);
    if cost > available {
        return Err(revert(IInference::AllowanceExceeded { payer, operator, available, required: cost }));
    }
    let from_remaining = cost.min(al.remaining);
    let from_pending = cost - from_remaining;
    al.remaining -= from_remaining;
    al.pendingRelease -= from_pending;
    if al.pendingRelease == 0 {
        al.releaseAt = 0;
    }
    t.allowances = sub(t.allowances, from_remaining)?;
    t.pending_releases = sub(t.pending_releases, from_pending)?;
    Ok(())
}

/// Add a receipt's owner part to `owners` by (model, owner): a fine-tune (a
/// model with an adapter) pays its base model `royalty_bps` of it.
pub(super) fn owner_parts(
    st: &Overlay,
    owners: &mut BTreeMap<(u64, Address), u128>,
    model: &ModelRecord,
    owner_part: u128,
    royalty_bps: u128,
) -> Result<(), CallFail> {
    let base = match st.base_model_of(&model.baseModelHash)? {
        Some(b) if model.adapterHash != B256::ZERO && b.0 != model.id => st.model(b)?,
        _ => None,
    };
    let mut royalty = 0;
    if let Some(b) = base {
        royalty = Amount(owner_part).mul_div(royalty_bps, 10_000).map_err(|_| overflow())?.0;
        *owners.entry((b.id, b.owner)).or_default() += royalty;
    }
    *owners.entry((model.id, model.owner)).or_default() += owner_part - royalty;
    Ok(())
}

/// Gas of storing or reading a receipt's retrieval hash.
const RETRIEVAL_HASH_GAS: u64 = 20_000;
/// Gas of checking one retrieved Datanet version (a read).
const RETRIEVED_VERSION_GAS: u64 = 5_000;

/// Gas of posting `credits` (none: the fallback at once).
fn post_gas(credits: &[Credit]) -> u64 {
    if credits.is_empty() { FALLBACK_GAS } else { 50_000 + 20_000 * credits.len() as u64 }
}

/// Post a receipt's attribution record, as `postAttribution` (`retrieved`
/// `None`) or `postAttributionRetrieved`: the sender is the settling operator,
/// the hold open and within its timeout; credits go pending, none select the
/// fallback.
fn post_record(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    h: B256,
    record_hash: B256,
    credits: &[Credit],
    retrieved: Option<&[DatanetVersionRef]>,
) -> Result<(), CallFail> {
    with_holdings(st, |st, t| {
        let height = ctx.env.number;
        let sender = ctx.sender;
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
        if let Some(retrieved) = retrieved {
            check_retrieval(st, &h, retrieved)?;
        }
        hold.recordHash = record_hash;
        ctx.emit(
            ADDRESS,
            &IInference::AttributionPosted { receiptHash: h, recordHash: record_hash, credits: credits.len() as u32 },
        );
        if credits.is_empty() {
            pay_fallback(st, ctx, t, &h, &mut hold)?;
        } else {
            let mut allowed = get_model(st, hold.modelId)?.versions();
            let scope = match retrieved {
                Some(retrieved) => {
                    allowed.extend(retrieved.iter().map(|r| (r.datanetId, r.version)));
                    TRAINED_ON_OR_RETRIEVED
                }
                None => TRAINED_ON,
            };
            let pc = check_credits(st, &allowed, scope, hold.amount, credits)?;
            store(st, state_key::pending_credits(&h), &pc);
            hold.status = POSTED;
            hold.postedAt = height;
            t.open_holds = sub(t.open_holds, hold.amount)?;
            t.pending_attributions = add(t.pending_attributions, hold.amount)?;
        }
        store(st, state_key::hold(&h), &hold);
        Ok(())
    })
}

impl Handler for IInference::postAttributionCall {
    /// No credits selects the fallback at once.
    fn gas(&self) -> u64 {
        post_gas(&self.credits)
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        post_record(st, ctx, self.receiptHash, self.recordHash, &self.credits, None)?;
        Ok(IInference::postAttributionReturn {})
    }
}

impl Handler for IInference::postAttributionRetrievedCall {
    /// `postAttribution`'s, plus the retrieval hash and a read per retrieved version.
    fn gas(&self) -> u64 {
        post_gas(&self.credits) + RETRIEVAL_HASH_GAS + RETRIEVED_VERSION_GAS * self.retrieved.len() as u64
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        post_record(st, ctx, self.receiptHash, self.recordHash, &self.credits, Some(&self.retrieved))?;
        Ok(IInference::postAttributionRetrievedReturn {})
    }
}

impl Handler for IInference::finalizeAttributionCall {
    /// 20,000 per credit, priced at the default 32 credits.
    fn gas(&self) -> u64 {
        40_000 + 20_000 * 32
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, t| {
            let height = ctx.env.number;
            let h = self.receiptHash;
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
                if st.contribution(*id)?.is_none_or(|r| r.status != APPROVED) {
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
            Ok(IInference::finalizeAttributionReturn {})
        })
    }
}

impl Handler for IInference::expireAttributionCall {
    /// The fallback, priced for up to 8 Datanet versions.
    fn gas(&self) -> u64 {
        FALLBACK_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, t| {
            let height = ctx.env.number;
            let h = self.receiptHash;
            let mut hold = get_hold(st, &h)?;
            if hold.status != OPEN {
                return Err(revert(IInference::HoldClosed { receiptHash: h, status: hold.status }));
            }
            let deadline = hold.settledAt.saturating_add(blocks(st, &params::INFERENCE_ATTRIBUTION_TIMEOUT_BLOCKS)?);
            if height < deadline {
                return Err(revert(IInference::NotTimedOut { receiptHash: h, deadline }));
            }
            pay_fallback(st, ctx, t, &h, &mut hold)?;
            store(st, state_key::hold(&h), &hold);
            Ok(IInference::expireAttributionReturn {})
        })
    }
}

impl Handler for IInference::claimCall {
    /// A Fenwick query of at most 32 nodes.
    fn gas(&self) -> u64 {
        100_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, t| {
            let sender = ctx.sender;
            let id = self.contributionId;
            let rec =
                st.contribution(id)?.ok_or_else(|| revert(IInference::UnknownContribution { contributionId: id }))?;
            if rec.attestation.contributor != sender {
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
            Ok(total)
        })
    }
}

impl Handler for IInference::escrowOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.escrow(&self.payer)?.0)
    }
}

impl Handler for IInference::allowanceCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = st.allowance(&self.payer, &self.operator)?;
        Ok(IInference::allowanceReturn {
            remaining: a.remaining,
            pendingRelease: a.pendingRelease,
            releaseAt: a.releaseAt,
            lastNonce: a.lastNonce,
        })
    }
}

impl Handler for IInference::apiKeyOwnerCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.api_key_owner(&self.keyHash)?.unwrap_or(Address::ZERO))
    }
}

impl Handler for IInference::endpointCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let r = st
            .endpoint(&self.operator)?
            .ok_or_else(|| revert(IInference::UnknownEndpoint { operator: self.operator }))?;
        Ok(r)
    }
}

impl Handler for IInference::endpointsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut list = vec![];
        for a in st.endpoint_operators()? {
            if let Some(r) = st.endpoint(&a)? {
                list.push(r);
            }
        }
        Ok(list)
    }
}

impl Handler for IInference::holdCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get_hold(st, &self.receiptHash)
    }
}

impl Handler for IInference::retrievalHashOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.retrieval_hash_of(&self.receiptHash)?)
    }
}

impl Handler for IInference::settledReceiptCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.settled_receipt(&self.receiptHash)?.unwrap_or_default())
    }
}

impl Handler for IInference::pendingCreditsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let pc = st
            .pending_credits(&self.receiptHash)?
            .unwrap_or(PendingCredits { contributionIds: vec![], amounts: vec![] });
        Ok(IInference::pendingCreditsReturn { contributionIds: pc.contributionIds, amounts: pc.amounts })
    }
}

impl Handler for IInference::claimableCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.claimable(self.contributionId)?.0)
    }
}

impl Handler for IInference::accruedCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let a = st.contribution_account(self.contributionId)?;
        Ok(IInference::accruedReturn { unclaimed: a.accrued, total: a.totalCredited })
    }
}

impl Handler for IInference::versionFallbackCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.version_fallback(self.datanetId, self.version)?.0)
    }
}

impl Handler for IInference::holdingsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let h = st.holdings()?;
        Ok(IInference::holdingsReturn {
            freeEscrow: h.free_escrow.0,
            allowances: h.allowances.0,
            pendingReleases: h.pending_releases.0,
            openHolds: h.open_holds.0,
            pendingAttributions: h.pending_attributions.0,
            accruedCredits: h.accrued_credits.0,
            fallbackPool: h.fallback_pool.0,
            licences: h.licences.0,
        })
    }
}

impl Handler for IInference::receiptDigestCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, _st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(IInference::receiptDigestReturn {
            receiptHash: receipt_hash(&self.receipt),
            signingHash: receipt_signing_hash(&self.receipt, ctx.env.chain_id),
        })
    }
}
