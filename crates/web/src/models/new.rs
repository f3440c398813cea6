//! Starting a fine-tune without code (`/models/new`): the base models the
//! chain knows (with their hashes), the Datanets with their latest version,
//! and the few hyperparameters that matter with the CLI's defaults. The
//! page's script (`jobs.js`) builds the JSON body `openledger train submit`
//! sends, signs the request with the browser's wallet and posts it to
//! `POST /v1/jobs`; the node's API checks everything (the page decides
//! nothing) and its refusal is shown as it is.
//!
//! Inputs carry no `name`: without the script the form sends nothing, and
//! the page shows the CLI command instead.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use maud::{Markup, html};
use primitives::{B256, ModelId};
use runtime::datanets::DatanetsRead;
use runtime::models::ModelsRead;

use crate::Web;
use crate::actions;
use crate::page::{Page, Section, WebError, render};
use crate::query;
use crate::view::ChainView;

/// Datanets and base models the form lists, at most (the text field names any other).
pub const MAX_DATANETS: u64 = 200;
pub const MAX_BASE_MODELS: u64 = 50;
/// The LoRA targets the trainer knows (`--targets`).
pub const TARGETS: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

pub async fn handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    // Jobs run on a node with a job queue; the form would post to nothing elsewhere.
    let jobs = super::queue(&web).map(|_| ());
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        jobs?;
        page(v)
    })
    .await
}

/// A Datanet version the form offers.
struct Offered {
    datanet: u64,
    version: u64,
    name: String,
    licence: String,
    rows: u64,
}

/// Each Datanet's latest version, when it has one open to training.
fn latest_versions(v: &ChainView) -> Result<Vec<Offered>, WebError> {
    let st = v.state();
    let count = st.datanet_count().map_err(WebError::unavailable)?;
    let mut out = Vec::new();
    for id in (1..=count).rev().take(MAX_DATANETS as usize) {
        let Some(d) = st.datanet(id).map_err(WebError::unavailable)? else { continue };
        if d.versionCount == 0 {
            continue;
        }
        let Some(ver) = st.version(id, d.versionCount).map_err(WebError::unavailable)? else { continue };
        if !ver.closed {
            out.push(Offered {
                datanet: id,
                version: d.versionCount,
                name: d.name.clone(),
                licence: d.licence.clone(),
                rows: ver.liveRows,
            });
        }
    }
    out.reverse();
    Ok(out)
}

/// The base models registered on chain (no adapter), newest last: id, name, hash.
fn base_models(v: &ChainView) -> Result<Vec<(u64, String, B256)>, WebError> {
    let st = v.state();
    let count = st.model_count().map_err(WebError::unavailable)?;
    let mut out = Vec::new();
    for id in 1..=count.min(MAX_BASE_MODELS) {
        if let Some(m) = st.model(ModelId(id)).map_err(WebError::unavailable)?
            && m.adapterHash == B256::ZERO
        {
            out.push((id, m.name.clone(), m.baseModelHash));
        }
    }
    Ok(out)
}

fn page(v: &ChainView) -> Result<Page, WebError> {
    let versions = latest_versions(v)?;
    let bases = base_models(v)?;
    let d = factory::JobSpec::new(vec![]);
    let body = html! {
        (super::subnav())
        p { "Fine-tune a LoRA adapter on Datanet versions. The node checks the request and runs the job; "
            "its page then shows the loss curves as it trains, its evaluation, and how to propose the model." }
        form #job-form novalidate aria-describedby="job-help" {
            p #job-help.muted { "Fields left as they are keep the defaults of " code { "openledger train submit" } "." }
            div.field {
                label for="job-name" { "Name" }
                input #job-name type="text" maxlength="80" placeholder="my-fine-tune" autocomplete="off";
            }
            div.field {
                label for="job-base" { "Base model" }
                select #job-base aria-describedby="job-base-hashes" {
                    option value="" selected { "The node's base model" }
                    @for (id, name, _) in &bases { option value=(format!("m{id}")) { "m" (id) " · " (name) } }
                }
                (base_hashes(&bases))
            }
            fieldset {
                legend { "Datanet versions" }
                @if versions.is_empty() { p.muted { "No Datanet has a version open to training yet." } }
                @else {
                    label for="job-datanets" { "Latest versions (choose one or more)" }
                    select #job-datanets multiple size=(versions.len().clamp(2, 8)) {
                        @for o in &versions {
                            option value=(format!("d{}@v{}", o.datanet, o.version)) {
                                "d" (o.datanet) " v" (o.version) " · " (o.name) " (" (o.licence) ", " (o.rows) " rows)"
                            }
                        }
                    }
                }
                label for="job-datanets-text" { "Other versions" }
                input #job-datanets-text type="text" maxlength="200" autocomplete="off" placeholder="d3@v1, d4@v2"
                    pattern=r"\s*d?\d+@v?\d+(\s*,\s*d?\d+@v?\d+)*\s*" aria-describedby="job-datanets-help";
                p #job-datanets-help.muted { "Comma-separated, e.g. " code { "d3@v1" } "." }
            }
            fieldset {
                legend { "Training" }
                div.field {
                    label for="job-steps" { "Steps" }
                    input #job-steps type="number" min="1" step="1" inputmode="numeric" placeholder=(format!("{} epochs", d.epochs))
                        aria-describedby="job-steps-help";
                    p #job-steps-help.muted { "Empty: " (d.epochs) " epochs over the rows (the CLI's default)." }
                }
                div.field {
                    label for="job-lr" { "Learning rate" }
                    input #job-lr type="text" inputmode="decimal" value=(d.learning_rate) autocomplete="off";
                }
                div.field {
                    label for="job-rank" { "LoRA rank" }
                    input #job-rank type="number" min="1" step="1" inputmode="numeric" value=(d.rank);
                }
                div.field {
                    label for="job-alpha" { "LoRA alpha" }
                    input #job-alpha type="text" inputmode="decimal" value=(d.alpha) autocomplete="off";
                }
            }
            fieldset #job-targets {
                legend { "LoRA target modules" }
                ul.inline { @for t in TARGETS {
                    li {
                        input.job-target type="checkbox" id=(format!("job-target-{t}")) value=(t)
                            checked[d.targets.iter().any(|x| x == t)];
                        " "
                        label for=(format!("job-target-{t}")) { code { (t) } }
                    }
                } }
            }
            button #job-start type="submit" { "Start fine-tuning" }
            p #job-result role="status" aria-live="polite" {}
        }
        noscript { p.note {
            "Starting a job signs the request with your wallet, which needs a script. Without one, use the CLI: "
            code { "openledger train submit --datanet 1:2 --steps 40" }
        } }
        p { a href="/models/jobs" { "All fine-tuning jobs" } }
        (actions::scripts(v))
    };
    Ok(Page::new("New fine-tune", Section::Models, body))
}

fn base_hashes(bases: &[(u64, String, B256)]) -> Markup {
    html! {
        ul #job-base-hashes.plain {
            @for (id, _, hash) in bases {
                li { "m" (id) " base model hash " span.mono.wrap { (hash.to_string()) } }
            }
            @if bases.is_empty() { li.muted { "No base model is registered on chain; the node trains on the one it serves." } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_offers_every_target_the_cli_defaults_to() {
        let d = factory::JobSpec::new(vec![]);
        for t in &d.targets {
            assert!(TARGETS.contains(&t.as_str()), "{t}");
        }
    }
}
