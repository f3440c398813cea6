//! Retrieval for the serving API ([`serve::Retriever`]): one BM25 index
//! (`retrieval::Bm25Index`) per Datanet version, built on first use from the
//! version's rows as `datanets::DatanetReader` reads them (checked against the
//! version's on-chain root), kept under `<data-dir>/retrieval/bm25`. The index
//! of a later version that only added rows extends the earlier version's
//! (its segments copied, the new rows added); one that lost rows is rebuilt.
//!
//! Reading rule (DESIGN, private rows): a caller retrieves only from Datanets
//! whose rows it may read (`DatanetService::may_read`); a Datanet it may not
//! read is refused, not silently skipped. Rows of contributions flagged or
//! tombstoned since the version are never returned.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use chain::Chain;
use primitives::Address;
use retrieval::{Bm25Index, Doc};
use runtime::datanets::{APPROVED, DatanetsRead};
use serve::{DatanetSel, Passage, RetrieveError, Retrieved};

/// How many versions back an earlier index is looked for to extend.
const EXTEND_LOOKBACK: u64 = 64;

/// The node's retrieval service.
pub struct RetrievalService {
    chain: Arc<Chain>,
    datanets: Arc<datanets::DatanetService>,
    handle: tokio::runtime::Handle,
    dir: PathBuf,
    open: Mutex<HashMap<(u64, u64), Arc<Bm25Index>>>,
    /// One build at a time (a build reads every row of a version).
    building: Mutex<()>,
}

impl RetrievalService {
    pub fn new(
        chain: Arc<Chain>,
        datanets: Arc<datanets::DatanetService>,
        handle: tokio::runtime::Handle,
        dir: PathBuf,
    ) -> Arc<RetrievalService> {
        Arc::new(RetrievalService {
            chain,
            datanets,
            handle,
            dir,
            open: Mutex::new(HashMap::new()),
            building: Mutex::new(()),
        })
    }

    fn path(&self, d: u64, v: u64) -> PathBuf {
        self.dir.join(format!("d{d}-v{v}"))
    }

    /// The index of version `v` of Datanet `d`, opened or built on first use.
    pub fn index(&self, d: u64, v: u64) -> Result<Arc<Bm25Index>, String> {
        if let Some(i) = self.open.lock().unwrap().get(&(d, v)) {
            return Ok(i.clone());
        }
        let _one = self.building.lock().unwrap();
        if let Some(i) = self.open.lock().unwrap().get(&(d, v)) {
            return Ok(i.clone());
        }
        let path = self.path(d, v);
        let opened = path.exists().then(|| Bm25Index::open(&path));
        let idx = match opened {
            Some(Ok(i)) => i,
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!("retrieval index {}: {e}; rebuilding it", path.display());
                    std::fs::remove_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                }
                self.build(d, v)?
            }
        };
        let idx = Arc::new(idx);
        self.open.lock().unwrap().insert((d, v), idx.clone());
        Ok(idx)
    }

    fn build(&self, d: u64, v: u64) -> Result<Bm25Index, String> {
        let rows = self.handle.block_on(self.datanets.reader().version_rows(d, v)).map_err(|e| e.to_string())?;
        let mut docs: Vec<Doc> = rows
            .into_iter()
            .map(|r| Doc { contribution: r.id.contribution, row: r.id.index, text: crate::spans::row_text(&r.row) })
            .collect();
        docs.sort_by_key(|d| (d.contribution, d.row));
        docs.dedup_by_key(|d| (d.contribution, d.row));
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let path = self.path(d, v);
        if let Some((old, from)) = self.earlier(d, v, &docs) {
            tracing::info!("retrieval index of Datanet {d} v{v}: extending v{old} by {} rows", docs.len() - from);
            let earlier = Bm25Index::open(&self.path(d, old)).map_err(|e| e.to_string())?;
            return earlier.extend(&path, docs.into_iter().skip(from)).map_err(|e| e.to_string());
        }
        tracing::info!("retrieval index of Datanet {d} v{v}: indexing {} rows", docs.len());
        Bm25Index::build(&path, docs).map_err(|e| e.to_string())
    }

    /// An earlier version's index on disk whose rows are exactly the first
    /// rows of `docs`: (its version, where the new rows start).
    fn earlier(&self, d: u64, v: u64, docs: &[Doc]) -> Option<(u64, usize)> {
        (v.saturating_sub(EXTEND_LOOKBACK).max(1)..v).rev().find_map(|w| {
            let p = self.path(d, w);
            let old = p.exists().then(|| Bm25Index::open(&p).ok()).flatten()?;
            let rows = old.rows().ok()?;
            let prefix =
                rows.len() <= docs.len() && rows.iter().zip(docs).all(|(r, doc)| *r == (doc.contribution, doc.row));
            prefix.then_some((w, rows.len()))
        })
    }

    /// The versions a request names, checked: each Datanet exists and the
    /// caller may read it; a version given exists, none given is the latest.
    fn versions(&self, caller: Option<Address>, sel: &[DatanetSel]) -> Result<Vec<(u64, u64)>, RetrieveError> {
        let unavailable = |e: String| RetrieveError::Unavailable(e);
        let st = self.chain.snapshot().map_err(|e| unavailable(e.to_string()))?;
        let mut out = Vec::with_capacity(sel.len());
        for s in sel {
            let id = s.datanet();
            let d = st
                .datanet(id)
                .map_err(|e| unavailable(e.to_string()))?
                .ok_or_else(|| RetrieveError::NotFound(format!("Datanet {id} does not exist")))?;
            if !self.datanets.may_read(id, &d, caller, "retrieval").map_err(unavailable)? {
                return Err(RetrieveError::Forbidden(format!(
                    "Datanet {id} is private: only its members, owner, curators and the serving operators of its live models may retrieve from it"
                )));
            }
            let v = match s.version() {
                None if d.versionCount == 0 => {
                    return Err(RetrieveError::NotFound(format!("Datanet {id} has no version yet")));
                }
                None => d.versionCount,
                Some(v) if v == 0 || v > d.versionCount => {
                    return Err(RetrieveError::NotFound(format!(
                        "Datanet {id} has no version {v} (it has {})",
                        d.versionCount
                    )));
                }
                Some(v) => v,
            };
            out.push((id, v));
        }
        out.sort_unstable();
        Ok(out)
    }
}

impl serve::Retriever for RetrievalService {
    fn retrieve(
        &self,
        caller: Option<Address>,
        query: &str,
        datanets: &[DatanetSel],
        k: usize,
    ) -> Result<Retrieved, RetrieveError> {
        let versions = self.versions(caller, datanets)?;
        let mut passages = Vec::new();
        for (d, v) in &versions {
            let idx = self.index(*d, *v).map_err(RetrieveError::Unavailable)?;
            // A few more than k: rows flagged or tombstoned since are dropped below.
            let hits = idx
                .search(query, (k + 8).min(retrieval::MAX_K))
                .map_err(|e| RetrieveError::BadRequest(e.to_string()))?;
            passages.extend(hits.into_iter().map(|h| Passage {
                datanet: *d,
                version: *v,
                contribution: h.contribution,
                row: h.row,
                score: h.score,
                text: h.text,
            }));
        }
        // Best first; equal scores in (datanet, contribution, row) order.
        passages.sort_by(|a, b| {
            b.score.total_cmp(&a.score).then((a.datanet, a.contribution, a.row).cmp(&(
                b.datanet,
                b.contribution,
                b.row,
            )))
        });
        let st = self.chain.snapshot().map_err(|e| RetrieveError::Unavailable(e.to_string()))?;
        let mut kept = Vec::with_capacity(k);
        for p in passages {
            if kept.len() == k {
                break;
            }
            let live = st.contribution(p.contribution).ok().flatten().is_some_and(|c| c.status == APPROVED)
                && !st.is_tombstoned(p.contribution, p.row).unwrap_or(true);
            if live {
                kept.push(p);
            }
        }
        Ok(Retrieved { versions, passages: kept })
    }
}
