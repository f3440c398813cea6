//! Computing a record from its public inputs: the response and its tokens,
//! the model and its record (artefact hashes, Datanet versions), the span
//! index over the versions' rows, the kept checkpoints and sketches, and the
//! governed parameters. The one function both the serving node and
//! `openledger attribution verify` run.

use ml::{Model, TextTokenizer};
use primitives::B256;
use runtime::models::{ModelRecord, ModelRecordExt};
use serde_json::Value;

use crate::credits::{mix, to_ppm, without};
use crate::gradient::{GRADIENT_TOLERANCE_PPM, GradientInputs, OUTLIER_Z_MILLI, gradient_scores, relative_scores};
use crate::record::{
    AttributionRecord, CheckpointRef, DatanetVersionRef, GRADIENT_METHOD, GRADIENT_METHOD_V4, GradientPartRecord,
    MIX_RULE, MIX_RULE_V4, MixRecord, RECORD_VERSION, RecordParams, SPAN_METHOD, SpanPartRecord, SpanRecord,
};
use crate::{SpanIndex, TraceParams};

/// The span part of a record.
pub struct SpanPart {
    pub spans: Vec<SpanRecord>,
    pub credits: Vec<(u64, u32)>,
}

/// Compute a record from its inputs: what the serving node signs and what a
/// verifier recomputes (`openledger attribution verify`), with the methods of
/// the current version ([`RECORD_VERSION`]).
#[allow(clippy::too_many_arguments)]
pub fn compute_record(
    model: &Model,
    tok: &TextTokenizer,
    model_id: u64,
    r: &ModelRecord,
    receipt_hash: B256,
    prompt_hash: B256,
    response: &[u32],
    text: &str,
    index: Option<&SpanIndex>,
    gradient: Option<&GradientInputs>,
    p: RecordParams,
) -> Result<Value, String> {
    let inputs = Inputs { model, tok, model_id, r, receipt_hash, prompt_hash, response, text, index, gradient };
    compute_record_version(RECORD_VERSION, &inputs, p)
}

/// The public inputs of a record.
pub struct Inputs<'a> {
    pub model: &'a Model,
    pub tok: &'a TextTokenizer,
    pub model_id: u64,
    pub r: &'a ModelRecord,
    pub receipt_hash: B256,
    pub prompt_hash: B256,
    pub response: &'a [u32],
    pub text: &'a str,
    pub index: Option<&'a SpanIndex>,
    pub gradient: Option<&'a GradientInputs>,
}

/// [`compute_record`] with the methods of record `version`: 4 (the current
/// ones), or those of versions 1 to 3 (TracIn and the fixed-weight mix,
/// labelled version 3), so that records made before still verify.
pub fn compute_record_version(version: u32, i: &Inputs, p: RecordParams) -> Result<Value, String> {
    let (r, response) = (i.r, i.response);
    let versions = r.versions();
    let starts = word_starts(i.tok, response);
    let span = match i.index {
        Some(x) => trace_index(x, i.tok, response, &starts, p.min_span_tokens, p.max_credits),
        None => SpanPart { spans: vec![], credits: vec![] },
    };
    let v4 = version >= 4;
    let grad = match (i.gradient, v4) {
        (Some(g), true) => to_ppm(&relative_scores(i.model, g, response, OUTLIER_Z_MILLI)?, p.max_credits),
        (Some(g), false) => to_ppm(&gradient_scores(i.model, g, response)?, p.max_credits),
        (None, _) => vec![],
    };
    let (span_c, grad_c) = (without(&span.credits, &p.excluded), without(&grad, &p.excluded));
    let span_share = match (span_c.is_empty(), grad_c.is_empty()) {
        (true, _) => 0,
        (false, true) => 1_000_000,
        (false, false) if v4 => coverage_ppm(&span.spans, response.len(), &p.excluded).max(p.span_weight_ppm),
        (false, false) => p.span_weight_ppm,
    };
    let credits = mix(&span_c, &grad_c, span_share, p.max_credits);
    let projection = i.gradient.map(|g| g.sketches.projection).unwrap_or(ml::Projection::CountSketch);
    Ok(AttributionRecord {
        version: if v4 { RECORD_VERSION } else { 3 },
        receipt_hash: i.receipt_hash,
        model: format!("m{}", i.model_id),
        base_model_hash: r.baseModelHash,
        adapter_hash: r.adapterHash,
        datanets: versions.iter().map(|(d, v)| DatanetVersionRef { datanet: *d, version: *v }).collect(),
        prompt_hash: i.prompt_hash,
        response: i.text.to_string(),
        response_tokens: response.to_vec(),
        span: SpanPartRecord {
            method: SPAN_METHOD.into(),
            min_span_tokens: p.min_span_tokens as u64,
            spans: span.spans,
            credits: span.credits,
        },
        gradient: GradientPartRecord {
            method: if v4 { GRADIENT_METHOD_V4 } else { GRADIENT_METHOD }.into(),
            sketch_hash: r.sketchHash,
            k: r.sketchK,
            seed: r.sketchSeed,
            checkpoints: r
                .checkpointHashes
                .iter()
                .zip(&r.checkpointLearningRates)
                .map(|(h, l)| CheckpointRef { hash: *h, lr_nano: *l })
                .collect(),
            tolerance_ppm: GRADIENT_TOLERANCE_PPM,
            credits: grad,
            projection: v4.then(|| projection.name().to_string()),
            outlier_z_milli: v4.then_some(OUTLIER_Z_MILLI),
        },
        mix: MixRecord {
            span_weight_ppm: p.span_weight_ppm,
            max_credits: p.max_credits as u64,
            excluded: p.excluded,
            rule: if v4 { MIX_RULE_V4 } else { MIX_RULE }.into(),
            params_height: Some(p.params_height),
            span_share_ppm: v4.then_some(span_share),
        },
        credits,
        retrieval: None,
    }
    .to_value())
}

/// The share of a response's tokens, in ppm (rounded down), inside spans
/// that credit a contribution that is not excluded.
fn coverage_ppm(spans: &[SpanRecord], n: usize, excluded: &[u64]) -> u32 {
    let mut covered = vec![false; n];
    for s in spans.iter().filter(|s| s.rows.iter().any(|(c, _)| !excluded.contains(c))) {
        for c in covered.iter_mut().take(s.token_end as usize).skip(s.token_start as usize) {
            *c = true;
        }
    }
    let k = covered.iter().filter(|c| **c).count() as u64;
    (k * 1_000_000).checked_div(n as u64).unwrap_or(0) as u32
}

/// Which token starts a word (byte-level BPE: its text begins with whitespace, or it is the first).
pub fn word_starts(tok: &TextTokenizer, tokens: &[u32]) -> Vec<bool> {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            i == 0
                || tok
                    .inner
                    .id_to_token(*t)
                    .map(|s| s.starts_with('Ġ') || s.starts_with('Ċ') || s.starts_with(' '))
                    .unwrap_or(false)
        })
        .collect()
}

/// Character offsets into a response's text before each token and after
/// the last (for highlighting spans): `response.len() + 1` entries.
pub(crate) fn char_offsets(tok: &TextTokenizer, response: &[u32]) -> Vec<usize> {
    let mut offsets = Vec::with_capacity(response.len() + 1);
    offsets.push(0usize);
    let mut acc = 0usize;
    for i in 0..response.len() {
        acc = tok.decode(&response[..=i]).map(|s| s.chars().count()).unwrap_or(acc);
        offsets.push(acc);
    }
    offsets
}

/// Trace a response over an index: spans with token and character offsets, credits in ppm.
pub fn trace_index(
    idx: &SpanIndex,
    tok: &TextTokenizer,
    response: &[u32],
    word_start: &[bool],
    min_len: usize,
    max_credits: usize,
) -> SpanPart {
    let params = TraceParams { min_len: min_len as u32, max_credits: max_credits as u32, ..TraceParams::default() };
    let t = match crate::trace(idx, response, word_start, &params) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("span tracing: {e}");
            return SpanPart { spans: vec![], credits: vec![] };
        }
    };
    let offsets = char_offsets(tok, response);
    let spans = t
        .spans
        .iter()
        .map(|s| SpanRecord {
            token_start: s.token_start as u64,
            token_end: s.token_end as u64,
            char_start: offsets[s.token_start as usize] as u64,
            char_end: offsets[s.token_end as usize] as u64,
            count: s.count,
            rows: s.rows.iter().map(|r| (r.id.contribution, r.id.index)).collect(),
        })
        .collect();
    SpanPart { spans, credits: t.credits.clone() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(start: u64, end: u64, rows: &[(u64, u32)]) -> SpanRecord {
        SpanRecord { token_start: start, token_end: end, char_start: 0, char_end: 0, count: 1, rows: rows.to_vec() }
    }

    #[test]
    fn coverage_counts_each_token_once_and_only_spans_that_credit() {
        // Tokens 0..8 and 4..12 overlap: 12 of 20 tokens covered.
        let spans = [span(0, 8, &[(1, 0)]), span(4, 12, &[(2, 3)])];
        assert_eq!(coverage_ppm(&spans, 20, &[]), 600_000);
        // A span whose rows are all excluded explains nothing.
        assert_eq!(coverage_ppm(&spans, 20, &[2]), 400_000);
        assert_eq!(coverage_ppm(&spans, 20, &[1, 2]), 0);
        assert_eq!(coverage_ppm(&[span(0, 3, &[(1, 0)])], 3, &[]), 1_000_000);
        // Rounded down; an empty response is covered by nothing.
        assert_eq!(coverage_ppm(&[span(0, 1, &[(1, 0)])], 3, &[]), 333_333);
        assert_eq!(coverage_ppm(&[], 0, &[]), 0);
    }
}
