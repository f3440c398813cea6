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
use crate::gradient::{GRADIENT_TOLERANCE_PPM, GradientInputs, gradient_scores};
use crate::record::{
    AttributionRecord, CheckpointRef, DatanetVersionRef, GRADIENT_METHOD, GradientPartRecord, MIX_RULE, MixRecord,
    RECORD_VERSION, RecordParams, SPAN_METHOD, SpanPartRecord, SpanRecord,
};
use crate::{SpanIndex, TraceParams};

/// The span part of a record.
pub struct SpanPart {
    pub spans: Vec<SpanRecord>,
    pub credits: Vec<(u64, u32)>,
}

/// Compute a record from its inputs: what the serving node signs and what a
/// verifier recomputes (`openledger attribution verify`).
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
    let versions = r.versions();
    let starts = word_starts(tok, response);
    let span = match index {
        Some(i) => trace_index(i, tok, response, &starts, p.min_span_tokens, p.max_credits),
        None => SpanPart { spans: vec![], credits: vec![] },
    };
    let grad = match gradient {
        Some(g) => to_ppm(&gradient_scores(model, g, response)?, p.max_credits),
        None => vec![],
    };
    let credits =
        mix(&without(&span.credits, &p.excluded), &without(&grad, &p.excluded), p.span_weight_ppm, p.max_credits);
    Ok(AttributionRecord {
        version: RECORD_VERSION,
        receipt_hash,
        model: format!("m{model_id}"),
        base_model_hash: r.baseModelHash,
        adapter_hash: r.adapterHash,
        datanets: versions.iter().map(|(d, v)| DatanetVersionRef { datanet: *d, version: *v }).collect(),
        prompt_hash,
        response: text.to_string(),
        response_tokens: response.to_vec(),
        span: SpanPartRecord {
            method: SPAN_METHOD.into(),
            min_span_tokens: p.min_span_tokens as u64,
            spans: span.spans,
            credits: span.credits,
        },
        gradient: GradientPartRecord {
            method: GRADIENT_METHOD.into(),
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
        },
        mix: MixRecord {
            span_weight_ppm: p.span_weight_ppm,
            max_credits: p.max_credits as u64,
            excluded: p.excluded,
            rule: MIX_RULE.into(),
            params_height: Some(p.params_height),
        },
        credits,
        retrieval: None,
    }
    .to_value())
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
