//! The ingest route, the version rows route and the blob access policy.

// The upload path's steps answer with the HTTP response that refuses the
// request, as axum handlers do: boxing it would buy nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use alloy_sol_types::{SolCall, SolStruct};
use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ingest::{DedupIndex, DupKind, IngestConfig};
use primitives::abi::{ContributionAttestation, IDatanets};
use primitives::rows::RowId;
use primitives::state::StateRead;
use primitives::system::Module;
use primitives::{Address, B256, Bytes};
use runtime::datanets::{APPROVED, DatanetRecord, DatanetsRead, POLICY_ALLOW_LIST};
use serde::{Deserialize, Serialize};

use crate::quota::{IngestLedger, IngestQuota, QuotaRefusal};
use crate::reader::DatanetReader;

/// Where the service reads chain state from (the node gives it the latest snapshot).
pub trait StateSource: Send + Sync + 'static {
    fn state(&self) -> Result<Box<dyn StateRead>, String>;
    fn chain_id(&self) -> u64;
}

/// One row of a findings report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReportRow {
    pub index: u32,
    pub leaf: B256,
    pub score_bps: u16,
    pub reasons: Vec<String>,
    /// "contribution:index" of the row this duplicates ("pending:i" = row i of this file).
    pub duplicate_of: Option<String>,
    /// "exact" or "near".
    pub duplicate_kind: Option<String>,
}

/// What the ingest service found, stored as a blob whose hash the attestation signs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FindingsReport {
    pub datanet_id: u64,
    pub contributor: Address,
    pub file_name: String,
    pub content_hash: B256,
    pub rows_blob: B256,
    pub rows_root: B256,
    pub row_count: u32,
    pub byte_size: u64,
    pub quality_bps: u16,
    pub scorer_version: u32,
    pub config_digest: B256,
    pub exact_duplicates: u32,
    pub near_duplicates: u32,
    pub rows: Vec<ReportRow>,
}

/// The answer of the ingest route: what to sign and send, and why.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestResponse {
    /// The attestation's fields (see [`attestation_json`]).
    pub attestation: serde_json::Value,
    pub attester: Address,
    pub signature: Bytes,
    /// The datanets system contract.
    pub to: Address,
    /// The bond to send with the transaction (base units, decimal).
    pub value: String,
    /// `submitContribution(attestation, signature)`, ready for the contributor's wallet.
    pub calldata: Bytes,
    pub findings_blob: B256,
    pub report: FindingsReport,
}

struct IndexState {
    index: DedupIndex,
    indexed: BTreeSet<u64>,
}

/// The Datanet services of a node.
pub struct DatanetService {
    reader: DatanetReader,
    attester: Option<keys::SecretKey>,
    cfg: IngestConfig,
    /// Uploads per contributor today, against the node's [`IngestQuota`].
    uploads: IngestLedger,
    indexes: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<IndexState>>>>,
    /// Blob hash → the Datanet it belongs to, for the access policy.
    owners: Mutex<BTreeMap<B256, u64>>,
    /// Contributions whose blobs are in `owners`.
    owned: Mutex<BTreeSet<u64>>,
    /// Set once every contribution on chain at start-up has its blobs in `owners`;
    /// until then the policy refuses blobs it cannot place.
    synced: std::sync::atomic::AtomicBool,
}

fn err(status: StatusCode, code: &str, msg: impl Into<String>) -> Response {
    httpapi::error_response(status, "invalid_request_error", code, msg.into())
}

impl DatanetService {
    /// The services with the default [`IngestQuota`].
    pub fn new(
        state: Arc<dyn StateSource>,
        blobs: Arc<blobs::BlobStore>,
        attester: Option<keys::SecretKey>,
    ) -> Arc<Self> {
        Self::with_quota(state, blobs, attester, IngestQuota::default())
    }

    /// The services, uploads limited per contributor by `quota`.
    pub fn with_quota(
        state: Arc<dyn StateSource>,
        blobs: Arc<blobs::BlobStore>,
        attester: Option<keys::SecretKey>,
        quota: IngestQuota,
    ) -> Arc<Self> {
        Arc::new(DatanetService {
            reader: DatanetReader::new(state, blobs),
            attester,
            cfg: IngestConfig::default(),
            uploads: IngestLedger::new(quota),
            indexes: Mutex::new(HashMap::new()),
            owners: Mutex::new(BTreeMap::new()),
            owned: Mutex::new(BTreeSet::new()),
            synced: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn reader(&self) -> &DatanetReader {
        &self.reader
    }

    pub fn attester(&self) -> Option<Address> {
        self.attester.as_ref().map(|k| k.address())
    }

    fn datanet(&self, id: u64) -> Result<DatanetRecord, Response> {
        let st = self.reader.state.state().map_err(|e| err(StatusCode::SERVICE_UNAVAILABLE, "state", e))?;
        st.datanet(id)
            .map_err(|e| err(StatusCode::SERVICE_UNAVAILABLE, "state", e.to_string()))?
            .ok_or_else(|| err(StatusCode::NOT_FOUND, "unknown_datanet", format!("Datanet {id} does not exist")))
    }

    /// Why `caller` may read the rows, files and findings of Datanet `id`, or `None`.
    ///
    /// DESIGN ("Verifying and challenging"): a public Datanet is readable by anyone; an
    /// allow-list Datanet by its owner, curators and members, by the serving operators
    /// of live models that name it (an operator whose on-chain endpoint lists such a
    /// model), and by the validators only while a challenge of a record of a model
    /// that names it is open (their verifiers recompute it).
    pub fn reader_role(
        &self,
        id: u64,
        d: &DatanetRecord,
        caller: Option<Address>,
    ) -> Result<Option<&'static str>, String> {
        use runtime::attribution::AttributionRead;
        use runtime::inference::InferenceRead;
        use runtime::models::{ModelRecordExt, ModelsRead};
        if d.policy != POLICY_ALLOW_LIST {
            return Ok(Some("public"));
        }
        let Some(c) = caller else { return Ok(None) };
        let st = self.reader.state.state()?;
        let e = |e: primitives::state::StateError| e.to_string();
        if c == d.owner {
            return Ok(Some("owner"));
        }
        if st.curators(id).map_err(e)?.contains(&c) {
            return Ok(Some("curator"));
        }
        if st.is_member(id, &c).map_err(e)? {
            return Ok(Some("member"));
        }
        let names_it = |m: u64| -> Result<Option<runtime::models::ModelRecord>, String> {
            Ok(st.model(primitives::ModelId(m)).map_err(e)?.filter(|r| r.trained_on(id)))
        };
        if let Some(ep) = st.endpoint(&c).map_err(e)? {
            for m in ep.modelIds {
                if names_it(m)?.is_some_and(|r| r.state == runtime::models::LIVE) {
                    return Ok(Some("serving operator"));
                }
            }
        }
        let height = runtime::state_height(&*st).map_err(|e| e.to_string())?;
        let validators = runtime::staking::StakingRead::validator_set_at(&*st, height).map_err(e)?;
        if validators.operators.contains(&c) {
            for h in st.open_challenges().map_err(e)? {
                let Some(hold) = st.hold(&h).map_err(e)? else { continue };
                if names_it(hold.modelId)?.is_some() {
                    return Ok(Some("validator (open challenge)"));
                }
            }
        }
        Ok(None)
    }

    /// Whether `caller` may read `what` of Datanet `id` ([`Self::reader_role`]); every
    /// read of an allow-list Datanet's data is logged with the reader and the blob.
    pub fn may_read(&self, id: u64, d: &DatanetRecord, caller: Option<Address>, what: &str) -> Result<bool, String> {
        let role = self.reader_role(id, d, caller)?;
        if d.policy == POLICY_ALLOW_LIST {
            let reader = caller.map(|a| a.to_string()).unwrap_or_else(|| "anonymous".into());
            match role {
                Some(role) => {
                    tracing::info!(target: "openledger::private_data", %reader, role, datanet = id, blob = what, "private Datanet read")
                }
                None => {
                    tracing::info!(target: "openledger::private_data", %reader, datanet = id, blob = what, "private Datanet read refused")
                }
            }
        }
        Ok(role.is_some())
    }

    /// Whether `trainer` may fine-tune on Datanet `id`: anyone on a public Datanet;
    /// only its owner, curators and members on an allow-list one.
    pub fn may_train(&self, id: u64, trainer: Address) -> Result<bool, String> {
        let st = self.reader.state.state()?;
        let d = st.datanet(id).map_err(|e| e.to_string())?.ok_or_else(|| format!("Datanet {id} does not exist"))?;
        Ok(d.policy != POLICY_ALLOW_LIST
            || trainer == d.owner
            || st.curators(id).map_err(|e| e.to_string())?.contains(&trainer)
            || st.is_member(id, &trainer).map_err(|e| e.to_string())?)
    }

    /// The Datanet a blob (a contribution's file, rows or findings report) belongs to,
    /// if this node knows it.
    pub fn blob_datanet(&self, hash: &B256) -> Option<u64> {
        self.owners.lock().unwrap().get(hash).copied()
    }

    /// Whether every contribution on chain at start-up has its blobs placed.
    pub fn synced(&self) -> bool {
        self.synced.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Record which Datanet the blobs of every contribution of Datanet `id` belong to
    /// (any status: a pending upload to an allow-list Datanet is private too).
    async fn register_owners(&self, id: u64) -> Result<(), String> {
        let recs: Vec<(u64, runtime::datanets::ContributionRecord)> = {
            let st = self.reader.state.state()?;
            let mut v = Vec::new();
            for cid in st.contributions_of(id).map_err(|e| e.to_string())? {
                if self.owned.lock().unwrap().contains(&cid) {
                    continue;
                }
                if let Some(r) = st.contribution(cid).map_err(|e| e.to_string())? {
                    v.push((cid, r));
                }
            }
            v
        };
        for (cid, rec) in recs {
            let mut hashes = vec![rec.attestation.findingsHash, rec.attestation.contentHash];
            if let Ok(report) = self.reader.report(&rec).await {
                hashes.push(report.rows_blob);
            }
            let mut o = self.owners.lock().unwrap();
            for h in hashes {
                o.insert(h, id);
            }
            self.owned.lock().unwrap().insert(cid);
        }
        Ok(())
    }

    /// Place every contribution's blobs, for the access policy: the node runs this at start-up.
    pub async fn sync_owners(&self) -> Result<(), String> {
        let count = {
            let st = self.reader.state.state()?;
            st.datanet_count().map_err(|e| e.to_string())?
        };
        for id in 1..=count {
            self.register_owners(id).await?;
        }
        self.synced.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Bring Datanet `id`'s dedup index up to date with its approved contributions.
    async fn index(&self, id: u64) -> Result<Arc<tokio::sync::Mutex<IndexState>>, Response> {
        let slot = self
            .indexes
            .lock()
            .unwrap()
            .entry(id)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(IndexState {
                    index: DedupIndex::new(&self.cfg.near_dup),
                    indexed: BTreeSet::new(),
                }))
            })
            .clone();
        let approved: Vec<u64> = {
            let st = self.reader.state.state().map_err(|e| err(StatusCode::SERVICE_UNAVAILABLE, "state", e))?;
            let mut v = Vec::new();
            for cid in
                st.contributions_of(id).map_err(|e| err(StatusCode::SERVICE_UNAVAILABLE, "state", e.to_string()))?
            {
                if let Ok(Some(r)) = st.contribution(cid)
                    && r.status == APPROVED
                {
                    v.push(cid);
                }
            }
            v
        };
        {
            let mut g = slot.lock().await;
            for cid in approved {
                if g.indexed.contains(&cid) {
                    continue;
                }
                let (rec, rows) = self
                    .reader
                    .contribution_rows(cid)
                    .await
                    .map_err(|e| err(StatusCode::SERVICE_UNAVAILABLE, "rows_unavailable", e.to_string()))?;
                let report_blobs = self
                    .reader
                    .report(&rec)
                    .await
                    .ok()
                    .map(|r| [rec.attestation.findingsHash, r.rows_blob, r.content_hash]);
                if let Some(bs) = report_blobs {
                    let mut o = self.owners.lock().unwrap();
                    for b in bs {
                        o.insert(b, id);
                    }
                }
                for (i, row) in rows.iter().enumerate() {
                    g.index.insert(RowId { contribution: cid, index: i as u32 }, row);
                }
                g.indexed.insert(cid);
            }
        }
        Ok(slot)
    }

    async fn ingest(
        &self,
        id: u64,
        caller: Address,
        request: axum::extract::Request,
    ) -> Result<IngestResponse, Response> {
        let (parts, body) = request.into_parts();
        let attester = self.attester.as_ref().ok_or_else(|| {
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_attester",
                "this node has no ingest attester key (openledger keys node new attester)",
            )
        })?;
        let d = self.datanet(id)?;
        self.check_may_contribute(id, caller, &d)?;
        let max = d.limits.maxSubmissionBytes;
        let body = self.read_upload(id, caller, max, &parts.headers, body).await?;
        let form = Multipart::from_request(axum::extract::Request::from_parts(parts, body), &())
            .await
            .map_err(|e| err(StatusCode::BAD_REQUEST, "bad_multipart", e.body_text()))?;
        let (name, bytes) = file_field(form, id, max).await?;
        let kind =
            ingest::detect_kind(&name).map_err(|e| err(StatusCode::BAD_REQUEST, "unsupported_type", e.to_string()))?;
        let mut cfg = self.cfg.clone();
        cfg.max_file_bytes = max;
        let rows =
            ingest::parse(&bytes, kind, &cfg).map_err(|e| err(StatusCode::BAD_REQUEST, "unparsable", e.to_string()))?;
        let slot = self.index(id).await?;
        let analysis = {
            let g = slot.lock().await;
            ingest::analyze(&rows, &g.index, &cfg)
        };
        let upload = Upload { id, caller, name, bytes, rows, analysis };
        let (report, findings_blob) = self.store_findings(upload).await?;
        Ok(self.attest(attester, &d, report, findings_blob))
    }

    /// A frozen Datanet takes no contributions; an allow-list one only its owner's and members'.
    fn check_may_contribute(&self, id: u64, caller: Address, d: &DatanetRecord) -> Result<(), Response> {
        if d.flags & runtime::datanets::FLAG_FROZEN != 0 {
            return Err(err(StatusCode::CONFLICT, "datanet_frozen", format!("Datanet {id} is frozen by governance")));
        }
        if d.policy == POLICY_ALLOW_LIST && caller != d.owner {
            let st = self.reader.state.state().map_err(|e| err(StatusCode::SERVICE_UNAVAILABLE, "state", e))?;
            if !st.is_member(id, &caller).unwrap_or(false) {
                return Err(err(
                    StatusCode::FORBIDDEN,
                    "not_member",
                    format!("{caller} is not a member of allow-list Datanet {id}"),
                ));
            }
        }
        Ok(())
    }

    /// The whole request body of an upload of a file of at most `max` bytes
    /// (plus room for the multipart framing), taken from the caller's daily quota.
    async fn read_upload(
        &self,
        id: u64,
        caller: Address,
        max: u64,
        headers: &axum::http::HeaderMap,
        body: Body,
    ) -> Result<Body, Response> {
        let max_read = max + 64 * 1024;
        let announced = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        // Refuse an announced oversize body before reading any of it.
        if let Some(len) = announced
            && len > max_read
        {
            return Err(err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!("the upload is {len} bytes; Datanet {id} accepts files of at most {max} bytes"),
            ));
        }
        // Then take it from the contributor's daily quota on this node, still unread.
        let ticket = self.uploads.admit(caller, announced, max_read, now_secs()).map_err(quota_refused)?;
        // Read the whole upload first: a signed body larger than the server checks up
        // front has its hash checked only as its stream ends, and nothing may be
        // parsed, stored or attested from a body the caller did not sign.
        let read = httpapi::auth::read_body(body, ticket.read_limit as usize).await;
        match read {
            Ok(body) => {
                self.uploads.settle(caller, ticket, body.len() as u64);
                Ok(Body::from(body))
            }
            // Only a body without a length can outgrow what is left of the quota.
            Err(httpapi::auth::BodyReadError::TooLarge { .. }) if ticket.read_limit < max_read => {
                let left = ticket.read_limit;
                Err(quota_refused(QuotaRefusal::Bytes {
                    who: caller,
                    used: self.uploads.quota().daily_bytes - left,
                    upload: None,
                    limit: self.uploads.quota().daily_bytes,
                    reset_in: 86_400 - now_secs() % 86_400,
                }))
            }
            Err(httpapi::auth::BodyReadError::TooLarge { .. }) => Err(err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                format!("the upload is larger than Datanet {id}'s limit of {max} bytes per file"),
            )),
            Err(e) => Err(e.into_response()),
        }
    }

    /// Store the file and the rows, then the report naming them. Content addressing
    /// and atomic writes mean a crash leaves at most unreferenced complete blobs.
    /// Returns the report and its blob.
    async fn store_findings(&self, u: Upload) -> Result<(FindingsReport, B256), Response> {
        let Upload { id, caller, name, bytes, rows, analysis } = u;
        let content_hash = primitives::content_hash(&bytes);
        let store = &self.reader.blobs;
        let blob_err = |e: blobs::BlobError| err(StatusCode::SERVICE_UNAVAILABLE, "blob_store", e.to_string());
        store.put(bytes.clone().into()).await.map_err(blob_err)?;
        let rows_blob = store.put(crate::encode_rows(&rows).into()).await.map_err(blob_err)?;
        let report = FindingsReport {
            datanet_id: id,
            contributor: caller,
            file_name: name,
            content_hash,
            rows_blob,
            rows_root: analysis.rows_root,
            row_count: rows.len() as u32,
            byte_size: bytes.len() as u64,
            quality_bps: analysis.quality_bps,
            scorer_version: analysis.scorer_version,
            config_digest: analysis.config_digest,
            exact_duplicates: analysis.exact_duplicates,
            near_duplicates: analysis.near_duplicates,
            rows: analysis
                .rows
                .iter()
                .map(|f| ReportRow {
                    index: f.index,
                    leaf: f.leaf,
                    score_bps: f.score_bps,
                    reasons: f.reasons.clone(),
                    duplicate_of: f.duplicate_of.map(|(r, _)| ingest::describe_row(r)),
                    duplicate_kind: f.duplicate_of.map(|(_, k)| match k {
                        DupKind::Exact => "exact".into(),
                        DupKind::Near { .. } => "near".into(),
                    }),
                })
                .collect(),
        };
        let report_bytes = serde_json::to_vec(&report).expect("report serialises");
        let findings_blob = store.put(report_bytes.into()).await.map_err(blob_err)?;
        {
            let mut o = self.owners.lock().unwrap();
            for b in [findings_blob, rows_blob, content_hash] {
                o.insert(b, id);
            }
        }
        Ok((report, findings_blob))
    }

    /// The attester's signed attestation of `report`, and the transaction that submits it.
    fn attest(
        &self,
        attester: &keys::SecretKey,
        d: &DatanetRecord,
        report: FindingsReport,
        findings_blob: B256,
    ) -> IngestResponse {
        let now = now_secs();
        let attestation = ContributionAttestation {
            datanetId: report.datanet_id,
            contributor: report.contributor,
            contentHash: report.content_hash,
            rowsRoot: report.rows_root,
            rowCount: report.row_count,
            byteSize: report.byte_size,
            qualityBps: report.quality_bps,
            scorerVersion: report.scorer_version,
            exactDuplicates: report.exact_duplicates,
            nearDuplicates: report.near_duplicates,
            findingsHash: findings_blob,
            issuedAt: now,
        };
        let domain = Module::Datanets.eip712_domain(self.reader.state.chain_id());
        let sig = attester.sign_hash(&attestation.eip712_signing_hash(&domain));
        let signature = Bytes::from(sig.as_bytes().to_vec());
        let calldata =
            IDatanets::submitContributionCall { attestation: attestation.clone(), signature: signature.clone() }
                .abi_encode();
        IngestResponse {
            attestation: attestation_json(&attestation),
            attester: attester.address(),
            signature,
            to: Module::Datanets.address(),
            value: d.contributorBond.to_string(),
            calldata: calldata.into(),
            findings_blob,
            report,
        }
    }
}

/// An upload parsed and analysed, before anything is stored.
struct Upload {
    id: u64,
    caller: Address,
    name: String,
    bytes: Vec<u8>,
    rows: Vec<primitives::rows::Row>,
    analysis: ingest::Analysis,
}

/// The multipart field named "file": its file name (default `upload.txt`) and
/// bytes, refused past `max` bytes.
async fn file_field(mut form: Multipart, id: u64, max: u64) -> Result<(String, Vec<u8>), Response> {
    let mut file: Option<(String, Vec<u8>)> = None;
    while let Some(mut field) =
        form.next_field().await.map_err(|e| err(StatusCode::BAD_REQUEST, "bad_multipart", e.to_string()))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("upload.txt").to_string();
        let mut buf = Vec::new();
        while let Some(chunk) =
            field.chunk().await.map_err(|e| err(StatusCode::BAD_REQUEST, "bad_multipart", e.to_string()))?
        {
            if (buf.len() + chunk.len()) as u64 > max {
                return Err(err(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "file_too_large",
                    format!("{name} is larger than {max} bytes, the limit of Datanet {id}"),
                ));
            }
            buf.extend_from_slice(&chunk);
        }
        file = Some((name, buf));
    }
    file.ok_or_else(|| err(StatusCode::BAD_REQUEST, "no_file", "no multipart field named \"file\""))
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// 429 for an upload past the contributor's daily quota, `Retry-After` at the day's end.
fn quota_refused(r: QuotaRefusal) -> Response {
    let mut resp = httpapi::error_response(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", r.code(), r.to_string());
    resp.headers_mut().insert(header::RETRY_AFTER, axum::http::HeaderValue::from(r.reset_in()));
    resp
}

/// The fields of an attestation as JSON (numbers as JSON numbers, hashes as hex).
pub fn attestation_json(a: &ContributionAttestation) -> serde_json::Value {
    serde_json::json!({
        "datanetId": a.datanetId,
        "contributor": a.contributor,
        "contentHash": a.contentHash,
        "rowsRoot": a.rowsRoot,
        "rowCount": a.rowCount,
        "byteSize": a.byteSize,
        "qualityBps": a.qualityBps,
        "scorerVersion": a.scorerVersion,
        "exactDuplicates": a.exactDuplicates,
        "nearDuplicates": a.nearDuplicates,
        "findingsHash": a.findingsHash,
        "issuedAt": a.issuedAt,
    })
}

/// The Datanet part of the blob access policy: a contribution's file, rows and
/// findings report go to whoever may read its Datanet ([`DatanetService::reader_role`]).
/// Deny by default: a blob this service cannot place in a Datanet is refused (the
/// node's policy decides model artefacts, job outputs and attribution records).
pub struct DatanetBlobPolicy(pub Arc<DatanetService>);

impl DatanetBlobPolicy {
    /// `None` when the blob belongs to no Datanet this node knows; else whether `caller` may read it.
    pub fn decide(&self, hash: &B256, caller: Option<Address>) -> Result<Option<bool>, String> {
        let Some(id) = self.0.blob_datanet(hash) else { return Ok(None) };
        let d = {
            let st = self.0.reader.state.state()?;
            st.datanet(id).map_err(|e| e.to_string())?.ok_or("unknown Datanet")?
        };
        self.0.may_read(id, &d, caller, &hash.to_string()).map(Some)
    }
}

impl blobs::BlobAccessPolicy for DatanetBlobPolicy {
    fn allowed(&self, hash: &B256, caller: Option<Address>) -> Result<bool, String> {
        Ok(self.decide(hash, caller)?.unwrap_or(false))
    }
}

/// The Datanet routes of the node's HTTP server.
pub fn routes(svc: Arc<DatanetService>) -> Router {
    Router::new()
        .route("/v1/datanets/{id}/contributions", post(upload).layer(httpapi::auth::allow_streamed_body()))
        .route("/v1/datanets/{id}/versions/{v}/rows", get(version_rows))
        .route("/v1/node/attester", get(attester_info))
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(svc)
}

async fn upload(
    State(svc): State<Arc<DatanetService>>,
    Path(id): Path<u64>,
    httpapi::AuthedCaller(caller): httpapi::AuthedCaller,
    request: axum::extract::Request,
) -> Response {
    match svc.ingest(id, caller, request).await {
        Ok(r) => (StatusCode::OK, axum::Json(r)).into_response(),
        Err(resp) => resp,
    }
}

async fn version_rows(
    State(svc): State<Arc<DatanetService>>,
    Path((id, v)): Path<(u64, u64)>,
    httpapi::MaybeCaller(caller): httpapi::MaybeCaller,
) -> Response {
    let d = match svc.datanet(id) {
        Ok(d) => d,
        Err(r) => return r,
    };
    match svc.may_read(id, &d, caller, &format!("version {v} rows")) {
        Ok(true) => {}
        Ok(false) => {
            return httpapi::error_response(
                StatusCode::FORBIDDEN,
                "permission_error",
                "not_member",
                format!(
                    "the rows of allow-list Datanet {id} are for its members, owner and curators, the serving \
                     operators of live models that name it, and validators while a challenge is open{}",
                    if caller.is_none() { " (authenticate to prove who you are)" } else { "" }
                ),
            );
        }
        Err(e) => return err(StatusCode::SERVICE_UNAVAILABLE, "state", e),
    }
    let rows = match svc.reader.version_rows(id, v).await {
        Ok(r) => r,
        Err(e @ crate::ReaderError::UnknownVersion(..)) => {
            return err(StatusCode::NOT_FOUND, "unknown_version", e.to_string());
        }
        Err(e) => return err(StatusCode::SERVICE_UNAVAILABLE, "rows_unavailable", e.to_string()),
    };
    let mut out = String::new();
    for r in rows {
        let mut line = serde_json::json!({
            "contribution": r.id.contribution,
            "index": r.id.index,
            "contributor": r.contributor,
        });
        match r.row {
            primitives::rows::Row::Text { text } => line["text"] = text.into(),
            primitives::rows::Row::PromptCompletion { prompt, completion } => {
                line["prompt"] = prompt.into();
                line["completion"] = completion.into();
            }
        }
        out.push_str(&line.to_string());
        out.push('\n');
    }
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from(out))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn attester_info(State(svc): State<Arc<DatanetService>>) -> Response {
    axum::Json(serde_json::json!({ "attester": svc.attester() })).into_response()
}
