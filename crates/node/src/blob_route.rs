//! `GET /v1/blobs/{hash}`: a blob's bytes to whoever the access policy allows.
//! The node serves the route; the store (`blobs::BlobStore`) and the access
//! decision (`blobs::BlobAccessPolicy`, the node's `access::NodeBlobPolicy`)
//! know nothing of HTTP.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use blobs::{BlobAccessPolicy, BlobError, BlobStore, parse_hash};
use httpapi::{ApiError, MaybeCaller};
use primitives::Address;
use primitives::B256;

#[derive(Clone)]
struct BlobRoutes {
    store: Arc<BlobStore>,
    policy: Arc<dyn BlobAccessPolicy>,
}

/// The blob routes, for the node's HTTP server:
///
/// `GET /v1/blobs/{hash}` (`hash`: 64 hex digits, `0x` optional) answers 200 with the
/// bytes (`application/octet-stream`, `ETag: "<0x hash>"`, `Cache-Control: …,
/// immutable`; `public` when anonymous callers may read it, `private` otherwise),
/// 304 for a matching `If-None-Match`, 400 for a malformed hash, 404 both for an
/// unknown blob and for one the policy refuses the caller (the same body, so a
/// caller learns nothing of blobs it may not read, not even that they exist),
/// 500 for a corrupt one. `HEAD` works too. The caller comes from the
/// signed-request or API-key headers (optional).
pub fn routes(store: Arc<BlobStore>, policy: Arc<dyn BlobAccessPolicy>) -> Router {
    Router::new().route("/v1/blobs/{hash}", get(get_blob)).with_state(BlobRoutes { store, policy })
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').map(str::trim).any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t).eq_ignore_ascii_case(etag))
    })
}

/// The one answer for a blob that is missing or that `caller` may not read.
fn not_readable(hash: &B256, caller: Option<Address>) -> ApiError {
    let who = match caller {
        Some(a) => format!("readable by {a}"),
        None => "public (authenticate to read a blob you have access to)".to_owned(),
    };
    ApiError::not_found("blob_not_found", format!("no blob {hash} here that is {who}"))
}

fn store_error(e: BlobError, caller: Option<Address>) -> ApiError {
    match e {
        BlobError::NotFound(hash) => not_readable(&hash, caller),
        e @ BlobError::Corrupt { .. } => ApiError::internal("blob_corrupt", e.to_string()),
        e => {
            tracing::error!(error = %e, "blob store failure");
            ApiError::internal("blob_store_error", e.to_string())
        }
    }
}

async fn get_blob(
    State(st): State<BlobRoutes>,
    Path(raw): Path<String>,
    MaybeCaller(caller): MaybeCaller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let hash = parse_hash(&raw).ok_or_else(|| {
        ApiError::bad_request("malformed_hash", format!("{raw:?} is not a blob hash (64 hex digits, 0x optional)"))
    })?;
    // The policy first, so that a refused caller learns nothing of the blob.
    let allowed = st.policy.allowed(&hash, caller).map_err(|e| ApiError::internal("policy_error", e))?;
    if !allowed {
        return Err(not_readable(&hash, caller));
    }
    let public = caller.is_none() || st.policy.allowed(&hash, None) == Ok(true);
    let cache = if public { "public, max-age=31536000, immutable" } else { "private, max-age=31536000, immutable" };
    let etag = format!("\"{hash}\"");

    if etag_matches(&headers, &etag) {
        if !st.store.has(&hash).await.map_err(|e| store_error(e, caller))? {
            return Err(not_readable(&hash, caller));
        }
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag), (header::CACHE_CONTROL, cache.to_owned())])
            .into_response());
    }
    let bytes = st.store.get_local(&hash).await.map_err(|e| store_error(e, caller))?;
    let headers = [
        (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
        (header::ETAG, etag),
        (header::CACHE_CONTROL, cache.to_owned()),
    ];
    Ok((headers, bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, "\"a\", W/\"0xb\"".parse().unwrap());
        assert!(etag_matches(&h, "\"0xb\""));
        assert!(etag_matches(&h, "\"a\""));
        assert!(!etag_matches(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, "*".parse().unwrap());
        assert!(etag_matches(&h, "\"c\""));
    }
}
