//! One answer's credits (`GET /playground/answer/{receipt}`; with
//! `?fragment=1` only the part the Playground's script inserts under the
//! answer) and its verification (`POST .../verify`).
//!
//! When the node's recomputation disagrees with the posted record and the
//! chain would take a challenge in the next block, the verdict carries
//! `button#challenge`: `IAttribution.challenge(receipt, recomputed record
//! hash)` with `challengeBond()` as value, what `openledger attribution
//! challenge` sends, its outcome in `#challenge-result`. A record that
//! verifies gets no button: a challenge would forfeit the bond (the CLI's
//! `--force` is named for whoever insists).
//!
//! What it shows comes from this node: the attribution record from its store
//! (as its caller may read it), the receipt's settlement, hold and challenge
//! from the chain. The answer's spans are highlighted in the colour of the
//! contribution they came from, with the contribution's id in text beside
//! each and in the legend, so no colour carries meaning alone.

use alloy_sol_types::SolEvent;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use httpapi::MaybeCaller;
use maud::{Markup, html};
use primitives::abi::{IAttribution, IInference};
use primitives::system::Module;
use primitives::{B256, U256};
use runtime::datanets::DatanetsRead;
use runtime::inference::{self as inf, InferenceRead};
use runtime::params::ParamsRead;
use serde_json::Value;

use super::{RecordLookup, Verdict};
use crate::Web;
use crate::datanets::contribution_href;
use crate::explorer::{account_link, amount, block_link, model_href, path_param, summary, tx_link};
use crate::format;
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Distinct highlight colours (`.c0` … in the stylesheet); contributions past
/// them reuse them, told apart by the id written beside each span.
pub const COLOURS: usize = 8;
/// Contributions one answer lists, at most (a record credits at most
/// `inference.max_credits`; spans may name more rows).
pub const MAX_CONTRIBUTIONS: usize = 64;

pub fn href(receipt: &B256) -> String {
    format!("/playground/answer/{receipt}")
}

/// Whether the request asks for the fragment only.
fn fragment(q: Option<&str>) -> Result<bool, WebError> {
    let params = query::params(q, &["fragment"])?;
    Ok(matches!(query::get(&params, "fragment"), Some("1")))
}

fn respond(markup: Markup, fragment: bool, title: String) -> Response {
    if fragment {
        Html(markup.into_string()).into_response()
    } else {
        // The fragment's headings are h3s (under the Playground's h2); alone on a page they keep that order.
        let body = html! { h2.visually-hidden { (title) } (markup) };
        Page::new(title, Section::Playground, body).into_response()
    }
}

pub async fn handler(
    State(web): State<Web>,
    receipt: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
    MaybeCaller(caller): MaybeCaller,
) -> Response {
    let records = web.playground.records.clone();
    render(web, move |v| {
        let frag = fragment(q.as_deref())?;
        let h = query::hash(&path_param(receipt)?)?;
        let lookup = records.as_ref().map_or(RecordLookup::Unknown, |r| r.lookup(h, caller));
        let settling = records.as_ref().is_some_and(|r| r.settling(h));
        let body = credits(v, h, &lookup, settling, frag)?;
        Ok(respond(body, frag, format!("Answer {}", format::short(&h.to_string()))))
    })
    .await
}

pub async fn verify_handler(
    State(web): State<Web>,
    receipt: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
    MaybeCaller(caller): MaybeCaller,
) -> Response {
    let records = web.playground.records.clone();
    render(web, move |v| {
        let frag = fragment(q.as_deref())?;
        let h = query::hash(&path_param(receipt)?)?;
        let Some(records) = records else {
            return Err(WebError::not_found(format!("this node holds no attribution record for receipt {h}")));
        };
        // The same readers as the record itself: a stranger learns nothing of a private one.
        match records.lookup(h, caller) {
            RecordLookup::Ready(_) => {}
            RecordLookup::Private => return Err(private_error(h)),
            RecordLookup::Pending(s) => {
                return Err(WebError::unavailable(format!("the record of {h} is not ready yet ({s}): try again")));
            }
            RecordLookup::NoRecord(why) => {
                return Err(WebError::not_found(format!("receipt {h} has no record: {why}")));
            }
            RecordLookup::Unknown => {
                return Err(WebError::not_found(format!("this node holds no attribution record for receipt {h}")));
            }
        }
        let body = match records.verify(h) {
            Ok(verdict) => verdict_markup(v, h, &verdict, frag)?,
            Err(e) => html! {
                p.note role="status" { "The node cannot judge this record yet: " (e) }
            },
        };
        let body = html! {
            section.verdict aria-labelledby=(format!("verdict-{h}")) {
                h3 #(format!("verdict-{h}")) { "Verification" }
                (body)
                @if !frag { p { a href=(href(&h)) { "Back to the answer's credits" } } }
            }
        };
        Ok(respond(body, frag, format!("Verification of {}", format::short(&h.to_string()))))
    })
    .await
}

fn private_error(h: B256) -> WebError {
    // As the API answers it: 403 there, here a page that says who may read it.
    WebError::not_found(format!(
        "the attribution record of receipt {h} is not public: its payer (or those acting for it) and the serving \
         operator may read it; paste the payer's API key in the Playground, or publish records with \
         `OpenLedger-Attribution-Public: true`"
    ))
}

/// The credits of one answer: the record (highlighted answer, legend, bars),
/// the fee split, the receipt, and the ways to verify or challenge it.
/// `settling`: this node billed the receipt and has not settled it yet.
fn credits(v: &ChainView, h: B256, lookup: &RecordLookup, settling: bool, frag: bool) -> Result<Markup, WebError> {
    let st = v.state();
    let settled = st.settled_receipt(&h).map_err(WebError::unavailable)?;
    let hold = st.hold(&h).map_err(WebError::unavailable)?;
    if matches!(lookup, RecordLookup::Unknown) && settled.is_none() && hold.is_none() && !settling {
        return Err(WebError::not_found(format!(
            "no receipt {h} is settled on this chain, and this node holds no attribution record for it \
             (a receipt settles a few blocks after its answer)"
        )));
    }
    let id = format!("answer-{h}");
    let record = match lookup {
        RecordLookup::Ready(v) => Some(v),
        _ => None,
    };
    let body = html! {
        // The script asks again while something is still to come.
        section.answer-credits aria-labelledby=(id) data-receipt=(h)
            data-pending=(settled.is_none() || matches!(lookup, RecordLookup::Pending(_))) {
            h3 #(id) { "Who is credited" }
            @match lookup {
                RecordLookup::Ready(signed) => (record_markup(v, signed)?),
                RecordLookup::Private => p.note { "The attribution record of this answer is private to its payer and \
                    the serving operator. Paste the payer's API key above to see it." },
                RecordLookup::Pending(s) => p.note role="status" { "The record is being computed (" (s) "); it appears here once ready." },
                RecordLookup::NoRecord(why) => p.note { "No attribution record: " (why) },
                RecordLookup::Unknown => p.note { "No attribution record: this node holds none for this receipt. An answer \
                    of a base model that retrieved no rows has no Datanet to attribute to: its data share goes to the treasury." },
            }
            h3 { "Fee split" }
            @match &settled {
                Some(s) => (fee_split(s)),
                None => p role="status" { "settling… (the serving node settles its receipts on-chain every few blocks)" },
            }
            h3 { "Receipt" }
            (receipt_fields(v, h, settled.as_ref(), hold.as_ref())?)
            @if record.is_some() {
                h3 { "Verify or challenge" }
                form.verify method="post" action=(format!("{}/verify", href(&h))) {
                    button type="submit" { "Verify" }
                    " "
                    span.muted { "The node recomputes the record from public inputs (the answer, the model's artefacts, \
                        the Datanet rows) and compares." }
                }
                div.verdict-slot {}
                (challenge_markup(v, h)?)
            }
            @if frag { p { a href=(href(&h)) { "This answer's credits on a page of their own" } } }
        }
    };
    Ok(body)
}

/// (contribution, ppm) pairs of a record part.
fn pairs(v: &Value) -> Vec<(u64, u64)> {
    v.as_array().into_iter().flatten().filter_map(|p| Some((p[0].as_u64()?, p[1].as_u64()?))).collect()
}

/// A span of the answer: char offsets and the contributions whose rows hold it.
struct AnswerSpan {
    start: usize,
    end: usize,
    contributions: Vec<u64>,
}

fn spans_of(part: &Value) -> Vec<AnswerSpan> {
    part["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let start = usize::try_from(s["charStart"].as_u64()?).ok()?;
            let end = usize::try_from(s["charEnd"].as_u64()?).ok()?;
            let mut contributions: Vec<u64> =
                s["rows"].as_array().into_iter().flatten().filter_map(|r| r[0].as_u64()).collect();
            contributions.dedup();
            (start < end).then_some(AnswerSpan { start, end, contributions })
        })
        .collect()
}

fn ppm(p: u64) -> String {
    format::bps(p / 100)
}

fn record_markup(v: &ChainView, signed: &Value) -> Result<Markup, WebError> {
    let rec = &signed["record"];
    let text = rec["response"].as_str().unwrap_or("");
    let final_credits = pairs(&rec["credits"]);
    let span_credits = pairs(&rec["span"]["credits"]);
    let gradient_credits = pairs(&rec["gradient"]["credits"]);
    let retrieval_credits = pairs(&rec["retrieval"]["credits"]);
    let mut spans = spans_of(&rec["span"]);
    spans.extend(spans_of(&rec["retrieval"]));
    spans.sort_by_key(|s| s.start);
    // The legend: the credited contributions, most credited first, then any
    // other a span names.
    let mut legend: Vec<u64> = {
        let mut c = final_credits.clone();
        c.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        c.into_iter().map(|c| c.0).collect()
    };
    for c in span_credits
        .iter()
        .chain(&gradient_credits)
        .chain(&retrieval_credits)
        .map(|c| c.0)
        .chain(spans.iter().flat_map(|s| s.contributions.iter().copied()))
    {
        if !legend.contains(&c) {
            legend.push(c);
        }
    }
    legend.truncate(MAX_CONTRIBUTIONS);
    let colour = |c: u64| legend.iter().position(|x| *x == c).map(|i| format!("c{}", i % COLOURS));
    let share = |list: &[(u64, u64)], c: u64| list.iter().find(|p| p.0 == c).map(|p| p.1);
    let st = v.state();
    let mut datanet_of = Vec::with_capacity(legend.len());
    for c in &legend {
        let d = st.contribution(*c).map_err(WebError::unavailable)?.map(|r| r.attestation.datanetId);
        datanet_of.push(d);
    }
    let link = |i: usize, c: u64| match datanet_of[i] {
        Some(d) => html! { a href=(contribution_href(d, c)) { "contribution " (c) } },
        None => html! { "contribution " (c) },
    };
    let chars: Vec<char> = text.chars().collect();
    let model = rec["model"].as_str().unwrap_or("");
    let model_id = model.strip_prefix('m').and_then(|m| m.parse::<u64>().ok());
    Ok(html! {
        p {
            "Record " span.mono.wrap { (signed["recordHash"].as_str().unwrap_or("")) }
            " of " @if let Some(m) = model_id { a href=(model_href(m)) { (model) } } @else { (model) }
            ", signed by " span.mono.wrap { (signed["signer"].as_str().unwrap_or("")) } "."
        }
        h4 { "The answer, with the spans found in contributed rows" }
        @if spans.is_empty() {
            p.muted { "No span of this answer was found in the contributed rows (no exact-span credit)." }
        }
        blockquote.answer-text.text { (highlighted(&chars, &spans, &colour)) }
        @if legend.is_empty() {
            p.muted { "No contribution is credited: the data share goes to the fallback (the model's Datanet \
                versions pro rata to their rows)." }
        } @else {
            h4 { "Contributions" }
            (table("Contributions credited for this answer", &["Colour", "Contribution", "Exact spans", "Gradient", "Retrieval", "Final share"], html! {
                @for (i, c) in legend.iter().enumerate() {
                    tr {
                        td { span class=(format!("swatch {}", colour(*c).unwrap_or_default())) aria-hidden="true" {} span.visually-hidden { "colour " (i % COLOURS + 1) } }
                        td { (link(i, *c)) }
                        td.num { (share(&span_credits, *c).map(ppm).unwrap_or_else(|| "—".into())) }
                        td { (bar(share(&gradient_credits, *c), colour(*c))) }
                        td.num { (share(&retrieval_credits, *c).map(ppm).unwrap_or_else(|| "—".into())) }
                        td.num { strong { (share(&final_credits, *c).map(ppm).unwrap_or_else(|| "0.00 %".into())) } }
                    }
                }
            }))
            @if gradient_credits.is_empty() {
                p.muted { "The gradient part credits nothing (a model without kept checkpoints, or none of its rows influenced the answer)." }
            }
        }
    })
}

/// The gradient share of one contribution as a bar, with its value in text.
fn bar(p: Option<u64>, colour: Option<String>) -> Markup {
    match p {
        None => html! { span.muted { "—" } },
        Some(p) => {
            // Whole tenths of a percent: the width is a picture, the text the value.
            let width = format!("width: {}.{}%", p / 10_000, p % 10_000 / 1_000);
            html! {
                span.bar-track { span class=(format!("bar {}", colour.unwrap_or_default())) style=(width) {} }
                " " span.num { (ppm(p)) }
            }
        }
    }
}

/// The answer's text, each span in a `mark` of its contribution's colour with
/// the contribution's id written after it (overlapping spans: the first wins).
fn highlighted(chars: &[char], spans: &[AnswerSpan], colour: &dyn Fn(u64) -> Option<String>) -> Markup {
    let mut owner: Vec<Option<usize>> = vec![None; chars.len()];
    for (i, s) in spans.iter().enumerate() {
        for o in owner.iter_mut().take(s.end.min(chars.len())).skip(s.start) {
            o.get_or_insert(i);
        }
    }
    let mut runs: Vec<(Option<usize>, String)> = Vec::new();
    for (ch, o) in chars.iter().zip(&owner) {
        match runs.last_mut() {
            Some((last, s)) if last == o => s.push(*ch),
            _ => runs.push((*o, ch.to_string())),
        }
    }
    html! {
        @for (o, s) in &runs {
            @match o.map(|i| &spans[i]) {
                None => (s),
                Some(span) => {
                    @let first = span.contributions.first().copied();
                    @let ids = span.contributions.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
                    mark class=(first.and_then(colour).unwrap_or_default()) title=(format!("from contribution {ids}")) { (s) }
                    sup.span-id { "[" (ids) "]" }
                }
            }
        }
    }
}

fn fee_split(s: &inf::SettledReceipt) -> Markup {
    let parts = [
        ("Model owner", s.ownerPart),
        ("Data (held for attribution)", s.dataPart),
        ("Serving operator", s.servingPart),
        ("Stakers", s.stakersPart),
        ("Treasury", s.treasuryPart),
    ];
    let bps = |x: u128| {
        if s.cost == 0 {
            0
        } else {
            (U256::from(x) * U256::from(10_000u64) / U256::from(s.cost)).saturating_to::<u64>()
        }
    };
    html! {
        (table("Fee split", &["Part", "OPEN", "Share"], html! {
            @for (name, x) in parts {
                tr { td { (name) } td.num { (amount(U256::from(x))) } td.num { (format::bps(bps(x))) } }
            }
            tr { td { strong { "Cost" } } td.num { strong { (amount(U256::from(s.cost))) } } td.num { "100.00 %" } }
        }))
    }
}

/// The transaction of block `block` that emitted `event` about `receipt` (its first topic).
fn tx_with_event(v: &ChainView, block: u64, event: B256, receipt: B256) -> Result<Option<B256>, WebError> {
    if block == 0 || block > v.head().number {
        return Ok(None);
    }
    let receipts = v.receipts(block)?;
    let Some(i) = receipts.iter().position(|r| {
        r.logs.iter().any(|l| {
            l.address == Module::Inference.address()
                && l.data.topics().first() == Some(&event)
                && l.data.topics().get(1) == Some(&receipt)
        })
    }) else {
        return Ok(None);
    };
    Ok(v.transactions(block)?.get(i).map(|t| t.hash))
}

fn hold_status(s: u8) -> &'static str {
    match s {
        inf::OPEN => "open: awaiting the attribution record",
        inf::POSTED => "posted: credits pending until the challenge window closes",
        inf::FINALIZED => "finalized: credits accrued to the contributions",
        inf::FALLBACK => "fallback: paid to the Datanet versions pro rata to their rows",
        _ => "unknown",
    }
}

fn receipt_fields(
    v: &ChainView,
    h: B256,
    settled: Option<&inf::SettledReceipt>,
    hold: Option<&inf::HoldRecord>,
) -> Result<Markup, WebError> {
    let mut rows: Vec<(&str, Markup)> = vec![("Receipt hash", html! { span.mono.wrap { (h) } })];
    if let Some(s) = settled {
        let tx = tx_with_event(v, s.settledAt, IInference::ReceiptSettled::SIGNATURE_HASH, h)?;
        rows.extend([
            ("Payer", account_link(&s.payer)),
            ("Serving operator", account_link(&s.operator)),
            ("Model", html! { a href=(model_href(s.modelId)) { "m" (s.modelId) } }),
            ("Model owner", account_link(&s.modelOwner)),
            (
                "Settled",
                html! { "in block " (block_link(s.settledAt)) @if let Some(t) = tx { ", transaction " (tx_link(&t)) } },
            ),
        ]);
    }
    if let Some(hd) = hold {
        rows.push(("Held for attribution", amount(U256::from(hd.amount))));
        rows.push(("Hold", html! { (hold_status(hd.status)) }));
        if hd.recordHash != B256::ZERO {
            let tx = tx_with_event(v, hd.postedAt, IInference::AttributionPosted::SIGNATURE_HASH, h)?;
            rows.push((
                "Record posted",
                html! {
                    span.mono.wrap { (hd.recordHash) } " in block " (block_link(hd.postedAt))
                    @if let Some(t) = tx { ", transaction " (tx_link(&t)) }
                },
            ));
        }
        if let Some(p) = v.state().pending_credits(&h).map_err(WebError::unavailable)?
            && !p.contributionIds.is_empty()
        {
            rows.push((
                "Pending credits",
                html! { ul.inline { @for (c, a) in p.contributionIds.iter().zip(&p.amounts) {
                    li { "contribution " (c) ": " (amount(U256::from(*a))) }
                } } },
            ));
        }
    }
    Ok(summary(&rows))
}

fn challenge_markup(v: &ChainView, h: B256) -> Result<Markup, WebError> {
    let open = v.call(Module::Attribution, &IAttribution::challengeOfCall { receiptHash: h })?.ok();
    let bond = v.call(Module::Attribution, &IAttribution::challengeBondCall {})?.ok();
    Ok(html! {
        @if let Some(c) = open.filter(|c| c.status != 0) {
            p role="status" { "Challenged by " (account_link(&c.challenger)) " with a bond of " (amount(U256::from(c.bond)))
                " (status " (c.status) ")." }
        }
        details {
            summary { "Challenge this record" }
            p { "A challenge is a transaction signed by your wallet, with a bond"
                @if let Some(b) = bond { " of " (amount(b)) } ", within the record's challenge window. The CLI recomputes the \
                record first and refuses to challenge one that verifies:" }
            pre.mono { code { "openledger attribution challenge " (h) " --rpc <this node's JSON-RPC address>" } }
            p { "Its call: " code { "IAttribution.challenge(bytes32 receiptHash, bytes32 challengerRecordHash)" }
                " to the attribution module " span.mono.wrap { (Module::Attribution.address()) } ", with the bond as value; "
                code { "challengerRecordHash" } " is the hash of the record you recomputed (Verify shows the calldata with this node's)." }
        }
    })
}

/// Whether the chain would take a challenge of a receipt's record in the next
/// block, as the attribution contract decides it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Window {
    /// Open; the last block that takes a challenge is `closes_at - 1`.
    Open { closes_at: u64 },
    /// Closed, and why.
    Closed(String),
}

fn challenge_window(v: &ChainView, h: B256) -> Result<Window, WebError> {
    let st = v.state();
    let Some(hold) = st.hold(&h).map_err(WebError::unavailable)? else {
        return Ok(Window::Closed("the chain holds nothing for this receipt".into()));
    };
    let existing = v.call(Module::Attribution, &IAttribution::challengeOfCall { receiptHash: h })?.ok();
    if existing.is_some_and(|c| c.status != 0 && c.status != runtime::attribution::LAPSED) {
        return Ok(Window::Closed("it is already challenged".into()));
    }
    if hold.status != inf::POSTED {
        return Ok(Window::Closed(
            "no posted record awaits finalization (not posted yet, finalized, or paid by the fallback)".into(),
        ));
    }
    let window = st.param(&runtime::params::INFERENCE_CHALLENGE_WINDOW_BLOCKS).map_err(WebError::unavailable)?;
    let closes_at = hold.postedAt.saturating_add(u64::try_from(window).unwrap_or(u64::MAX));
    // The challenge lands in the block after the head.
    if v.head().number.saturating_add(1) >= closes_at {
        return Ok(Window::Closed(format!("the challenge window closed at block {closes_at}")));
    }
    Ok(Window::Open { closes_at })
}

fn verdict_markup(v: &ChainView, h: B256, verdict: &Verdict, frag: bool) -> Result<Markup, WebError> {
    let bond = v.call(Module::Attribution, &IAttribution::challengeBondCall {})?.ok();
    let window = challenge_window(v, h)?;
    // A page of its own needs the wallet; the Playground's page has it already.
    let panel = (!frag).then(|| crate::wallet::panel(v.dev_wallet()));
    Ok(html! {
        @if verdict.ok {
            p.ok role="status" { "✓ The record matches: the node recomputed it from public inputs and every check held." }
        } @else {
            p.failed role="alert" { "✗ The record does not match its recomputation." }
        }
        ul.checks {
            @for (name, ok, detail) in &verdict.checks {
                li { @if *ok { span.ok { "✓ " } } @else { span.failed { "✗ " } } (name)
                    @if !detail.is_empty() { " " span.mono.wrap.muted { (detail) } } }
            }
        }
        @if let Some(mine) = verdict.recomputed { p { "Recomputed record: " span.mono.wrap { (mine) } } }
        (challenge_offer(h, verdict, &window, bond, panel))
    })
}

/// What a verdict offers: a challenge button for a record that does not
/// match while the window is open; otherwise why not.
fn challenge_offer(h: B256, verdict: &Verdict, window: &Window, bond: Option<U256>, panel: Option<Markup>) -> Markup {
    let bond_text = |b: Option<U256>| html! { @if let Some(b) = b { (amount(b)) } @else { "its bond" } };
    html! {
        @if verdict.ok {
            p.note { "The record verifies here: a challenge would most likely forfeit the bond of " (bond_text(bond))
                ". To challenge it anyway: " code { "openledger attribution challenge " (h) " --force" } }
        } @else {
            @match (verdict.recomputed, window, bond) {
                (None, _, _) => p.note { "The node did not get as far as a record of its own, which a challenge must name." },
                (Some(_), Window::Closed(why), _) => p.note { "It cannot be challenged now: " (why) "." },
                (Some(_), _, None) => p.note { "The attribution contract did not say its challenge bond: challenge with "
                    code { "openledger attribution challenge " (h) } "." },
                (Some(mine), Window::Open { closes_at }, Some(b)) => {
                    p { "Challenge it: your wallet bonds " (amount(b)) " and names the record this node recomputed. The operator                         must then reveal its record and prompt and the validators judge: a wrong record slashes the operator                         and rewards you, a right one forfeits your bond. The window closes at block " (closes_at) "." }
                    @let tx = crate::actions::challenge(h, mine, b);
                    @let button = crate::wallet::TxButton {
                        id: Some("challenge"),
                        value: tx.value,
                        done: "Challenged: the operator must now reveal its record",
                        ..crate::wallet::TxButton::new("Challenge with a bond", tx.to, tx.data.clone(), "challenge-result")
                    };
                    p { (crate::wallet::tx_button(&button)) }
                    p #challenge-result role="status" aria-live="polite" {}
                    noscript { p.note { "Challenging signs with your wallet, which needs a script. Without one: "
                        code { "openledger attribution challenge " (h) " --from <your address>" } } }
                    @if let Some(p) = panel { (p) }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_sol_types::SolCall;

    fn span(start: usize, end: usize, contributions: &[u64]) -> AnswerSpan {
        AnswerSpan { start, end, contributions: contributions.to_vec() }
    }

    #[test]
    fn spans_are_marked_in_their_contributions_colour_with_the_id_in_text() {
        let chars: Vec<char> = "in the beginning <God>".chars().collect();
        let colour = |c: u64| Some(format!("c{}", c % 8));
        // Overlapping spans: the first wins; a span past the end is clipped, not a panic.
        let spans = [span(3, 6, &[7]), span(4, 16, &[2, 9]), span(18, 400, &[5])];
        let out = highlighted(&chars, &spans, &colour).into_string();
        assert_eq!(
            out,
            "in <mark class=\"c7\" title=\"from contribution 7\">the</mark><sup class=\"span-id\">[7]</sup>\
             <mark class=\"c2\" title=\"from contribution 2, 9\"> beginning</mark><sup class=\"span-id\">[2, 9]</sup> \
             &lt;<mark class=\"c5\" title=\"from contribution 5\">God&gt;</mark><sup class=\"span-id\">[5]</sup>"
        );
        assert_eq!(highlighted(&[], &spans, &colour).into_string(), "");
    }

    #[test]
    fn records_spans_and_shares_read_from_the_record_json() {
        let part = serde_json::json!({"spans": [
            {"charStart": 0, "charEnd": 4, "rows": [[7, 0], [7, 1], [3, 0]]},
            {"charStart": 5, "charEnd": 5, "rows": [[1, 0]]},
            {"charStart": "x"}
        ]});
        let s = spans_of(&part);
        assert_eq!(s.len(), 1, "empty and malformed spans are left out");
        assert_eq!(s[0].contributions, vec![7, 3]);
        assert_eq!(pairs(&serde_json::json!([[1, 250_000], [2, "x"], [3, 750_000]])), vec![(1, 250_000), (3, 750_000)]);
        assert_eq!(ppm(123_456), "12.34 %");
        assert!(bar(Some(1_000_000), Some("c1".into())).into_string().contains("width: 100.0%"));
    }

    #[test]
    fn a_mismatch_in_the_window_offers_the_clis_challenge_and_a_match_does_not() {
        let (h, mine, bond) = (
            B256::repeat_byte(0xaa),
            B256::repeat_byte(0xbb),
            U256::from(5u64) * U256::from(10u64).pow(U256::from(18u64)),
        );
        let wrong =
            Verdict { ok: false, checks: vec![("signature".into(), false, String::new())], recomputed: Some(mine) };
        let open = Window::Open { closes_at: 40 };
        let out = challenge_offer(h, &wrong, &open, Some(bond), None).into_string();
        let call = IAttribution::challengeCall { receiptHash: h, challengerRecordHash: mine }.abi_encode();
        for want in [
            "<button type=\"button\" id=\"challenge\"",
            &format!("data-to=\"{:#x}\"", Module::Attribution.address()),
            &format!("data-data=\"0x{}\"", hex::encode(&call)),
            "data-value=\"5000000000000000000\"",
            "data-result=\"challenge-result\"",
            "<p id=\"challenge-result\" role=\"status\"",
            "closes at block 40",
        ] {
            assert!(out.contains(want), "{want} in {out}");
        }
        let closed = challenge_offer(
            h,
            &wrong,
            &Window::Closed("the challenge window closed at block 9".into()),
            Some(bond),
            None,
        );
        let closed = closed.into_string();
        assert!(!closed.contains("<button") && closed.contains("closed at block 9"), "{closed}");
        let nothing = Verdict { recomputed: None, ..wrong.clone() };
        assert!(!challenge_offer(h, &nothing, &open, Some(bond), None).into_string().contains("<button"));
        let right = Verdict { ok: true, checks: vec![], recomputed: Some(mine) };
        let out = challenge_offer(h, &right, &open, Some(bond), None).into_string();
        assert!(!out.contains("<button") && out.contains("forfeit the bond of <span class=\"amount\""), "{out}");
        assert!(out.contains(&format!("openledger attribution challenge {h} --force")), "{out}");
    }

    #[test]
    fn the_fee_split_is_exact_and_sums_to_the_cost() {
        let s = inf::SettledReceipt {
            cost: 1_000,
            ownerPart: 500,
            dataPart: 250,
            servingPart: 125,
            stakersPart: 100,
            treasuryPart: 25,
            ..Default::default()
        };
        let out = fee_split(&s).into_string();
        for want in ["50.00 %", "25.00 %", "12.50 %", "10.00 %", "2.50 %", "100.00 %"] {
            assert!(out.contains(want), "{want}: {out}");
        }
        // A zero cost divides nothing.
        assert!(fee_split(&inf::SettledReceipt::default()).into_string().contains("0.00 %"));
    }
}
