//! The functions of `IAttribution`, one handler each, its gas beside it.

use super::*;
use crate::dispatch::Handler;

/// Gas of a view.
const VIEW_GAS: u64 = 5_000;

impl Handler for IAttribution::challengeCall {
    const PAYABLE: bool = true;

    fn gas(&self) -> u64 {
        80_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let h = self.receiptHash;
        let not = |reason: &str| revert(IAttribution::NotChallengeable { receiptHash: h, reason: reason.into() });
        let hold = st.hold(&h)?.ok_or_else(|| revert(IAttribution::UnknownReceipt { receiptHash: h }))?;
        if st.challenge(&h)?.is_some_and(|x| x.status != LAPSED) {
            return Err(revert(IAttribution::ChallengeExists { receiptHash: h }));
        }
        if hold.status != POSTED {
            return Err(not(
                "no posted record with credits awaits finalization (not posted yet, finalized, or paid by the fallback)",
            ));
        }
        let window = u64::try_from(st.param(&crate::params::INFERENCE_CHALLENGE_WINDOW_BLOCKS)?).unwrap_or(u64::MAX);
        if height >= hold.postedAt.saturating_add(window) {
            return Err(not(&format!("the challenge window closed at block {}", hold.postedAt.saturating_add(window))));
        }
        let mut open = st.open_challenges()?;
        let min = required_bond(st.param(&params::ATTRIBUTION_CHALLENGE_BOND)?, open.len());
        if ctx.value.0 < min {
            return Err(revert(IAttribution::BondTooSmall { required: U256::from(min), given: ctx.value.to_u256() }));
        }
        if open.len() >= MAX_OPEN {
            return Err(revert(IAttribution::TooManyChallenges { max: U256::from(MAX_OPEN) }));
        }
        let set = judging_set(&*st, height)?;
        let total: U256 = set.powers.iter().fold(U256::ZERO, |a, p| a + *p);
        let reveal_by =
            height.saturating_add(u64::try_from(st.param(&params::ATTRIBUTION_REVEAL_BLOCKS)?).unwrap_or(u64::MAX));
        let rec = AttributionChallenge {
            challenger: sender,
            bond: ctx.value.0,
            challengerRecordHash: self.challengerRecordHash,
            operator: hold.operator,
            openedAt: height,
            revealBy: reveal_by,
            verdictBy: 0,
            status: AWAITING_REVEAL,
            totalPower: total,
            powerRecordCorrect: U256::ZERO,
            powerRecordWrong: U256::ZERO,
            signers: vec![],
        };
        store(st, state_key::challenge(&h), &rec);
        open.push(h);
        store(st, state_key::open(), &open);
        let bonds = st.bonds()?.checked_add(ctx.value).map_err(|_| revert(Overflow {}))?;
        set_bonds(st, bonds);
        ctx.emit(
            ADDRESS,
            &IAttribution::ChallengeOpened {
                receiptHash: h,
                challenger: sender,
                operator: hold.operator,
                bond: ctx.value.0,
                challengerRecordHash: self.challengerRecordHash,
                revealBy: reveal_by,
            },
        );
        Ok(IAttribution::challengeReturn {})
    }
}

impl Handler for IAttribution::revealCall {
    /// Per revealed byte: stored until the verdict (intrinsic gas already priced it as calldata).
    fn gas(&self) -> u64 {
        60_000 + 8 * (self.record.len() + self.prompt.len()) as u64
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let h = self.receiptHash;
        let mut ch = in_status(st, &h, AWAITING_REVEAL)?;
        if sender != ch.operator {
            return Err(revert(IAttribution::NotChallengedOperator { caller: sender }));
        }
        if height > ch.revealBy {
            return Err(revert(IAttribution::RevealClosed { receiptHash: h, revealBy: ch.revealBy }));
        }
        let hold = st.hold(&h)?.ok_or_else(|| revert(IAttribution::UnknownReceipt { receiptHash: h }))?;
        if primitives::content_hash(&self.record) != hold.recordHash {
            return Err(revert(IAttribution::RevealMismatch {
                reason: "the record's blake3 is not the posted record hash".into(),
            }));
        }
        if !self.prompt.len().is_multiple_of(4) {
            return Err(revert(IAttribution::RevealMismatch {
                reason: "the prompt must be token ids, 4 bytes each (u32 little-endian)".into(),
            }));
        }
        ch.status = AWAITING_VERDICT;
        ch.verdictBy =
            height.saturating_add(u64::try_from(st.param(&params::ATTRIBUTION_VERDICT_BLOCKS)?).unwrap_or(u64::MAX));
        store(st, state_key::challenge(&h), &ch);
        store(st, state_key::revealed(&h), &Revealed { record: self.record.clone(), prompt: self.prompt.clone() });
        ctx.emit(
            ADDRESS,
            &IAttribution::RecordRevealed {
                receiptHash: h,
                record: self.record,
                prompt: self.prompt,
                verdictBy: ch.verdictBy,
            },
        );
        Ok(IAttribution::revealReturn {})
    }
}

impl Handler for IAttribution::submitVerdictCall {
    /// Per signature an ed25519 verification, and the resolution against the operator.
    fn gas(&self) -> u64 {
        60_000 + 50_000 * self.signatures.len() as u64 + LOSE_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let h = self.receiptHash;
        let mut ch = in_status(st, &h, AWAITING_VERDICT)?;
        if height > ch.verdictBy {
            return Err(revert(IAttribution::VerdictClosed { receiptHash: h, verdictBy: ch.verdictBy }));
        }
        if self.consensusKeys.len() != self.signatures.len()
            || self.signatures.is_empty()
            || self.signatures.len() > MAX_SIGNATURES
        {
            return Err(revert(IAttribution::BadVerdictSignature {
                index: U256::ZERO,
                reason: format!("one signature per key, 1 to {MAX_SIGNATURES} of them"),
            }));
        }
        let set = judging_set(&*st, ch.openedAt)?;
        let digest = verdict_digest(ctx.env.chain_id, h, ch.openedAt, self.recordCorrect);
        for (i, (key, sig)) in self.consensusKeys.iter().zip(&self.signatures).enumerate() {
            let bad = |reason: &str| {
                revert(IAttribution::BadVerdictSignature { index: U256::from(i), reason: reason.into() })
            };
            let Some(pos) = set.consensusKeys.iter().position(|k| k == key) else {
                return Err(bad("the key is not in the validator set the challenge is judged by"));
            };
            if ch.signers.contains(key) {
                return Err(bad("this validator has already signed a verdict"));
            }
            let vk = ed25519_dalek::VerifyingKey::from_bytes(&key.0).map_err(|_| bad("not an ed25519 key"))?;
            let sig = ed25519_dalek::Signature::from_slice(sig).map_err(|_| bad("not a 64-byte ed25519 signature"))?;
            vk.verify_strict(digest.as_slice(), &sig).map_err(|_| bad("the signature does not verify"))?;
            ch.signers.push(*key);
            let p = set.powers[pos];
            if self.recordCorrect {
                ch.powerRecordCorrect += p
            } else {
                ch.powerRecordWrong += p
            }
            ctx.emit(
                ADDRESS,
                &IAttribution::VerdictSigned { receiptHash: h, consensusKey: *key, recordCorrect: self.recordCorrect },
            );
        }
        let decided = |p: U256| p * U256::from(3) > ch.totalPower * U256::from(2);
        if decided(ch.powerRecordWrong) {
            operator_loses(st, ctx, &h, &mut ch, UPHELD)?;
        } else if decided(ch.powerRecordCorrect) {
            ch.status = REJECTED;
            store(st, state_key::challenge(&h), &ch);
            settle_bond(st, ctx, &h, &ch, true)?;
            ctx.emit(
                ADDRESS,
                &IAttribution::ChallengeResolved {
                    receiptHash: h,
                    status: REJECTED,
                    slashed: U256::ZERO,
                    bondReturned: 0,
                },
            );
        } else {
            store(st, state_key::challenge(&h), &ch);
        }
        Ok(IAttribution::submitVerdictReturn {})
    }
}

impl Handler for IAttribution::resolveUnrevealedCall {
    /// The resolution against the operator: a slash and the fallback payout.
    fn gas(&self) -> u64 {
        60_000 + LOSE_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let h = self.receiptHash;
        let mut ch = in_status(st, &h, AWAITING_REVEAL)?;
        if height <= ch.revealBy {
            return Err(revert(IAttribution::RevealOpen { receiptHash: h, revealBy: ch.revealBy }));
        }
        operator_loses(st, ctx, &h, &mut ch, DEFAULTED)?;
        Ok(IAttribution::resolveUnrevealedReturn {})
    }
}

impl Handler for IAttribution::resolveLapsedCall {
    /// The fallback payout.
    fn gas(&self) -> u64 {
        60_000 + FALLBACK_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let h = self.receiptHash;
        let mut ch = in_status(st, &h, AWAITING_VERDICT)?;
        if height <= ch.verdictBy {
            return Err(revert(IAttribution::VerdictOpen { receiptHash: h, verdictBy: ch.verdictBy }));
        }
        ch.status = LAPSED;
        store(st, state_key::challenge(&h), &ch);
        st.replace_pending(ctx, &h, B256::ZERO, &[])?;
        let returned = settle_bond(st, ctx, &h, &ch, false)?;
        ctx.emit(
            ADDRESS,
            &IAttribution::ChallengeResolved {
                receiptHash: h,
                status: LAPSED,
                slashed: U256::ZERO,
                bondReturned: returned,
            },
        );
        Ok(IAttribution::resolveLapsedReturn {})
    }
}

impl Handler for IAttribution::challengeOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get(st, &self.receiptHash)
    }
}

impl Handler for IAttribution::revealedCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let r = st
            .revealed(&self.receiptHash)?
            .ok_or_else(|| revert(IAttribution::NoChallenge { receiptHash: self.receiptHash }))?;
        Ok(IAttribution::revealedReturn { record: r.record, prompt: r.prompt })
    }
}

impl Handler for IAttribution::awaitingVerdictCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let mut v = Vec::new();
        for h in st.open_challenges()? {
            if st.challenge(&h)?.is_some_and(|c| c.status == AWAITING_VERDICT) {
                v.push(h);
            }
        }
        Ok(v)
    }
}

impl Handler for IAttribution::verdictDigestCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let ch = get(st, &self.receiptHash)?;
        Ok(verdict_digest(ctx.env.chain_id, self.receiptHash, ch.openedAt, self.recordCorrect))
    }
}

impl Handler for IAttribution::bondsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.bonds()?.0)
    }
}

impl Handler for IAttribution::challengeBondCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let b = required_bond(st.param(&params::ATTRIBUTION_CHALLENGE_BOND)?, st.open_challenges()?.len());
        Ok(U256::from(b))
    }
}
