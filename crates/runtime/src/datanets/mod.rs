//! `datanets`: domain data networks. A contribution arrives with an EIP-712
//! attestation from an ingest attester the Datanet trusts (the parse, dedup and
//! score it reports cannot be claimed by anyone else), locks the Datanet's bond,
//! and counts against daily limits. Curators approve (a new immutable version)
//! or reject (spam and duplicates slash part of the bond); contributors may
//! withdraw before review; the owner or governance tombstones rows.
//!
//! A version's root is the sparse Merkle map of `primitives::rows` keyed by
//! contribution id over (id, rows root, row count) of the approved
//! contributions. Its inner nodes live in state, so an approval or a tombstone
//! updates 64 nodes without ever seeing rows.

pub mod records;
pub mod state_key;

use alloy_primitives::{Signature, U256};
use alloy_sol_types::{SolCall, SolStruct};
use primitives::abi::IDatanets::{self, IDatanetsCalls};
use primitives::abi::{DatanetLimits, Unauthorized};
use primitives::merkle::{EMPTY_ROOT, MerkleProof};
use primitives::rows::{TOMBSTONE_LEAF, VersionEntry, version_leaf};
use primitives::state::{StateError, StateRead};
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, B256, Bytes};

use crate::bank::BankWrite;
use crate::codec::{IndexedList, load, store};
use crate::context::{CallCtx, CallFail};
use crate::params::{self, ParamsRead};
use crate::{Overlay, revert};
pub use records::*;

pub const ADDRESS: Address = Module::Datanets.address();
pub const POLICY_OPEN: u8 = 0;
pub const POLICY_ALLOW_LIST: u8 = 1;
pub const FLAG_FROZEN: u8 = 1;
const MAX_LIST: usize = 64;
const MAX_TEXT: usize = 16 * 1024;

/// Reject reasons that slash part of the bond.
pub fn slashing_reason(reason: u8) -> bool {
    reason == 1 || reason == 2
}

/// Reads of Datanet state, for the node's ingest and training services.
pub trait DatanetsRead {
    /// How many Datanets were ever created (ids are 1..=count).
    fn datanet_count(&self) -> Result<u64, StateError>;
    fn datanet(&self, id: u64) -> Result<Option<DatanetRecord>, StateError>;
    fn contribution(&self, id: u64) -> Result<Option<ContributionRecord>, StateError>;
    fn contributions_of(&self, id: u64) -> Result<Vec<u64>, StateError>;
    fn version(&self, id: u64, n: u64) -> Result<Option<VersionRecord>, StateError>;
    fn is_tombstoned(&self, cid: u64, row: u32) -> Result<bool, StateError>;
    /// The tombstone of a row: the first version without it, and why.
    fn tombstone(&self, cid: u64, row: u32) -> Result<Option<TombstoneRecord>, StateError>;
    fn is_member(&self, id: u64, a: &Address) -> Result<bool, StateError>;
    fn attesters(&self, id: u64) -> Result<Vec<Address>, StateError>;
    fn curators(&self, id: u64) -> Result<Vec<Address>, StateError>;
    /// Contributions of the Datanet flagged (duplicated, adversarial), in flagging order.
    fn flagged(&self, id: u64) -> Result<Vec<u64>, StateError>;
}

impl<S: StateRead + ?Sized> DatanetsRead for S {
    fn datanet_count(&self) -> Result<u64, StateError> {
        Ok(load::<u64>(self, &state_key::count())?.unwrap_or(0))
    }
    fn datanet(&self, id: u64) -> Result<Option<DatanetRecord>, StateError> {
        load(self, &state_key::datanet(id))
    }
    fn contribution(&self, id: u64) -> Result<Option<ContributionRecord>, StateError> {
        load(self, &state_key::contribution(id))
    }
    fn contributions_of(&self, id: u64) -> Result<Vec<u64>, StateError> {
        IndexedList::new(state_key::contributions_of(id)).page(self, 0, u64::MAX)
    }
    fn version(&self, id: u64, n: u64) -> Result<Option<VersionRecord>, StateError> {
        // The recorded version, less the rows of contributions flagged since
        // (approved at or before it), closed if a tombstone or flag covers it:
        // both kept as Fenwick sums, so flagging never loops over versions.
        let Some(mut v) = load::<VersionRecord>(self, &state_key::version(id, n))? else { return Ok(None) };
        let flagged = crate::fenwick::prefix(self, &|i| state_key::flagged_rows_node(id, i), n)?;
        v.liveRows = v.liveRows.saturating_sub(u64::try_from(flagged).unwrap_or(u64::MAX));
        let closures = crate::fenwick::prefix(self, &|i| state_key::closures_node(id, i), n)?;
        v.closed = v.closed || !closures.is_zero();
        Ok(Some(v))
    }
    fn is_tombstoned(&self, cid: u64, row: u32) -> Result<bool, StateError> {
        Ok(self.get(&state_key::tombstone(cid, row))?.is_some())
    }
    fn tombstone(&self, cid: u64, row: u32) -> Result<Option<TombstoneRecord>, StateError> {
        load(self, &state_key::tombstone(cid, row))
    }
    fn is_member(&self, id: u64, a: &Address) -> Result<bool, StateError> {
        Ok(self.get(&state_key::member(id, a))?.is_some())
    }
    fn attesters(&self, id: u64) -> Result<Vec<Address>, StateError> {
        Ok(load::<Vec<Address>>(self, &state_key::attesters(id))?.unwrap_or_default())
    }
    fn curators(&self, id: u64) -> Result<Vec<Address>, StateError> {
        Ok(load::<Vec<Address>>(self, &state_key::curators(id))?.unwrap_or_default())
    }
    fn flagged(&self, id: u64) -> Result<Vec<u64>, StateError> {
        IndexedList::new(state_key::flagged(id)).page(self, 0, u64::MAX)
    }
}

pub fn gas_cost(call: &IDatanetsCalls) -> u64 {
    use IDatanetsCalls::*;
    match call {
        createDatanet(_) => 200_000,
        submitContribution(_) => 150_000,
        approve(_) => 200_000,
        tombstone(_) => 250_000,
        flag(_) => 120_000,
        reject(_) | withdraw(_) => 80_000,
        updateMetadata(_) | setCurators(_) | setAttesters(_) | setMembers(_) | setFlags(_) => 60_000,
        // Pages: a read per item (two for the leaderboard), at most MAX_PAGE items.
        contributionsOf(c) => 10_000 + 2_500 * c.limit.min(MAX_PAGE),
        contributionsBy(c) => 10_000 + 2_500 * c.limit.min(MAX_PAGE),
        flagged(c) => 10_000 + 2_500 * c.limit.min(MAX_PAGE),
        leaderboard(c) => 10_000 + 5_000 * (c.limit as u64).min(MAX_PAGE),
        _ => 10_000,
    }
}

pub fn decode(input: &[u8]) -> Result<IDatanetsCalls, CallFail> {
    crate::executor::decode_calls::<IDatanetsCalls>(input)
}

fn get(st: &Overlay, id: u64) -> Result<DatanetRecord, CallFail> {
    st.datanet(id)?.ok_or_else(|| revert(IDatanets::UnknownDatanet { id }))
}

fn get_contribution(st: &Overlay, id: u64) -> Result<ContributionRecord, CallFail> {
    st.contribution(id)?.ok_or_else(|| revert(IDatanets::UnknownContribution { id }))
}

fn invalid(reason: &str) -> CallFail {
    revert(IDatanets::InvalidDatanet { reason: reason.into() })
}

fn check_list(list: &[Address], what: &str) -> Result<(), CallFail> {
    if list.len() > MAX_LIST {
        return Err(invalid(&format!("at most {MAX_LIST} {what}")));
    }
    if list.contains(&Address::ZERO) {
        return Err(invalid(&format!("the zero address cannot be one of the {what}")));
    }
    Ok(())
}

/// Most items one page of a list view returns.
pub const MAX_PAGE: u64 = 256;

/// Close versions `from..=to` of Datanet `id` to new training (one Fenwick
/// range update: two point additions, whatever the number of versions).
fn close_versions(st: &mut Overlay, id: u64, from: u64, to: u64) -> Result<(), CallFail> {
    if from == 0 || from > to {
        return Ok(());
    }
    let key = |i| state_key::closures_node(id, i);
    crate::fenwick::add(st, &key, from, U256::from(1))?;
    crate::fenwick::add(st, &key, to + 1, U256::MAX)?; // −1, wrapping
    Ok(())
}

/// A contributor's standing in a Datanet, listing it on first contribution.
fn standing(st: &mut Overlay, id: u64, a: &Address) -> Result<StandingRecord, CallFail> {
    match load::<StandingRecord>(st, &state_key::standing(id, a))? {
        Some(s) => Ok(s),
        None => {
            IndexedList::new(state_key::contributors(id)).push(st, a)?;
            let s = StandingRecord { approvedRows: 0, approved: 0, decided: 0 };
            store(st, state_key::standing(id, a), &s);
            Ok(s)
        }
    }
}

fn smt_get(st: &Overlay, id: u64, level: u8, index: u64) -> Result<B256, CallFail> {
    Ok(st.get(&state_key::smt_node(id, level, index))?.map(|b| B256::from_slice(&b)).unwrap_or(EMPTY_ROOT))
}

fn map_node(l: &B256, r: &B256) -> B256 {
    if *l == EMPTY_ROOT && *r == EMPTY_ROOT { EMPTY_ROOT } else { primitives::merkle::node_hash(l, r) }
}

/// Set contribution `cid`'s leaf in Datanet `id`'s version map; returns the new root.
fn smt_set(st: &mut Overlay, id: u64, cid: u64, leaf: B256) -> Result<B256, CallFail> {
    let mut cur = leaf;
    for level in 0u8..64 {
        let i = cid >> level;
        let key = state_key::smt_node(id, level, i);
        st.put(key, if cur == EMPTY_ROOT { None } else { Some(cur.to_vec()) });
        let sib = smt_get(st, id, level, i ^ 1)?;
        cur = if i & 1 == 0 { map_node(&cur, &sib) } else { map_node(&sib, &cur) };
    }
    st.put(state_key::smt_node(id, 64, 0), if cur == EMPTY_ROOT { None } else { Some(cur.to_vec()) });
    Ok(cur)
}

/// The current root of Datanet `id`'s version map.
pub fn current_root(st: &(impl StateRead + ?Sized), id: u64) -> Result<B256, StateError> {
    Ok(st.get(&state_key::smt_node(id, 64, 0))?.map(|b| B256::from_slice(&b)).unwrap_or(EMPTY_ROOT))
}

fn rep(st: &Overlay, a: &Address) -> Result<ReputationRecord, CallFail> {
    Ok(load(st, &state_key::reputation(a))?.unwrap_or(ReputationRecord {
        submitted: 0,
        approved: 0,
        rejected: 0,
        withdrawn: 0,
        rows: 0,
        bytesApproved: 0,
    }))
}

/// Append a version after the latest with `root`, adjusting row counts.
fn new_version(
    st: &mut Overlay,
    id: u64,
    d: &mut DatanetRecord,
    root: B256,
    rows_delta: i64,
    live_delta: i64,
    contributions_delta: u64,
    height: u64,
) -> Result<u64, CallFail> {
    let prev = if d.versionCount == 0 {
        VersionRecord {
            root: EMPTY_ROOT,
            parent: 0,
            rowCount: 0,
            liveRows: 0,
            contributions: 0,
            createdAt: 0,
            closed: false,
        }
    } else {
        // The recorded values (flags are subtracted when a version is read).
        load::<VersionRecord>(st, &state_key::version(id, d.versionCount))?
            .ok_or_else(|| invalid("missing version record"))?
    };
    let n = d.versionCount + 1;
    let v = VersionRecord {
        root,
        parent: d.versionCount,
        rowCount: (prev.rowCount as i64 + rows_delta) as u64,
        liveRows: (prev.liveRows as i64 + live_delta) as u64,
        contributions: prev.contributions + contributions_delta,
        createdAt: height,
        closed: false,
    };
    store(st, state_key::version(id, n), &v);
    d.versionCount = n;
    store(st, state_key::datanet(id), &*d);
    Ok(n)
}

/// Refuse `used + requested > max` with the limit's name and figures.
fn within(limit: &str, used: u64, requested: u64, max: u64) -> Result<(), CallFail> {
    if used.saturating_add(requested) > max {
        return Err(revert(IDatanets::LimitExceeded {
            limit: limit.into(),
            used: U256::from(used),
            requested: U256::from(requested),
            max: U256::from(max),
        }));
    }
    Ok(())
}

fn is_curator(st: &Overlay, id: u64, d: &DatanetRecord, a: &Address) -> Result<bool, CallFail> {
    Ok(*a == d.owner || st.curators(id)?.contains(a))
}

fn limit(v: u64, default: u128, cap: Option<u128>) -> u64 {
    let d = u64::try_from(default).unwrap_or(u64::MAX);
    let v = if v == 0 { d } else { v };
    match cap {
        Some(c) => v.min(u64::try_from(c).unwrap_or(u64::MAX)),
        None => v,
    }
}

pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IDatanetsCalls) -> Result<Bytes, CallFail> {
    use IDatanetsCalls as C;
    let height = ctx.env.number;
    let sender = ctx.sender;
    Ok(match call {
        C::createDatanet(c) => {
            if c.dataType != 0 {
                return Err(revert(IDatanets::UnsupportedDataType { dataType: c.dataType }));
            }
            if c.policy > POLICY_ALLOW_LIST {
                return Err(invalid("policy must be 0 (open) or 1 (allow-list)"));
            }
            let name = c.name.trim();
            if name.is_empty() || name.len() > 128 {
                return Err(invalid("name must be 1 to 128 bytes"));
            }
            if c.summary.len() > 1024 || c.description.len() > MAX_TEXT || c.tags.len() > 32 || c.licence.len() > 128 {
                return Err(invalid("summary ≤ 1 KiB, description ≤ 16 KiB, ≤ 32 tags, licence ≤ 128 bytes"));
            }
            if c.licence.trim().is_empty() {
                return Err(invalid("a licence is required (an SPDX identifier such as CC-BY-4.0)"));
            }
            check_list(&c.curators, "curators")?;
            check_list(&c.attesters, "attesters")?;
            let cap = st.param(&params::DATANETS_MAX_SUBMISSION_BYTES)?;
            let id = load::<u64>(st, &state_key::count())?.unwrap_or(0) + 1;
            let d = DatanetRecord {
                owner: sender,
                name: name.to_string(),
                summary: c.summary,
                description: c.description,
                tags: c.tags,
                dataType: c.dataType,
                licence: c.licence.clone(),
                policy: c.policy,
                contributorBond: c.contributorBond,
                flags: 0,
                versionCount: 0,
                maxSubmissionBytes: limit(c.limits.maxSubmissionBytes, cap, Some(cap)),
                contributorDailyBytes: limit(
                    c.limits.contributorDailyBytes,
                    st.param(&params::DATANETS_CONTRIBUTOR_DAILY_BYTES)?,
                    None,
                ),
                datanetDailyBytes: limit(
                    c.limits.datanetDailyBytes,
                    st.param(&params::DATANETS_DATANET_DAILY_BYTES)?,
                    None,
                ),
                contributorDailyFiles: limit(
                    c.limits.contributorDailyFiles as u64,
                    st.param(&params::DATANETS_CONTRIBUTOR_DAILY_FILES)?,
                    None,
                )
                .min(u32::MAX as u64) as u32,
                createdAt: height,
            };
            store(st, state_key::count(), &id);
            store(st, state_key::datanet(id), &d);
            store(st, state_key::curators(id), &c.curators);
            store(st, state_key::attesters(id), &c.attesters);
            ctx.emit(
                ADDRESS,
                &IDatanets::DatanetCreated {
                    id,
                    owner: sender,
                    name: d.name.clone(),
                    dataType: 0,
                    licence: c.licence,
                    policy: c.policy,
                },
            );
            ctx.emit(ADDRESS, &IDatanets::CuratorsSet { id, curators: c.curators });
            ctx.emit(ADDRESS, &IDatanets::AttestersSet { id, attesters: c.attesters });
            IDatanets::createDatanetCall::abi_encode_returns(&id).into()
        }
        C::updateMetadata(c) => {
            let mut d = get(st, c.id)?;
            if d.owner != sender {
                return Err(revert(IDatanets::NotOwner { caller: sender }));
            }
            if c.summary.len() > 1024 || c.description.len() > MAX_TEXT || c.tags.len() > 32 {
                return Err(invalid("summary ≤ 1 KiB, description ≤ 16 KiB, ≤ 32 tags"));
            }
            d.summary = c.summary;
            d.description = c.description;
            d.tags = c.tags;
            store(st, state_key::datanet(c.id), &d);
            ctx.emit(ADDRESS, &IDatanets::DatanetUpdated { id: c.id });
            IDatanets::updateMetadataCall::abi_encode_returns(&IDatanets::updateMetadataReturn {}).into()
        }
        C::setCurators(c) => {
            let d = get(st, c.id)?;
            if d.owner != sender {
                return Err(revert(IDatanets::NotOwner { caller: sender }));
            }
            check_list(&c.curators, "curators")?;
            store(st, state_key::curators(c.id), &c.curators);
            ctx.emit(ADDRESS, &IDatanets::CuratorsSet { id: c.id, curators: c.curators });
            IDatanets::setCuratorsCall::abi_encode_returns(&IDatanets::setCuratorsReturn {}).into()
        }
        C::setAttesters(c) => {
            let d = get(st, c.id)?;
            if d.owner != sender {
                return Err(revert(IDatanets::NotOwner { caller: sender }));
            }
            check_list(&c.attesters, "attesters")?;
            store(st, state_key::attesters(c.id), &c.attesters);
            ctx.emit(ADDRESS, &IDatanets::AttestersSet { id: c.id, attesters: c.attesters });
            IDatanets::setAttestersCall::abi_encode_returns(&IDatanets::setAttestersReturn {}).into()
        }
        C::setMembers(c) => {
            let d = get(st, c.id)?;
            if d.owner != sender {
                return Err(revert(IDatanets::NotOwner { caller: sender }));
            }
            if c.add.len() + c.remove.len() > 256 {
                return Err(invalid("at most 256 member changes per call"));
            }
            for a in &c.add {
                st.put(state_key::member(c.id, a), Some(vec![1]));
            }
            for a in &c.remove {
                st.put(state_key::member(c.id, a), None);
            }
            ctx.emit(ADDRESS, &IDatanets::MembersChanged { id: c.id, added: c.add, removed: c.remove });
            IDatanets::setMembersCall::abi_encode_returns(&IDatanets::setMembersReturn {}).into()
        }
        C::setFlags(c) => {
            if sender != Module::Governance.address() {
                return Err(revert(Unauthorized { caller: sender }));
            }
            let mut d = get(st, c.id)?;
            d.flags = c.flags;
            store(st, state_key::datanet(c.id), &d);
            ctx.emit(ADDRESS, &IDatanets::FlagsSet { id: c.id, flags: c.flags });
            IDatanets::setFlagsCall::abi_encode_returns(&IDatanets::setFlagsReturn {}).into()
        }
        C::submitContribution(c) => {
            let a = &c.attestation;
            let id = a.datanetId;
            let d = get(st, id)?;
            if d.flags & FLAG_FROZEN != 0 {
                return Err(revert(IDatanets::DatanetFrozen { id }));
            }
            if d.policy == POLICY_ALLOW_LIST && sender != d.owner && !st.is_member(id, &sender)? {
                return Err(revert(IDatanets::NotMember { caller: sender }));
            }
            if a.contributor != sender {
                return Err(revert(IDatanets::InvalidAttestation {
                    reason: "attested for another contributor".into(),
                }));
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
            let sig = Signature::from_raw(&c.signature)
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
            within("bytes per submission", 0, a.byteSize, d.maxSubmissionBytes)?;
            within("bytes per contributor per day", u.bytesUsed, a.byteSize, d.contributorDailyBytes)?;
            within("files per contributor per day", u.files as u64, 1, d.contributorDailyFiles as u64)?;
            within("bytes per Datanet per day", dused, a.byteSize, d.datanetDailyBytes)?;
            u.bytesUsed += a.byteSize;
            u.files += 1;
            store(st, ukey, &u);
            store(st, dkey, &(dused + a.byteSize));
            st.put(state_key::attestation_used(&digest), Some(vec![1]));
            let cid = load::<u64>(st, &state_key::contribution_count())?.unwrap_or(0) + 1;
            let rec = ContributionRecord {
                datanetId: id,
                contributor: sender,
                contentHash: a.contentHash,
                rowsRoot: a.rowsRoot,
                rowCount: a.rowCount,
                byteSize: a.byteSize,
                qualityBps: a.qualityBps,
                scorerVersion: a.scorerVersion,
                exactDuplicates: a.exactDuplicates,
                nearDuplicates: a.nearDuplicates,
                findingsHash: a.findingsHash,
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
            IDatanets::submitContributionCall::abi_encode_returns(&cid).into()
        }
        C::approve(c) => {
            let mut rec = get_contribution(st, c.contributionId)?;
            let id = rec.datanetId;
            let mut d = get(st, id)?;
            if !is_curator(st, id, &d, &sender)? {
                return Err(revert(IDatanets::NotCurator { caller: sender }));
            }
            if d.flags & FLAG_FROZEN != 0 {
                return Err(revert(IDatanets::DatanetFrozen { id }));
            }
            if rec.status != PENDING {
                return Err(revert(IDatanets::NotPending { contributionId: c.contributionId, status: rec.status }));
            }
            let leaf = version_leaf(
                c.contributionId,
                &VersionEntry { rows_root: rec.rowsRoot, row_count: rec.rowCount as u64 },
            );
            let root = smt_set(st, id, c.contributionId, leaf)?;
            let n = new_version(st, id, &mut d, root, rec.rowCount as i64, rec.rowCount as i64, 1, height)?;
            let bond = Amount::from_u256(rec.bond).map_err(|_| revert(primitives::abi::Overflow {}))?;
            st.transfer(&ADDRESS, &rec.contributor, bond)?;
            rec.status = APPROVED;
            rec.decidedAt = height;
            rec.version = n;
            store(st, state_key::contribution(c.contributionId), &rec);
            let mut s = standing(st, id, &rec.contributor)?;
            s.approvedRows += rec.rowCount as u64;
            s.approved += 1;
            s.decided += 1;
            store(st, state_key::standing(id, &rec.contributor), &s);
            let mut r = rep(st, &rec.contributor)?;
            r.approved += 1;
            r.rows += rec.rowCount as u64;
            r.bytesApproved += rec.byteSize;
            store(st, state_key::reputation(&rec.contributor), &r);
            ctx.emit(
                ADDRESS,
                &IDatanets::ContributionApproved {
                    datanetId: id,
                    contributionId: c.contributionId,
                    curator: sender,
                    version: n,
                    versionRoot: root,
                },
            );
            IDatanets::approveCall::abi_encode_returns(&IDatanets::approveReturn {}).into()
        }
        C::reject(c) => {
            let mut rec = get_contribution(st, c.contributionId)?;
            let id = rec.datanetId;
            let d = get(st, id)?;
            if !is_curator(st, id, &d, &sender)? {
                return Err(revert(IDatanets::NotCurator { caller: sender }));
            }
            if rec.status != PENDING {
                return Err(revert(IDatanets::NotPending { contributionId: c.contributionId, status: rec.status }));
            }
            if c.reason > 5 || c.note.len() > 1024 {
                return Err(invalid("reason must be 0..=5 and the note at most 1 KiB"));
            }
            let bond = Amount::from_u256(rec.bond).map_err(|_| revert(primitives::abi::Overflow {}))?;
            let slashed = if slashing_reason(c.reason) {
                bond.mul_div(st.param(&params::DATANETS_REJECT_SLASH_BPS)?, 10_000)
                    .map_err(|_| revert(primitives::abi::Overflow {}))?
            } else {
                Amount::ZERO
            };
            st.transfer(&ADDRESS, &TREASURY, slashed)?;
            st.transfer(&ADDRESS, &rec.contributor, Amount(bond.0 - slashed.0))?;
            rec.status = REJECTED;
            rec.reason = c.reason;
            rec.note = c.note.clone();
            rec.decidedAt = height;
            store(st, state_key::contribution(c.contributionId), &rec);
            let mut s = standing(st, id, &rec.contributor)?;
            s.decided += 1;
            store(st, state_key::standing(id, &rec.contributor), &s);
            let mut r = rep(st, &rec.contributor)?;
            r.rejected += 1;
            store(st, state_key::reputation(&rec.contributor), &r);
            ctx.emit(
                ADDRESS,
                &IDatanets::ContributionRejected {
                    datanetId: id,
                    contributionId: c.contributionId,
                    curator: sender,
                    reason: c.reason,
                    note: c.note,
                    slashed: slashed.to_u256(),
                },
            );
            IDatanets::rejectCall::abi_encode_returns(&IDatanets::rejectReturn {}).into()
        }
        C::withdraw(c) => {
            let mut rec = get_contribution(st, c.contributionId)?;
            if rec.contributor != sender {
                return Err(revert(IDatanets::NotContributor { caller: sender }));
            }
            if rec.status != PENDING {
                return Err(revert(IDatanets::NotPending { contributionId: c.contributionId, status: rec.status }));
            }
            let bond = Amount::from_u256(rec.bond).map_err(|_| revert(primitives::abi::Overflow {}))?;
            st.transfer(&ADDRESS, &sender, bond)?;
            rec.status = WITHDRAWN;
            rec.decidedAt = height;
            store(st, state_key::contribution(c.contributionId), &rec);
            let mut r = rep(st, &sender)?;
            r.withdrawn += 1;
            store(st, state_key::reputation(&sender), &r);
            ctx.emit(
                ADDRESS,
                &IDatanets::ContributionWithdrawn { datanetId: rec.datanetId, contributionId: c.contributionId },
            );
            IDatanets::withdrawCall::abi_encode_returns(&IDatanets::withdrawReturn {}).into()
        }
        C::flag(c) => {
            let mut rec = get_contribution(st, c.contributionId)?;
            let id = rec.datanetId;
            let d = get(st, id)?;
            if !is_curator(st, id, &d, &sender)? && sender != Module::Governance.address() {
                return Err(revert(IDatanets::NotCurator { caller: sender }));
            }
            if rec.status != APPROVED {
                return Err(revert(IDatanets::NotPending { contributionId: c.contributionId, status: rec.status }));
            }
            if !(1..=3).contains(&c.reason) || c.note.len() > 1024 {
                return Err(invalid(
                    "reason must be 1 (duplicated), 2 (adversarial) or 3 (unfit), the note at most 1 KiB",
                ));
            }
            rec.status = FLAGGED;
            rec.reason = c.reason;
            rec.note = c.note.clone();
            store(st, state_key::contribution(c.contributionId), &rec);
            // Its rows stop counting in every version that holds them: fallback
            // payouts go to the others, and those versions close to new training.
            let live = (rec.rowCount - rec.tombstoned) as u64;
            crate::fenwick::add(st, &|i| state_key::flagged_rows_node(id, i), rec.version, U256::from(live))?;
            close_versions(st, id, rec.version, d.versionCount)?;
            let mut s = standing(st, id, &rec.contributor)?;
            s.approvedRows = s.approvedRows.saturating_sub(live);
            s.approved = s.approved.saturating_sub(1);
            s.decided = s.decided.saturating_sub(1);
            store(st, state_key::standing(id, &rec.contributor), &s);
            IndexedList::new(state_key::flagged(id)).push(st, &c.contributionId)?;
            ctx.emit(
                ADDRESS,
                &IDatanets::ContributionFlagged {
                    datanetId: id,
                    contributionId: c.contributionId,
                    curator: sender,
                    reason: c.reason,
                    note: c.note,
                },
            );
            IDatanets::flagCall::abi_encode_returns(&IDatanets::flagReturn {}).into()
        }
        C::flagged(c) => {
            get(st, c.datanetId)?;
            let page =
                IndexedList::new(state_key::flagged(c.datanetId)).page::<u64>(st, c.offset, c.limit.min(MAX_PAGE))?;
            IDatanets::flaggedCall::abi_encode_returns(&page).into()
        }
        C::tombstone(c) => {
            let mut rec = get_contribution(st, c.contributionId)?;
            let id = rec.datanetId;
            let mut d = get(st, id)?;
            if sender != d.owner && sender != Module::Governance.address() {
                return Err(revert(IDatanets::NotOwner { caller: sender }));
            }
            if rec.status != APPROVED {
                return Err(revert(IDatanets::NotPending { contributionId: c.contributionId, status: rec.status }));
            }
            if st.is_tombstoned(c.contributionId, c.rowIndex)? {
                return Err(revert(IDatanets::AlreadyTombstoned {
                    contributionId: c.contributionId,
                    rowIndex: c.rowIndex,
                }));
            }
            if c.reason.len() > 1024 {
                return Err(invalid("the reason is at most 1 KiB"));
            }
            let proof =
                MerkleProof { index: c.rowIndex as u64, leaf_count: rec.rowCount as u64, siblings: c.proof.clone() };
            if c.rowLeaf == TOMBSTONE_LEAF || !proof.verify(&c.rowLeaf, &rec.rowsRoot) {
                return Err(revert(IDatanets::InvalidRowProof {}));
            }
            let new_rows_root = proof.root_for(&TOMBSTONE_LEAF).ok_or_else(|| revert(IDatanets::InvalidRowProof {}))?;
            rec.rowsRoot = new_rows_root;
            rec.tombstoned += 1;
            store(st, state_key::contribution(c.contributionId), &rec);
            // Recorded with the version that first excludes the row (set below, once known).
            let tomb_key = state_key::tombstone(c.contributionId, c.rowIndex);
            // Every version that contains the row is closed to new training; its root stays for audit.
            close_versions(st, id, rec.version, d.versionCount)?;
            let mut s = standing(st, id, &rec.contributor)?;
            s.approvedRows = s.approvedRows.saturating_sub(1);
            store(st, state_key::standing(id, &rec.contributor), &s);
            let leaf = version_leaf(
                c.contributionId,
                &VersionEntry { rows_root: new_rows_root, row_count: rec.rowCount as u64 },
            );
            let root = smt_set(st, id, c.contributionId, leaf)?;
            let n = new_version(st, id, &mut d, root, 0, -1, 0, height)?;
            store(st, tomb_key, &TombstoneRecord { version: n, reason: c.reason.clone() });
            ctx.emit(
                ADDRESS,
                &IDatanets::RowTombstoned {
                    datanetId: id,
                    contributionId: c.contributionId,
                    rowIndex: c.rowIndex,
                    reason: c.reason,
                    version: n,
                    versionRoot: root,
                },
            );
            IDatanets::tombstoneCall::abi_encode_returns(&IDatanets::tombstoneReturn {}).into()
        }
        C::datanet(c) => {
            let d = get(st, c.id)?;
            IDatanets::datanetCall::abi_encode_returns(&IDatanets::datanetReturn {
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
                limits: DatanetLimits {
                    maxSubmissionBytes: d.maxSubmissionBytes,
                    contributorDailyBytes: d.contributorDailyBytes,
                    datanetDailyBytes: d.datanetDailyBytes,
                    contributorDailyFiles: d.contributorDailyFiles,
                },
            })
            .into()
        }
        C::datanetCount(_) => {
            IDatanets::datanetCountCall::abi_encode_returns(&load::<u64>(st, &state_key::count())?.unwrap_or(0)).into()
        }
        C::curators(c) => IDatanets::curatorsCall::abi_encode_returns(&st.curators(c.id)?).into(),
        C::attesters(c) => IDatanets::attestersCall::abi_encode_returns(&st.attesters(c.id)?).into(),
        C::isMember(c) => IDatanets::isMemberCall::abi_encode_returns(&st.is_member(c.id, &c.account)?).into(),
        C::version(c) => {
            let v = st.version(c.id, c.v)?.ok_or_else(|| invalid("no such version"))?;
            IDatanets::versionCall::abi_encode_returns(&IDatanets::versionReturn {
                root: v.root,
                parent: v.parent,
                rowCount: v.rowCount,
                liveRows: v.liveRows,
                contributions: v.contributions,
                createdAt: v.createdAt,
                closed: v.closed,
            })
            .into()
        }
        C::contribution(c) => {
            let r = get_contribution(st, c.contributionId)?;
            IDatanets::contributionCall::abi_encode_returns(&IDatanets::contributionReturn {
                datanetId: r.datanetId,
                contributor: r.contributor,
                contentHash: r.contentHash,
                rowsRoot: r.rowsRoot,
                rowCount: r.rowCount,
                byteSize: r.byteSize,
                qualityBps: r.qualityBps,
                scorerVersion: r.scorerVersion,
                exactDuplicates: r.exactDuplicates,
                nearDuplicates: r.nearDuplicates,
                findingsHash: r.findingsHash,
                bond: r.bond,
                status: r.status,
                reason: r.reason,
                note: r.note,
                version: r.version,
                tombstoned: r.tombstoned,
                attester: r.attester,
            })
            .into()
        }
        C::contributionsOf(c) => {
            let page =
                IndexedList::new(state_key::contributions_of(c.id)).page::<u64>(st, c.offset, c.limit.min(MAX_PAGE))?;
            IDatanets::contributionsOfCall::abi_encode_returns(&page).into()
        }
        C::contributionCount(c) => IDatanets::contributionCountCall::abi_encode_returns(
            &IndexedList::new(state_key::contributions_of(c.id)).len(st)?,
        )
        .into(),
        C::contributionsBy(c) => {
            let page = IndexedList::new(state_key::contributions_by(&c.contributor)).page::<u64>(
                st,
                c.offset,
                c.limit.min(MAX_PAGE),
            )?;
            IDatanets::contributionsByCall::abi_encode_returns(&page).into()
        }
        C::isTombstoned(c) => {
            IDatanets::isTombstonedCall::abi_encode_returns(&st.is_tombstoned(c.contributionId, c.rowIndex)?).into()
        }
        C::reputation(c) => {
            let r = rep(st, &c.contributor)?;
            IDatanets::reputationCall::abi_encode_returns(&IDatanets::reputationReturn {
                submitted: r.submitted,
                approved: r.approved,
                rejected: r.rejected,
                withdrawn: r.withdrawn,
                rows: r.rows,
                bytesApproved: r.bytesApproved,
            })
            .into()
        }
        C::leaderboard(c) => {
            get(st, c.id)?;
            let who: Vec<Address> =
                IndexedList::new(state_key::contributors(c.id)).page(st, c.offset, (c.limit as u64).min(MAX_PAGE))?;
            let (mut rows, mut bps) = (Vec::with_capacity(who.len()), Vec::with_capacity(who.len()));
            for a in &who {
                let s = load::<StandingRecord>(st, &state_key::standing(c.id, a))?.unwrap_or(StandingRecord {
                    approvedRows: 0,
                    approved: 0,
                    decided: 0,
                });
                rows.push(s.approvedRows);
                bps.push(if s.decided == 0 { 0 } else { (s.approved * 10_000 / s.decided) as u16 });
            }
            IDatanets::leaderboardCall::abi_encode_returns(&IDatanets::leaderboardReturn {
                contributors: who,
                approvedRows: rows,
                acceptanceBps: bps,
            })
            .into()
        }
        C::contributorCount(c) => IDatanets::contributorCountCall::abi_encode_returns(
            &IndexedList::new(state_key::contributors(c.id)).len(st)?,
        )
        .into(),
    })
}
