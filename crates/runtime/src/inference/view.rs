//! Typed reads and writes of inference, for this module and the others (the
//! node resolves API keys through [`InferenceRead::api_key_owner`]; the
//! attribution module's challenges will replace pending records through
//! [`InferenceWrite::replace_pending`]).

use alloy_primitives::U256;
use primitives::abi::Credit;
use primitives::state::{StateError, StateRead};
use primitives::{Address, Amount, B256};

use super::accumulator;
use super::records::POSTED;
use super::records::{
    AllowanceRecord, ContributionAccount, EndpointRecord, HoldRecord, InferenceHoldings, PendingCredits, SettledReceipt,
};
use super::state_key;
use super::{
    ADDRESS, TRAINED_ON, add, blocks, check_credits, get_hold, get_model, params, pay_fallback, put_escrow,
    put_holdings, serving_operator, sub, with_holdings,
};
use crate::bank::BankWrite;
use crate::codec::{load, store};
use crate::context::{CallCtx, CallFail};
use crate::datanets::{APPROVED, ContributionRecord, DatanetsRead};
use crate::models::ModelRecordExt;
use crate::{Overlay, revert};
use primitives::abi::IInference;

fn amount_at(st: &(impl StateRead + ?Sized), key: &[u8]) -> Result<Amount, StateError> {
    match st.get(key)? {
        Some(b) => Ok(Amount::from_be_bytes(
            b.as_slice().try_into().map_err(|_| StateError(format!("inference amount of {} bytes", b.len())))?,
        )),
        None => Ok(Amount::ZERO),
    }
}

/// Reads of inference state.
pub trait InferenceRead {
    /// The payer's free escrow.
    fn escrow(&self, payer: &Address) -> Result<Amount, StateError>;
    /// The payer's allowance for `operator` (all zero if never granted).
    fn allowance(&self, payer: &Address, operator: &Address) -> Result<AllowanceRecord, StateError>;
    /// The address an API key hash (`httpapi::auth::api_key_hash`: blake3 of the key) is bound to.
    fn api_key_owner(&self, key_hash: &B256) -> Result<Option<Address>, StateError>;
    fn endpoint(&self, operator: &Address) -> Result<Option<EndpointRecord>, StateError>;
    /// Operators with an endpoint, in registration order.
    fn endpoint_operators(&self) -> Result<Vec<Address>, StateError>;
    fn hold(&self, receipt_hash: &B256) -> Result<Option<HoldRecord>, StateError>;
    /// The `retrievalHash` of a held receipt (zero if it retrieved nothing, or has no hold).
    fn retrieval_hash_of(&self, receipt_hash: &B256) -> Result<B256, StateError>;
    fn pending_credits(&self, receipt_hash: &B256) -> Result<Option<PendingCredits>, StateError>;
    /// A contribution's credits and fallback index (all zero if never credited).
    fn contribution_account(&self, contribution_id: u64) -> Result<ContributionAccount, StateError>;
    /// The fallback share `contribution` may claim now, and the `paidIndex` a claim of it leaves.
    fn fallback_owed(
        &self,
        contribution: &ContributionRecord,
        account: &ContributionAccount,
    ) -> Result<(Amount, U256), StateError>;
    /// Finalized credits plus the fallback share (pending credits excluded).
    fn claimable(&self, contribution_id: u64) -> Result<Amount, StateError>;
    /// Total fallback paid to `datanet` at `version`.
    fn version_fallback(&self, datanet: u64, version: u64) -> Result<Amount, StateError>;
    /// What the module holds, by kind (the supply report shows it).
    fn holdings(&self) -> Result<InferenceHoldings, StateError>;
    /// How a settled receipt was paid out; `None` if it never settled.
    fn settled_receipt(&self, receipt_hash: &B256) -> Result<Option<SettledReceipt>, StateError>;
}

impl<S: StateRead + ?Sized> InferenceRead for S {
    fn escrow(&self, payer: &Address) -> Result<Amount, StateError> {
        amount_at(self, &state_key::escrow(payer))
    }
    fn allowance(&self, payer: &Address, operator: &Address) -> Result<AllowanceRecord, StateError> {
        Ok(load(self, &state_key::allowance(payer, operator))?.unwrap_or(AllowanceRecord {
            remaining: 0,
            pendingRelease: 0,
            releaseAt: 0,
            lastNonce: 0,
        }))
    }
    fn api_key_owner(&self, key_hash: &B256) -> Result<Option<Address>, StateError> {
        match self.get(&state_key::api_key(key_hash))? {
            Some(b) if b.len() == 20 => Ok(Some(Address::from_slice(&b))),
            Some(b) => Err(StateError(format!("api key record of {} bytes", b.len()))),
            None => Ok(None),
        }
    }
    fn endpoint(&self, operator: &Address) -> Result<Option<EndpointRecord>, StateError> {
        load(self, &state_key::endpoint(operator))
    }
    fn endpoint_operators(&self) -> Result<Vec<Address>, StateError> {
        Ok(load::<Vec<Address>>(self, &state_key::endpoints())?.unwrap_or_default())
    }
    fn hold(&self, receipt_hash: &B256) -> Result<Option<HoldRecord>, StateError> {
        load(self, &state_key::hold(receipt_hash))
    }
    fn retrieval_hash_of(&self, receipt_hash: &B256) -> Result<B256, StateError> {
        match self.get(&state_key::retrieval_hash(receipt_hash))? {
            Some(b) if b.len() == 32 => Ok(B256::from_slice(&b)),
            Some(b) => Err(StateError(format!("retrieval hash record of {} bytes", b.len()))),
            None => Ok(B256::ZERO),
        }
    }
    fn pending_credits(&self, receipt_hash: &B256) -> Result<Option<PendingCredits>, StateError> {
        load(self, &state_key::pending_credits(receipt_hash))
    }
    fn contribution_account(&self, contribution_id: u64) -> Result<ContributionAccount, StateError> {
        Ok(load(self, &state_key::contribution(contribution_id))?.unwrap_or(ContributionAccount {
            accrued: 0,
            totalCredited: 0,
            paidIndex: U256::ZERO,
        }))
    }
    fn fallback_owed(
        &self,
        c: &ContributionRecord,
        account: &ContributionAccount,
    ) -> Result<(Amount, U256), StateError> {
        let rows = c.attestation.rowCount.saturating_sub(c.tombstoned) as u64;
        if c.status != APPROVED || rows == 0 {
            return Ok((Amount::ZERO, account.paidIndex));
        }
        let rows = U256::from(rows);
        let delta = accumulator::suffix(self, c.attestation.datanetId, c.version)?.wrapping_sub(account.paidIndex);
        let owed = delta * rows / accumulator::scale();
        if owed.is_zero() {
            return Ok((Amount::ZERO, account.paidIndex));
        }
        // Advance the index only by what is paid (rounded up), so the fraction
        // below one base unit stays owed instead of being lost at each claim.
        let advance = (owed * accumulator::scale()).div_ceil(rows);
        let owed = Amount::from_u256(owed).map_err(|_| StateError("fallback share overflows".into()))?;
        Ok((owed, account.paidIndex.wrapping_add(advance)))
    }
    fn claimable(&self, contribution_id: u64) -> Result<Amount, StateError> {
        let account = self.contribution_account(contribution_id)?;
        let fallback = match self.contribution(contribution_id)? {
            Some(c) => self.fallback_owed(&c, &account)?.0,
            None => Amount::ZERO,
        };
        Ok(Amount(account.accrued + fallback.0))
    }
    fn version_fallback(&self, datanet: u64, version: u64) -> Result<Amount, StateError> {
        amount_at(self, &state_key::version_fallback(datanet, version))
    }
    fn holdings(&self) -> Result<InferenceHoldings, StateError> {
        match self.get(&state_key::totals())? {
            Some(b) => InferenceHoldings::decode(&b),
            None => Ok(InferenceHoldings::default()),
        }
    }
    fn settled_receipt(&self, receipt_hash: &B256) -> Result<Option<SettledReceipt>, StateError> {
        load(self, &state_key::settled_receipt(receipt_hash))
    }
}

/// Writes other modules make to inference.
pub trait InferenceWrite {
    /// Replace the pending credits of a posted record (status POSTED, still in its
    /// challenge window or not yet finalized) by `credits`, checked like
    /// `postAttribution`'s (on the model's Datanet versions only, even for a
    /// receipt that retrieved rows), under `record_hash`: the hook a won attribution
    /// challenge uses. Empty `credits` send the hold to the fallback at once. The
    /// record keeps its `postedAt`; the caller decides when it may be finalized.
    fn replace_pending(
        &mut self,
        ctx: &mut CallCtx,
        receipt_hash: &B256,
        record_hash: B256,
        credits: &[Credit],
    ) -> Result<(), CallFail>;

    /// Add `amount` to `payer`'s free escrow, moving it from `from` (the
    /// module's own address when the OPEN came with a call to it, as `deposit`'s).
    fn deposit_escrow(
        &mut self,
        ctx: &mut CallCtx,
        from: &Address,
        payer: &Address,
        amount: u128,
    ) -> Result<(), CallFail>;
    /// Pay `amount` of `payer`'s free escrow to `to`.
    fn withdraw_escrow(
        &mut self,
        ctx: &mut CallCtx,
        payer: &Address,
        to: &Address,
        amount: u128,
    ) -> Result<(), CallFail>;
    /// Move `amount` of `payer`'s free escrow into its allowance for serving
    /// operator `operator` (bonded, unjailed, with the minimum self bond).
    fn grant_allowance(
        &mut self,
        ctx: &mut CallCtx,
        payer: &Address,
        operator: &Address,
        amount: u128,
    ) -> Result<(), CallFail>;
    /// Ask `amount` of `payer`'s allowance for `operator` back (returned after
    /// `inference.release_delay_blocks`, spendable by the operator until then).
    fn request_release(
        &mut self,
        ctx: &mut CallCtx,
        payer: &Address,
        operator: &Address,
        amount: u128,
    ) -> Result<(), CallFail>;
    /// Return `payer`'s pending release for `operator` to its free escrow once
    /// its delay is over; returns the amount.
    fn complete_release(&mut self, ctx: &mut CallCtx, payer: &Address, operator: &Address) -> Result<u128, CallFail>;
    /// Bind an API key hash to `owner` (once: a bound key is refused).
    fn bind_api_key(&mut self, ctx: &mut CallCtx, owner: &Address, key_hash: B256) -> Result<(), CallFail>;
    /// Unbind an API key hash bound to `owner`.
    fn revoke_api_key(&mut self, ctx: &mut CallCtx, owner: &Address, key_hash: B256) -> Result<(), CallFail>;
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
            Some(check_credits(self, &model.versions(), TRAINED_ON, hold.amount, credits)?)
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

    fn deposit_escrow(
        &mut self,
        ctx: &mut CallCtx,
        from: &Address,
        payer: &Address,
        amount: u128,
    ) -> Result<(), CallFail> {
        with_holdings(self, |st, t| {
            if amount == 0 {
                return Err(revert(IInference::ZeroAmount {}));
            }
            if *from != ADDRESS {
                st.transfer(from, &ADDRESS, Amount(amount))?;
            }
            let e = add(st.escrow(payer)?, amount)?;
            put_escrow(st, payer, e);
            t.free_escrow = add(t.free_escrow, amount)?;
            ctx.emit(ADDRESS, &IInference::EscrowDeposited { payer: *payer, amount });
            Ok(())
        })
    }

    fn withdraw_escrow(
        &mut self,
        ctx: &mut CallCtx,
        payer: &Address,
        to: &Address,
        amount: u128,
    ) -> Result<(), CallFail> {
        with_holdings(self, |st, t| {
            take_free_escrow(st, payer, amount)?;
            t.free_escrow = sub(t.free_escrow, amount)?;
            st.transfer(&ADDRESS, to, Amount(amount))?;
            ctx.emit(ADDRESS, &IInference::EscrowWithdrawn { payer: *payer, amount });
            Ok(())
        })
    }

    fn grant_allowance(
        &mut self,
        ctx: &mut CallCtx,
        payer: &Address,
        operator: &Address,
        amount: u128,
    ) -> Result<(), CallFail> {
        with_holdings(self, |st, t| {
            serving_operator(st, operator, true)?;
            take_free_escrow(st, payer, amount)?;
            let mut al = st.allowance(payer, operator)?;
            al.remaining = add(Amount(al.remaining), amount)?.0;
            store(st, state_key::allowance(payer, operator), &al);
            t.free_escrow = sub(t.free_escrow, amount)?;
            t.allowances = add(t.allowances, amount)?;
            let granted =
                IInference::AllowanceGranted { payer: *payer, operator: *operator, amount, remaining: al.remaining };
            ctx.emit(ADDRESS, &granted);
            Ok(())
        })
    }

    fn request_release(
        &mut self,
        ctx: &mut CallCtx,
        payer: &Address,
        operator: &Address,
        amount: u128,
    ) -> Result<(), CallFail> {
        with_holdings(self, |st, t| {
            let mut al = st.allowance(payer, operator)?;
            if amount == 0 {
                return Err(revert(IInference::ZeroAmount {}));
            }
            if amount > al.remaining {
                return Err(revert(IInference::InsufficientEscrow { available: al.remaining, required: amount }));
            }
            // A further request adds to the pending amount and restarts its delay.
            let release_at = ctx.env.number.saturating_add(blocks(st, &params::INFERENCE_RELEASE_DELAY_BLOCKS)?);
            al.remaining -= amount;
            al.pendingRelease += amount;
            al.releaseAt = release_at;
            store(st, state_key::allowance(payer, operator), &al);
            t.allowances = sub(t.allowances, amount)?;
            t.pending_releases = add(t.pending_releases, amount)?;
            let requested =
                IInference::ReleaseRequested { payer: *payer, operator: *operator, amount, releaseAt: release_at };
            ctx.emit(ADDRESS, &requested);
            Ok(())
        })
    }

    fn complete_release(&mut self, ctx: &mut CallCtx, payer: &Address, operator: &Address) -> Result<u128, CallFail> {
        with_holdings(self, |st, t| {
            let height = ctx.env.number;
            let mut al = st.allowance(payer, operator)?;
            if al.pendingRelease == 0 {
                return Err(revert(IInference::NothingToRelease { payer: *payer, operator: *operator }));
            }
            if height < al.releaseAt {
                return Err(revert(IInference::ReleaseNotReady { releaseAt: al.releaseAt, height }));
            }
            let amount = std::mem::take(&mut al.pendingRelease);
            al.releaseAt = 0;
            store(st, state_key::allowance(payer, operator), &al);
            let e = add(st.escrow(payer)?, amount)?;
            put_escrow(st, payer, e);
            t.pending_releases = sub(t.pending_releases, amount)?;
            t.free_escrow = add(t.free_escrow, amount)?;
            ctx.emit(ADDRESS, &IInference::ReleaseCompleted { payer: *payer, operator: *operator, amount });
            Ok(amount)
        })
    }

    fn bind_api_key(&mut self, ctx: &mut CallCtx, owner: &Address, key_hash: B256) -> Result<(), CallFail> {
        if key_hash == B256::ZERO {
            return Err(revert(IInference::BadKeyHash {}));
        }
        if let Some(bound) = self.api_key_owner(&key_hash)? {
            return Err(revert(IInference::KeyTaken { keyHash: key_hash, owner: bound }));
        }
        self.put(state_key::api_key(&key_hash), Some(owner.to_vec()));
        ctx.emit(ADDRESS, &IInference::ApiKeyBound { keyHash: key_hash, owner: *owner });
        Ok(())
    }

    fn revoke_api_key(&mut self, ctx: &mut CallCtx, owner: &Address, key_hash: B256) -> Result<(), CallFail> {
        if self.api_key_owner(&key_hash)? != Some(*owner) {
            return Err(revert(IInference::NotKeyOwner { caller: *owner }));
        }
        self.put(state_key::api_key(&key_hash), None);
        ctx.emit(ADDRESS, &IInference::ApiKeyRevoked { keyHash: key_hash, owner: *owner });
        Ok(())
    }
}

/// Take `amount` (non-zero) out of `payer`'s free escrow, or refuse with what it holds.
fn take_free_escrow(st: &mut Overlay, payer: &Address, amount: u128) -> Result<(), CallFail> {
    let e = st.escrow(payer)?;
    if amount == 0 {
        return Err(revert(IInference::ZeroAmount {}));
    }
    if amount > e.0 {
        return Err(revert(IInference::InsufficientEscrow { available: e.0, required: amount }));
    }
    put_escrow(st, payer, Amount(e.0 - amount));
    Ok(())
}
