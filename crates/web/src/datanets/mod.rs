//! The Datanets section: every Datanet (`/datanets?before=N&limit=L`, newest
//! first), one Datanet (`/datanets/{id}`: description, versions, curators and
//! its contributions a page at a time) and one contribution
//! (`/datanets/{id}/contributions/{cid}`: its on-chain record), and the
//! write pages ([`write`]: create, upload, curate; the user's wallet signs).
//!
//! Everything is read at the head through the datanets module's typed reads
//! (`runtime::datanets::DatanetsRead`), a bounded number of records a page.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use runtime::datanets::{self as dn, DatanetRecord, DatanetsRead};

use crate::Web;
use crate::explorer::{NewestFirst, account_link, path_param};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

pub mod contribution;
pub mod datanet;
pub mod write;

/// Datanets (or contributions, or versions) on one page, by default and at most.
pub const PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;

/// The Datanets section's routes.
pub fn routes() -> Router<Web> {
    Router::new()
        .route("/datanets", get(list_handler))
        .route(
            "/datanets/new",
            get(write::new_handler).post(write::review_handler).layer(DefaultBodyLimit::max(query::MAX_FORM)),
        )
        .route("/datanets/{id}", get(datanet::handler))
        .route("/datanets/{id}/upload", get(write::upload_handler))
        .route("/datanets/{id}/curate", get(write::curate_handler))
        .route("/datanets/{id}/contributions/{cid}", get(contribution::handler))
        .route("/datanets/{id}/contributions/{cid}/rows", get(write::rows_handler))
}

pub fn href(id: u64) -> String {
    format!("/datanets/{id}")
}

pub fn contribution_href(id: u64, cid: u64) -> String {
    format!("/datanets/{id}/contributions/{cid}")
}

/// A Datanet's record, or a 404.
pub fn datanet(v: &ChainView, id: u64) -> Result<DatanetRecord, WebError> {
    v.state()
        .datanet(id)
        .map_err(WebError::unavailable)?
        .ok_or_else(|| WebError::not_found(format!("there is no Datanet {id} on chain")))
}

/// Contribution `cid` of Datanet `id` (404 when it is another Datanet's).
pub fn contribution_of(v: &ChainView, id: u64, cid: u64) -> Result<dn::ContributionRecord, WebError> {
    v.state()
        .contribution(cid)
        .map_err(WebError::unavailable)?
        .filter(|c| c.attestation.datanetId == id)
        .ok_or_else(|| WebError::not_found(format!("Datanet d{id} has no contribution {cid}")))
}

/// The columns every list of a Datanet's contributions shows: id, status,
/// contributor, rows, quality, duplicates, bond (the headings are [`CONTRIBUTION_COLUMNS`]).
pub fn contribution_cells(id: u64, cid: u64, c: &dn::ContributionRecord) -> Markup {
    html! {
        td { a href=(contribution_href(id, cid)) { "#" (cid) } }
        td { (status(c.status)) }
        td { (account_link(&c.attestation.contributor)) }
        td.num { (c.attestation.rowCount) }
        td.num { (quality(c.attestation.qualityBps)) }
        td.num { (c.attestation.exactDuplicates) " / " (c.attestation.nearDuplicates) }
        td.num { @if c.bond == primitives::U256::ZERO { "none" } @else { (crate::explorer::amount(c.bond)) } }
    }
}

/// The headings of [`contribution_cells`].
pub const CONTRIBUTION_COLUMNS: [&str; 7] =
    ["Id", "Status", "Contributor", "Rows", "Quality", "Duplicates (exact / near)", "Bond"];

/// What a contribution's status says, in words and a symbol (never colour alone).
pub fn status(s: u8) -> Markup {
    match s {
        dn::PENDING => html! { span { "… pending" } },
        dn::APPROVED => html! { span.ok { "✓ approved" } },
        dn::REJECTED => html! { span.failed { "✗ rejected" } },
        dn::WITHDRAWN => html! { span.muted { "↩ withdrawn" } },
        dn::FLAGGED => html! { span.failed { "⚑ flagged" } },
        other => html! { span { "unknown (" (other) ")" } },
    }
}

/// A quality score in basis points as a percentage, exactly (`87.50 %`).
pub fn quality(bps: u16) -> String {
    crate::format::bps(u64::from(bps))
}

async fn list_handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    render(web, move |v| list(v, q.as_deref())).await
}

/// Datanets newest first: ids `before - 1` down, `limit` of them.
fn list(v: &ChainView, q: Option<&str>) -> Result<Page, WebError> {
    let params = query::params(q, &["before", "limit"])?;
    let limit = query::limit(&params, PAGE, MAX_PAGE)?;
    let count = v.state().datanet_count().map_err(WebError::unavailable)?;
    let before = query::optional_number(&params, "before", "Datanet id")?;
    let window = NewestFirst::new(count, before, limit);
    let mut rows = Vec::new();
    for id in window.ids() {
        if let Some(d) = v.state().datanet(id).map_err(WebError::unavailable)? {
            let latest = v.state().version(id, d.versionCount).map_err(WebError::unavailable)?;
            let contributions = v.state().contribution_count(id).map_err(WebError::unavailable)?;
            rows.push((id, d, latest.map_or(0, |l| l.liveRows), contributions));
        }
    }
    let body = html! {
        p { (count) " Datanets on chain. A Datanet is a curated, versioned set of rows that models train on." }
        p { a href="/datanets/new" { "Create a Datanet" } " (your wallet signs)." }
        @if rows.is_empty() { p.muted { "No Datanet here." } }
        @else {
            (table(
                "Datanets, newest first",
                &["Id", "Name", "Owner", "Live rows", "Versions", "Contributions", "Write"],
                html! { @for (id, d, rows, contributions) in &rows { tr {
                    td { a href=(href(*id)) { "d" (id) } }
                    td { a href=(href(*id)) { (d.name) } }
                    td { (account_link(&d.owner)) }
                    td.num { (rows) }
                    td.num { (d.versionCount) }
                    td.num { (contributions) }
                    td { a href=(format!("{}/upload", href(*id))) { "upload" } " · " a href=(format!("{}/curate", href(*id))) { "curate" } }
                } } },
            ))
        }
        (window.nav(&format!("/datanets?limit={limit}&"), "before", "Datanets"))
    };
    Ok(Page::new("Datanets", Section::Datanets, body))
}

/// A Datanet id from the path (`3` or `d3`).
pub fn id_param(
    p: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<u64, WebError> {
    query::datanet_id(&path_param(p)?)
}
