//! Per-row findings and the file summary (see the crate docs, "Analysis").

use alloy_primitives::B256;
use primitives::rows::{Row, rows_root};

use crate::score::{SCORER_VERSION, score_row};
use crate::{DedupIndex, IngestConfig, RowRef, config_digest};

/// The contribution id given to the rows of the file being analysed, whose real id is assigned
/// on-chain later: `RowRef { contribution: PENDING_CONTRIBUTION, index: i }` is row `i` of this file.
pub const PENDING_CONTRIBUTION: u64 = u64::MAX;

/// How a row duplicates an earlier one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DupKind {
    /// Same leaf (same canonical bytes).
    Exact,
    /// `equal` of the `of` MinHash signature values are equal (at least the threshold).
    Near { equal: u32, of: u32 },
}

/// What happened to one row and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowFinding {
    pub index: u32,
    pub leaf: B256,
    /// Quality score, 0..=10000, from the rules alone (a duplicate keeps its quality score but is not kept).
    pub score_bps: u16,
    /// One line per rule that lowered the score, in rule order, then the duplicate finding if any.
    pub reasons: Vec<String>,
    /// The earlier row this one duplicates: a Datanet row from the index, or an earlier row of
    /// this file (contribution [`PENDING_CONTRIBUTION`]).
    pub duplicate_of: Option<(RowRef, DupKind)>,
}

impl RowFinding {
    /// A row is kept (counts towards the file's score) unless it duplicates an earlier row.
    pub fn kept(&self) -> bool {
        self.duplicate_of.is_none()
    }
}

/// The analysis of one contributed file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysis {
    /// One finding per row, in index order.
    pub rows: Vec<RowFinding>,
    /// The mean score of the kept rows, rounded down (`sum / count`); 0 when no row is kept.
    pub quality_bps: u16,
    /// [`SCORER_VERSION`] of the rules that produced the scores.
    pub scorer_version: u32,
    pub exact_duplicates: u32,
    pub near_duplicates: u32,
    pub kept_rows: u32,
    /// The rows root over all the rows' leaves in index order, duplicates included: the
    /// contribution is what was submitted ([`primitives::rows::rows_root`]).
    pub rows_root: B256,
    /// blake3 of the file bytes: set by [`crate::ingest_file`], or by the caller with
    /// [`crate::content_hash`]; [`analyze`] alone leaves it zero since it does not see the bytes.
    pub content_hash: B256,
    /// [`crate::config_digest`] of the parameters that decided the findings (the index's
    /// near-duplicate parameters, the length limits and the scorer thresholds).
    pub config_digest: B256,
}

/// `contribution:index`, or `index of this file` for [`PENDING_CONTRIBUTION`].
pub fn describe_row(r: RowRef) -> String {
    if r.contribution == PENDING_CONTRIBUTION {
        format!("row {} of this file", r.index)
    } else {
        format!("row {}:{}", r.contribution, r.index)
    }
}

/// `equal / of` as a two-decimal string, integer arithmetic only (`117/128` → `"0.91"`).
fn ratio_text(equal: u32, of: u32) -> String {
    let bps = u64::from(equal) * 100 / u64::from(of.max(1));
    format!("{}.{:02}", bps / 100, bps % 100)
}

/// Findings for every row and the file's summary. Duplicates are looked for first against `index`
/// (the Datanet's rows), then among the earlier rows of this file; an exact duplicate is not also
/// looked at as a near duplicate. Near-duplicate detection uses the index's own
/// [`crate::NearDupConfig`] (signatures are only comparable under one configuration).
/// Deterministic: the same rows, index and configuration give the same `Analysis` everywhere.
pub fn analyze(rows: &[Row], index: &DedupIndex, cfg: &IngestConfig) -> Analysis {
    use rayon::prelude::*;
    let near_cfg = index.config();
    let mut local = DedupIndex::new(near_cfg);
    // Everything that depends on one row alone (leaf, score, signature, matches in the
    // Datanet's index) runs in parallel; what depends on earlier rows of the file runs
    // in order below. The result is the same for any number of threads.
    struct PerRow {
        leaf: B256,
        score_bps: u16,
        reasons: Vec<String>,
        sig: Option<Vec<u16>>,
        in_index: Option<(RowRef, crate::DupKind)>,
    }
    let per: Vec<PerRow> = rows
        .par_iter()
        .map(|row| {
            let leaf = row.leaf();
            let (score_bps, reasons) = score_row(row, cfg.min_row_chars, cfg.max_row_chars, &cfg.scorer);
            let exact = index.find_exact(&leaf).map(|r| (r, crate::DupKind::Exact));
            let sig = if exact.is_none() { index.signature(row) } else { None };
            let in_index = exact.or_else(|| {
                sig.as_ref()
                    .and_then(|s| index.find_near(s))
                    .map(|m| (m.row, crate::DupKind::Near { equal: m.equal, of: near_cfg.num_perm }))
            });
            PerRow { leaf, score_bps, reasons, sig, in_index }
        })
        .collect();
    let leaves: Vec<B256> = per.iter().map(|p| p.leaf).collect();
    let mut findings = Vec::with_capacity(rows.len());
    let (mut exact, mut near, mut kept, mut sum) = (0u32, 0u32, 0u32, 0u64);
    for (i, p) in per.into_iter().enumerate() {
        let leaf = p.leaf;
        let score_bps = p.score_bps;
        let mut reasons = p.reasons;
        let this = RowRef { contribution: PENDING_CONTRIBUTION, index: i as u32 };
        let mut dup = match p.in_index {
            Some(d @ (_, crate::DupKind::Exact)) => Some(d),
            other => local.find_exact(&leaf).map(|r| (r, crate::DupKind::Exact)).or(other),
        };
        if !matches!(dup, Some((_, crate::DupKind::Exact))) {
            if dup.is_none()
                && let Some(s) = &p.sig
            {
                dup =
                    local.find_near(s).map(|m| (m.row, crate::DupKind::Near { equal: m.equal, of: near_cfg.num_perm }));
            }
            local.insert_parts(this, leaf, p.sig.as_deref());
        }
        match dup {
            Some((r, crate::DupKind::Exact)) => {
                exact += 1;
                reasons.push(format!("exact duplicate of {}", describe_row(r)));
            }
            Some((r, crate::DupKind::Near { equal, of })) => {
                near += 1;
                reasons.push(format!(
                    "near duplicate of {} (Jaccard ≈ {}: {equal} of {of} MinHash values equal)",
                    describe_row(r),
                    ratio_text(equal, of)
                ));
            }
            None => {
                kept += 1;
                sum += u64::from(score_bps);
            }
        }
        findings.push(RowFinding { index: i as u32, leaf, score_bps, reasons, duplicate_of: dup });
    }
    Analysis {
        rows: findings,
        quality_bps: if kept == 0 { 0 } else { (sum / u64::from(kept)) as u16 },
        scorer_version: SCORER_VERSION,
        exact_duplicates: exact,
        near_duplicates: near,
        kept_rows: kept,
        rows_root: rows_root(&leaves),
        content_hash: B256::ZERO,
        config_digest: config_digest(cfg, near_cfg),
    }
}
