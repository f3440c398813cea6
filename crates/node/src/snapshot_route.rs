//! `GET /v1/snapshot?height=N`: the state at a block, as `chain::import_snapshot`
//! takes it, for a node joining the network without re-executing from
//! genesis (`openledger testnet --join --snapshot-from`).
//!
//! The file is streamed as it is written (memory stays bounded whatever the
//! state's size). Exports are costly, so one runs at a time: another request
//! meanwhile gets 503 `snapshot_busy`. A height above the head or older than
//! the kept history is 404. The joiner trusts nothing in the file: import
//! checks the state against the header's root, and the joiner checks the header
//! against the block's commit certificate.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chain::Chain;
use httpapi::ApiError;
use tokio::sync::{Semaphore, mpsc};

#[derive(Clone)]
struct SnapshotRoutes {
    chain: Arc<Chain>,
    busy: Arc<Semaphore>,
}

/// `height=N` of the query string, if given (nothing else is accepted).
fn height_param(query: Option<&str>) -> Result<Option<u64>, ApiError> {
    let q = query.unwrap_or("");
    if q.is_empty() {
        return Ok(None);
    }
    match q.split_once('=') {
        Some(("height", v)) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::bad_request("bad_height", format!("height {v:?} is not a block number"))),
        _ => Err(ApiError::bad_request("bad_query", format!("unknown query {q:?}; only height=N"))),
    }
}

/// The snapshot route, for the node's HTTP server.
pub fn routes(chain: Arc<Chain>) -> Router {
    Router::new()
        .route("/v1/snapshot", get(get_snapshot))
        .with_state(SnapshotRoutes { chain, busy: Arc::new(Semaphore::new(1)) })
}

/// Chunks handed to the response body.
const CHUNK: usize = 64 * 1024;

/// A `Write` that sends what is written to the response in chunks.
struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<bytes::Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = bytes::Bytes::from(std::mem::take(&mut self.buf));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| std::io::Error::other("the client went away"))
    }
}

async fn get_snapshot(State(r): State<SnapshotRoutes>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let requested = height_param(query.as_deref())?;
    let Ok(permit) = r.busy.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "snapshot_busy",
            "another snapshot is being exported; retry shortly",
        ));
    };
    let head = r.chain.head().number();
    let height = requested.unwrap_or(head);
    let oldest =
        r.chain.snapshot().map_err(|e| ApiError::internal("store", e.to_string()))?.oldest_state().unwrap_or(0);
    if height > head || height < oldest {
        return Err(ApiError::not_found(
            "no_such_state",
            format!("the state at block {height} is not kept here (blocks {oldest}..={head} are)"),
        ));
    }
    let (tx, mut rx) = mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    let chain = r.chain.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut w = ChannelWriter { tx: tx.clone(), buf: Vec::new() };
        let done = chain
            .export_snapshot(height, &mut w)
            .map_err(|e| e.to_string())
            .and_then(|_| w.flush().map_err(|e| e.to_string()));
        if let Err(e) = done {
            tracing::warn!(height, "snapshot export failed: {e}");
            // The body ends in an error: the client sees a cut transfer, never a short file taken as whole.
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream"), (header::CACHE_CONTROL, "no-store")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt;

    /// A chain whose state is larger than the route's buffered chunks.
    fn big_chain(dir: &std::path::Path) -> Arc<Chain> {
        let mut genesis = crate::dev_genesis();
        for i in 0..16_000u64 {
            let mut a = [0u8; 20];
            a[..8].copy_from_slice(&(i + 1).to_be_bytes());
            genesis.alloc.push((primitives::Address::from(a), primitives::Amount::open(1)));
        }
        let cfg = chain::ChainConfig {
            data_dir: dir.to_path_buf(),
            genesis,
            block_time: chain::BlockTime::Instant,
            history: 100,
            pool: chain::PoolConfig::default(),
            max_txs_per_block: 100,
        };
        Chain::open(cfg).unwrap()
    }

    fn get(router: &Router) -> impl std::future::Future<Output = Response> {
        let req = Request::get("/v1/snapshot").body(Body::empty()).unwrap();
        let r = router.clone();
        async move { r.oneshot(req).await.unwrap() }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_second_export_while_one_runs_is_refused_until_the_first_ends() {
        let dir = tempfile::tempdir().unwrap();
        let chain = big_chain(dir.path());
        let router = routes(chain.clone());
        // The first export fills its buffer and waits for a reader that never comes.
        let first = get(&router).await;
        assert_eq!(first.status(), StatusCode::OK);
        let busy = get(&router).await;
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(busy.into_body(), 1 << 16).await.unwrap();
        assert!(String::from_utf8_lossy(&body).contains("snapshot_busy"));
        // The first client goes away: its export stops and frees the route.
        drop(first);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let again = get(&router).await;
            if again.status() == StatusCode::OK {
                let bytes = axum::body::to_bytes(again.into_body(), 1 << 30).await.unwrap();
                assert!(bytes.len() > 4 * CHUNK, "the whole state came: {} bytes", bytes.len());
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the route stayed busy after its client left");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        chain.stop();
    }
}
