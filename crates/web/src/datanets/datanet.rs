//! One Datanet (`/datanets/{id}?offset=O&limit=L&versions_before=V`): its
//! description as the owner wrote it (escaped, in paragraphs), its terms, the
//! newest versions with their Merkle roots and row counts, its curators, and
//! a page of its contributions with status, contributor, scores and bond.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use runtime::datanets::{DatanetRecord, DatanetsRead};

use super::{MAX_PAGE, PAGE, datanet, href, id_param};
use crate::Web;
use crate::explorer::{NewestFirst, account_link, amount, block_link, pager, paragraphs, summary};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Versions one page shows, newest first.
pub const VERSIONS: u64 = 20;
/// Curators one page lists (the module bounds the list; this bounds the page).
const MAX_CURATORS: usize = 100;

pub async fn handler(
    State(web): State<Web>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    render(web, move |v| page(v, id_param(id)?, q.as_deref())).await
}

fn page(v: &ChainView, id: u64, q: Option<&str>) -> Result<Page, WebError> {
    let params = query::params(q, &["offset", "limit", "versions_before"])?;
    let limit = query::limit(&params, PAGE, MAX_PAGE)?;
    let offset = query::optional_number(&params, "offset", "offset")?.unwrap_or(0);
    let d = datanet(v, id)?;
    let versions_before = query::optional_number(&params, "versions_before", "version")?;
    let body = html! {
        @if !d.summary.is_empty() { p.note { (d.summary) } }
        nav aria-label="Write" { ul.inline {
            li { a href=(format!("{}/upload", href(id))) { "Upload a file" } }
            li { a href=(format!("{}/curate", href(id))) { "Curation queue" } }
        } }
        (terms(&d))
        h2 { "Description" }
        (paragraphs(&d.description))
        h2 #versions { "Versions" }
        (versions(v, id, &d, versions_before)?)
        h2 { "Curators" }
        (curators(v, id)?)
        h2 #contributions { "Contributions" }
        (contributions(v, id, offset, limit)?)
        p.muted { "The record as the datanets contract returns it: " a href=(crate::explorer::datanet_href(id)) { "d" (id) " in the Explorer" } "." }
    };
    Ok(Page::new(format!("Datanet d{id}: {}", d.name), Section::Datanets, body))
}

fn terms(d: &DatanetRecord) -> Markup {
    let policy = if d.policy == 1 { "allow-list (members only)" } else { "open to anyone" };
    let kind = match d.dataType {
        0 => "text",
        1 => "image",
        2 => "audio",
        _ => "unknown",
    };
    summary(&[
        ("Owner", account_link(&d.owner)),
        ("Data", html! { (kind) }),
        ("Licence", html! { span.text { (d.licence) } }),
        ("Contributions", html! { (policy) }),
        ("Contributor bond", amount(d.contributorBond)),
        (
            "State",
            if d.flags & 1 == 1 {
                html! { span.failed { "❄ frozen" } " (no submissions or approvals)" }
            } else {
                html! { span.ok { "✓ open" } }
            },
        ),
        (
            "Tags",
            html! { @if d.tags.is_empty() { span.muted { "none" } } @else { ul.inline { @for t in d.tags.iter().take(32) { li.tag { (t) } } } } },
        ),
        ("Created", block_link(d.createdAt)),
    ])
}

/// The newest versions below `before` (all are immutable; the list pages back).
fn versions(v: &ChainView, id: u64, d: &DatanetRecord, before: Option<u64>) -> Result<Markup, WebError> {
    let window = NewestFirst::new(d.versionCount, before, VERSIONS);
    let mut rows = Vec::new();
    for n in window.ids() {
        if let Some(ver) = v.state().version(id, n).map_err(WebError::unavailable)? {
            rows.push((n, ver));
        }
    }
    Ok(html! {
        @if rows.is_empty() { p.muted { "No version yet: a version is made when a curator approves a contribution." } }
        @else {
            (table(
                "Versions, newest first",
                &["Version", "Merkle root", "Rows", "Live rows", "Contributions", "Block", "Training"],
                html! { @for (n, ver) in &rows { tr {
                    td { "v" (n) }
                    td.mono title=(ver.root.to_string()) { (crate::format::short(&ver.root.to_string())) }
                    td.num { (ver.rowCount) }
                    td.num { (ver.liveRows) }
                    td.num { (ver.contributions) }
                    td { (block_link(ver.createdAt)) }
                    td { @if ver.closed { "closed (rows removed since)" } @else { "open" } }
                } } },
            ))
            (window.nav(&format!("{}?", href(id)), "versions_before", "versions"))
        }
    })
}

fn curators(v: &ChainView, id: u64) -> Result<Markup, WebError> {
    let list = v.state().curators(id).map_err(WebError::unavailable)?;
    Ok(html! {
        @if list.is_empty() { p.muted { "No curator: only the owner decides." } }
        @else { ul { @for c in list.iter().take(MAX_CURATORS) { li { (account_link(c)) } } } }
    })
}

fn contributions(v: &ChainView, id: u64, offset: u64, limit: u64) -> Result<Markup, WebError> {
    let total = v.state().contribution_count(id).map_err(WebError::unavailable)?;
    let ids = v.state().contributions_page(id, offset, limit).map_err(WebError::unavailable)?;
    let mut rows = Vec::new();
    for cid in ids {
        if let Some(c) = v.state().contribution(cid).map_err(WebError::unavailable)? {
            rows.push((cid, c));
        }
    }
    Ok(html! {
        @if rows.is_empty() { p.muted { @if total == 0 { "No contribution yet." } @else { "No contribution on this page." } } }
        @else {
            (table(
                "Contributions in submission order",
                &super::CONTRIBUTION_COLUMNS,
                html! { @for (cid, c) in &rows { tr { (super::contribution_cells(id, *cid, c)) } } },
            ))
        }
        (pager(&href(id), "", "contributions", offset, limit, total))
    })
}
