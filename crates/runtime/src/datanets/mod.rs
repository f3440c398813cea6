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

mod calls;
pub mod params;
pub mod records;
pub mod state_key;
pub mod view;

use alloy_primitives::{Signature, U256};
use alloy_sol_types::SolStruct;
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
use crate::dispatch::{SystemModule, calls};
use crate::params::ParamsRead;
use crate::{Overlay, revert};
pub use records::*;
pub use view::{DatanetsRead, DatanetsWrite};

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

fn get(st: &Overlay, id: u64) -> Result<DatanetRecord, CallFail> {
    st.datanet(id)?.ok_or_else(|| revert(IDatanets::UnknownDatanet { id }))
}

/// Datanet `id`, if `caller` owns it.
fn owned(st: &Overlay, id: u64, caller: &Address) -> Result<DatanetRecord, CallFail> {
    let d = get(st, id)?;
    if d.owner != *caller {
        return Err(revert(IDatanets::NotOwner { caller: *caller }));
    }
    Ok(d)
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

/// Datanets as a system module.
pub struct Datanets;

impl SystemModule for Datanets {
    type Calls = IDatanetsCalls;
    calls!(IDatanetsCalls {
        createDatanet,
        updateMetadata,
        setCurators,
        setAttesters,
        setMembers,
        setFlags,
        submitContribution,
        approve,
        reject,
        withdraw,
        flag,
        flagged,
        tombstone,
        datanet,
        datanetCount,
        curators,
        attesters,
        isMember,
        version,
        contribution,
        contributionsOf,
        contributionCount,
        contributionsBy,
        isTombstoned,
        reputation,
        leaderboard,
        contributorCount
    });
}

/// Execute a call to the module directly (tests and tools).
pub fn execute(st: &mut Overlay, ctx: &mut CallCtx, call: IDatanetsCalls) -> Result<Bytes, CallFail> {
    <Datanets as SystemModule>::execute(st, ctx, call)
}
