//! The BM25 index: tantivy segments over one Datanet version's rows.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::indexer::NoMergePolicy;
use tantivy::query::{BooleanQuery, Weight};
use tantivy::schema::{FAST, Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, Value};
use tantivy::tokenizer::{LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer};
use tantivy::{DocAddress, DocId, Index, IndexReader, ReloadPolicy, Score, SegmentOrdinal, SegmentReader};
use tantivy::{IndexWriter, TantivyDocument, Term};

use crate::layout::{self, Meta, io_err};
use crate::{Doc, Hit, MAX_QUERY_BYTES, MAX_QUERY_TERMS, MAX_TERM_BYTES, RetrievalError, check_k, check_order};

/// Name the analyser is registered under in every index (tokenisers are not stored by tantivy).
const TOKENIZER: &str = "openledger_words_v1";
const TEXT: &str = "text";
const CONTRIBUTION: &str = "contribution";
const ROW: &str = "row";
/// tantivy's indexing memory: one thread, so segments (and scores) do not depend on thread timing.
const WRITER_MEMORY: usize = 256 << 20;

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TERM_BYTES + 1))
        .filter(LowerCaser)
        .build()
}

/// The terms of `text` as the index sees them: maximal runs of Unicode
/// alphanumeric characters, lowercased, those over [`MAX_TERM_BYTES`] bytes
/// dropped, in order, with repeats.
pub fn query_terms(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

fn schema() -> Schema {
    let mut builder = Schema::builder();
    let indexing = TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqs);
    builder.add_text_field(TEXT, TextOptions::default().set_indexing_options(indexing).set_stored());
    builder.add_u64_field(CONTRIBUTION, FAST);
    builder.add_u64_field(ROW, FAST);
    builder.build()
}

/// A BM25 index over one Datanet version's rows, read-only once built. See the crate docs.
pub struct Bm25Index {
    dir: PathBuf,
    meta: Meta,
    reader: IndexReader,
    text: Field,
}

impl std::fmt::Debug for Bm25Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bm25Index").field("dir", &self.dir).field("meta", &self.meta).finish()
    }
}

impl Bm25Index {
    /// Build at `dir` (created; refused if it exists and is not empty) over docs in
    /// strictly increasing (contribution, row) order.
    pub fn build(dir: &Path, docs: impl IntoIterator<Item = Doc>) -> Result<Bm25Index, RetrievalError> {
        let tmp = layout::prepare(dir)?;
        let written = (|| {
            let index = Index::create_in_dir(&tmp, schema()).map_err(tantivy_err(&tmp))?;
            write_docs(&tmp, &index, 0, None, docs)
        })();
        finish(tmp, dir, written)
    }

    /// Open the index at `dir`, checking its metadata against its segments.
    pub fn open(dir: &Path) -> Result<Bm25Index, RetrievalError> {
        let meta = Meta::read(dir)?;
        let index = Index::open_in_dir(dir).map_err(|e| RetrievalError::NotAnIndex {
            path: dir.to_path_buf(),
            reason: format!("segments unreadable: {e}"),
        })?;
        if index.schema() != schema() {
            return Err(RetrievalError::NotAnIndex { path: dir.to_path_buf(), reason: "unexpected schema".into() });
        }
        index.tokenizers().register(TOKENIZER, analyzer());
        let text = index.schema().get_field(TEXT).map_err(tantivy_err(dir))?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(tantivy_err(dir))?;
        let found = reader.searcher().num_docs();
        if found != meta.n_docs {
            return Err(RetrievalError::NotAnIndex {
                path: dir.to_path_buf(),
                reason: format!("metadata says {} rows, segments hold {found}", meta.n_docs),
            });
        }
        let this = Bm25Index { dir: dir.to_path_buf(), meta, reader, text };
        let last = this.rows()?.last().copied();
        if last != this.meta.last_row {
            return Err(RetrievalError::NotAnIndex {
                path: dir.to_path_buf(),
                reason: format!("metadata says the last row is {:?}, segments end at {last:?}", this.meta.last_row),
            });
        }
        Ok(this)
    }

    /// A new index at `dir`: this one's documents plus `docs` (all sorting after
    /// this index's last row), without re-indexing the old ones: the segment files
    /// are copied and the new rows indexed into a new segment.
    pub fn extend(&self, dir: &Path, docs: impl IntoIterator<Item = Doc>) -> Result<Bm25Index, RetrievalError> {
        let tmp = layout::prepare(dir)?;
        let written = (|| {
            layout::copy_segments(&self.dir, &tmp)?;
            let index = Index::open_in_dir(&tmp).map_err(tantivy_err(&tmp))?;
            write_docs(&tmp, &index, self.meta.n_docs, self.meta.last_row, docs)
        })();
        finish(tmp, dir, written)
    }

    /// The directory this index was opened from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many rows the index holds.
    pub fn n_docs(&self) -> u64 {
        self.meta.n_docs
    }

    /// The greatest (contribution, row) indexed, if any.
    pub fn last_row(&self) -> Option<(u64, u32)> {
        self.meta.last_row
    }

    /// Every (contribution, row) the index holds, ascending, read from the fast
    /// fields (12 bytes a row, no document decoded).
    pub fn rows(&self) -> Result<Vec<(u64, u32)>, RetrievalError> {
        let searcher = self.reader.searcher();
        let mut out = Vec::with_capacity(self.meta.n_docs as usize);
        for segment in searcher.segment_readers() {
            let (contribution, row) = key_columns(segment).map_err(tantivy_err(&self.dir))?;
            for doc in 0..segment.max_doc() {
                out.push(key_of(&contribution, &row, doc));
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Top `k` (1..=[`MAX_K`](crate::MAX_K)) rows by BM25; ties broken by
    /// (contribution, row) ascending. `query` is free text, tokenised like the
    /// rows ([`query_terms`]); one with no term returns no hits.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<Hit>, RetrievalError> {
        check_k(k)?;
        if query.len() > MAX_QUERY_BYTES {
            return Err(RetrievalError::QueryTooLong { len: query.len() });
        }
        let mut seen = HashSet::new();
        let terms: Vec<Term> = query_terms(query)
            .into_iter()
            .filter(|t| seen.insert(t.clone()))
            .take(MAX_QUERY_TERMS)
            .map(|t| Term::from_field_text(self.text, &t))
            .collect();
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let query = BooleanQuery::new_multiterms_query(terms);
        let top = searcher.search(&query, &TopK { k }).map_err(tantivy_err(&self.dir))?;
        let mut hits = Vec::with_capacity(top.len());
        for c in top {
            let doc: TantivyDocument = searcher.doc(c.addr).map_err(tantivy_err(&self.dir))?;
            let text = doc.get_first(self.text).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            hits.push(Hit { contribution: c.key.0, row: c.key.1, score: c.score, text });
        }
        Ok(hits)
    }
}

fn tantivy_err(path: &Path) -> impl FnOnce(tantivy::TantivyError) -> RetrievalError + '_ {
    move |source| RetrievalError::Index { path: path.to_path_buf(), source }
}

/// Index `docs` (checked to follow `last`) into `index` with one thread and no
/// merging, commit, and write the metadata. Returns the metadata written.
fn write_docs(
    dir: &Path,
    index: &Index,
    n_before: u64,
    mut last: Option<(u64, u32)>,
    docs: impl IntoIterator<Item = Doc>,
) -> Result<Meta, RetrievalError> {
    index.tokenizers().register(TOKENIZER, analyzer());
    let schema = index.schema();
    let field = |name| schema.get_field(name).map_err(tantivy_err(dir));
    let (text, contribution, row) = (field(TEXT)?, field(CONTRIBUTION)?, field(ROW)?);
    let mut writer: IndexWriter = index.writer_with_num_threads(1, WRITER_MEMORY).map_err(tantivy_err(dir))?;
    writer.set_merge_policy(Box::new(NoMergePolicy));
    let mut n = n_before;
    for d in docs {
        check_order(last, (d.contribution, d.row))?;
        last = Some((d.contribution, d.row));
        let mut doc = TantivyDocument::new();
        doc.add_text(text, &d.text);
        doc.add_u64(contribution, d.contribution);
        doc.add_u64(row, u64::from(d.row));
        writer.add_document(doc).map_err(tantivy_err(dir))?;
        n += 1;
    }
    writer.commit().map_err(tantivy_err(dir))?;
    writer.wait_merging_threads().map_err(tantivy_err(dir))?;
    let meta = Meta::new(n, last);
    meta.write(dir)?;
    Ok(meta)
}

/// Publish `tmp` at `dir` and open it, or remove `tmp` if writing failed.
fn finish(tmp: PathBuf, dir: &Path, written: Result<Meta, RetrievalError>) -> Result<Bm25Index, RetrievalError> {
    match written {
        Ok(_) => {
            layout::publish(&tmp, dir)?;
            Bm25Index::open(dir)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&tmp).map_err(io_err("remove", &tmp));
            Err(e)
        }
    }
}

fn key_columns(segment: &SegmentReader) -> tantivy::Result<(Column<u64>, Column<u64>)> {
    let fast = segment.fast_fields();
    Ok((fast.u64(CONTRIBUTION)?, fast.u64(ROW)?))
}

fn key_of(contribution: &Column<u64>, row: &Column<u64>, doc: DocId) -> (u64, u32) {
    // Every document has both values and rows fit u32 (written from a `Doc`).
    (contribution.first(doc).unwrap_or(0), row.first(doc).unwrap_or(0) as u32)
}

/// A scored candidate.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: Score,
    key: (u64, u32),
    addr: DocAddress,
}

/// The ranking: score descending, then (contribution, row) ascending.
fn rank(a: &Candidate, b: &Candidate) -> Ordering {
    b.score.total_cmp(&a.score).then(a.key.cmp(&b.key))
}

/// Top k under [`rank`], independent of segment layout and visiting order.
struct TopK {
    k: usize,
}

struct SegmentTopK {
    k: usize,
    segment: SegmentOrdinal,
    contribution: Column<u64>,
    row: Column<u64>,
    /// Best first, at most `k`.
    best: Vec<Candidate>,
}

impl SegmentTopK {
    /// Offer a document; returns the score a later document must exceed to be
    /// offered (just below the k-th score, so that ties still come through).
    fn offer(&mut self, doc: DocId, score: Score) -> Score {
        let full = self.best.len() == self.k;
        if !(full && score < self.best[self.k - 1].score) {
            let c = Candidate {
                score,
                key: key_of(&self.contribution, &self.row, doc),
                addr: DocAddress::new(self.segment, doc),
            };
            let at = self.best.partition_point(|b| rank(b, &c) == Ordering::Less);
            if at < self.k {
                self.best.insert(at, c);
                self.best.truncate(self.k);
            }
        }
        if self.best.len() == self.k { self.best[self.k - 1].score.next_down() } else { Score::MIN }
    }
}

impl SegmentCollector for SegmentTopK {
    type Fruit = Vec<Candidate>;

    fn collect(&mut self, doc: DocId, score: Score) {
        self.offer(doc, score);
    }

    fn harvest(self) -> Vec<Candidate> {
        self.best
    }
}

impl Collector for TopK {
    type Fruit = Vec<Candidate>;
    type Child = SegmentTopK;

    fn for_segment(&self, segment: SegmentOrdinal, reader: &SegmentReader) -> tantivy::Result<SegmentTopK> {
        let (contribution, row) = key_columns(reader)?;
        Ok(SegmentTopK { k: self.k, segment, contribution, row, best: Vec::with_capacity(self.k + 1) })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<Candidate>>) -> tantivy::Result<Vec<Candidate>> {
        let mut all: Vec<Candidate> = fruits.into_iter().flatten().collect();
        all.sort_by(rank);
        all.truncate(self.k);
        Ok(all)
    }

    /// Block-max WAND pruning, as tantivy's own top-k collector does.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        segment: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<Vec<Candidate>> {
        let mut top = self.for_segment(segment, reader)?;
        let alive = reader.alive_bitset().cloned();
        let mut threshold = Score::MIN;
        weight.for_each_pruning(Score::MIN, reader, &mut |doc, score| {
            if alive.as_ref().is_none_or(|a| a.is_alive(doc)) {
                threshold = top.offer(doc, score);
            }
            threshold
        })?;
        Ok(top.harvest())
    }
}
