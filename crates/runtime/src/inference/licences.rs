//! Licences: prepaid use of a model that an app buys once, bounded by time,
//! by volume, or both.
//!
//! - **Offers.** A model's owner (the holder of its ownership token) offers
//!   licences: a price, a duration in blocks and/or a number of tokens (a
//!   receipt's input plus output tokens), and whether the licence is
//!   commercial. A model trained on a non-commercial Datanet (whose per-call
//!   price must be zero) offers none. At most [`MAX_OFFERS`] are open per
//!   model; withdrawing one leaves the licences bought from it valid.
//! - **Purchase.** `buyLicence` pays the price into the module (the
//!   `licences` kind of [`InferenceHoldings`]); the licence starts at that
//!   block. A buyer holds one licence per model at a time.
//! - **The meter.** A receipt of the holder for the model, issued at or after
//!   the start (and before the end, if there is one), is *covered*: its cost
//!   is drawn from the licence instead of the payer's allowance, at the
//!   licence's own rate, and that cost is split exactly as any receipt's
//!   (owner and base royalty, data held for attribution, serving operator,
//!   stakers, treasury), so attribution, shares and royalties see licensed
//!   use as they see paid calls.
//!   - Volume: n tokens draw `floor(amountLeft × n / tokensLeft)`; the last
//!     tokens draw all that is left, so the draws sum to the price exactly.
//!     A receipt larger than the tokens left is not covered (the allowance
//!     pays it at the model's prices).
//!   - Time only: a receipt draws what vested since the last draw, `floor(
//!     amountLeft × (t − lastDraw) / (end − lastDraw))` with t = min(height,
//!     end); receipts in the same block after the first draw nothing.
//! - **Closing.** Once a licence is over (its end passed, or its tokens
//!   used), anyone closes it: what is left is paid out as the cost of a
//!   receipt without an operator (owner part with the base royalty, data part
//!   to the fallback of the model's Datanet versions, stakers part; serving
//!   part and dust to the treasury). A licence of a model retired past its
//!   grace period can be closed by its holder at any time, and what is left
//!   returns to the holder: it paid for use the model can no longer give.

use super::*;
use crate::StateError;
use crate::assets::AssetsWrite;
use crate::codec::load;
use crate::dispatch::Handler;
use calls::VIEW_GAS;
use primitives::abi::{Licence, LicenceOffer};

/// Most open offers per model (the `licenceOffers` view returns them all).
pub const MAX_OFFERS: usize = 16;
/// Longest licence: ten years of one-second blocks.
pub const MAX_DURATION_BLOCKS: u64 = 10 * 365 * crate::params::DAY_OF_BLOCKS as u64;

fn counter(st: &Overlay, key: &[u8]) -> Result<u64, CallFail> {
    Ok(match st.get(key)? {
        Some(b) => u64::from_be_bytes(b.as_slice().try_into().map_err(|_| StateError("a u64 counter".into()))?),
        None => 0,
    })
}

fn offer_ids(st: &Overlay, model: u64) -> Result<Vec<u64>, CallFail> {
    let b = st.get(&state_key::model_offers(model))?.unwrap_or_default();
    Ok(b.chunks_exact(8).map(|c| u64::from_be_bytes(c.try_into().unwrap())).collect())
}

fn put_offer_ids(st: &mut Overlay, model: u64, ids: &[u64]) {
    let v = (!ids.is_empty()).then(|| ids.iter().flat_map(|i| i.to_be_bytes()).collect());
    st.put(state_key::model_offers(model), v);
}

fn get_offer(st: &Overlay, id: u64) -> Result<LicenceOffer, CallFail> {
    load(st, &state_key::offer(id))?.ok_or_else(|| revert(IInference::UnknownOffer { offerId: id }))
}

fn get_licence(st: &Overlay, id: u64) -> Result<Licence, CallFail> {
    load(st, &state_key::licence(id))?.ok_or_else(|| revert(IInference::UnknownLicence { licenceId: id }))
}

fn owned_model(st: &Overlay, model_id: u64, sender: Address) -> Result<ModelRecord, CallFail> {
    let model = get_model(st, model_id)?;
    if model.owner != sender {
        return Err(revert(IInference::NotModelOwner { modelId: model_id, caller: sender, owner: model.owner }));
    }
    Ok(model)
}

/// Whether the licence is over: its end passed, or its tokens used.
fn is_over(l: &Licence, height: u64) -> bool {
    (l.end != 0 && height >= l.end) || (l.tokens != 0 && l.tokensLeft == 0)
}

impl Handler for IInference::offerLicenceCall {
    fn gas(&self) -> u64 {
        60_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let model = owned_model(st, self.modelId, ctx.sender)?;
        if model.state == RETIRED {
            return Err(revert(IInference::ModelNotServable { modelId: self.modelId, state: model.state }));
        }
        if model.licences.iter().any(|l| crate::models::is_non_commercial(l)) {
            return Err(revert(IInference::NonCommercialModel { modelId: self.modelId }));
        }
        let terms = |r: &str| revert(IInference::InvalidLicenceTerms { reason: r.into() });
        if self.price == 0 {
            return Err(terms("the price must not be zero"));
        }
        if self.durationBlocks == 0 && self.tokens == 0 {
            return Err(terms("bound the licence by a duration, a number of tokens, or both"));
        }
        if self.durationBlocks > MAX_DURATION_BLOCKS {
            return Err(terms("at most ten years of blocks"));
        }
        let mut ids = offer_ids(st, self.modelId)?;
        if ids.len() >= MAX_OFFERS {
            return Err(revert(IInference::TooManyOffers { modelId: self.modelId, max: U256::from(MAX_OFFERS) }));
        }
        let id = counter(st, &state_key::offer_count())? + 1;
        st.put(state_key::offer_count(), Some(id.to_be_bytes().to_vec()));
        let offer = LicenceOffer {
            modelId: self.modelId,
            price: self.price,
            durationBlocks: self.durationBlocks,
            tokens: self.tokens,
            commercial: self.commercial,
            open: true,
        };
        store(st, state_key::offer(id), &offer);
        ids.push(id);
        put_offer_ids(st, self.modelId, &ids);
        ctx.emit(
            ADDRESS,
            &IInference::LicenceOffered {
                offerId: id,
                modelId: self.modelId,
                price: self.price,
                durationBlocks: self.durationBlocks,
                tokens: self.tokens,
                commercial: self.commercial,
            },
        );
        Ok(id)
    }
}

impl Handler for IInference::withdrawLicenceOfferCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut offer = get_offer(st, self.offerId)?;
        owned_model(st, offer.modelId, ctx.sender)?;
        if !offer.open {
            return Err(revert(IInference::OfferWithdrawn { offerId: self.offerId }));
        }
        offer.open = false;
        store(st, state_key::offer(self.offerId), &offer);
        let ids: Vec<u64> = offer_ids(st, offer.modelId)?.into_iter().filter(|i| *i != self.offerId).collect();
        put_offer_ids(st, offer.modelId, &ids);
        ctx.emit(ADDRESS, &IInference::LicenceOfferWithdrawn { offerId: self.offerId, modelId: offer.modelId });
        Ok(IInference::withdrawLicenceOfferReturn {})
    }
}

impl Handler for IInference::buyLicenceCall {
    const PAYABLE: bool = true;

    /// Closing a licence that is over first is a payout like `closeLicence`'s.
    fn gas(&self) -> u64 {
        80_000 + FALLBACK_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, t| {
            let height = ctx.env.number;
            let buyer = ctx.sender;
            let offer = get_offer(st, self.offerId)?;
            if !offer.open {
                return Err(revert(IInference::OfferWithdrawn { offerId: self.offerId }));
            }
            if ctx.value.0 != offer.price {
                return Err(revert(IInference::WrongPayment { sent: ctx.value.0, price: offer.price }));
            }
            let model = get_model(st, offer.modelId)?;
            if model.state != LIVE {
                return Err(revert(IInference::ModelNotServable { modelId: offer.modelId, state: model.state }));
            }
            if let Some(old) = licence_of(st, &buyer, offer.modelId)? {
                let l = get_licence(st, old)?;
                if !is_over(&l, height) {
                    return Err(revert(IInference::LicenceHeld { licenceId: old }));
                }
                close(st, ctx, t, old, l, false)?;
            }
            let id = counter(st, &state_key::licence_count())? + 1;
            st.put(state_key::licence_count(), Some(id.to_be_bytes().to_vec()));
            let end = if offer.durationBlocks == 0 { 0 } else { height.saturating_add(offer.durationBlocks) };
            let l = Licence {
                modelId: offer.modelId,
                holder: buyer,
                offerId: self.offerId,
                commercial: offer.commercial,
                price: offer.price,
                start: height,
                end,
                tokens: offer.tokens,
                tokensLeft: offer.tokens,
                amountLeft: offer.price,
                lastDraw: height,
                closed: false,
            };
            store(st, state_key::licence(id), &l);
            st.put(state_key::licence_of(&buyer, offer.modelId), Some(id.to_be_bytes().to_vec()));
            // The value already sits at the module's address.
            t.licences = add(t.licences, offer.price)?;
            ctx.emit(
                ADDRESS,
                &IInference::LicenceBought {
                    licenceId: id,
                    offerId: self.offerId,
                    holder: buyer,
                    modelId: offer.modelId,
                    price: offer.price,
                    end,
                    tokens: offer.tokens,
                },
            );
            Ok(id)
        })
    }
}

impl Handler for IInference::closeLicenceCall {
    fn gas(&self) -> u64 {
        60_000 + FALLBACK_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        with_holdings(st, |st, t| {
            let height = ctx.env.number;
            let l = get_licence(st, self.licenceId)?;
            if l.closed {
                return Err(revert(IInference::LicenceNotOver { licenceId: self.licenceId }));
            }
            let model = get_model(st, l.modelId)?;
            let gone = match (model.state, st.retired_at(ModelId(l.modelId))?) {
                (RETIRED, Some(at)) => height > at.saturating_add(blocks(st, &params::INFERENCE_RETIRED_GRACE_BLOCKS)?),
                _ => false,
            };
            let refund = gone && ctx.sender == l.holder;
            if !refund && !is_over(&l, height) {
                return Err(revert(IInference::LicenceNotOver { licenceId: self.licenceId }));
            }
            close(st, ctx, t, self.licenceId, l, refund)
        })
    }
}

/// Close licence `id`: pay out (or, `refund`, return to the holder) what is
/// left, mark it closed and drop it from its holder's index.
fn close(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    t: &mut InferenceHoldings,
    id: u64,
    mut l: Licence,
    refund: bool,
) -> Result<u128, CallFail> {
    let left = l.amountLeft;
    t.licences = sub(t.licences, left)?;
    if refund {
        st.transfer(&ADDRESS, &l.holder, Amount(left))?;
    } else if left > 0 {
        pay_unmetered(st, ctx, t, l.modelId, left, licence_tag(id))?;
    }
    l.amountLeft = 0;
    l.closed = true;
    store(st, state_key::licence(id), &l);
    st.put(state_key::licence_of(&l.holder, l.modelId), None);
    ctx.emit(ADDRESS, &IInference::LicenceClosed { licenceId: id, remainder: left, refunded: refund });
    Ok(left)
}

/// The tag a licence's payout logs carry where a receipt's hash would be
/// (`FallbackPaid`): the licence id, big-endian, in the low bytes.
pub fn licence_tag(id: u64) -> B256 {
    B256::from(U256::from(id))
}

/// Pay `amount` of model `model_id` as the cost of a receipt without an
/// operator: the owner part (with the base royalty; to shareholders when
/// split), the data part to the fallback of the model's versions (the
/// treasury if it has none), the stakers part; the serving part and the
/// dust to the treasury.
fn pay_unmetered(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    t: &mut InferenceHoldings,
    model_id: u64,
    amount: u128,
    tag: B256,
) -> Result<(), CallFail> {
    let model = get_model(st, model_id)?;
    let [owner_bps, data_bps, _, stakers_bps] = split_bps(st)?;
    let part = |bps: u128| Amount(amount).mul_div(bps, 10_000).map(|a| a.0).map_err(|_| overflow());
    let (owner_part, data_part, stakers_part) = (part(owner_bps)?, part(data_bps)?, part(stakers_bps)?);
    let mut owners = BTreeMap::new();
    calls::owner_parts(st, &mut owners, &model, owner_part, st.param(&crate::params::ASSETS_BASE_ROYALTY_BPS)?)?;
    for ((m, owner), a) in owners {
        if !st.pay_model_earnings(ctx, &ADDRESS, m, Amount(a))? {
            st.transfer(&ADDRESS, &owner, Amount(a))?;
        }
    }
    let paid = fallback_to_versions(st, ctx, &model, data_part, &tag)?;
    t.fallback_pool = add(t.fallback_pool, paid)?;
    if stakers_part > 0 {
        st.deposit_rewards(ctx, &ADDRESS, Amount(stakers_part), "serving")?;
    }
    st.transfer(&ADDRESS, &TREASURY, Amount(amount - owner_part - stakers_part - paid))?;
    Ok(())
}

/// The payer's licence of the model that is not closed.
fn licence_of(st: &Overlay, holder: &Address, model: u64) -> Result<Option<u64>, CallFail> {
    Ok(match st.get(&state_key::licence_of(holder, model))? {
        Some(b) => Some(u64::from_be_bytes(b.as_slice().try_into().map_err(|_| StateError("a licence id".into()))?)),
        None => None,
    })
}

/// The meter: if `r` is covered by its payer's licence of its model, draw its
/// cost from the licence (the `licences` kind of `t` shrinks by it) and
/// return it; `None` if the allowance pays.
pub(super) fn draw(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    t: &mut InferenceHoldings,
    r: &InferenceReceipt,
    h: B256,
    height: u64,
) -> Result<Option<u128>, CallFail> {
    let Some(id) = licence_of(st, &r.payer, r.modelId)? else {
        return Ok(None);
    };
    let l = get_licence(st, id)?;
    if r.issuedAt < l.start || (l.end != 0 && r.issuedAt >= l.end) {
        return Ok(None);
    }
    let n = r.inputTokens.saturating_add(r.outputTokens);
    let Some((amount, l)) = next_draw(&l, n, height) else {
        return Ok(None);
    };
    t.licences = sub(t.licences, amount)?;
    store(st, state_key::licence(id), &l);
    ctx.emit(ADDRESS, &IInference::LicenceDrawn { licenceId: id, receiptHash: h, amount, tokensLeft: l.tokensLeft });
    Ok(Some(amount))
}

/// What licence `l` draws for a receipt of `tokens` settled at `height`, and
/// the licence after the draw; `None` if a volume licence has fewer tokens
/// left. (Whether the receipt was issued within the licence is the caller's.)
pub fn next_draw(l: &Licence, tokens: u64, height: u64) -> Option<(u128, Licence)> {
    let mut l = l.clone();
    let amount = if l.tokens != 0 {
        if tokens > l.tokensLeft {
            return None;
        }
        let a = if tokens == l.tokensLeft {
            l.amountLeft
        } else {
            (U256::from(l.amountLeft) * U256::from(tokens) / U256::from(l.tokensLeft)).to::<u128>()
        };
        l.tokensLeft -= tokens;
        a
    } else {
        let now = height.min(l.end);
        let a = if now <= l.lastDraw {
            0
        } else if now == l.end {
            l.amountLeft
        } else {
            (U256::from(l.amountLeft) * U256::from(now - l.lastDraw) / U256::from(l.end - l.lastDraw)).to::<u128>()
        };
        l.lastDraw = l.lastDraw.max(now);
        a
    };
    l.amountLeft -= amount;
    Some((amount, l))
}

impl Handler for IInference::licenceOfferCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get_offer(st, self.offerId)
    }
}

impl Handler for IInference::licenceOffersCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        offer_ids(st, self.modelId)
    }
}

impl Handler for IInference::licenceCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get_licence(st, self.licenceId)
    }
}

impl Handler for IInference::licenceOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(licence_of(st, &self.holder, self.modelId)?.unwrap_or(0))
    }
}
