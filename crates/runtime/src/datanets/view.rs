//! Typed reads of Datanet state, for this module, the others and the node's
//! ingest and training services.

use primitives::Address;
use primitives::state::{StateError, StateRead};

use super::records::{ContributionRecord, DatanetRecord, TombstoneRecord, VersionRecord};
use super::state_key;
use crate::codec::{IndexedList, load};

/// Reads of Datanet state, for the node's ingest and training services.
pub trait DatanetsRead {
    /// How many Datanets were ever created (ids are 1..=count).
    fn datanet_count(&self) -> Result<u64, StateError>;
    fn datanet(&self, id: u64) -> Result<Option<DatanetRecord>, StateError>;
    fn contribution(&self, id: u64) -> Result<Option<ContributionRecord>, StateError>;
    fn contributions_of(&self, id: u64) -> Result<Vec<u64>, StateError>;
    /// How many contributions the Datanet has received.
    fn contribution_count(&self, id: u64) -> Result<u64, StateError>;
    /// Contributions `offset..offset + limit` of the Datanet, in submission
    /// order: a read per item, for readers that must stay bounded (web pages).
    fn contributions_page(&self, id: u64, offset: u64, limit: u64) -> Result<Vec<u64>, StateError>;
    fn version(&self, id: u64, n: u64) -> Result<Option<VersionRecord>, StateError>;
    fn is_tombstoned(&self, cid: u64, row: u32) -> Result<bool, StateError>;
    /// The tombstone of a row: the first version without it, and why.
    fn tombstone(&self, cid: u64, row: u32) -> Result<Option<TombstoneRecord>, StateError>;
    fn is_member(&self, id: u64, a: &Address) -> Result<bool, StateError>;
    fn attesters(&self, id: u64) -> Result<Vec<Address>, StateError>;
    fn curators(&self, id: u64) -> Result<Vec<Address>, StateError>;
    /// Contributions of the Datanet flagged (duplicated, adversarial), in flagging order.
    fn flagged(&self, id: u64) -> Result<Vec<u64>, StateError>;
    /// The Datanets `owner` owns.
    fn datanets_of(&self, owner: &Address) -> Result<Vec<u64>, StateError>;
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
    fn contribution_count(&self, id: u64) -> Result<u64, StateError> {
        IndexedList::new(state_key::contributions_of(id)).len(self)
    }
    fn contributions_page(&self, id: u64, offset: u64, limit: u64) -> Result<Vec<u64>, StateError> {
        IndexedList::new(state_key::contributions_of(id)).page(self, offset, limit)
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
    fn datanets_of(&self, owner: &Address) -> Result<Vec<u64>, StateError> {
        Ok(load::<Vec<u64>>(self, &state_key::datanets_of(owner))?.unwrap_or_default())
    }
}

/// Writes of Datanet ownership that keep the owner index in step.
pub trait DatanetsWrite {
    /// Index a new Datanet under its owner.
    fn index_datanet(&mut self, id: u64, owner: &Address) -> Result<(), StateError>;
    /// Give Datanet `id` to `to` (its curation, settings and bonds' rules with it).
    fn set_datanet_owner(&mut self, id: u64, to: &Address) -> Result<(), StateError>;
}

impl DatanetsWrite for crate::Overlay<'_> {
    fn index_datanet(&mut self, id: u64, owner: &Address) -> Result<(), StateError> {
        let mut v = self.datanets_of(owner)?;
        v.push(id);
        crate::codec::store(self, state_key::datanets_of(owner), &v);
        Ok(())
    }
    fn set_datanet_owner(&mut self, id: u64, to: &Address) -> Result<(), StateError> {
        let mut d = self.datanet(id)?.ok_or_else(|| StateError(format!("owner change of unknown Datanet {id}")))?;
        let mut v = self.datanets_of(&d.owner)?;
        v.retain(|x| *x != id);
        crate::codec::store(self, state_key::datanets_of(&d.owner), &v);
        d.owner = *to;
        crate::codec::store(self, state_key::datanet(id), &d);
        self.index_datanet(id, to)
    }
}
