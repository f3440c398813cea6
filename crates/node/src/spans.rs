//! Span indexes for the models a node serves: one suffix-array index per
//! (tokenizer, set of Datanet versions a model was trained on), built from the
//! versions' rows (read through `DatanetReader`, checked against the chain) on
//! first use, kept memory-mapped under `<data-dir>/attribution/span-indexes`.
//! The index of a later version of one Datanet that only added rows extends
//! the earlier version's index (new shards merged in, byte-identical to a
//! fresh build); a version that lost rows (tombstones) is rebuilt.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use attribution::{IndexBuilder, IndexKey, IndexRow, SpanIndex};
use ml::TextTokenizer;
use primitives::B256;
use primitives::rows::Row;

/// Built indexes by (tokenizer hash, versions).
pub struct SpanIndexes {
    dir: PathBuf,
    open: Mutex<HashMap<B256, Arc<SpanIndex>>>,
    /// Held while an index is built, so that the attribution workers and a
    /// verifier asking for one index at once build it once (the builds would
    /// be correct anyway: each writes its own file; this saves the work).
    building: Mutex<()>,
}

/// The text a row contributes to the index (a prompt/completion row: both, in order).
pub fn row_text(row: &Row) -> String {
    match row {
        Row::Text { text } => text.clone(),
        Row::PromptCompletion { prompt, completion } => format!("{prompt}\n{completion}"),
    }
}

/// The index key of a tokenizer and a set of versions: blake3 over the tokenizer
/// hash and the sorted (datanet, version) pairs.
pub fn key_of(tokenizer: &B256, versions: &[(u64, u64)]) -> B256 {
    let mut v = versions.to_vec();
    v.sort();
    let mut b = tokenizer.to_vec();
    for (d, n) in v {
        b.extend_from_slice(&d.to_be_bytes());
        b.extend_from_slice(&n.to_be_bytes());
    }
    primitives::content_hash(&b)
}

/// The crate's key of an index over `versions`: the tokenizer hash, the first
/// Datanet, and as "version" the first 8 bytes of [`key_of`] when several
/// versions are indexed together (a model trained on several).
pub fn index_key(tok: &TextTokenizer, versions: &[(u64, u64)]) -> IndexKey {
    let (datanet, version) = match versions {
        [(d, v)] => (*d, *v),
        _ => {
            let k = key_of(&tok.hash, versions);
            (versions.first().map(|v| v.0).unwrap_or(0), u64::from_be_bytes(k.0[..8].try_into().expect("8 bytes")))
        }
    };
    IndexKey { tokenizer: tok.hash, datanet, version }
}

impl SpanIndexes {
    /// The indexes under `dir`. Files of builds a crash interrupted are
    /// removed (the node owns `dir`; nothing builds there before this).
    pub fn new(dir: PathBuf) -> SpanIndexes {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if attribution::is_building_file(&e.file_name())
                    && let Err(err) = std::fs::remove_file(e.path())
                {
                    tracing::warn!("span index: could not remove {}: {err}", e.path().display());
                }
            }
        }
        SpanIndexes { dir, open: Mutex::new(HashMap::new()), building: Mutex::new(()) }
    }

    /// The index over `versions`' rows, built on first use.
    pub fn index(
        &self,
        datanets: &datanets::DatanetService,
        handle: &tokio::runtime::Handle,
        tok: &TextTokenizer,
        versions: &[(u64, u64)],
    ) -> Result<Arc<SpanIndex>, String> {
        let key = key_of(&tok.hash, versions);
        if let Some(i) = self.open.lock().unwrap().get(&key) {
            return Ok(i.clone());
        }
        let _building = self.building.lock().unwrap_or_else(|e| e.into_inner());
        // Built by another caller while this one waited.
        if let Some(i) = self.open.lock().unwrap().get(&key) {
            return Ok(i.clone());
        }
        let path = self.dir.join(format!("{key}.olsa"));
        let idx = if path.exists() {
            SpanIndex::open(&path).map_err(|e| e.to_string())?
        } else {
            std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
            // Through the builder: each row's tokens are freed once written, and
            // past `DEFAULT_BUILD_MEMORY` the suffixes are sorted out of core
            // (the same file as `SpanIndex::build`).
            let mut b = IndexBuilder::new(index_key(tok, versions), tok.vocab_size() as u32, &path)
                .map_err(|e| e.to_string())?;
            let earlier = match versions {
                [(d, v)] => self.earlier(tok, *d, *v).map(|old| (old, *d, *v)),
                _ => None,
            };
            match (versions, earlier) {
                // One version and no earlier index: its rows streamed into the
                // builder, one contribution's rows in memory at a time (the
                // builder is dropped, its file removed, if the version's root
                // does not verify).
                ([(d, v)], None) => {
                    let push = |r: datanets::VersionRow| -> Result<(), Msg> {
                        let r = index_row(tok, r)?;
                        b.push(r.id, r.contributor, r.tombstoned, &r.tokens).map_err(|e| Msg(e.to_string()))
                    };
                    handle.block_on(datanets.reader().for_each_version_row(*d, *v, push)).map_err(|e| e.0)?;
                }
                (_, earlier) => {
                    let rows = build_rows(datanets, handle, tok, versions)?;
                    // A later version of one Datanet usually only adds rows: extend
                    // the index of an earlier version (byte-identical to a fresh build).
                    if let Some((old, ..)) = &earlier
                        && let Some(from) = appended_from(old, &rows)
                    {
                        tracing::info!(
                            "span index over {versions:?}: extending the index of an earlier version by {} rows",
                            rows.len() - from
                        );
                        drop(b);
                        let idx = old
                            .extend(index_key(tok, versions), &rows[from..], 0, &path, &mut |_, _| {})
                            .map_err(|e| e.to_string())?;
                        let idx = Arc::new(idx);
                        self.open.lock().unwrap().insert(key, idx.clone());
                        return Ok(idx);
                    }
                    for r in rows {
                        b.push(r.id, r.contributor, r.tombstoned, &r.tokens).map_err(|e| e.to_string())?;
                    }
                }
            }
            let mut logged = 0u64;
            let mut progress = |done: u64, total: u64| {
                let tenth = (done * 10).checked_div(total).unwrap_or(10);
                if tenth > logged {
                    logged = tenth;
                    tracing::info!("span index over {versions:?}: {}% of {total} tokens", tenth * 10);
                }
            };
            b.finish(0, &mut progress).map_err(|e| e.to_string())?
        };
        let idx = Arc::new(idx);
        self.open.lock().unwrap().insert(key, idx.clone());
        Ok(idx)
    }
}

impl SpanIndexes {
    /// The newest index on disk of an earlier version of Datanet `d` (up to 64 back).
    fn earlier(&self, tok: &TextTokenizer, d: u64, v: u64) -> Option<SpanIndex> {
        (v.saturating_sub(64).max(1)..v).rev().find_map(|w| {
            let p = self.dir.join(format!("{}.olsa", key_of(&tok.hash, &[(d, w)])));
            p.exists().then(|| SpanIndex::open(&p).ok()).flatten()
        })
    }
}

/// If `rows` (sorted by id) are exactly `old`'s rows followed by new ones, the
/// index in `rows` where the new ones start. `None` when a row of `old` is
/// gone or flagged (a tombstone: a fresh build leaves it out, so extending
/// would count its tokens) or a new row sorts before `old`'s last.
pub fn appended_from(old: &SpanIndex, rows: &[IndexRow]) -> Option<usize> {
    let n = old.n_rows() as usize;
    if rows.len() < n {
        return None;
    }
    for (i, r) in rows[..n].iter().enumerate() {
        let o = old.row(i as u64)?;
        let same_len = (o.slots.end - o.slots.start) as usize == r.tokens.len();
        if o.id != r.id || o.tombstoned || r.tombstoned || o.contributor != r.contributor || !same_len {
            return None;
        }
    }
    Some(n)
}

/// The rows of the versions, tokenised, in (contribution, index) order, each once.
pub fn build_rows(
    datanets: &datanets::DatanetService,
    handle: &tokio::runtime::Handle,
    tok: &TextTokenizer,
    versions: &[(u64, u64)],
) -> Result<Vec<IndexRow>, String> {
    let mut all = Vec::new();
    for (d, v) in versions {
        all.extend(handle.block_on(datanets.reader().version_rows(*d, *v)).map_err(|e| e.to_string())?);
    }
    index_rows(tok, all)
}

/// Version rows → index rows (each row once, in (contribution, index) order).
pub fn index_rows(tok: &TextTokenizer, version_rows: Vec<datanets::VersionRow>) -> Result<Vec<IndexRow>, String> {
    let mut seen = std::collections::BTreeMap::new();
    for r in version_rows {
        seen.entry((r.id.contribution, r.id.index)).or_insert(r);
    }
    seen.into_values().map(|r| index_row(tok, r).map_err(|e| e.0)).collect()
}

/// One version row as an index row: its text tokenised.
fn index_row(tok: &TextTokenizer, r: datanets::VersionRow) -> Result<IndexRow, Msg> {
    let tokens = tok.encode(&row_text(&r.row), false).map_err(|e| Msg(e.to_string()))?;
    Ok(IndexRow { id: r.id, contributor: r.contributor, tombstoned: false, tokens })
}

/// An error message, from a row that could not be indexed or from the reader.
struct Msg(String);

impl From<datanets::ReaderError> for Msg {
    fn from(e: datanets::ReaderError) -> Msg {
        Msg(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::Address;
    use primitives::rows::RowId;

    /// A crash mid-build leaves its file; the next start removes it and
    /// keeps the published indexes.
    #[test]
    fn files_of_interrupted_builds_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let ix = dir.path().join("k.olsa");
        SpanIndex::build(
            IndexKey { tokenizer: B256::ZERO, datanet: 1, version: 1 },
            &rows(9),
            50,
            0,
            &ix,
            &mut |_, _| {},
        )
        .unwrap();
        let stale = dir.path().join("k.olsa.building.4242.0");
        std::fs::write(&stale, b"half an index").unwrap();
        let _indexes = SpanIndexes::new(dir.path().to_path_buf());
        assert!(!stale.exists(), "the interrupted build's file is removed");
        SpanIndex::open(&ix).unwrap().verify().unwrap();
    }

    fn rows(n: u64) -> Vec<IndexRow> {
        (0..n)
            .map(|i| IndexRow {
                id: RowId { contribution: 1 + i / 3, index: (i % 3) as u32 },
                contributor: Address::repeat_byte(i as u8 % 4),
                tombstoned: false,
                tokens: (0..(5 + i % 7)).map(|t| ((t * 31 + i * 17) % 50) as u32).collect(),
            })
            .collect()
    }

    #[test]
    fn a_later_version_extends_an_earlier_index_only_when_it_only_adds_rows() {
        let dir = tempfile::tempdir().unwrap();
        let key = IndexKey { tokenizer: B256::repeat_byte(1), datanet: 1, version: 2 };
        let all = rows(30);
        let old = SpanIndex::build(key, &all[..18], 64, 0, &dir.path().join("old"), &mut |_, _| {}).unwrap();
        assert_eq!(appended_from(&old, &all), Some(18));
        let ext = old.extend(key, &all[18..], 0, &dir.path().join("ext"), &mut |_, _| {}).unwrap();
        let fresh = SpanIndex::build(key, &all, 64, 0, &dir.path().join("fresh"), &mut |_, _| {}).unwrap();
        assert_eq!(std::fs::read(ext.path()).unwrap(), std::fs::read(fresh.path()).unwrap(), "byte-identical");
        // A row of the old version gone (tombstoned since), or changed: rebuild.
        let mut gone = all.clone();
        gone.remove(4);
        assert_eq!(appended_from(&old, &gone), None);
        let mut changed = all.clone();
        changed[2].tokens.push(7);
        assert_eq!(appended_from(&old, &changed), None);
        let mut flagged = all.clone();
        flagged[0].tombstoned = true;
        assert_eq!(appended_from(&old, &flagged), None);
        assert_eq!(appended_from(&old, &all[..10]), None);
    }
}
