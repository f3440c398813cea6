//! The typed API of Datanet versions: rows with their ids and contributors,
//! checked against the on-chain roots.

use std::collections::BTreeMap;
use std::sync::Arc;

use primitives::B256;
use primitives::rows::{Row, RowId, TOMBSTONE_LEAF, VersionEntry, VersionRow, rows_root, version_root};
use runtime::datanets::{APPROVED, ContributionRecord, DatanetsRead};

use crate::service::{FindingsReport, StateSource};

/// Why rows could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("Datanet {0} does not exist")]
    UnknownDatanet(u64),
    #[error("Datanet {0} has no version {1} (it has {2})")]
    UnknownVersion(u64, u64, u64),
    #[error("contribution {0} does not exist")]
    UnknownContribution(u64),
    #[error("blob {0} is not in this node's blob store")]
    MissingBlob(B256),
    #[error("stored data does not match the chain: {0}")]
    Corrupt(String),
    #[error("chain state: {0}")]
    State(String),
}

/// Reads Datanet rows from chain state and the blob store.
#[derive(Clone)]
pub struct DatanetReader {
    pub(crate) state: Arc<dyn StateSource>,
    pub(crate) blobs: Arc<blobs::BlobStore>,
}

fn st_err(e: impl std::fmt::Display) -> ReaderError {
    ReaderError::State(e.to_string())
}

impl DatanetReader {
    pub fn new(state: Arc<dyn StateSource>, blobs: Arc<blobs::BlobStore>) -> Self {
        DatanetReader { state, blobs }
    }

    async fn blob(&self, h: &B256) -> Result<Vec<u8>, ReaderError> {
        match self.blobs.get(h).await {
            Ok(b) => Ok(b.to_vec()),
            Err(blobs::BlobError::NotFound(_)) => Err(ReaderError::MissingBlob(*h)),
            Err(e) => Err(ReaderError::Corrupt(e.to_string())),
        }
    }

    /// The findings report of a contribution.
    pub async fn report(&self, rec: &ContributionRecord) -> Result<FindingsReport, ReaderError> {
        let b = self.blob(&rec.attestation.findingsHash).await?;
        serde_json::from_slice(&b)
            .map_err(|e| ReaderError::Corrupt(format!("findings report {}: {e}", rec.attestation.findingsHash)))
    }

    /// A contribution's record and all its rows (tombstoned ones included), checked
    /// against its current on-chain rows root.
    pub async fn contribution_rows(&self, cid: u64) -> Result<(ContributionRecord, Vec<Row>), ReaderError> {
        let rec = {
            let st = self.state.state().map_err(st_err)?;
            st.contribution(cid).map_err(st_err)?.ok_or(ReaderError::UnknownContribution(cid))?
        };
        let report = self.report(&rec).await?;
        let rows = crate::decode_rows(&self.blob(&report.rows_blob).await?).map_err(ReaderError::Corrupt)?;
        if rows.len() != rec.attestation.rowCount as usize {
            return Err(ReaderError::Corrupt(format!(
                "contribution {cid}: {} rows stored, {} on chain",
                rows.len(),
                rec.attestation.rowCount
            )));
        }
        let mut leaves: Vec<B256> = rows.iter().map(Row::leaf).collect();
        {
            let st = self.state.state().map_err(st_err)?;
            for (i, l) in leaves.iter_mut().enumerate() {
                if st.is_tombstoned(cid, i as u32).map_err(st_err)? {
                    *l = TOMBSTONE_LEAF;
                }
            }
        }
        if rows_root(&leaves) != rec.attestation.rowsRoot {
            return Err(ReaderError::Corrupt(format!(
                "contribution {cid}: rows do not hash to the on-chain rows root"
            )));
        }
        Ok((rec, rows))
    }

    /// Every row of version `v` of Datanet `id` (tombstoned rows excluded), in
    /// contribution then row order, after checking that they hash to the version's
    /// on-chain root.
    pub async fn version_rows(&self, id: u64, v: u64) -> Result<Vec<VersionRow>, ReaderError> {
        let mut out = Vec::new();
        self.for_each_version_row(id, v, |r| {
            out.push(r);
            Ok::<(), ReaderError>(())
        })
        .await?;
        Ok(out)
    }

    /// [`version_rows`](Self::version_rows) one row at a time, in (contribution,
    /// row) order, holding one contribution's rows at most: for consumers of a
    /// version larger than memory (a span index of 10^9 tokens). Each
    /// contribution's rows are checked against its on-chain rows root before `f`
    /// sees them; the version's root (which contributions, with which roots) is
    /// checked after the last row, so on an error `f`'s work must be discarded.
    pub async fn for_each_version_row<E: From<ReaderError>>(
        &self,
        id: u64,
        v: u64,
        mut f: impl FnMut(VersionRow) -> Result<(), E>,
    ) -> Result<(), E> {
        let (mut cids, root) = {
            let st = self.state.state().map_err(st_err)?;
            let d = st.datanet(id).map_err(st_err)?.ok_or(ReaderError::UnknownDatanet(id))?;
            if v == 0 || v > d.versionCount {
                return Err(ReaderError::UnknownVersion(id, v, d.versionCount).into());
            }
            let root = st.version(id, v).map_err(st_err)?.map(|r| r.root).unwrap_or_default();
            let mut cids = Vec::new();
            for cid in st.contributions_of(id).map_err(st_err)? {
                if let Some(r) = st.contribution(cid).map_err(st_err)?
                    && r.status == APPROVED
                    && r.version <= v
                {
                    cids.push(cid);
                }
            }
            (cids, root)
        };
        cids.sort_unstable();
        let mut entries = BTreeMap::new();
        for cid in cids {
            let (rec, rows) = self.contribution_rows(cid).await?;
            let st = self.state.state().map_err(st_err)?;
            let mut leaves = Vec::with_capacity(rows.len());
            for (i, row) in rows.into_iter().enumerate() {
                let gone = st.tombstone(cid, i as u32).map_err(st_err)?.is_some_and(|t| t.version <= v);
                if gone {
                    leaves.push(TOMBSTONE_LEAF);
                } else {
                    leaves.push(row.leaf());
                    f(VersionRow {
                        id: RowId { contribution: cid, index: i as u32 },
                        contributor: rec.attestation.contributor,
                        row,
                    })?;
                }
            }
            entries.insert(
                cid,
                VersionEntry { rows_root: rows_root(&leaves), row_count: rec.attestation.rowCount as u64 },
            );
        }
        if version_root(&entries) != root {
            return Err(ReaderError::Corrupt(format!(
                "rows of Datanet {id} version {v} do not hash to its on-chain root"
            ))
            .into());
        }
        Ok(())
    }
}
