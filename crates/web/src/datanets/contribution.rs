//! One contribution (`/datanets/{id}/contributions/{cid}`): its on-chain
//! record, what its attester signed (hashes, size, scores, duplicates), then
//! its bond and its curation.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::html;
use runtime::datanets::{self as dn, ContributionRecord};

use super::{datanet, href, quality, status};
use crate::Web;
use crate::explorer::{account_link, amount, block_link, summary};
use crate::page::{Page, Section, WebError, render};
use crate::query;
use crate::view::ChainView;

pub async fn handler(
    State(web): State<Web>,
    ids: Result<Path<(String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        let Path((id, cid)) = ids.map_err(|e| WebError::bad(format!("bad path: {e}")))?;
        page(v, query::datanet_id(&id)?, query::number(&cid, "contribution id")?)
    })
    .await
}

/// Why a curator decided as it did, in words (`reject` and `flag` number their reasons differently).
fn reason(c: &ContributionRecord) -> Option<&'static str> {
    match c.status {
        dn::REJECTED => Some(match c.reason {
            1 => "spam",
            2 => "duplicate",
            3 => "low quality",
            4 => "off topic",
            5 => "licence",
            _ => "other",
        }),
        dn::FLAGGED => Some(match c.reason {
            1 => "duplicated",
            2 => "adversarial",
            _ => "otherwise unfit",
        }),
        _ => None,
    }
}

fn page(v: &ChainView, id: u64, cid: u64) -> Result<Page, WebError> {
    let d = datanet(v, id)?;
    let c = super::contribution_of(v, id, cid)?;
    let a = &c.attestation;
    let hash = |h: &primitives::B256| html! { span.mono.wrap { (h.to_string()) } };
    let decided = c.status != dn::PENDING;
    let body = html! {
        p { "Contribution #" (cid) " to " a href=(href(id)) { "d" (id) " " (d.name) } ", as the datanets contract records it." }
        @if c.status == dn::APPROVED {
            p { a href=(format!("{}/rows", crate::datanets::contribution_href(id, cid))) { "Its rows" } " (the owner may tombstone them)." }
        } @else if c.status == dn::PENDING {
            p { a href=(format!("{}/curate", href(id))) { "Curation queue" } " (the owner and curators decide)." }
        }
        h2 { "Curation" }
        (summary(&[
            ("Status", status(c.status)),
            ("Reason", html! { @match reason(&c) { Some(r) => (r), None => span.muted { "—" } } }),
            ("Note", html! { @if c.note.is_empty() { span.muted { "—" } } @else { span.text { (c.note) } } }),
            ("Bond", amount(c.bond)),
            ("Submitted", block_link(c.submittedAt)),
            ("Decided", if decided { block_link(c.decidedAt) } else { html! { span.muted { "not yet" } } }),
            ("In version", if c.version > 0 { html! { a href=(format!("{}#versions", href(id))) { "v" (c.version) } } } else { html! { span.muted { "none" } } }),
            ("Rows tombstoned", html! { (c.tombstoned) }),
        ]))
        h2 { "What the attester signed" }
        (summary(&[
            ("Contributor", account_link(&a.contributor)),
            ("Attester", account_link(&c.attester)),
            ("Rows", html! { (a.rowCount) }),
            ("Size", html! { (a.byteSize) " bytes" }),
            ("Quality", html! { (quality(a.qualityBps)) " (scorer v" (a.scorerVersion) ")" }),
            ("Exact duplicates", html! { (a.exactDuplicates) }),
            ("Near duplicates", html! { (a.nearDuplicates) }),
            ("Content hash", hash(&a.contentHash)),
            ("Rows Merkle root", hash(&a.rowsRoot)),
            ("Findings hash", hash(&a.findingsHash)),
            ("Attested at", html! { (crate::format::utc(a.issuedAt)) }),
        ]))
    };
    Ok(Page::new(format!("Contribution #{cid} to d{id}"), Section::Datanets, body))
}
