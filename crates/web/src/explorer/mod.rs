//! The Explorer: blocks, transactions with their calls and events decoded,
//! accounts, models, Datanets, and a search box that leads to each.
//!
//! Every page reads one snapshot through [`ChainView`] and does bounded work:
//! lists walk back from the head at most a fixed number of blocks, so no page
//! grows with the chain.

use alloy_dyn_abi::DynSolValue;
use axum::Router;
use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::routing::get;
use maud::{Markup, html};
use primitives::system::{self, Module};
use primitives::{Address, B256, U256};

use crate::Web;
use crate::decode::{CallKind, Field, Value};
use crate::format;
use crate::page::WebError;

pub mod account;
pub mod block;
pub mod home;
pub mod records;
pub mod search;
pub mod tx;

/// How far back from the head the "latest transactions" lists look.
pub const RECENT_BLOCKS: u64 = 256;
/// The most items of one list or array a page shows.
pub const MAX_LIST: usize = 100;

/// The Explorer's routes.
pub fn routes() -> Router<Web> {
    Router::new()
        .route("/explorer", get(home::handler))
        .route("/explorer/blocks", get(block::list_handler))
        .route("/explorer/blocks/{id}", get(block::handler))
        .route("/explorer/tx/{hash}", get(tx::handler))
        .route("/explorer/accounts/{address}", get(account::handler))
        .route("/explorer/models/{id}", get(records::model_handler))
        .route("/explorer/datanets/{id}", get(records::datanet_handler))
        .route("/explorer/search", get(search::handler))
}

/// A path parameter, or a 400 page when the path does not decode.
pub fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, WebError> {
    p.map(|Path(s)| s).map_err(|e| WebError::bad(format!("bad path: {e}")))
}

pub fn block_href(n: u64) -> String {
    format!("/explorer/blocks/{n}")
}
pub fn tx_href(h: &B256) -> String {
    format!("/explorer/tx/{h}")
}
pub fn account_href(a: &Address) -> String {
    format!("/explorer/accounts/{a:#x}")
}
pub fn model_href(id: u64) -> String {
    format!("/explorer/models/m{id}")
}
pub fn datanet_href(id: u64) -> String {
    format!("/explorer/datanets/d{id}")
}

/// What the protocol calls an address of its own, if it is one.
pub fn address_label(a: &Address) -> Option<&'static str> {
    if let Some(m) = Module::from_address(a) {
        return Some(m.name());
    }
    match *a {
        system::TREASURY => Some("treasury"),
        system::VALIDATOR_REWARD_POOL => Some("validators' reward pool"),
        system::GOVERNANCE_DEPOSITS => Some("governance deposits"),
        _ => None,
    }
}

pub fn block_link(n: u64) -> Markup {
    html! { a href=(block_href(n)) { "#" (n) } }
}

pub fn tx_link(h: &B256) -> Markup {
    let s = h.to_string();
    html! { a.mono href=(tx_href(h)) title=(s) { (format::short(&s)) } }
}

/// An account, its protocol name first when it has one.
pub fn account_link(a: &Address) -> Markup {
    let s = a.to_checksum(None);
    html! {
        @if let Some(l) = address_label(a) { span.tag { (l) } " " }
        a.mono href=(account_href(a)) title=(s) { (format::short(&s)) }
    }
}

/// An amount of OPEN, exact, with the base units on hover.
pub fn amount(base_units: U256) -> Markup {
    html! { span.amount title=(format!("{base_units} base units")) { (format::open(base_units)) " OPEN" } }
}

/// What a transaction does, in a few words: the function it calls, or "transfer".
pub fn call_summary(kind: &CallKind) -> Markup {
    match kind {
        CallKind::Plain => html! { "transfer" },
        CallKind::Decoded(c) => html! { code { (c.module.name()) "." (c.function) } },
        CallKind::Undecodable { module, .. } => html! { code { (module.name()) ".?" } },
    }
}

/// Names under which a uint of 128 bits or more is an amount of OPEN.
const AMOUNT_WORDS: [&str; 18] = [
    "amount",
    "value",
    "bond",
    "deposit",
    "fee",
    "price",
    "stake",
    "reward",
    "balance",
    "escrow",
    "cost",
    "budget",
    "allowance",
    "slashed",
    "payment",
    "unclaimed",
    "votes",
    "power",
];

fn is_amount(name: &str, bits: usize) -> bool {
    let n = name.to_ascii_lowercase();
    bits >= 128 && AMOUNT_WORDS.iter().any(|w| n.contains(w))
}

/// A decoded value; `name` (its field's) tells amounts and ids apart from plain numbers.
fn leaf(name: &str, v: &DynSolValue) -> Markup {
    match v {
        DynSolValue::Address(a) => account_link(a),
        DynSolValue::Uint(x, bits) if is_amount(name, *bits) => amount(*x),
        DynSolValue::Uint(x, 64) if name.to_ascii_lowercase().ends_with("datanetid") => {
            let id = x.saturating_to::<u64>();
            html! { a href=(crate::datanets::href(id)) { "d" (id) } }
        }
        DynSolValue::Uint(x, 64) if name.to_ascii_lowercase().ends_with("modelid") => {
            let id = x.saturating_to::<u64>();
            html! { a href=(model_href(id)) { "m" (id) } }
        }
        DynSolValue::Uint(x, _) => html! { (x) },
        DynSolValue::Int(x, _) => html! { (x) },
        DynSolValue::Bool(b) => html! { (b) },
        DynSolValue::String(s) => html! { span.text { (s) } },
        DynSolValue::FixedBytes(w, n) => html! { span.mono { "0x" (hex::encode(&w[..*n])) } },
        DynSolValue::Bytes(b) => bytes(b),
        DynSolValue::Function(f) => html! { span.mono { "0x" (hex::encode(f)) } },
        // Tuples and arrays are `Value::Struct`/`Value::List`; an unnamed tuple lands here.
        other => html! { span.mono { (format!("{other:?}")) } },
    }
}

/// Bytes as hex, the first 512 shown.
pub fn bytes(b: &[u8]) -> Markup {
    const SHOWN: usize = 512;
    html! {
        @if b.is_empty() { span.muted { "(empty)" } }
        @else if b.len() <= SHOWN { span.mono.wrap { "0x" (hex::encode(b)) } }
        @else { span.mono.wrap { "0x" (hex::encode(&b[..SHOWN])) "…" } " " span.muted { "(" (b.len()) " bytes)" } }
    }
}

fn value(name: &str, v: &Value) -> Markup {
    match v {
        Value::Leaf(l) => leaf(name, l),
        Value::Struct(fs) => fields(fs),
        Value::List(items) if items.is_empty() => html! { span.muted { "(none)" } },
        Value::List(items) => html! {
            ol.values {
                @for i in items.iter().take(MAX_LIST) { li { (value(name, i)) } }
            }
            @if items.len() > MAX_LIST { p.muted { "… and " (items.len() - MAX_LIST) " more" } }
        },
    }
}

/// Named values as a definition list: name and type, then the value.
pub fn fields(fs: &[Field]) -> Markup {
    html! {
        dl.fields {
            @for f in fs {
                dt {
                    (f.name) " " span.type { (f.ty) }
                    @if f.indexed { " " span.tag { "indexed" } }
                }
                dd { (value(&f.name, &f.value)) }
            }
        }
    }
}

/// A definition list of (label, value) rows, for a page's summary.
pub fn summary(rows: &[(&str, Markup)]) -> Markup {
    html! {
        dl.summary {
            @for (k, v) in rows { dt { (k) } dd { (v) } }
        }
    }
}

/// Text a user wrote (a description), escaped, as paragraphs: blank lines
/// separate paragraphs, single line breaks stay line breaks. No markup in it
/// is ever interpreted.
pub fn paragraphs(text: &str) -> Markup {
    let text = text.replace("\r\n", "\n");
    let paras: Vec<&str> = text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()).collect();
    html! {
        @if paras.is_empty() { p.muted { "(no description)" } }
        @for p in &paras {
            p.text {
                @for (i, line) in p.lines().enumerate() {
                    @if i > 0 { br; }
                    (line)
                }
            }
        }
    }
}

/// Links to the previous and next pages of an offset-paged list of `total`
/// items at `base` (a path, its other parameters already in `extra`); `what`
/// names the items for the navigation's label (one page may have several lists).
pub fn pager(base: &str, extra: &str, what: &str, offset: u64, limit: u64, total: u64) -> Markup {
    let link = |o: u64| format!("{base}?{extra}offset={o}&limit={limit}");
    html! {
        nav.pager aria-label=(format!("Pages of {what}")) {
            @if offset > 0 { a href=(link(offset.saturating_sub(limit))) rel="prev" { "← Previous" } " " }
            span { "Items " (offset.min(total) + u64::from(total > 0)) "–" (offset.saturating_add(limit).min(total)) " of " (total) }
            @if offset.saturating_add(limit) < total { " " a href=(link(offset + limit)) rel="next" { "Next →" } }
        }
    }
}

/// One newest-first page of the ids `1..=count` (Datanets, proposals,
/// versions): those below `before` (from the newest when absent), at most
/// `limit` of them.
pub struct NewestFirst {
    top: u64,
    lowest: u64,
    count: u64,
    limit: u64,
}

impl NewestFirst {
    pub fn new(count: u64, before: Option<u64>, limit: u64) -> NewestFirst {
        let top = before.unwrap_or(u64::MAX).min(count.saturating_add(1)).saturating_sub(1);
        let lowest = top.saturating_sub(limit.max(1) - 1).max(1);
        NewestFirst { top, lowest, count, limit: limit.max(1) }
    }

    /// The ids on the page, newest first (none when it is empty).
    pub fn ids(&self) -> impl Iterator<Item = u64> {
        (self.lowest..=self.top).rev()
    }

    /// Links to the newer and older pages of `what`: `{base}{key}={id}`.
    pub fn nav(&self, base: &str, key: &str, what: &str) -> Markup {
        let newer = self.top.saturating_add(self.limit).min(self.count).saturating_add(1);
        html! {
            nav.pager aria-label=(format!("Pages of {what}")) {
                @if self.top < self.count { a href=(format!("{base}{key}={newer}")) rel="prev" { "← Newer" } }
                @if self.lowest > 1 { a href=(format!("{base}{key}={}", self.lowest)) rel="next" { "Older →" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_escaped_paragraphs() {
        let html = paragraphs("# Title\r\n\r\nLine one\nline <b>two</b>\n\n\n").into_string();
        assert_eq!(html, "<p class=\"text\"># Title</p><p class=\"text\">Line one<br>line &lt;b&gt;two&lt;/b&gt;</p>");
        assert!(paragraphs("  \n\n ").into_string().contains("(no description)"));
    }

    #[test]
    fn newest_first_pages_stay_within_the_ids() {
        let ids = |w: &NewestFirst| w.ids().collect::<Vec<_>>();
        assert_eq!(ids(&NewestFirst::new(0, None, 20)), Vec::<u64>::new());
        assert_eq!(ids(&NewestFirst::new(5, None, 2)), vec![5, 4]);
        assert_eq!(ids(&NewestFirst::new(5, Some(4), 2)), vec![3, 2]);
        assert_eq!(ids(&NewestFirst::new(5, Some(2), 20)), vec![1]);
        assert_eq!(ids(&NewestFirst::new(5, Some(0), 20)), Vec::<u64>::new());
        assert_eq!(ids(&NewestFirst::new(5, Some(u64::MAX), 0)), vec![5]);
        let nav = NewestFirst::new(5, Some(4), 2).nav("/x?", "before", "items").into_string();
        assert!(nav.contains("href=\"/x?before=6\"") && nav.contains("href=\"/x?before=2\""), "{nav}");
    }
}
