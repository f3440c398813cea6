//! The attribution record: its type, versions, canonical encoding and hash,
//! and the governed parameters it states.

use primitives::B256;
use runtime::models::ModelRecord;
use runtime::params::ParamsRead;
use serde_json::Value;

/// The current record version (4: relative gradient influence, the
/// projection named, spans weighted by the share of the answer they cover).
pub const RECORD_VERSION: u32 = 4;
/// Versions a verifier still accepts: 1 (before `paramsHeight`; judged by the
/// parameters in force when its receipt settled), 2, 3 and 4.
pub const RECORD_VERSIONS: [u32; 4] = [1, 2, 3, 4];
pub(crate) const SPAN_METHOD: &str = "maximal-spans-suffix-array";
/// The gradient method and mixing rule of records up to version 3.
pub(crate) const GRADIENT_METHOD: &str = "tracin-projected-lora";
pub(crate) const MIX_RULE: &str = "span and gradient ppm without the excluded (flagged) contributions, weighted by spanWeightPpm; one method alone when the other credits nothing";
/// The gradient method and mixing rule of version 4 records.
pub(crate) const GRADIENT_METHOD_V4: &str = "relative-cosine-lora";
pub(crate) const MIX_RULE_V4: &str = "span and gradient ppm without the excluded (flagged) contributions; the span part takes spanSharePpm: the share of answer tokens inside spans that credit a contribution, at least spanWeightPpm, when it credits anything; the gradient part the rest; one method alone when the other credits nothing";

/// An attribution record: what a serving node signs for one paid answer and
/// what a challenged operator reveals.
///
/// # Canonical encoding
/// The JSON of this type ([`AttributionRecord::to_value`]) with object keys
/// sorted by their UTF-8 bytes and no whitespace ([`canonical`]): field names
/// in camelCase, numbers as JSON integers, strings escaped as `serde_json`
/// escapes them (non-ASCII characters as themselves, UTF-8), hashes as
/// `0x`-prefixed lowercase hex strings of 64 digits, credit lists and a span's
/// rows as `[contribution, ppm]` / `[contribution, row index]` pairs in
/// contribution order. `mix.paramsHeight` is present exactly in version 2
/// and 3 records; `retrieval` only in version 3 records of answers that
/// retrieved Datanet rows (absent otherwise). For example a version 2 record begins
/// `{"adapterHash":"0x03…03","baseModelHash":"0x02…02","credits":[[7,1000000]],…`
/// and ends `…,"version":2}`.
///
/// # Hash
/// The record hash ([`AttributionRecord::hash`], [`record_hash`]) is blake3
/// of the canonical bytes (`primitives::content_hash`): the hash a serving
/// node signs, posts with `inference.postAttribution` and stores the bytes
/// under as a blob, and the one a challenge names.
///
/// # Versions
/// 1: the first records (no `mix.paramsHeight`; judged by the parameters in
/// force when their receipt settled). 2 ([`RECORD_VERSION`]): the mix states
/// `paramsHeight`, the block whose governed parameters the record used. 3:
/// an answer that put retrieved Datanet rows in its prompt carries a
/// [`RetrievalPartRecord`], and its final credits combine the training-data
/// credits with the retrieval part's (`crate::retrieval::combine`). 4: the
/// gradient part is `relative-cosine-lora` (`crate::gradient`), states its
/// projection (`count-sketch` or `dense-sign`, as the model's sketches were
/// made) and its outlier threshold; the mix states the span part's share,
/// the share of the answer's tokens the spans cover (at least
/// `spanWeightPpm`).
///
/// # Decoding
/// [`AttributionRecord::decode`] accepts exactly the canonical bytes of a
/// valid record of a known version: unknown or missing fields, another
/// method, a non-canonical encoding (whitespace, another key order) or
/// weights that do not sum to 10^6 make a record invalid, and an invalid
/// record is judged wrong.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttributionRecord {
    pub version: u32,
    pub receipt_hash: B256,
    /// `m<id>`.
    pub model: String,
    pub base_model_hash: B256,
    pub adapter_hash: B256,
    pub datanets: Vec<DatanetVersionRef>,
    /// blake3 of the prompt's token ids (u32 LE); the prompt itself is never in the record.
    pub prompt_hash: B256,
    pub response: String,
    pub response_tokens: Vec<u32>,
    pub span: SpanPartRecord,
    pub gradient: GradientPartRecord,
    pub mix: MixRecord,
    /// The final credits: (contribution, ppm), summing to 10^6 (or empty: the fallback).
    pub credits: Vec<(u64, u32)>,
    /// Version 3 on, for an answer that retrieved rows: which, and what they earn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval: Option<RetrievalPartRecord>,
}

/// The retrieval part of a record: the Datanet rows the serving node put in
/// the prompt, the spans of the answer that quote them (the span method over
/// the retrieved rows alone) and the credits by support, that is by the
/// number of answer tokens each contribution's retrieved rows cover. The
/// ranking that chose the rows (BM25 scores, floats) is not in the record:
/// a row earns only what the answer quotes of it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetrievalPartRecord {
    pub method: String,
    /// `attribution.retrieval_share_bps` at `mix.paramsHeight`.
    pub share_bps: u32,
    /// The Datanet versions retrieved from, in (datanet, version) order; the
    /// receipt's `retrievalHash` commits to them.
    pub datanets: Vec<DatanetVersionRef>,
    /// (contribution, row index) of the retrieved rows, in prompt order.
    pub rows: Vec<(u64, u32)>,
    /// The answer's maximal spans (at least `span.minSpanTokens` tokens, on word
    /// boundaries) found in the retrieved rows, in start order.
    pub spans: Vec<SpanRecord>,
    /// (contribution, answer tokens its retrieved rows cover), in contribution order.
    pub support: Vec<(u64, u64)>,
    /// `support` in ppm summing to 10^6 (largest remainder, integers only), or empty.
    pub credits: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatanetVersionRef {
    pub datanet: u64,
    pub version: u64,
}

/// One traced span.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpanRecord {
    pub token_start: u64,
    pub token_end: u64,
    pub char_start: u64,
    pub char_end: u64,
    pub count: u64,
    /// (contribution, row index) of the rows that contain it.
    pub rows: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SpanPartRecord {
    pub method: String,
    pub min_span_tokens: u64,
    pub spans: Vec<SpanRecord>,
    pub credits: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckpointRef {
    pub hash: B256,
    pub lr_nano: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GradientPartRecord {
    pub method: String,
    pub sketch_hash: B256,
    pub k: u32,
    pub seed: u64,
    pub checkpoints: Vec<CheckpointRef>,
    pub tolerance_ppm: u32,
    pub credits: Vec<(u64, u32)>,
    /// Version 4: the projection of the model's sketches (`ml::Projection::name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projection: Option<String>,
    /// Version 4: z × 1000 of the outlier rule (`crate::gradient`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_z_milli: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MixRecord {
    pub span_weight_ppm: u32,
    pub max_credits: u64,
    pub excluded: Vec<u64>,
    pub rule: String,
    /// Version 2 on: the block whose governed parameters the record used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params_height: Option<u64>,
    /// Version 4: the span part's share of the training-data credits, in ppm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_share_ppm: Option<u32>,
}

impl AttributionRecord {
    /// The record as JSON (its canonical bytes are [`canonical`] of this).
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a record serializes")
    }

    /// Its canonical bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        canonical(&self.to_value()).into_bytes()
    }

    /// Its hash: blake3 of the canonical bytes.
    pub fn hash(&self) -> B256 {
        primitives::content_hash(&self.canonical_bytes())
    }

    /// Decode canonical bytes into a valid record (see the type's docs).
    pub fn decode(bytes: &[u8]) -> Result<AttributionRecord, String> {
        let r: AttributionRecord = serde_json::from_slice(bytes).map_err(|e| format!("not a record: {e}"))?;
        r.validate()?;
        if r.canonical_bytes() != bytes {
            return Err("not the record's canonical encoding (sorted keys, no whitespace)".into());
        }
        Ok(r)
    }

    /// A record from JSON already parsed (e.g. from the attribution API):
    /// valid, whatever its key order.
    pub fn from_value(v: &Value) -> Result<AttributionRecord, String> {
        let r: AttributionRecord = serde_json::from_value(v.clone()).map_err(|e| format!("not a record: {e}"))?;
        r.validate()?;
        Ok(r)
    }

    /// The checks that make a record of its version well formed.
    pub fn validate(&self) -> Result<(), String> {
        if !RECORD_VERSIONS.contains(&self.version) {
            return Err(format!("unknown record version {} (known: {RECORD_VERSIONS:?})", self.version));
        }
        match (self.version, self.mix.params_height) {
            (1, Some(_)) => return Err("a version 1 record states no paramsHeight".into()),
            (2.., None) => return Err(format!("a version {} record must state mix.paramsHeight", self.version)),
            _ => {}
        }
        if let Some(r) = &self.retrieval {
            if self.version < 3 {
                return Err(format!("a version {} record has no retrieval part", self.version));
            }
            crate::retrieval::validate(r)?;
        }
        if self.model.strip_prefix('m').and_then(|m| m.parse::<u64>().ok()).is_none() {
            return Err(format!("model {:?} is not m<id>", self.model));
        }
        self.validate_methods()?;
        if self.mix.span_weight_ppm > 1_000_000 {
            return Err("spanWeightPpm is more than 10^6".into());
        }
        for (name, v) in [("span", &self.span.credits), ("gradient", &self.gradient.credits), ("final", &self.credits)]
        {
            let sorted = v.windows(2).all(|w| w[0].0 < w[1].0);
            let sum: u64 = v.iter().map(|c| c.1 as u64).sum();
            if !sorted || (!v.is_empty() && sum != 1_000_000) || v.iter().any(|c| c.1 == 0) {
                return Err(format!(
                    "{name} credits must be distinct contributions in order with non-zero ppm summing to 10^6"
                ));
            }
        }
        Ok(())
    }

    /// The methods, and their version 4 parameters, are those of the record's version.
    fn validate_methods(&self) -> Result<(), String> {
        let (g, m) = (&self.gradient, &self.mix);
        let v4 = self.version >= 4;
        let (gradient_method, rule) = if v4 { (GRADIENT_METHOD_V4, MIX_RULE_V4) } else { (GRADIENT_METHOD, MIX_RULE) };
        if self.span.method != SPAN_METHOD || g.method != gradient_method || m.rule != rule {
            return Err("unknown attribution method or mixing rule for the record's version".into());
        }
        let stated = [g.projection.is_some(), g.outlier_z_milli.is_some(), m.span_share_ppm.is_some()];
        if stated != [v4; 3] {
            return Err(format!(
                "a version {} record {} gradient.projection, gradient.outlierZMilli and mix.spanSharePpm",
                self.version,
                if v4 { "must state" } else { "states no" }
            ));
        }
        if let Some(p) = &g.projection
            && ![ml::Projection::CountSketch, ml::Projection::DenseSign].iter().any(|x| x.name() == p)
        {
            return Err(format!("unknown projection {p:?}"));
        }
        if m.span_share_ppm.is_some_and(|s| s > 1_000_000) {
            return Err("spanSharePpm is more than 10^6".into());
        }
        Ok(())
    }

    /// The model id it names.
    pub fn model_id(&self) -> u64 {
        self.model.strip_prefix('m').and_then(|m| m.parse().ok()).unwrap_or(0)
    }

    /// The parameters the record states; a version 1 record states no height,
    /// so `settled_at` (its receipt's settlement block) stands in.
    pub fn stated(&self, settled_at: u64) -> RecordParams {
        RecordParams {
            span_weight_ppm: self.mix.span_weight_ppm,
            min_span_tokens: self.span.min_span_tokens as usize,
            max_credits: self.mix.max_credits as usize,
            excluded: self.mix.excluded.clone(),
            params_height: self.mix.params_height.unwrap_or(settled_at),
            retrieval_share_bps: self.retrieval.as_ref().map(|r| r.share_bps),
        }
    }
}

/// Governed parameters a record uses, and the contributions it may not credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordParams {
    pub span_weight_ppm: u32,
    pub min_span_tokens: usize,
    pub max_credits: usize,
    /// Contributions of the model's Datanets flagged (duplicated, adversarial)
    /// since training: the methods still see them (the span part is the raw
    /// trace), the final credits leave them out.
    pub excluded: Vec<u64>,
    /// The block whose parameters these are (the state the record was made
    /// from); a verifier reads the governed parameters in force at this height.
    pub params_height: u64,
    /// `attribution.retrieval_share_bps` (read from the chain: always; stated
    /// by a record: only when it has a retrieval part).
    pub retrieval_share_bps: Option<u32>,
}

impl RecordParams {
    /// The parameters in force after block `height` (`st` is that block's
    /// state or a later one: parameters come from their history by height).
    pub fn from_state(
        st: &dyn primitives::state::StateRead,
        r: &ModelRecord,
        height: u64,
    ) -> Result<RecordParams, String> {
        use runtime::datanets::DatanetsRead;
        let p = |spec| st.param_at(spec, height).map_err(|e| e.to_string());
        let mut excluded = Vec::new();
        for d in &r.datanets {
            excluded.extend(st.flagged(d.datanetId).map_err(|e| e.to_string())?);
        }
        excluded.sort_unstable();
        excluded.dedup();
        Ok(RecordParams {
            span_weight_ppm: p(&runtime::params::ATTRIBUTION_SPAN_WEIGHT_PPM)? as u32,
            min_span_tokens: p(&runtime::params::ATTRIBUTION_MIN_SPAN_TOKENS)? as usize,
            max_credits: p(&runtime::params::INFERENCE_MAX_CREDITS)? as usize,
            excluded,
            params_height: height,
            retrieval_share_bps: Some(p(&runtime::params::ATTRIBUTION_RETRIEVAL_SHARE_BPS)? as u32),
        })
    }

    /// The governed values only (what must match the chain's history).
    pub(crate) fn governed(&self) -> (u32, usize, usize) {
        (self.span_weight_ppm, self.min_span_tokens, self.max_credits)
    }
}

/// Canonical JSON: object keys sorted, no whitespace (the bytes the record
/// hash covers). The same rule as ModelFactory's canonical bytes
/// (`factory::spec::canonical_json`), which this is.
pub fn canonical(v: &Value) -> String {
    factory::spec::canonical_json(v)
}

/// The hash of a record given as JSON: blake3 of its canonical bytes.
pub fn record_hash(record: &Value) -> B256 {
    primitives::content_hash(canonical(record).as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::gradient::GRADIENT_TOLERANCE_PPM;
    use serde_json::json;

    /// A well-formed version 2 record.
    pub(crate) fn record() -> AttributionRecord {
        AttributionRecord {
            version: 2,
            receipt_hash: B256::repeat_byte(1),
            model: "m2".into(),
            base_model_hash: B256::repeat_byte(2),
            adapter_hash: B256::repeat_byte(3),
            datanets: vec![DatanetVersionRef { datanet: 1, version: 2 }],
            prompt_hash: B256::repeat_byte(4),
            response: "a b".into(),
            response_tokens: vec![5, 6],
            span: SpanPartRecord {
                method: SPAN_METHOD.into(),
                min_span_tokens: 8,
                spans: vec![SpanRecord {
                    token_start: 0,
                    token_end: 2,
                    char_start: 0,
                    char_end: 3,
                    count: 1,
                    rows: vec![(7, 0)],
                }],
                credits: vec![(7, 1_000_000)],
            },
            gradient: GradientPartRecord {
                method: GRADIENT_METHOD.into(),
                sketch_hash: B256::ZERO,
                k: 0,
                seed: 0,
                checkpoints: vec![],
                tolerance_ppm: GRADIENT_TOLERANCE_PPM,
                credits: vec![],
                projection: None,
                outlier_z_milli: None,
            },
            mix: MixRecord {
                span_weight_ppm: 500_000,
                max_credits: 32,
                excluded: vec![],
                rule: MIX_RULE.into(),
                params_height: Some(40),
                span_share_ppm: None,
            },
            credits: vec![(7, 1_000_000)],
            retrieval: None,
        }
    }

    #[test]
    fn only_canonical_records_of_a_known_version_decode() {
        let r = record();
        let bytes = r.canonical_bytes();
        assert_eq!(AttributionRecord::decode(&bytes).unwrap(), r);
        assert_eq!(r.hash(), record_hash(&r.to_value()));
        // The lapsed-challenge trick: `{}` (or any record missing a parameter
        // the verifier needs) is not a record, so it is judged wrong.
        assert!(AttributionRecord::decode(b"{}").is_err());
        let mut v = r.to_value();
        v["mix"].as_object_mut().unwrap().remove("spanWeightPpm");
        assert!(AttributionRecord::decode(canonical(&v).as_bytes()).unwrap_err().contains("spanWeightPpm"));
        // Unknown fields, unknown versions, other methods, bad weights.
        let mut v = r.to_value();
        v["extra"] = json!(1);
        assert!(AttributionRecord::decode(canonical(&v).as_bytes()).is_err());
        for bad in [
            AttributionRecord { version: 4, ..record() },
            AttributionRecord { model: "x".into(), ..record() },
            AttributionRecord { credits: vec![(7, 999_999)], ..record() },
            AttributionRecord { credits: vec![(8, 500_000), (7, 500_000)], ..record() },
            AttributionRecord { mix: MixRecord { params_height: None, ..record().mix }, ..record() },
            AttributionRecord { span: SpanPartRecord { method: "mine".into(), ..record().span }, ..record() },
        ] {
            assert!(AttributionRecord::decode(&bad.canonical_bytes()).is_err(), "{bad:?}");
        }
        // Whitespace or another key order: not the canonical bytes.
        let pretty = serde_json::to_vec_pretty(&r.to_value()).unwrap();
        assert!(AttributionRecord::decode(&pretty).unwrap_err().contains("canonical"));
        // A version 1 record (no paramsHeight) still decodes, and is judged by
        // the parameters in force when its receipt settled.
        let v1 = AttributionRecord { version: 1, mix: MixRecord { params_height: None, ..record().mix }, ..record() };
        let d = AttributionRecord::decode(&v1.canonical_bytes()).unwrap();
        assert_eq!(d.stated(77).params_height, 77);
        assert_eq!(record().stated(77).params_height, 40);
    }

    /// A version 1 record with a gradient part, an exclusion and a response
    /// that needs escaping (non-ASCII, quotes, a newline).
    fn record_v1() -> AttributionRecord {
        let r = record();
        AttributionRecord {
            version: 1,
            gradient: GradientPartRecord {
                checkpoints: vec![CheckpointRef { hash: B256::repeat_byte(9), lr_nano: 100_000 }],
                k: 64,
                seed: 11,
                sketch_hash: B256::repeat_byte(8),
                credits: vec![(3, 250_000), (7, 750_000)],
                ..r.gradient.clone()
            },
            mix: MixRecord { params_height: None, excluded: vec![3], ..r.mix.clone() },
            response: "é \"q\"\n".into(),
            ..r
        }
    }

    /// A well-formed version 4 record.
    pub(crate) fn record_v4() -> AttributionRecord {
        let r = record();
        AttributionRecord {
            version: 4,
            gradient: GradientPartRecord {
                method: GRADIENT_METHOD_V4.into(),
                projection: Some("count-sketch".into()),
                outlier_z_milli: Some(3_000),
                ..r.gradient.clone()
            },
            mix: MixRecord { rule: MIX_RULE_V4.into(), span_share_ppm: Some(1_000_000), ..r.mix.clone() },
            ..r
        }
    }

    #[test]
    fn version_4_states_its_methods_and_older_versions_do_not() {
        let v4 = record_v4();
        assert_eq!(AttributionRecord::decode(&v4.canonical_bytes()).unwrap(), v4);
        let text = String::from_utf8(v4.canonical_bytes()).unwrap();
        assert!(text.contains(r#""projection":"count-sketch""#) && text.contains(r#""spanSharePpm":1000000"#));
        let bad = [
            // A version 4 record with the old methods, or missing a v4 field.
            AttributionRecord { gradient: record().gradient, ..record_v4() },
            AttributionRecord { mix: MixRecord { span_share_ppm: None, ..record_v4().mix }, ..record_v4() },
            AttributionRecord {
                gradient: GradientPartRecord { projection: Some("mine".into()), ..record_v4().gradient },
                ..record_v4()
            },
            AttributionRecord { mix: MixRecord { span_share_ppm: Some(1_000_001), ..record_v4().mix }, ..record_v4() },
            // An older version claiming the new methods or fields.
            AttributionRecord { version: 3, ..record_v4() },
            AttributionRecord {
                gradient: GradientPartRecord { outlier_z_milli: Some(3_000), ..record().gradient },
                ..record()
            },
        ];
        for b in bad {
            assert!(AttributionRecord::decode(&b.canonical_bytes()).is_err(), "{b:?}");
        }
    }

    // The canonical bytes and hashes of the two records above, computed with
    // the code as it stood in `node::attribution` before it moved here: the
    // move, and any later change, must keep every record's bytes and hash.
    const V2_BYTES: &str = r#"{"adapterHash":"0x0303030303030303030303030303030303030303030303030303030303030303","baseModelHash":"0x0202020202020202020202020202020202020202020202020202020202020202","credits":[[7,1000000]],"datanets":[{"datanet":1,"version":2}],"gradient":{"checkpoints":[],"credits":[],"k":0,"method":"tracin-projected-lora","seed":0,"sketchHash":"0x0000000000000000000000000000000000000000000000000000000000000000","tolerancePpm":2000},"mix":{"excluded":[],"maxCredits":32,"paramsHeight":40,"rule":"span and gradient ppm without the excluded (flagged) contributions, weighted by spanWeightPpm; one method alone when the other credits nothing","spanWeightPpm":500000},"model":"m2","promptHash":"0x0404040404040404040404040404040404040404040404040404040404040404","receiptHash":"0x0101010101010101010101010101010101010101010101010101010101010101","response":"a b","responseTokens":[5,6],"span":{"credits":[[7,1000000]],"method":"maximal-spans-suffix-array","minSpanTokens":8,"spans":[{"charEnd":3,"charStart":0,"count":1,"rows":[[7,0]],"tokenEnd":2,"tokenStart":0}]},"version":2}"#;
    const V2_HASH: &str = "0x67428e5523dbcc3e9423f5b142818ec518af394453b4fd6efc867f44c8cb4272";
    const V1_BYTES: &str = r#"{"adapterHash":"0x0303030303030303030303030303030303030303030303030303030303030303","baseModelHash":"0x0202020202020202020202020202020202020202020202020202020202020202","credits":[[7,1000000]],"datanets":[{"datanet":1,"version":2}],"gradient":{"checkpoints":[{"hash":"0x0909090909090909090909090909090909090909090909090909090909090909","lrNano":100000}],"credits":[[3,250000],[7,750000]],"k":64,"method":"tracin-projected-lora","seed":11,"sketchHash":"0x0808080808080808080808080808080808080808080808080808080808080808","tolerancePpm":2000},"mix":{"excluded":[3],"maxCredits":32,"rule":"span and gradient ppm without the excluded (flagged) contributions, weighted by spanWeightPpm; one method alone when the other credits nothing","spanWeightPpm":500000},"model":"m2","promptHash":"0x0404040404040404040404040404040404040404040404040404040404040404","receiptHash":"0x0101010101010101010101010101010101010101010101010101010101010101","response":"é \"q\"\n","responseTokens":[5,6],"span":{"credits":[[7,1000000]],"method":"maximal-spans-suffix-array","minSpanTokens":8,"spans":[{"charEnd":3,"charStart":0,"count":1,"rows":[[7,0]],"tokenEnd":2,"tokenStart":0}]},"version":1}"#;
    const V4_BYTES: &str = r#"{"adapterHash":"0x0303030303030303030303030303030303030303030303030303030303030303","baseModelHash":"0x0202020202020202020202020202020202020202020202020202020202020202","credits":[[7,1000000]],"datanets":[{"datanet":1,"version":2}],"gradient":{"checkpoints":[],"credits":[],"k":0,"method":"relative-cosine-lora","outlierZMilli":3000,"projection":"count-sketch","seed":0,"sketchHash":"0x0000000000000000000000000000000000000000000000000000000000000000","tolerancePpm":2000},"mix":{"excluded":[],"maxCredits":32,"paramsHeight":40,"rule":"span and gradient ppm without the excluded (flagged) contributions; the span part takes spanSharePpm: the share of answer tokens inside spans that credit a contribution, at least spanWeightPpm, when it credits anything; the gradient part the rest; one method alone when the other credits nothing","spanSharePpm":1000000,"spanWeightPpm":500000},"model":"m2","promptHash":"0x0404040404040404040404040404040404040404040404040404040404040404","receiptHash":"0x0101010101010101010101010101010101010101010101010101010101010101","response":"a b","responseTokens":[5,6],"span":{"credits":[[7,1000000]],"method":"maximal-spans-suffix-array","minSpanTokens":8,"spans":[{"charEnd":3,"charStart":0,"count":1,"rows":[[7,0]],"tokenEnd":2,"tokenStart":0}]},"version":4}"#;
    const V4_HASH: &str = "0x25436a380ed31317a12795c8225bd8bd5cd0ca246fa5a56b2902613bfed5ce65";
    const V1_HASH: &str = "0xae6402ebbd880d7dfae725b82d9adc023046125e0e5b748b5a0656ed15721bba";

    #[test]
    fn canonical_bytes_and_hashes_are_stable() {
        for (r, bytes, hash) in
            [(record(), V2_BYTES, V2_HASH), (record_v1(), V1_BYTES, V1_HASH), (record_v4(), V4_BYTES, V4_HASH)]
        {
            assert_eq!(String::from_utf8(r.canonical_bytes()).unwrap(), bytes);
            assert_eq!(r.hash().to_string(), hash);
            assert_eq!(record_hash(&r.to_value()).to_string(), hash);
            assert_eq!(primitives::content_hash(bytes.as_bytes()).to_string(), hash);
        }
    }

    #[test]
    fn canonical_round_trip() {
        for r in [record(), record_v1(), record_v4()] {
            let bytes = r.canonical_bytes();
            let back = AttributionRecord::decode(&bytes).unwrap();
            assert_eq!(back, r);
            assert_eq!(back.canonical_bytes(), bytes);
            assert_eq!(back.hash(), r.hash());
            // From JSON parsed in any key order: the same record, the same bytes.
            let parsed: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(AttributionRecord::from_value(&parsed).unwrap().canonical_bytes(), bytes);
        }
    }

    #[test]
    fn non_canonical_or_unknown_field_encodings_are_refused() {
        let r = record();
        let canonical_text = String::from_utf8(r.canonical_bytes()).unwrap();
        // Whitespace between tokens.
        let spaced = canonical_text.replacen(",", ", ", 1);
        assert!(AttributionRecord::decode(spaced.as_bytes()).unwrap_err().contains("canonical"));
        // The same fields in another order.
        let body = canonical_text.strip_suffix(r#","version":2}"#).unwrap();
        let reordered = format!(r#"{{"version":2,{}}}"#, &body[1..]);
        assert_ne!(reordered, canonical_text);
        let err = AttributionRecord::decode(reordered.as_bytes()).unwrap_err();
        assert!(err.contains("canonical"), "{err}: {reordered}");
        // A number written as a float, a hash in upper case.
        let float = canonical_text.replacen(r#""maxCredits":32"#, r#""maxCredits":32.0"#, 1);
        assert!(AttributionRecord::decode(float.as_bytes()).is_err());
        let upper = canonical_text.replacen("0x0101", "0X0101", 1);
        assert!(AttributionRecord::decode(upper.as_bytes()).is_err());
        // Unknown fields, at the top or inside a part, even in canonical form.
        for path in [&[][..], &["mix"][..], &["span", "spans", "0"][..], &["gradient"][..]] {
            let mut v = r.to_value();
            let mut at = &mut v;
            for p in path {
                at = match p.parse::<usize>() {
                    Ok(i) => &mut at[i],
                    Err(_) => &mut at[*p],
                };
            }
            at["note"] = json!("trust me");
            let err = AttributionRecord::decode(canonical(&v).as_bytes()).unwrap_err();
            assert!(err.contains("unknown field"), "{path:?}: {err}");
        }
        // Not JSON, or not an object.
        assert!(AttributionRecord::decode(b"").is_err());
        assert!(AttributionRecord::decode(b"[]").is_err());
        assert!(AttributionRecord::decode(&r.canonical_bytes()[1..]).is_err());
    }
}
