//! The search box (`GET /explorer/search?q=...`): a block number or hash, a
//! transaction hash, an address, a model id (`m12`) or a Datanet id (`d3`)
//! leads (303 See Other) to its page; anything else is a 400 saying what the
//! box understands, and a well-formed value nothing matches is a 404.

use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{account_href, block_href, datanet_href, model_href, tx_href};
use crate::Web;
use crate::page::{WebError, render};
use crate::query;
use crate::view::ChainView;

pub async fn handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    render(web, move |v| {
        let params = query::params(q.as_deref(), &["q"])?;
        let target = target(v, query::get(&params, "q").unwrap_or(""))?;
        Ok((StatusCode::SEE_OTHER, [(header::LOCATION, target)]).into_response())
    })
    .await
}

/// Where the search text `q` leads.
pub fn target(v: &ChainView, q: &str) -> Result<String, WebError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(WebError::bad("type a block number or hash, a transaction hash, an address, m<id> or d<id>"));
    }
    if q.bytes().all(|b| b.is_ascii_digit()) {
        let n = query::number(q, "block number")?;
        return match v.header(n)? {
            Some(_) => Ok(block_href(n)),
            None => Err(WebError::not_found(format!("no block {n} yet (the head is block {})", v.head().number))),
        };
    }
    let lower = q.to_ascii_lowercase();
    if let Some(id) = lower.strip_prefix('m').filter(|r| r.bytes().all(|b| b.is_ascii_digit())) {
        return Ok(model_href(query::number(id, "model id")?));
    }
    if let Some(id) = lower.strip_prefix('d').filter(|r| r.bytes().all(|b| b.is_ascii_digit())) {
        return Ok(datanet_href(query::number(id, "Datanet id")?));
    }
    match q.len() {
        42 => Ok(account_href(&query::address(q)?)),
        66 => {
            let h = query::hash(q)?;
            if v.transaction(&h)?.is_some() || v.pending(&h).is_some() {
                Ok(tx_href(&h))
            } else if let Some(n) = v.block_number(&h)? {
                Ok(block_href(n))
            } else {
                Err(WebError::not_found(format!("no transaction or block with hash {h}")))
            }
        }
        _ => Err(WebError::bad(format!(
            "{:?} is not a block number, a 0x hash (66 characters), a 0x address (42 characters), m<id> or d<id>",
            query::truncate(q)
        ))),
    }
}
