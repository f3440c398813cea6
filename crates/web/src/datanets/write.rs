//! The Datanets' write pages. The server encodes each call from the chain's
//! own records and the user's wallet signs it ([`crate::wallet`]); the chain
//! decides, as it does for the CLI.
//!
//! - `/datanets/new`: a form; posting it (`POST /datanets/new`) gives a review
//!   of what will be sent and the `#send-tx` button with `createDatanet`'s
//!   calldata; once mined, `#tx-result` links to the new Datanet.
//! - `/datanets/{id}/upload`: a file is checked by the node's ingest service
//!   (a signed request from the wallet, as `openledger datanet contribute`
//!   sends), its per-row findings shown in `#upload-findings`, then
//!   `#upload-submit` sends the attested `submitContribution` with its bond.
//! - `/datanets/{id}/contributions/{cid}/rows?offset=O&reason=R`: an
//!   approved contribution's rows, each live one with a tombstone button (the
//!   row's leaf and Merkle proof encoded by the server from the rows the node
//!   holds, checked against the on-chain rows root).
//! - `/datanets/{id}/curate?offset=O&reject=R&flag=F&note=N`: the pending
//!   contributions with approve and reject buttons, the approved ones with a
//!   flag button (the chain flags only approved ones), the flagged ones
//!   (rejecting and flagging with the reasons and note chosen above them).

use alloy_sol_types::{SolCall, SolEvent};
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use primitives::abi::{DatanetLimits, IDatanets};
use primitives::system::Module;
use primitives::{Address, Amount, B256};
use runtime::datanets::{self as dn, DatanetsRead};

use super::{contribution_href, datanet, href, id_param, status};
use crate::Web;
use crate::explorer::{account_link, amount, summary};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;
use crate::wallet::{self, TxButton, Writes, tx_button};

/// One row of a contribution as the node holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowView {
    /// The row's Merkle leaf (before any tombstone).
    pub leaf: B256,
    /// Its text, when anyone may read the Datanet's rows (`None` on an allow-list Datanet).
    pub text: Option<String>,
}

/// A boxed future, so the node can read blobs asynchronously behind a trait object.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The rows of a contribution, from the node's blob store: implemented by the
/// node over its Datanet reader; the web app holds no blob of its own.
pub trait ContributionRows: Send + Sync + 'static {
    /// Every row of contribution `cid`, in order, checked against its on-chain rows root.
    fn rows(&self, cid: u64) -> BoxFuture<'_, Result<Vec<RowView>, String>>;
}

/// Rows one tombstone page lists.
pub const ROWS_PAGE: u64 = 50;
/// The characters of a row's text shown.
const ROW_TEXT: usize = 160;

/// Contributions the curation queue looks at on one page (it shows the pending and flagged ones).
pub const CURATE_SCAN: u64 = 200;
/// Tags and curators a new Datanet may name here (the chain bounds them too).
const MAX_LIST: usize = 32;

pub async fn new_handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    let writes = web.writes.clone();
    render(web, move |_| {
        query::params(q.as_deref(), &[])?;
        Ok(new_form(&writes))
    })
    .await
}

pub async fn review_handler(State(web): State<Web>, body: Bytes) -> Response {
    let writes = web.writes.clone();
    render(web, move |_| review(&writes, &body)).await
}

pub async fn upload_handler(
    State(web): State<Web>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let writes = web.writes.clone();
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        upload(v, &writes, id_param(id)?)
    })
    .await
}

pub async fn curate_handler(
    State(web): State<Web>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let writes = web.writes.clone();
    render(web, move |v| curate(v, &writes, id_param(id)?, q.as_deref())).await
}

fn field(label: &str, id: &str, input: Markup, hint: Option<&str>) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            (input)
            @if let Some(h) = hint { small.muted id=(format!("{id}-hint")) { (h) } }
        }
    }
}

fn new_form(writes: &Writes) -> Page {
    let body = html! {
        p { "A Datanet is a curated, versioned set of rows. Fill in its terms; the next page shows what your wallet will sign." }
        form.write method="post" action="/datanets/new" {
            (field("Name", "dn-name", html! { input #dn-name name="name" required maxlength="64"; }, None))
            (field("Summary", "dn-summary", html! { input #dn-summary name="summary" maxlength="200"; }, Some("One line.")))
            (field("Description", "dn-description", html! { textarea #dn-description name="description" rows="5" maxlength=(query::MAX_FORM_VALUE) {} }, Some("Plain text; blank lines separate paragraphs.")))
            (field("Tags", "dn-tags", html! { input #dn-tags name="tags" aria-describedby="dn-tags-hint"; }, Some("Comma-separated, such as: law, french.")))
            (field("Licence", "dn-licence", html! { input #dn-licence name="licence" value="CC-BY-4.0" required aria-describedby="dn-licence-hint"; }, Some("An SPDX identifier.")))
            div.field {
                label for="dn-policy" { "Who may contribute" }
                select #dn-policy name="policy" {
                    option value="open" selected { "Anyone (open)" }
                    option value="allow-list" { "Members only (allow-list)" }
                }
            }
            (field("Contributor bond (OPEN)", "dn-bond", html! { input #dn-bond name="bond" value="0" inputmode="decimal" aria-describedby="dn-bond-hint"; }, Some("What a contributor stakes with each contribution; curators may slash it for spam.")))
            (field("Curators", "dn-curators", html! { input #dn-curators name="curators" aria-describedby="dn-curators-hint"; }, Some("Comma-separated addresses; the owner always curates.")))
            (field("Files per contributor per day", "dn-daily-files", html! { input #dn-daily-files name="daily_files" value="0" inputmode="numeric" aria-describedby="dn-daily-files-hint"; }, Some("0: the governed default.")))
            button type="submit" { "Review" }
        }
        @if writes.attester.is_none() {
            p.note { "This node has no ingest attester: name one when the CLI creates the Datanet, or uploads will have no one to attest them." }
        }
    };
    Page::new("New Datanet", Section::Datanets, body)
}

/// A comma-separated list, trimmed, without empty items, at most [`MAX_LIST`].
fn list(s: &str, what: &str) -> Result<Vec<String>, WebError> {
    let items: Vec<String> = s.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    if items.len() > MAX_LIST {
        return Err(WebError::bad(format!("{} {what}; at most {MAX_LIST}", items.len())));
    }
    Ok(items)
}

/// The `createDatanet` call a posted form asks for (what the CLI's `datanet create` sends).
pub fn create_call(
    form: &[(String, String)],
    attester: Option<Address>,
) -> Result<IDatanets::createDatanetCall, WebError> {
    let get = |k: &str| query::get(form, k).unwrap_or("").trim().to_string();
    let name = get("name");
    if name.is_empty() {
        return Err(WebError::bad("a Datanet needs a name"));
    }
    let licence = get("licence");
    if licence.is_empty() {
        return Err(WebError::bad("a Datanet needs a licence (an SPDX identifier such as CC-BY-4.0)"));
    }
    let policy = match get("policy").as_str() {
        "" | "open" => 0u8,
        "allow-list" => 1,
        p => return Err(WebError::bad(format!("policy {:?} is neither open nor allow-list", query::truncate(p)))),
    };
    let bond_text = get("bond");
    let bond: Amount = if bond_text.is_empty() {
        Amount::ZERO
    } else {
        bond_text.parse().map_err(|e| WebError::bad(format!("bond: {e}")))?
    };
    let curators =
        list(&get("curators"), "curators")?.iter().map(|c| query::address(c)).collect::<Result<Vec<_>, _>>()?;
    let daily = get("daily_files");
    let daily_files = if daily.is_empty() { 0 } else { query::number(&daily, "number of files")? };
    let daily_files = u32::try_from(daily_files).map_err(|_| WebError::bad("files per day: at most 4294967295"))?;
    Ok(IDatanets::createDatanetCall {
        name,
        summary: get("summary"),
        description: query::get(form, "description").unwrap_or("").to_string(),
        tags: list(&get("tags"), "tags")?,
        dataType: 0,
        licence,
        policy,
        contributorBond: bond.to_u256(),
        curators,
        attesters: attester.into_iter().collect(),
        limits: DatanetLimits {
            maxSubmissionBytes: 0,
            contributorDailyBytes: 0,
            datanetDailyBytes: 0,
            contributorDailyFiles: daily_files,
        },
    })
}

fn review(writes: &Writes, body: &[u8]) -> Result<Page, WebError> {
    let form = query::form(
        body,
        &["name", "summary", "description", "tags", "licence", "policy", "bond", "curators", "daily_files"],
    )?;
    let call = create_call(&form, writes.attester)?;
    let button = TxButton {
        id: Some("send-tx"),
        done: "Created",
        link: Some((IDatanets::DatanetCreated::SIGNATURE_HASH, 1, "/datanets/{id}", "Datanet d{id}")),
        ..TxButton::new("Sign and create", Module::Datanets.address(), call.abi_encode(), "tx-result")
    };
    let addresses = |a: &[Address]| {
        html! {
            @if a.is_empty() { span.muted { "none" } } @else { ul.inline { @for x in a { li { (account_link(x)) } } } }
        }
    };
    let body = html! {
        p { "Your wallet will send this call to the datanets contract; you become the Datanet's owner." }
        (summary(&[
            ("Name", html! { (call.name) }),
            ("Summary", html! { (call.summary) }),
            ("Description", crate::explorer::paragraphs(&call.description)),
            ("Tags", html! { (call.tags.join(", ")) }),
            ("Licence", html! { (call.licence) }),
            ("Contributions", html! { @if call.policy == 1 { "members only (allow-list)" } @else { "open to anyone" } }),
            ("Contributor bond", amount(call.contributorBond)),
            ("Curators", addresses(&call.curators)),
            ("Trusted attesters", addresses(&call.attesters)),
            ("Files per contributor per day", html! { @if call.limits.contributorDailyFiles == 0 { "the governed default" } @else { (call.limits.contributorDailyFiles) } }),
            ("To", account_link(&Module::Datanets.address())),
        ]))
        (wallet::panel(writes.dev_wallet.as_deref()))
        p { (tx_button(&button)) }
        p #tx-result role="status" aria-live="polite" {}
        p { a href="/datanets/new" { "Start again" } }
    };
    Ok(Page::new("Review the new Datanet", Section::Datanets, body))
}

fn upload(v: &ChainView, writes: &Writes, id: u64) -> Result<Page, WebError> {
    let d = datanet(v, id)?;
    // The script fills in the calldata and the bond from the ingest service's answer (data-to, data-data, data-value).
    let submit = html! {
        button #upload-submit type="button" hidden data-result="upload-result" data-done="Submitted"
            data-event-topic=(IDatanets::ContributionSubmitted::SIGNATURE_HASH.to_string()) data-event-index="2"
            data-link=(format!("/datanets/{id}/contributions/{{id}}")) data-link-text="Contribution #{id}" { "Sign and bond" }
    };
    let body = html! {
        p { "Upload a file to " a href=(href(id)) { "d" (id) " " (d.name) } ". The node's ingest service checks each row "
            "(quality, duplicates) and attests what it found; you then sign the contribution and bond "
            (amount(d.contributorBond)) " with it. Curators approve or reject it." }
        (wallet::panel(writes.dev_wallet.as_deref()))
        form.write #upload-form data-path=(format!("/v1/datanets/{id}/contributions")) {
            div.field {
                label for="upload-file" { "File (text, CSV or JSON lines)" }
                input #upload-file type="file" name="file";
            }
            button #upload-check type="button" { "Check the file" }
        }
        p #upload-status role="status" aria-live="polite" {}
        section #upload-findings aria-label="Findings" aria-live="polite" {}
        p { (submit) }
        p #upload-result role="status" aria-live="polite" {}
    };
    Ok(Page::new(format!("Upload to d{id}: {}", d.name), Section::Datanets, body))
}

/// A curator's reasons: (query value, reason code, words).
const REJECT_REASONS: [(&str, u8, &str); 6] = [
    ("spam", 1, "spam (slashes part of the bond)"),
    ("duplicate", 2, "duplicate (slashes part of the bond)"),
    ("low-quality", 3, "low quality"),
    ("off-topic", 4, "off topic"),
    ("licence", 5, "licence"),
    ("other", 0, "other"),
];
const FLAG_REASONS: [(&str, u8, &str); 3] =
    [("duplicated", 1, "duplicated"), ("adversarial", 2, "adversarial"), ("unfit", 3, "otherwise unfit")];

fn reason(
    list: &[(&'static str, u8, &'static str)],
    q: Option<&str>,
    what: &str,
) -> Result<(&'static str, u8), WebError> {
    match q {
        None => Ok((list[0].0, list[0].1)),
        Some(s) => list.iter().find(|r| r.0 == s).map(|r| (r.0, r.1)).ok_or_else(|| {
            WebError::bad(format!(
                "{what} reason {:?} is not one of {}",
                query::truncate(s),
                list.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            ))
        }),
    }
}

fn curate(v: &ChainView, writes: &Writes, id: u64, q: Option<&str>) -> Result<Page, WebError> {
    let params = query::params(q, &["offset", "reject", "flag", "note"])?;
    let offset = query::optional_number(&params, "offset", "offset")?.unwrap_or(0);
    let (reject_key, reject_code) = reason(&REJECT_REASONS, query::get(&params, "reject"), "reject")?;
    let (flag_key, flag_code) = reason(&FLAG_REASONS, query::get(&params, "flag"), "flag")?;
    let note = query::get(&params, "note").unwrap_or("").to_string();
    let d = datanet(v, id)?;
    let total = v.state().contribution_count(id).map_err(WebError::unavailable)?;
    let ids = v.state().contributions_page(id, offset, CURATE_SCAN).map_err(WebError::unavailable)?;
    let mut queue = Vec::new();
    for cid in ids {
        if let Some(c) = v.state().contribution(cid).map_err(WebError::unavailable)?
            && matches!(c.status, dn::PENDING | dn::APPROVED | dn::FLAGGED)
        {
            queue.push((cid, c));
        }
    }
    let mut curators = vec![d.owner];
    curators.extend(v.state().curators(id).map_err(WebError::unavailable)?);
    let to = Module::Datanets.address();
    let curator_list: Vec<String> = curators.iter().map(|a| format!("{a:#x}")).collect();
    let body = html! {
        p { "Contributions of " a href=(href(id)) { "d" (id) " " (d.name) } ": pending ones await approval or rejection, "
            "approved ones may be flagged (they stop earning), flagged ones are listed. "
            "The owner and the curators decide; the chain refuses anyone else." }
        (wallet::panel(writes.dev_wallet.as_deref()))
        p #curator-note.note role="status" aria-live="polite" data-curators=(curator_list.join(",")) hidden {}
        form.write #curate-reasons method="get" action=(format!("/datanets/{id}/curate")) {
            @if offset > 0 { input type="hidden" name="offset" value=(offset); }
            div.field {
                label for="curate-reject-reason" { "Reject as" }
                select #curate-reject-reason name="reject" {
                    @for r in REJECT_REASONS { option value=(r.0) selected[r.0 == reject_key] { (r.2) } }
                }
            }
            div.field {
                label for="curate-flag-reason" { "Flag as" }
                select #curate-flag-reason name="flag" {
                    @for r in FLAG_REASONS { option value=(r.0) selected[r.0 == flag_key] { (r.2) } }
                }
            }
            div.field {
                label for="curate-note" { "Note" }
                input #curate-note name="note" value=(note) maxlength=(query::MAX_VALUE);
            }
            button type="submit" { "Use these reasons" }
        }
        p #curate-result role="status" aria-live="polite" {}
        @if queue.is_empty() { p.muted { "Nothing to decide among contributions " (offset) " to " (offset + CURATE_SCAN) " (of " (total) ")." } }
        @else {
            (table(
                "Contributions to decide",
                &[&super::CONTRIBUTION_COLUMNS[..], &["Decide"]].concat(),
                html! { @for (cid, c) in &queue { tr data-contribution=(cid) {
                    (super::contribution_cells(id, *cid, c))
                    td.actions {
                        @if c.status == dn::PENDING {
                            (tx_button(&TxButton { class: Some("curate-approve"), done: "Approved", reload: true,
                                ..TxButton::new(&format!("Approve #{cid}"), to, IDatanets::approveCall { contributionId: *cid }.abi_encode(), "curate-result") }))
                            " "
                            (tx_button(&TxButton { class: Some("curate-reject"), done: "Rejected", reload: true,
                                ..TxButton::new(&format!("Reject #{cid}"), to, IDatanets::rejectCall { contributionId: *cid, reason: reject_code, note: note.clone() }.abi_encode(), "curate-result") }))
                            " "
                        }
                        @if c.status == dn::APPROVED {
                            (tx_button(&TxButton { class: Some("curate-flag"), done: "Flagged", reload: true,
                                ..TxButton::new(&format!("Flag #{cid}"), to, IDatanets::flagCall { contributionId: *cid, reason: flag_code, note: note.clone() }.abi_encode(), "curate-result") }))
                            " "
                            a.curate-rows href=(format!("{}/rows", contribution_href(id, *cid))) { "Tombstone rows of #" (cid) }
                        }
                    }
                } } },
            ))
        }
        @if offset + CURATE_SCAN < total {
            p { a href=(format!("/datanets/{id}/curate?offset={}", offset + CURATE_SCAN)) { "Later contributions" } }
        }
    };
    Ok(Page::new(format!("Curate d{id}: {}", d.name), Section::Datanets, body))
}

pub async fn rows_handler(
    State(web): State<Web>,
    ids: Result<Path<(String, String)>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let parsed = (|| {
        let Path((id, cid)) = ids.map_err(|e| WebError::bad(format!("bad path: {e}")))?;
        Ok::<_, WebError>((query::datanet_id(&id)?, query::number(&cid, "contribution id")?))
    })();
    let (id, cid) = match parsed {
        Ok(p) => p,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    let writes = web.writes.clone();
    // The rows come from the blob store (asynchronously); a contribution of
    // another Datanet, or none, is judged on the chain below first.
    let rows = match &writes.rows {
        Some(r) => Some(r.rows(cid).await),
        None => None,
    };
    render(web, move |v| rows_page(v, &writes, id, cid, q.as_deref(), rows)).await
}

fn rows_page(
    v: &ChainView,
    writes: &Writes,
    id: u64,
    cid: u64,
    q: Option<&str>,
    rows: Option<Result<Vec<RowView>, String>>,
) -> Result<Page, WebError> {
    let params = query::params(q, &["offset", "reason"])?;
    let offset = query::optional_number(&params, "offset", "offset")?.unwrap_or(0);
    let reason = query::get(&params, "reason").unwrap_or("removed by the owner").to_string();
    let d = datanet(v, id)?;
    let c = super::contribution_of(v, id, cid)?;
    let rows = rows
        .ok_or_else(|| WebError::unavailable("this node keeps no blobs: it cannot read the contribution's rows"))?
        .map_err(WebError::unavailable)?;
    let mut leaves: Vec<B256> = rows.iter().map(|r| r.leaf).collect();
    let mut dead = vec![false; rows.len()];
    for (i, (leaf, dead)) in leaves.iter_mut().zip(dead.iter_mut()).enumerate() {
        if v.state().is_tombstoned(cid, i as u32).map_err(WebError::unavailable)? {
            *leaf = primitives::rows::TOMBSTONE_LEAF;
            *dead = true;
        }
    }
    if primitives::rows::rows_root(&leaves) != c.attestation.rowsRoot {
        return Err(WebError::unavailable(format!(
            "the rows this node holds for contribution {cid} do not hash to its on-chain root"
        )));
    }
    let to = Module::Datanets.address();
    let end = (offset.saturating_add(ROWS_PAGE)).min(rows.len() as u64);
    let approved = c.status == dn::APPROVED;
    let body = html! {
        p { "The rows of " a href=(contribution_href(id, cid)) { "contribution #" (cid) } " to "
            a href=(href(id)) { "d" (id) " " (d.name) } " (" (status(c.status)) "). Tombstoning a row removes it from new "
            "versions and closes the versions that hold it to new training; only the owner may, and only of an approved contribution." }
        @if !approved { p.note { "This contribution is not approved: the chain refuses tombstones of it." } }
        (wallet::panel(writes.dev_wallet.as_deref()))
        form.write method="get" action=(format!("{}/rows", contribution_href(id, cid))) {
            @if offset > 0 { input type="hidden" name="offset" value=(offset); }
            div.field {
                label for="tombstone-reason" { "Reason" }
                input #tombstone-reason name="reason" value=(reason) maxlength=(query::MAX_VALUE);
            }
            button type="submit" { "Use this reason" }
        }
        p #curate-result role="status" aria-live="polite" {}
        @if rows.is_empty() { p.muted { "No rows." } }
        @else {
            (table(
                "Rows of the contribution",
                &["Row", "Text", "Leaf", "Tombstone"],
                html! { @for i in offset..end { @let r = &rows[i as usize]; tr data-row=(i) {
                    td.num { (i) }
                    td { @match &r.text {
                        Some(t) => span.text { (t.chars().take(ROW_TEXT).collect::<String>()) @if t.chars().count() > ROW_TEXT { "…" } },
                        None => span.muted { "private (allow-list Datanet)" },
                    } }
                    td.mono title=(r.leaf.to_string()) { (crate::format::short(&r.leaf.to_string())) }
                    td { @if dead[i as usize] { span.muted { "✗ tombstoned" } } @else if approved {
                        @let proof = primitives::merkle::prove(&leaves, i as usize).map(|p| p.siblings).unwrap_or_default();
                        (tx_button(&TxButton { class: Some("curate-tombstone"), done: "Tombstoned", reload: true,
                            ..TxButton::new(&format!("Tombstone row {i}"), to, IDatanets::tombstoneCall {
                                contributionId: cid, rowIndex: i as u32, rowLeaf: r.leaf, proof, reason: reason.clone(),
                            }.abi_encode(), "curate-result") }))
                    } @else { span.muted { "—" } } }
                } } },
            ))
            (crate::explorer::pager(&format!("{}/rows", contribution_href(id, cid)), "", "rows", offset, ROWS_PAGE, rows.len() as u64))
        }
    };
    Ok(Page::new(format!("Rows of contribution #{cid} to d{id}"), Section::Datanets, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(s: &str) -> Vec<(String, String)> {
        query::form(
            s.as_bytes(),
            &["name", "summary", "description", "tags", "licence", "policy", "bond", "curators", "daily_files"],
        )
        .unwrap()
    }

    #[test]
    fn the_create_call_is_what_the_form_asks_for() {
        let attester = Address::repeat_byte(1);
        let c = create_call(
            &form("name=+Soil+&licence=MIT&policy=allow-list&bond=0.25&tags=a%2C+b%2C%2C&daily_files=3"),
            Some(attester),
        )
        .unwrap();
        assert_eq!((c.name.as_str(), c.licence.as_str(), c.policy), ("Soil", "MIT", 1));
        assert_eq!(c.contributorBond, primitives::U256::from(250_000_000_000_000_000u128));
        assert_eq!(c.tags, vec!["a".to_string(), "b".to_string()]);
        assert_eq!((c.attesters, c.limits.contributorDailyFiles), (vec![attester], 3));
        for bad in [
            "licence=MIT",
            "name=x",
            "name=x&licence=MIT&policy=closed",
            "name=x&licence=MIT&bond=-1",
            "name=x&licence=MIT&curators=0xzz",
            "name=x&licence=MIT&daily_files=99999999999",
        ] {
            assert!(matches!(create_call(&form(bad), None), Err(WebError::BadRequest(_))), "{bad}");
        }
        let many = format!("name=x&licence=MIT&tags={}", "t,".repeat(MAX_LIST + 1));
        assert!(create_call(&form(&many), None).is_err());
        assert!(query::form(b"name=x&unknown=1", &["name"]).is_err());
        assert!(query::form(&vec![b'a'; query::MAX_FORM + 1], &["name"]).is_err());
    }
}
