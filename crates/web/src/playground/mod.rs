//! The Playground (`/playground`): chat with any live model, and see under
//! each answer who is credited and paid for it.
//!
//! The chat itself is the node's OpenAI-compatible API: the page's one small
//! script ([`SCRIPT_PATH`], hand-written, served from this crate) posts to
//! `/v1/chat/completions` with `stream: true` and the API key the user pasted
//! (kept in the browser's `localStorage`), appends tokens as the server-sent
//! events arrive, and then asks this node for the answer's credits:
//! `GET /playground/answer/{receipt}` ([`answer`]), rendered here from what
//! the node itself holds (its attribution record store, through
//! [`AnswerRecords`], and the chain), never from what the browser sent. The
//! same path without a script is a page of its own; `POST
//! /playground/answer/{receipt}/verify` has the node recompute the record.
//!
//! Who may read a record is decided as `GET /v1/attribution/{receipt}`
//! decides it (the payer, those acting for it, the serving operator; anyone
//! when the payer published it): the script sends the pasted key, the node
//! resolves it to its caller ([`httpapi::MaybeCaller`]).

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use primitives::{Address, B256, ModelId};
use runtime::models::{self as models, ModelsRead};

use crate::Web;
use crate::explorer::model_href;
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

pub mod answer;

/// The path of the Playground's script.
pub const SCRIPT_PATH: &str = "/assets/playground.js";

const SCRIPT: &str = include_str!("../playground.js");

/// Live models listed, at most.
pub const MAX_MODELS: usize = 100;

/// An answer's attribution record as this node holds it, for one caller.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordLookup {
    /// The signed record, as `GET /v1/attribution/{receipt}` answers it
    /// (`{"record", "recordHash", "signature", "signer", "summary"}`).
    Ready(serde_json::Value),
    /// This node holds it (or is computing it), and the caller may not read it.
    Private,
    /// Queued or being computed: ask again in a moment.
    Pending(String),
    /// There will be no record, and why.
    NoRecord(String),
    /// This node knows no record of that receipt.
    Unknown,
}

/// The node's recomputation of a record from public inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Every check held.
    pub ok: bool,
    /// (what was checked, whether it held, detail).
    pub checks: Vec<(String, bool, String)>,
    /// The hash of the record this node recomputed (what a challenge names),
    /// when it got that far.
    pub recomputed: Option<B256>,
}

/// What the Playground needs from the node's serving service: its
/// attribution records and their recomputation. Implemented by the node over
/// the records it makes; the web app holds no record of its own.
pub trait AnswerRecords: Send + Sync + 'static {
    /// The record of `receipt` as `caller` (`None`: anonymous) may see it.
    fn lookup(&self, receipt: B256, caller: Option<Address>) -> RecordLookup;
    /// Whether this node billed `receipt` and has not settled it yet (it is
    /// not on-chain yet, and will be).
    fn settling(&self, receipt: B256) -> bool;
    /// Recompute the record of `receipt` from public inputs and compare
    /// (blocking; run on a blocking thread). `Err` when it cannot be judged
    /// here yet, such as a receipt not settled.
    fn verify(&self, receipt: B256) -> Result<Verdict, String>;
}

/// What the node gives the Playground.
#[derive(Clone, Default)]
pub struct Playground {
    /// The node's attribution records (`None`: a node that does not serve).
    pub records: Option<Arc<dyn AnswerRecords>>,
    /// Where a dev node keeps its dev API key (`<data-dir>/dev-api-key`): the
    /// page names the path when the file exists, never its content.
    pub dev_key_file: Option<PathBuf>,
}

/// The Playground's routes.
pub fn routes() -> Router<Web> {
    Router::new()
        .route("/playground", get(handler))
        .route("/playground/answer/{receipt}", get(answer::handler))
        .route("/playground/answer/{receipt}/verify", post(answer::verify_handler))
        .route(SCRIPT_PATH, get(script))
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        SCRIPT,
    )
}

async fn handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    let pg = web.playground.clone();
    render(web, move |v| {
        let params = query::params(q.as_deref(), &["receipt"])?;
        // The no-script way to an answer's credits: a receipt hash in a form.
        if let Some(r) = query::get(&params, "receipt") {
            let h = query::hash(r.trim())?;
            return Ok(axum::response::Redirect::to(&answer::href(&h)).into_response());
        }
        Ok(page(v, &pg)?.into_response())
    })
    .await
}

/// A live model as the picker lists it.
struct LiveModel {
    id: u64,
    name: String,
    adapter: bool,
    price_in: u128,
    price_out: u128,
}

fn live_models(v: &ChainView) -> Result<Vec<LiveModel>, WebError> {
    let st = v.state();
    let mut out = Vec::new();
    for ModelId(id) in st.live_models().map_err(WebError::unavailable)?.into_iter().take(MAX_MODELS) {
        if let Some(r) = st.model(ModelId(id)).map_err(WebError::unavailable)?
            && r.state == models::LIVE
        {
            out.push(LiveModel {
                id,
                name: r.name.clone(),
                adapter: r.adapterHash != B256::ZERO,
                price_in: r.priceInPer1k,
                price_out: r.priceOutPer1k,
            });
        }
    }
    Ok(out)
}

fn page(v: &ChainView, pg: &Playground) -> Result<Page, WebError> {
    let models = live_models(v)?;
    let serving = pg.records.is_some();
    let dev_key = pg.dev_key_file.as_ref().filter(|p| p.is_file());
    let body = html! {
        p {
            "Ask any live model. The answer streams from this node's OpenAI-compatible API "
            code { "POST /v1/chat/completions" } "; under it, the node shows who is credited for it: the spans of "
            "the answer found in contributed rows, each contribution's share, and how the fee was split."
        }
        @if !serving {
            p.note role="status" { "This node does not serve models (it runs without OpenLoRA): the chat needs a serving node. \
                The answers of other nodes are not held here." }
        }
        // No input has a name: without the script the form sends nothing (never the key in a URL).
        form #chat.chat data-serving=(serving) {
            div.field {
                label for="pg-key" { "API key" }
                input #pg-key type="password" autocomplete="off" spellcheck="false" required
                    aria-describedby="pg-key-help";
                p #pg-key-help.muted {
                    "Sent only to this node, as " code { "Authorization: Bearer …" } "; kept in this browser's local storage. "
                    @if let Some(p) = dev_key {
                        "This is a dev node: its dev API key is in " code { (p.display()) } "."
                    } @else {
                        "A dev node (" code { "openledger up" } ") writes its dev API key to " code { "<data-dir>/dev-api-key" }
                        "; " code { "openledger apikey new" } " makes one for your account."
                    }
                }
            }
            div.field {
                label for="pg-model" { "Model" }
                select #pg-model required {
                    @for m in &models {
                        option value=(format!("m{}", m.id)) {
                            "m" (m.id) " · " (m.name) @if m.adapter { " (fine-tune)" } @else { " (base)" }
                        }
                    }
                }
            }
            div.field {
                label for="pg-prompt" { "Your message" }
                textarea #pg-prompt rows="3" maxlength="8000" required {}
            }
            div.field {
                label for="pg-datanets" { "Retrieve from Datanets (optional)" }
                input #pg-datanets type="text" inputmode="numeric" maxlength="200" pattern="[0-9, ]*"
                    spellcheck="false" aria-describedby="pg-datanets-help" placeholder="e.g. 1, 3";
                p #pg-datanets-help.muted {
                    "Datanet ids, separated by commas: the node puts their best-matching rows in the prompt, and the \
                    rows the answer quotes are credited (even for a base model). "
                    a href="/datanets" { "The Datanets" } "."
                }
            }
            div.field.row {
                label for="pg-max" { "Most tokens in the answer" }
                input #pg-max type="number" min="1" max="1024" value="64" inputmode="numeric";
            }
            div.field.row {
                label for="pg-temperature" { "Temperature (0: the same answer each time)" }
                input #pg-temperature type="number" min="0" max="2" step="0.1" value="0.7" inputmode="decimal";
            }
            div.field.row {
                input #pg-public type="checkbox";
                label for="pg-public" { "Publish this answer's attribution record (anyone may then read it)" }
            }
            button #pg-send type="submit" { "Send" }
            " "
            span #pg-status role="status" {}
        }
        noscript {
            p.note { "The chat streams with a small script, which is off in this browser. Without it, the credits of an \
                answer you got through the API are still a form away (below)." }
        }
        h2 { "Answers" }
        div #pg-answers aria-live="polite" aria-relevant="additions text" {
            p.muted #pg-empty { "No answer yet." }
        }
        h2 { "An answer's credits by receipt" }
        form.address method="get" action="/playground" {
            label for="pg-receipt" { "Receipt hash" }
            input #pg-receipt type="text" name="receipt" maxlength="66" pattern="0x[0-9a-fA-F]{64}" spellcheck="false"
                placeholder="0x…";
            button type="submit" { "Show" }
        }
        h2 { "Live models" }
        (models_table(&models))
        // A verdict may carry a challenge button, which the wallet sends.
        (crate::wallet::panel(v.dev_wallet()))
        script src=(SCRIPT_PATH) defer {}
    };
    Ok(Page::new("Playground", Section::Playground, body))
}

fn models_table(models: &[LiveModel]) -> Markup {
    if models.is_empty() {
        return html! { p.muted { "No model is live on this chain." } };
    }
    let rows = html! {
        @for m in models {
            tr {
                td { a href=(model_href(m.id)) { "m" (m.id) } }
                td.wrap { (m.name) }
                td { @if m.adapter { "fine-tune" } @else { "base" } }
                td.num { (crate::explorer::amount(primitives::U256::from(m.price_in))) }
                td.num { (crate::explorer::amount(primitives::U256::from(m.price_out))) }
            }
        }
    };
    table("Live models", &["Model", "Name", "Kind", "Price in / 1K tokens", "Price out / 1K tokens"], rows)
}
