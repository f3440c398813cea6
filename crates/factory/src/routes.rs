//! `/v1/jobs`: submit (authenticated by address), list, show with progress,
//! the history of training and validation points, cancel (the owner only).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use httpapi::{ApiError, AuthedCaller};

use crate::queue::{JobQueue, JobRecord};
use crate::{FactoryError, JobSpec, Progress};

/// The job routes of the node's HTTP server.
pub fn routes(q: Arc<JobQueue>) -> Router {
    Router::new()
        .route("/v1/jobs", post(submit).get(list))
        .route("/v1/jobs/{id}", get(show))
        .route("/v1/jobs/{id}/history", get(history))
        .route("/v1/jobs/{id}/cancel", post(cancel))
        .with_state(q)
}

fn api(e: FactoryError) -> ApiError {
    match e {
        FactoryError::UnknownJob(_) => ApiError::not_found("unknown_job", e.to_string()),
        FactoryError::Forbidden(_) => ApiError::forbidden("not_owner", e.to_string()),
        FactoryError::NotMember(_) => ApiError::forbidden("not_member", e.to_string()),
        FactoryError::Spec(_) | FactoryError::Data(_) | FactoryError::BaseModel(_) | FactoryError::Ml(_) => {
            ApiError::bad_request("invalid_job", e.to_string())
        }
        FactoryError::UnknownBaseModel(_) => ApiError::bad_request("unknown_base_model", e.to_string()),
        FactoryError::Quota(_) => ApiError {
            status: axum::http::StatusCode::TOO_MANY_REQUESTS,
            kind: "rate_limit_error",
            code: "job_quota",
            message: e.to_string(),
        },
        FactoryError::Io(_) | FactoryError::Blobs(_) => ApiError::internal("factory", e.to_string()),
    }
}

fn view(r: &JobRecord, p: Option<&Progress>) -> serde_json::Value {
    let mut v = serde_json::to_value(r).expect("json");
    v["progress"] = serde_json::to_value(p).expect("json");
    v
}

fn answer(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(|e| httpapi::error_response(e.status, e.kind, e.code, e.message))
}

async fn submit(
    State(q): State<Arc<JobQueue>>,
    AuthedCaller(caller): AuthedCaller,
    body: axum::body::Bytes,
) -> Response {
    answer(
        async {
            let spec: JobSpec = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request("invalid_json", format!("the job spec does not parse: {e}")))?;
            let q2 = q.clone();
            let r = tokio::task::spawn_blocking(move || q2.submit(caller, spec))
                .await
                .map_err(|e| ApiError::internal("factory", e.to_string()))?
                .map_err(api)?;
            Ok((StatusCode::CREATED, Json(view(&r, None))).into_response())
        }
        .await,
    )
}

async fn list(State(q): State<Arc<JobQueue>>) -> Response {
    let jobs: Vec<serde_json::Value> = q.list().iter().map(|r| view(r, None)).collect();
    Json(serde_json::json!({ "object": "list", "data": jobs })).into_response()
}

async fn show(State(q): State<Arc<JobQueue>>, Path(id): Path<u64>) -> Response {
    match q.get(id) {
        Some((r, p)) => Json(view(&r, p.as_ref())).into_response(),
        None => answer(Err(api(FactoryError::UnknownJob(id)))),
    }
}

async fn cancel(State(q): State<Arc<JobQueue>>, Path(id): Path<u64>, AuthedCaller(caller): AuthedCaller) -> Response {
    answer(q.cancel(id, caller).map(|r| Json(view(&r, None)).into_response()).map_err(api))
}

/// Most points one history answer holds.
pub const MAX_HISTORY_POINTS: usize = 1000;

/// `GET /v1/jobs/{id}/history?since=STEP&limit=N`: the job's training points
/// (step, loss, learning rate) and validation points (step, validation loss)
/// after `since` (default 0), at most `limit` (default and cap
/// [`MAX_HISTORY_POINTS`]); `next` is the `since` of the following page, or
/// null when there is none yet.
async fn history(
    State(q): State<Arc<JobQueue>>,
    Path(id): Path<u64>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    answer(
        async {
            let (mut since, mut limit) = (0u64, MAX_HISTORY_POINTS);
            for pair in query.as_deref().unwrap_or("").split('&').filter(|p| !p.is_empty()) {
                let bad =
                    || ApiError::bad_request("invalid_query", format!("{pair:?}: expected since=STEP or limit=N"));
                match pair.split_once('=') {
                    Some(("since", v)) if v.len() <= 20 => since = v.parse().map_err(|_| bad())?,
                    Some(("limit", v)) if v.len() <= 20 => {
                        limit = v.parse::<usize>().map_err(|_| bad())?.clamp(1, MAX_HISTORY_POINTS)
                    }
                    _ => return Err(bad()),
                }
            }
            let (r, _) = q.get(id).ok_or_else(|| api(FactoryError::UnknownJob(id)))?;
            let dir = q.dir(id);
            let points = tokio::task::spawn_blocking(move || crate::job::read_log(&dir, since, limit))
                .await
                .map_err(|e| ApiError::internal("factory", e.to_string()))?
                .map_err(api)?;
            let next = if points.len() == limit { points.last().map(|p| p.step) } else { None };
            let (train, validation): (Vec<_>, Vec<_>) = points.into_iter().partition(|p| p.validation_loss.is_none());
            Ok(Json(serde_json::json!({
                "job": id,
                "status": r.status,
                "train": train,
                "validation": validation,
                "next": next,
            }))
            .into_response())
        }
        .await,
    )
}
