//! The functions of `IDatanets`, one handler each, its gas beside it.

use super::*;
use crate::dispatch::Handler;

/// Gas of a view.
const VIEW_GAS: u64 = 10_000;

impl Handler for IDatanets::createDatanetCall {
    fn gas(&self) -> u64 {
        200_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        if self.dataType != 0 {
            return Err(revert(IDatanets::UnsupportedDataType { dataType: self.dataType }));
        }
        if self.policy > POLICY_ALLOW_LIST {
            return Err(invalid("policy must be 0 (open) or 1 (allow-list)"));
        }
        let name = self.name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(invalid("name must be 1 to 128 bytes"));
        }
        if self.summary.len() > 1024
            || self.description.len() > MAX_TEXT
            || self.tags.len() > 32
            || self.licence.len() > 128
        {
            return Err(invalid("summary ≤ 1 KiB, description ≤ 16 KiB, ≤ 32 tags, licence ≤ 128 bytes"));
        }
        if self.licence.trim().is_empty() {
            return Err(invalid("a licence is required (an SPDX identifier such as CC-BY-4.0)"));
        }
        check_list(&self.curators, "curators")?;
        check_list(&self.attesters, "attesters")?;
        let cap = st.param(&params::DATANETS_MAX_SUBMISSION_BYTES)?;
        let id = load::<u64>(st, &state_key::count())?.unwrap_or(0) + 1;
        let d = DatanetRecord {
            owner: sender,
            name: name.to_string(),
            summary: self.summary,
            description: self.description,
            tags: self.tags,
            dataType: self.dataType,
            licence: self.licence.clone(),
            policy: self.policy,
            contributorBond: self.contributorBond,
            flags: 0,
            versionCount: 0,
            limits: DatanetLimits {
                maxSubmissionBytes: limit(self.limits.maxSubmissionBytes, cap, Some(cap)),
                contributorDailyBytes: limit(
                    self.limits.contributorDailyBytes,
                    st.param(&params::DATANETS_CONTRIBUTOR_DAILY_BYTES)?,
                    None,
                ),
                datanetDailyBytes: limit(
                    self.limits.datanetDailyBytes,
                    st.param(&params::DATANETS_DATANET_DAILY_BYTES)?,
                    None,
                ),
                contributorDailyFiles: limit(
                    self.limits.contributorDailyFiles as u64,
                    st.param(&params::DATANETS_CONTRIBUTOR_DAILY_FILES)?,
                    None,
                )
                .min(u32::MAX as u64) as u32,
            },
            createdAt: height,
        };
        store(st, state_key::count(), &id);
        store(st, state_key::datanet(id), &d);
        st.index_datanet(id, &sender)?;
        ctx.emit(
            crate::assets::ADDRESS,
            &primitives::abi::IAssets::Transfer {
                from: Address::ZERO,
                to: sender,
                tokenId: crate::assets::datanet_asset(id),
            },
        );
        store(st, state_key::curators(id), &self.curators);
        store(st, state_key::attesters(id), &self.attesters);
        ctx.emit(
            ADDRESS,
            &IDatanets::DatanetCreated {
                id,
                owner: sender,
                name: d.name.clone(),
                dataType: 0,
                licence: self.licence,
                policy: self.policy,
            },
        );
        ctx.emit(ADDRESS, &IDatanets::CuratorsSet { id, curators: self.curators });
        ctx.emit(ADDRESS, &IDatanets::AttestersSet { id, attesters: self.attesters });
        Ok(id)
    }
}

impl Handler for IDatanets::updateMetadataCall {
    fn gas(&self) -> u64 {
        60_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut d = owned(st, self.id, &sender)?;
        if self.summary.len() > 1024 || self.description.len() > MAX_TEXT || self.tags.len() > 32 {
            return Err(invalid("summary ≤ 1 KiB, description ≤ 16 KiB, ≤ 32 tags"));
        }
        d.summary = self.summary;
        d.description = self.description;
        d.tags = self.tags;
        store(st, state_key::datanet(self.id), &d);
        ctx.emit(ADDRESS, &IDatanets::DatanetUpdated { id: self.id });
        Ok(IDatanets::updateMetadataReturn {})
    }
}

impl Handler for IDatanets::setCuratorsCall {
    fn gas(&self) -> u64 {
        60_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        owned(st, self.id, &sender)?;
        check_list(&self.curators, "curators")?;
        store(st, state_key::curators(self.id), &self.curators);
        ctx.emit(ADDRESS, &IDatanets::CuratorsSet { id: self.id, curators: self.curators });
        Ok(IDatanets::setCuratorsReturn {})
    }
}

impl Handler for IDatanets::setAttestersCall {
    fn gas(&self) -> u64 {
        60_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        owned(st, self.id, &sender)?;
        check_list(&self.attesters, "attesters")?;
        store(st, state_key::attesters(self.id), &self.attesters);
        ctx.emit(ADDRESS, &IDatanets::AttestersSet { id: self.id, attesters: self.attesters });
        Ok(IDatanets::setAttestersReturn {})
    }
}

impl Handler for IDatanets::setMembersCall {
    fn gas(&self) -> u64 {
        60_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        owned(st, self.id, &sender)?;
        if self.add.len() + self.remove.len() > 256 {
            return Err(invalid("at most 256 member changes per call"));
        }
        for a in &self.add {
            st.put(state_key::member(self.id, a), Some(vec![1]));
        }
        for a in &self.remove {
            st.put(state_key::member(self.id, a), None);
        }
        ctx.emit(ADDRESS, &IDatanets::MembersChanged { id: self.id, added: self.add, removed: self.remove });
        Ok(IDatanets::setMembersReturn {})
    }
}

impl Handler for IDatanets::setFlagsCall {
    fn gas(&self) -> u64 {
        60_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        if sender != Module::Governance.address() {
            return Err(revert(Unauthorized { caller: sender }));
        }
        let mut d = get(st, self.id)?;
        d.flags = self.flags;
        store(st, state_key::datanet(self.id), &d);
        ctx.emit(ADDRESS, &IDatanets::FlagsSet { id: self.id, flags: self.flags });
        Ok(IDatanets::setFlagsReturn {})
    }
}

impl Handler for IDatanets::submitContributionCall {
    const PAYABLE: bool = true;

    fn gas(&self) -> u64 {
        150_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let a = &self.attestation;
        let id = a.datanetId;
        let d = get(st, id)?;
        if d.flags & FLAG_FROZEN != 0 {
            return Err(revert(IDatanets::DatanetFrozen { id }));
        }
        if d.policy == POLICY_ALLOW_LIST && sender != d.owner && !st.is_member(id, &sender)? {
            return Err(revert(IDatanets::NotMember { caller: sender }));
        }
        if a.contributor != sender {
            return Err(revert(IDatanets::InvalidAttestation { reason: "attested for another contributor".into() }));
        }
        if a.rowCount == 0 || a.byteSize == 0 || a.qualityBps > 10_000 {
            return Err(revert(IDatanets::InvalidAttestation {
                reason: "empty contribution or score above 10000".into(),
            }));
        }
        // Freshness: block time is the only clock.
        let ttl = u64::try_from(st.param(&params::DATANETS_ATTESTATION_TTL)?).unwrap_or(u64::MAX);
        let now = ctx.env.timestamp;
        if a.issuedAt > now.saturating_add(300) || now > a.issuedAt.saturating_add(ttl) {
            return Err(revert(IDatanets::AttestationExpired { issuedAt: a.issuedAt, now }));
        }
        let domain = Module::Datanets.eip712_domain(ctx.env.chain_id);
        let digest = a.eip712_signing_hash(&domain);
        let sig = Signature::from_raw(&self.signature)
            .map_err(|_| revert(IDatanets::InvalidAttestation { reason: "malformed signature".into() }))?;
        let attester = sig
            .recover_address_from_prehash(&digest)
            .map_err(|_| revert(IDatanets::InvalidAttestation { reason: "signature does not recover".into() }))?;
        if !st.attesters(id)?.contains(&attester) {
            return Err(revert(IDatanets::UntrustedAttester { attester }));
        }
        if st.get(&state_key::attestation_used(&digest))?.is_some() {
            return Err(revert(IDatanets::AttestationReused {}));
        }
        if ctx.value.to_u256() != d.contributorBond {
            return Err(revert(IDatanets::BondMismatch { required: d.contributorBond, sent: ctx.value.to_u256() }));
        }
        // Limits.
        let day = now / 86_400;
        let ukey = state_key::contributor_usage(id, &sender, day);
        let mut u = load::<Usage>(st, &ukey)?.unwrap_or(Usage { bytesUsed: 0, files: 0 });
        let dkey = state_key::datanet_usage(id, day);
        let dused = load::<u64>(st, &dkey)?.unwrap_or(0);
        within("bytes per submission", 0, a.byteSize, d.limits.maxSubmissionBytes)?;
        within("bytes per contributor per day", u.bytesUsed, a.byteSize, d.limits.contributorDailyBytes)?;
        within("files per contributor per day", u.files as u64, 1, d.limits.contributorDailyFiles as u64)?;
        within("bytes per Datanet per day", dused, a.byteSize, d.limits.datanetDailyBytes)?;
        u.bytesUsed += a.byteSize;
        u.files += 1;
        store(st, ukey, &u);
        store(st, dkey, &(dused + a.byteSize));
        st.put(state_key::attestation_used(&digest), Some(vec![1]));
        let cid = load::<u64>(st, &state_key::contribution_count())?.unwrap_or(0) + 1;
        let rec = ContributionRecord {
            attestation: a.clone(),
            bond: ctx.value.to_u256(),
            status: PENDING,
            reason: 0,
            note: String::new(),
            submittedAt: height,
            decidedAt: 0,
            version: 0,
            tombstoned: 0,
            attester,
        };
        store(st, state_key::contribution_count(), &cid);
        store(st, state_key::contribution(cid), &rec);
        IndexedList::new(state_key::contributions_of(id)).push(st, &cid)?;
        IndexedList::new(state_key::contributions_by(&sender)).push(st, &cid)?;
        standing(st, id, &sender)?;
        let mut r = rep(st, &sender)?;
        r.submitted += 1;
        store(st, state_key::reputation(&sender), &r);
        ctx.emit(
            ADDRESS,
            &IDatanets::ContributionSubmitted {
                datanetId: id,
                contributionId: cid,
                contributor: sender,
                contentHash: a.contentHash,
                rowsRoot: a.rowsRoot,
                rowCount: a.rowCount,
                byteSize: a.byteSize,
                qualityBps: a.qualityBps,
                bond: rec.bond,
            },
        );
        Ok(cid)
    }
}

impl Handler for IDatanets::approveCall {
    fn gas(&self) -> u64 {
        200_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let mut rec = get_contribution(st, self.contributionId)?;
        let id = rec.attestation.datanetId;
        let mut d = get(st, id)?;
        if !is_curator(st, id, &d, &sender)? {
            return Err(revert(IDatanets::NotCurator { caller: sender }));
        }
        if d.flags & FLAG_FROZEN != 0 {
            return Err(revert(IDatanets::DatanetFrozen { id }));
        }
        if rec.status != PENDING {
            return Err(revert(IDatanets::NotPending { contributionId: self.contributionId, status: rec.status }));
        }
        let leaf = version_leaf(
            self.contributionId,
            &VersionEntry { rows_root: rec.attestation.rowsRoot, row_count: rec.attestation.rowCount as u64 },
        );
        let root = smt_set(st, id, self.contributionId, leaf)?;
        let n = new_version(
            st,
            id,
            &mut d,
            root,
            rec.attestation.rowCount as i64,
            rec.attestation.rowCount as i64,
            1,
            height,
        )?;
        let bond = Amount::from_u256(rec.bond).map_err(|_| revert(primitives::abi::Overflow {}))?;
        st.transfer(&ADDRESS, &rec.attestation.contributor, bond)?;
        rec.status = APPROVED;
        rec.decidedAt = height;
        rec.version = n;
        store(st, state_key::contribution(self.contributionId), &rec);
        let mut s = standing(st, id, &rec.attestation.contributor)?;
        s.approvedRows += rec.attestation.rowCount as u64;
        s.approved += 1;
        s.decided += 1;
        store(st, state_key::standing(id, &rec.attestation.contributor), &s);
        let mut r = rep(st, &rec.attestation.contributor)?;
        r.approved += 1;
        r.rows += rec.attestation.rowCount as u64;
        r.bytesApproved += rec.attestation.byteSize;
        store(st, state_key::reputation(&rec.attestation.contributor), &r);
        ctx.emit(
            ADDRESS,
            &IDatanets::ContributionApproved {
                datanetId: id,
                contributionId: self.contributionId,
                curator: sender,
                version: n,
                versionRoot: root,
            },
        );
        Ok(IDatanets::approveReturn {})
    }
}

impl Handler for IDatanets::rejectCall {
    fn gas(&self) -> u64 {
        80_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let mut rec = get_contribution(st, self.contributionId)?;
        let id = rec.attestation.datanetId;
        let d = get(st, id)?;
        if !is_curator(st, id, &d, &sender)? {
            return Err(revert(IDatanets::NotCurator { caller: sender }));
        }
        if rec.status != PENDING {
            return Err(revert(IDatanets::NotPending { contributionId: self.contributionId, status: rec.status }));
        }
        if self.reason > 5 || self.note.len() > 1024 {
            return Err(invalid("reason must be 0..=5 and the note at most 1 KiB"));
        }
        let bond = Amount::from_u256(rec.bond).map_err(|_| revert(primitives::abi::Overflow {}))?;
        let slashed = if slashing_reason(self.reason) {
            bond.mul_div(st.param(&params::DATANETS_REJECT_SLASH_BPS)?, 10_000)
                .map_err(|_| revert(primitives::abi::Overflow {}))?
        } else {
            Amount::ZERO
        };
        st.transfer(&ADDRESS, &TREASURY, slashed)?;
        st.transfer(&ADDRESS, &rec.attestation.contributor, Amount(bond.0 - slashed.0))?;
        rec.status = REJECTED;
        rec.reason = self.reason;
        rec.note = self.note.clone();
        rec.decidedAt = height;
        store(st, state_key::contribution(self.contributionId), &rec);
        let mut s = standing(st, id, &rec.attestation.contributor)?;
        s.decided += 1;
        store(st, state_key::standing(id, &rec.attestation.contributor), &s);
        let mut r = rep(st, &rec.attestation.contributor)?;
        r.rejected += 1;
        store(st, state_key::reputation(&rec.attestation.contributor), &r);
        ctx.emit(
            ADDRESS,
            &IDatanets::ContributionRejected {
                datanetId: id,
                contributionId: self.contributionId,
                curator: sender,
                reason: self.reason,
                note: self.note,
                slashed: slashed.to_u256(),
            },
        );
        Ok(IDatanets::rejectReturn {})
    }
}

impl Handler for IDatanets::withdrawCall {
    fn gas(&self) -> u64 {
        80_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let mut rec = get_contribution(st, self.contributionId)?;
        if rec.attestation.contributor != sender {
            return Err(revert(IDatanets::NotContributor { caller: sender }));
        }
        if rec.status != PENDING {
            return Err(revert(IDatanets::NotPending { contributionId: self.contributionId, status: rec.status }));
        }
        let bond = Amount::from_u256(rec.bond).map_err(|_| revert(primitives::abi::Overflow {}))?;
        st.transfer(&ADDRESS, &sender, bond)?;
        rec.status = WITHDRAWN;
        rec.decidedAt = height;
        store(st, state_key::contribution(self.contributionId), &rec);
        let mut r = rep(st, &sender)?;
        r.withdrawn += 1;
        store(st, state_key::reputation(&sender), &r);
        ctx.emit(
            ADDRESS,
            &IDatanets::ContributionWithdrawn {
                datanetId: rec.attestation.datanetId,
                contributionId: self.contributionId,
            },
        );
        Ok(IDatanets::withdrawReturn {})
    }
}

impl Handler for IDatanets::flagCall {
    fn gas(&self) -> u64 {
        120_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut rec = get_contribution(st, self.contributionId)?;
        let id = rec.attestation.datanetId;
        let d = get(st, id)?;
        if !is_curator(st, id, &d, &sender)? && sender != Module::Governance.address() {
            return Err(revert(IDatanets::NotCurator { caller: sender }));
        }
        if rec.status != APPROVED {
            return Err(revert(IDatanets::NotPending { contributionId: self.contributionId, status: rec.status }));
        }
        if !(1..=3).contains(&self.reason) || self.note.len() > 1024 {
            return Err(invalid("reason must be 1 (duplicated), 2 (adversarial) or 3 (unfit), the note at most 1 KiB"));
        }
        rec.status = FLAGGED;
        rec.reason = self.reason;
        rec.note = self.note.clone();
        store(st, state_key::contribution(self.contributionId), &rec);
        // Its rows stop counting in every version that holds them: fallback
        // payouts go to the others, and those versions close to new training.
        let live = (rec.attestation.rowCount - rec.tombstoned) as u64;
        crate::fenwick::add(st, &|i| state_key::flagged_rows_node(id, i), rec.version, U256::from(live))?;
        close_versions(st, id, rec.version, d.versionCount)?;
        let mut s = standing(st, id, &rec.attestation.contributor)?;
        s.approvedRows = s.approvedRows.saturating_sub(live);
        s.approved = s.approved.saturating_sub(1);
        s.decided = s.decided.saturating_sub(1);
        store(st, state_key::standing(id, &rec.attestation.contributor), &s);
        IndexedList::new(state_key::flagged(id)).push(st, &self.contributionId)?;
        ctx.emit(
            ADDRESS,
            &IDatanets::ContributionFlagged {
                datanetId: id,
                contributionId: self.contributionId,
                curator: sender,
                reason: self.reason,
                note: self.note,
            },
        );
        Ok(IDatanets::flagReturn {})
    }
}

impl Handler for IDatanets::flaggedCall {
    /// A page: a read per item, at most [`MAX_PAGE`] items.
    fn gas(&self) -> u64 {
        10_000 + 2_500 * self.limit.min(MAX_PAGE)
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get(st, self.datanetId)?;
        let page = IndexedList::new(state_key::flagged(self.datanetId)).page::<u64>(
            st,
            self.offset,
            self.limit.min(MAX_PAGE),
        )?;
        Ok(page)
    }
}

impl Handler for IDatanets::tombstoneCall {
    fn gas(&self) -> u64 {
        250_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let mut rec = get_contribution(st, self.contributionId)?;
        let id = rec.attestation.datanetId;
        let mut d = get(st, id)?;
        if sender != d.owner && sender != Module::Governance.address() {
            return Err(revert(IDatanets::NotOwner { caller: sender }));
        }
        if rec.status != APPROVED {
            return Err(revert(IDatanets::NotPending { contributionId: self.contributionId, status: rec.status }));
        }
        if st.is_tombstoned(self.contributionId, self.rowIndex)? {
            return Err(revert(IDatanets::AlreadyTombstoned {
                contributionId: self.contributionId,
                rowIndex: self.rowIndex,
            }));
        }
        if self.reason.len() > 1024 {
            return Err(invalid("the reason is at most 1 KiB"));
        }
        let proof = MerkleProof {
            index: self.rowIndex as u64,
            leaf_count: rec.attestation.rowCount as u64,
            siblings: self.proof.clone(),
        };
        if self.rowLeaf == TOMBSTONE_LEAF || !proof.verify(&self.rowLeaf, &rec.attestation.rowsRoot) {
            return Err(revert(IDatanets::InvalidRowProof {}));
        }
        let new_rows_root = proof.root_for(&TOMBSTONE_LEAF).ok_or_else(|| revert(IDatanets::InvalidRowProof {}))?;
        rec.attestation.rowsRoot = new_rows_root;
        rec.tombstoned += 1;
        store(st, state_key::contribution(self.contributionId), &rec);
        // Recorded with the version that first excludes the row (set below, once known).
        let tomb_key = state_key::tombstone(self.contributionId, self.rowIndex);
        // Every version that contains the row is closed to new training; its root stays for audit.
        close_versions(st, id, rec.version, d.versionCount)?;
        let mut s = standing(st, id, &rec.attestation.contributor)?;
        s.approvedRows = s.approvedRows.saturating_sub(1);
        store(st, state_key::standing(id, &rec.attestation.contributor), &s);
        let leaf = version_leaf(
            self.contributionId,
            &VersionEntry { rows_root: new_rows_root, row_count: rec.attestation.rowCount as u64 },
        );
        let root = smt_set(st, id, self.contributionId, leaf)?;
        let n = new_version(st, id, &mut d, root, 0, -1, 0, height)?;
        store(st, tomb_key, &TombstoneRecord { version: n, reason: self.reason.clone() });
        ctx.emit(
            ADDRESS,
            &IDatanets::RowTombstoned {
                datanetId: id,
                contributionId: self.contributionId,
                rowIndex: self.rowIndex,
                reason: self.reason,
                version: n,
                versionRoot: root,
            },
        );
        Ok(IDatanets::tombstoneReturn {})
    }
}

impl Handler for IDatanets::datanetCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let d = get(st, self.id)?;
        Ok(IDatanets::datanetReturn {
            owner: d.owner,
            name: d.name,
            summary: d.summary,
            description: d.description,
            tags: d.tags,
            dataType: d.dataType,
            licence: d.licence,
            policy: d.policy,
            contributorBond: d.contributorBond,
            flags: d.flags,
            versionCount: d.versionCount,
            limits: d.limits,
        })
    }
}

impl Handler for IDatanets::datanetCountCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(load::<u64>(st, &state_key::count())?.unwrap_or(0))
    }
}

impl Handler for IDatanets::curatorsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.curators(self.id)?)
    }
}

impl Handler for IDatanets::attestersCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.attesters(self.id)?)
    }
}

impl Handler for IDatanets::isMemberCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.is_member(self.id, &self.account)?)
    }
}

impl Handler for IDatanets::versionCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        st.version(self.id, self.v)?.ok_or_else(|| invalid("no such version"))
    }
}

impl Handler for IDatanets::contributionCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let r = get_contribution(st, self.contributionId)?;
        Ok(IDatanets::contributionReturn {
            datanetId: r.attestation.datanetId,
            contributor: r.attestation.contributor,
            contentHash: r.attestation.contentHash,
            rowsRoot: r.attestation.rowsRoot,
            rowCount: r.attestation.rowCount,
            byteSize: r.attestation.byteSize,
            qualityBps: r.attestation.qualityBps,
            scorerVersion: r.attestation.scorerVersion,
            exactDuplicates: r.attestation.exactDuplicates,
            nearDuplicates: r.attestation.nearDuplicates,
            findingsHash: r.attestation.findingsHash,
            bond: r.bond,
            status: r.status,
            reason: r.reason,
            note: r.note,
            version: r.version,
            tombstoned: r.tombstoned,
            attester: r.attester,
        })
    }
}

impl Handler for IDatanets::contributionsOfCall {
    /// A page: a read per item, at most [`MAX_PAGE`] items.
    fn gas(&self) -> u64 {
        10_000 + 2_500 * self.limit.min(MAX_PAGE)
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let page = IndexedList::new(state_key::contributions_of(self.id)).page::<u64>(
            st,
            self.offset,
            self.limit.min(MAX_PAGE),
        )?;
        Ok(page)
    }
}

impl Handler for IDatanets::contributionCountCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(IndexedList::new(state_key::contributions_of(self.id)).len(st)?)
    }
}

impl Handler for IDatanets::contributionsByCall {
    /// A page: a read per item, at most [`MAX_PAGE`] items.
    fn gas(&self) -> u64 {
        10_000 + 2_500 * self.limit.min(MAX_PAGE)
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let page = IndexedList::new(state_key::contributions_by(&self.contributor)).page::<u64>(
            st,
            self.offset,
            self.limit.min(MAX_PAGE),
        )?;
        Ok(page)
    }
}

impl Handler for IDatanets::isTombstonedCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.is_tombstoned(self.contributionId, self.rowIndex)?)
    }
}

impl Handler for IDatanets::reputationCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        rep(st, &self.contributor)
    }
}

impl Handler for IDatanets::leaderboardCall {
    /// A page: two reads per item, at most [`MAX_PAGE`] items.
    fn gas(&self) -> u64 {
        10_000 + 5_000 * (self.limit as u64).min(MAX_PAGE)
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get(st, self.id)?;
        let who: Vec<Address> = IndexedList::new(state_key::contributors(self.id)).page(
            st,
            self.offset,
            (self.limit as u64).min(MAX_PAGE),
        )?;
        let (mut rows, mut bps) = (Vec::with_capacity(who.len()), Vec::with_capacity(who.len()));
        for a in &who {
            let s = load::<StandingRecord>(st, &state_key::standing(self.id, a))?.unwrap_or(StandingRecord {
                approvedRows: 0,
                approved: 0,
                decided: 0,
            });
            rows.push(s.approvedRows);
            bps.push((s.approved * 10_000).checked_div(s.decided).unwrap_or(0) as u16);
        }
        Ok(IDatanets::leaderboardReturn { contributors: who, approvedRows: rows, acceptanceBps: bps })
    }
}

impl Handler for IDatanets::contributorCountCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(IndexedList::new(state_key::contributors(self.id)).len(st)?)
    }
}
