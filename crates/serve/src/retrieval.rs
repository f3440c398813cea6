//! Retrieval-augmented answers: `POST /v1/retrieve` (rows of Datanet
//! versions for a query, with scores) and the `retrieval` field of
//! `POST /v1/chat/completions`, which retrieves rows for the last user
//! message, puts them in the prompt (a system message, through the model's
//! chat template) and hands them to billing (the receipt's `retrievalHash`)
//! and attribution (the record's retrieval part).
//!
//! The index and the reading rule live behind [`Retriever`] (the node
//! implements it over its BM25 indexes and the Datanets' access rules); this
//! module parses, bounds and formats.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use httpapi::{MaybeCaller, error_response};
use ml::ChatMessage;
use primitives::{Address, B256};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::openai::{OpenLora, bad};

/// Most rows one request retrieves.
pub const MAX_K: usize = 64;
/// Rows retrieved when the request names no `k`.
pub const DEFAULT_K: usize = 4;
/// Most Datanets one request retrieves from.
pub const MAX_DATANETS: usize = primitives::abi::MAX_RETRIEVED_VERSIONS;
/// Longest query (bytes) `POST /v1/retrieve` takes; a chat's query is its
/// last user message, cut to this length at a character boundary.
pub const MAX_QUERY_BYTES: usize = 4096;

/// A Datanet to retrieve from: its id, and a version (its latest when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum DatanetSel {
    Id(u64),
    At { datanet: u64, version: Option<u64> },
}

impl DatanetSel {
    pub fn datanet(&self) -> u64 {
        match self {
            DatanetSel::Id(d) | DatanetSel::At { datanet: d, .. } => *d,
        }
    }
    pub fn version(&self) -> Option<u64> {
        match self {
            DatanetSel::Id(_) => None,
            DatanetSel::At { version, .. } => *version,
        }
    }
}

/// One retrieved row.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    pub datanet: u64,
    pub version: u64,
    pub contribution: u64,
    pub row: u32,
    /// The ranking score (BM25); it orders rows and pays nothing.
    pub score: f32,
    pub text: String,
}

/// What a retrieval found: the versions searched, in (datanet, version)
/// order, and the rows, best first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Retrieved {
    pub versions: Vec<(u64, u64)>,
    pub passages: Vec<Passage>,
}

impl Retrieved {
    /// The receipt's `retrievalHash` for an answer that retrieved this.
    pub fn hash(&self) -> B256 {
        let v: Vec<primitives::abi::DatanetVersionRef> = self
            .versions
            .iter()
            .map(|(d, v)| primitives::abi::DatanetVersionRef { datanetId: *d, version: *v })
            .collect();
        primitives::abi::retrieval_hash(&v)
    }

    /// The JSON the API returns (`with_text`: the rows' text too).
    pub fn to_json(&self, with_text: bool) -> Value {
        json!({
            "datanets": self.versions.iter().map(|(d, v)| json!({"datanet": d, "version": v})).collect::<Vec<_>>(),
            "rows": self.passages.iter().map(|p| {
                let mut r = json!({"datanet": p.datanet, "version": p.version, "contribution": p.contribution,
                                   "row": p.row, "score": p.score});
                if with_text {
                    r["text"] = json!(p.text);
                }
                r
            }).collect::<Vec<_>>(),
        })
    }
}

/// Why a retrieval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetrieveError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller may not read a Datanet's rows (DESIGN's reading rule).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
}

impl RetrieveError {
    fn into_response(self) -> Response {
        let (status, kind, code) = match &self {
            RetrieveError::BadRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request_error", "invalid_retrieval"),
            RetrieveError::NotFound(_) => (StatusCode::NOT_FOUND, "invalid_request_error", "datanet_not_found"),
            RetrieveError::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_error", "datanet_not_readable"),
            RetrieveError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "server_error", "retrieval_unavailable"),
        };
        error_response(status, kind, code, self.to_string())
    }
}

/// Retrieval over Datanet versions, as the node provides it. Blocking (it
/// may build an index on first use); the routes call it off the async threads.
pub trait Retriever: Send + Sync + 'static {
    /// The best `k` rows for `query` over `datanets` that `caller` may read
    /// (`None`: anonymous): a Datanet it may not read is refused, not skipped.
    fn retrieve(
        &self,
        caller: Option<Address>,
        query: &str,
        datanets: &[DatanetSel],
        k: usize,
    ) -> Result<Retrieved, RetrieveError>;
}

/// The `retrieval` field of a chat request, and the body of `POST /v1/retrieve` without its query.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrievalField {
    pub datanets: Vec<DatanetSel>,
    #[serde(default)]
    pub k: Option<usize>,
}

impl RetrievalField {
    /// The checked request: 1 to [`MAX_DATANETS`] distinct Datanets, k in 1..=[`MAX_K`].
    pub fn check(&self) -> Result<usize, RetrieveError> {
        let bad = |m: String| Err(RetrieveError::BadRequest(m));
        if self.datanets.is_empty() || self.datanets.len() > MAX_DATANETS {
            return bad(format!("retrieval names 1 to {MAX_DATANETS} Datanets"));
        }
        let mut ids: Vec<u64> = self.datanets.iter().map(|d| d.datanet()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.datanets.len() {
            return bad("retrieval names a Datanet twice".into());
        }
        let k = self.k.unwrap_or(DEFAULT_K);
        if !(1..=MAX_K).contains(&k) {
            return bad(format!("k must be between 1 and {MAX_K}"));
        }
        Ok(k)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetrieveBody {
    query: String,
    datanets: Vec<DatanetSel>,
    #[serde(default)]
    k: Option<usize>,
}

/// Run a retrieval off the async threads.
pub(crate) async fn run(
    s: &OpenLora,
    caller: Option<Address>,
    query: String,
    field: &RetrievalField,
) -> Result<Retrieved, Response> {
    let Some(r) = s.retriever.clone() else {
        return Err(bad("retrieval_unavailable", "this node does not serve retrieval"));
    };
    let k = field.check().map_err(RetrieveError::into_response)?;
    let datanets = field.datanets.clone();
    match tokio::task::spawn_blocking(move || r.retrieve(caller, &query, &datanets, k)).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(e)) => Err(e.into_response()),
        Err(e) => Err(error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "internal", e.to_string())),
    }
}

/// `POST /v1/retrieve`: `{"query", "datanets": [id | {"datanet", "version"}], "k"}` →
/// `{"datanets": [...], "rows": [{datanet, version, contribution, row, score, text}]}`.
pub(crate) async fn retrieve_route(
    State(s): State<Arc<OpenLora>>,
    caller: MaybeCaller,
    request: axum::extract::Request,
) -> Response {
    let (_, body) = match crate::openai::admit(&s, caller.0, request).await {
        Ok(read) => read,
        Err(r) => return r,
    };
    let b: RetrieveBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad("invalid_json", format!("the request body does not parse: {e}")),
    };
    if b.query.trim().is_empty() || b.query.len() > MAX_QUERY_BYTES {
        return bad("invalid_query", format!("the query must be 1 to {MAX_QUERY_BYTES} bytes"));
    }
    let field = RetrievalField { datanets: b.datanets, k: b.k };
    match run(&s, caller.0, b.query, &field).await {
        Ok(found) => axum::Json(found.to_json(true)).into_response(),
        Err(r) => r,
    }
}

/// A chat's query: its last user message, at most [`MAX_QUERY_BYTES`].
pub(crate) fn query_of(msgs: &[ChatMessage]) -> Option<String> {
    let q = msgs.iter().rev().find(|m| m.role == "user")?.content.trim();
    let mut end = q.len().min(MAX_QUERY_BYTES);
    while !q.is_char_boundary(end) {
        end -= 1;
    }
    (!q[..end].is_empty()).then(|| q[..end].to_string())
}

/// The passages as a system message at the start of the conversation (after
/// the caller's own system message, if it has one): numbered, each with where
/// it comes from, so the answer can quote and cite them.
pub(crate) fn with_passages(msgs: &[ChatMessage], found: &Retrieved) -> Vec<ChatMessage> {
    if found.passages.is_empty() {
        return msgs.to_vec();
    }
    let mut context = String::from(
        "Answer from these passages of OpenLedger Datanets where they help; quote them exactly when you use them.\n",
    );
    for (i, p) in found.passages.iter().enumerate() {
        context.push_str(&format!(
            "[{}] (Datanet {} v{}, contribution {} row {}) {}\n",
            i + 1,
            p.datanet,
            p.version,
            p.contribution,
            p.row,
            p.text.trim()
        ));
    }
    let at = msgs.iter().take_while(|m| m.role == "system").count();
    let mut out = msgs[..at].to_vec();
    out.push(ChatMessage { role: "system".into(), content: context });
    out.extend_from_slice(&msgs[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_and_bounds() {
        let f: RetrievalField = serde_json::from_value(json!({"datanets": [1, {"datanet": 2, "version": 3}]})).unwrap();
        assert_eq!(f.check(), Ok(DEFAULT_K));
        assert_eq!(f.datanets[1].version(), Some(3));
        assert_eq!(f.datanets[0].version(), None);
        for bad in [
            json!({"datanets": []}),
            json!({"datanets": [1, 1]}),
            json!({"datanets": [1], "k": 0}),
            json!({"datanets": [1], "k": MAX_K + 1}),
            json!({"datanets": (0..=MAX_DATANETS as u64).collect::<Vec<_>>()}),
        ] {
            let f: RetrievalField = serde_json::from_value(bad.clone()).unwrap();
            assert!(f.check().is_err(), "{bad}");
        }
        assert!(serde_json::from_value::<RetrievalField>(json!({"datanets": [1], "extra": 1})).is_err());
        assert!(serde_json::from_value::<RetrievalField>(json!({"datanets": ["x"]})).is_err());
    }

    #[test]
    fn passages_go_after_the_callers_system_message() {
        let m = |r: &str, c: &str| ChatMessage { role: r.into(), content: c.into() };
        let msgs =
            vec![m("system", "be brief"), m("user", "first"), m("assistant", "ok"), m("user", "  the question ")];
        assert_eq!(query_of(&msgs).as_deref(), Some("the question"));
        let found = Retrieved {
            versions: vec![(1, 2)],
            passages: vec![Passage {
                datanet: 1,
                version: 2,
                contribution: 5,
                row: 0,
                score: 1.5,
                text: "a fact".into(),
            }],
        };
        let out = with_passages(&msgs, &found);
        assert_eq!(out.len(), 5);
        assert_eq!(out[0].content, "be brief");
        assert!(out[1].role == "system" && out[1].content.contains("[1] (Datanet 1 v2, contribution 5 row 0) a fact"));
        assert_eq!(&out[2..], &msgs[1..]);
        assert_eq!(with_passages(&msgs, &Retrieved::default()), msgs);
        assert_ne!(found.hash(), B256::ZERO);
        assert_eq!(Retrieved::default().hash(), B256::ZERO);
        let long = "é".repeat(MAX_QUERY_BYTES);
        assert!(query_of(&[m("user", &long)]).unwrap().len() <= MAX_QUERY_BYTES);
        assert_eq!(query_of(&[m("system", "x")]), None);
    }
}
