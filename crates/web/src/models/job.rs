//! One fine-tuning job (`/models/jobs/{id}`): its state, progress and ETA,
//! hyperparameters and Datanet versions, the training and validation loss
//! curves from its log, and once it succeeded its evaluation, its provenance
//! (the hashes its model registration carries) and how to propose the model.
//!
//! While the job is queued or running, its live section (`#job-live`: state,
//! progress, ETA, the curves and the `#loss-points` table, one row a logged
//! point) is fetched again every two seconds by the page's script from
//! `/models/jobs/{id}?fragment=1` (that section alone, rendered here) and
//! swapped in; once the job ends the script reloads the page once. Without
//! a script the page reloads itself every five seconds (a `<meta
//! http-equiv="refresh">` inside `<noscript>`); a finished job's page does
//! neither.
//!
//! A succeeded job's model is proposed from here with the browser's wallet
//! ([`crate::actions`]): an unregistered one gets `#job-register`
//! (`models.register` at the CLI's default prices), a draft `#job-propose` (`models.propose`, what
//! `openledger model propose` sends after registering), a proposed model
//! `#job-gov-propose` (the governance proposal `models.approve [id]` with its
//! deposit, what the demo and `openledger gov propose` send).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{Html, IntoResponse, Response};
use factory::job::{LogPoint, read_log};
use factory::{JobQueue, JobRecord, JobStatus, Progress};
use maud::{Markup, html};
use primitives::abi::IGovernance;
use primitives::{ModelId, U256};
use runtime::models::ModelsRead;
use runtime::models::records::{DRAFT, PROPOSED};

use super::{base_model, latest_loss, model_link, percent, queue, state, versions};
use crate::Web;
use crate::chart::{Chart, Series, line_chart};
use crate::explorer::{account_link, path_param, summary};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Most log points one page reads (the curves of a longer run show its first ones).
pub const MAX_POINTS: usize = factory::routes::MAX_HISTORY_POINTS;
/// Seconds between reloads of a queued or running job's page without a script.
pub const REFRESH_SECONDS: u32 = 5;
/// Seconds between fetches of the live section by the page's script.
pub const POLL_SECONDS: u32 = 2;

pub async fn handler(
    State(web): State<Web>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let jobs = queue(&web);
    render(web, move |v| {
        let params = query::params(q.as_deref(), &["fragment"])?;
        let fragment = match query::get(&params, "fragment") {
            None => false,
            Some("1") => true,
            Some(other) => {
                return Err(WebError::bad(format!("fragment={:?}: the only value is 1", query::truncate(other))));
            }
        };
        let id = query::number(&path_param(id)?, "job id")?;
        let jobs = jobs?;
        if fragment {
            live_fragment(v, &jobs, id).map(IntoResponse::into_response)
        } else {
            page(v, &jobs, id).map(IntoResponse::into_response)
        }
    })
    .await
}

/// A job and what it logged so far, or a 404.
fn load(q: &JobQueue, id: u64) -> Result<(JobRecord, Option<Progress>, Vec<LogPoint>), WebError> {
    let (r, progress) =
        q.get(id).ok_or_else(|| WebError::not_found(format!("this node has no fine-tuning job {id}")))?;
    let points = read_log(&q.dir(id), 0, MAX_POINTS).map_err(WebError::unavailable)?;
    Ok((r, progress, points))
}

/// The live section alone (no page shell), for the page's script.
fn live_fragment(v: &ChainView, q: &JobQueue, id: u64) -> Result<Html<String>, WebError> {
    let (r, progress, points) = load(q, id)?;
    let model = super::OwnerModels::default().of(v, &r)?;
    Ok(Html(live_section(&r, progress.as_ref(), model, &points).into_string()))
}

/// State, progress, ETA and the loss curves with their points: what changes while a job runs.
fn live_section(r: &JobRecord, p: Option<&Progress>, model: Option<u64>, points: &[LogPoint]) -> Markup {
    let live = !r.status.is_final();
    html! {
        section #job-live aria-labelledby="job-live-title" data-live=(live)
            data-fragment=(format!("{}?fragment=1", super::job_href(r.id))) data-poll-seconds=(POLL_SECONDS) {
            h2 #job-live-title.visually-hidden { "Progress" }
            @if live { p.note { "This section updates every " (POLL_SECONDS) " seconds while the job runs." } }
            (status(r, p, model))
            h2 { "Loss" }
            (curves(points))
            (loss_points(points))
        }
    }
}

fn page(v: &ChainView, q: &JobQueue, id: u64) -> Result<Page, WebError> {
    let (r, progress, points) = load(q, id)?;
    let model = super::OwnerModels::default().of(v, &r)?;
    let live = !r.status.is_final();
    let body = html! {
        (super::subnav())
        (live_section(&r, progress.as_ref(), model, &points))
        h2 { "Datanet versions" }
        (versions(&r))
        h2 { "Hyperparameters" }
        (hyperparameters(&r))
        @if let Some(o) = &r.output {
            h2 { "Evaluation" }
            (evaluation(o))
        }
        @if r.status == JobStatus::Succeeded {
            h2 { "Provenance" }
            (provenance(&r))
            h2 { "Proposing the model" }
            (propose(v, &r, model)?)
        }
        (crate::actions::scripts(v))
    };
    let page = Page::new(format!("Job #{id}: {}", r.spec.name), Section::Models, body);
    Ok(if live { page.refreshing(REFRESH_SECONDS) } else { page })
}

fn status(r: &JobRecord, p: Option<&Progress>, model: Option<u64>) -> Markup {
    let pct = percent(r, p);
    let eta = p.and_then(|p| p.eta_seconds).filter(|s| s.is_finite() && *s >= 0.0 && !r.status.is_final());
    let live = p.filter(|_| !r.status.is_final());
    summary(&[
        // A finished job's last progress is its last phase's (sketching: rows, not steps): not shown.
        ("State", html! { (state(r.status)) @if let Some(p) = live { " (" (p.phase) ")" } }),
        (
            "Progress",
            html! { @match pct {
                Some(n) => { progress max="100" value=(n) { (n) " %" } " " (n) " %"
                    @if let Some(p) = live {
                        " · " @if p.phase == "training" { "step" } @else { (p.phase) } " " (p.step) " of " (p.total_steps)
                    } },
                None => span.muted { "not started" },
            } },
        ),
        ("ETA", html! { @match eta { Some(s) => { "about " (duration(s as u64)) }, None => span.muted { "—" } } }),
        (
            "Latest loss",
            html! { @match latest_loss(r, p) { Some(l) => (format!("{l:.4}")), None => span.muted { "—" } } },
        ),
        ("Owner", account_link(&r.owner)),
        ("Base model", base_model(r)),
        ("Submitted", html! { (crate::format::utc(r.created_at)) }),
        ("Model", model_link(model)),
        ("Error", html! { @match &r.error { Some(e) => span.failed.text { (e) }, None => span.muted { "none" } } }),
    ])
}

/// `1 h 02 min`, `3 min 05 s`, `42 s`.
fn duration(s: u64) -> String {
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// Every logged point, one row each (the curves' numbers, growing as the job trains).
fn loss_points(points: &[LogPoint]) -> Markup {
    let num = |x: Option<f64>| html! { @match x { Some(x) => (format!("{x:.4}")), None => span.muted { "—" } } };
    html! {
        details.loss-points {
            summary { (points.len()) " logged points" }
            div.scroll { table #loss-points {
                caption.visually-hidden { "Logged losses by step" }
                thead { tr { th scope="col" { "Step" } th scope="col" { "Training loss" } th scope="col" { "Validation loss" } } }
                tbody { @for p in points { tr {
                    td.num { (p.step) }
                    td.num { (num(p.loss.filter(|_| p.validation_loss.is_none()))) }
                    td.num { (num(p.validation_loss)) }
                } } }
            } }
        }
    }
}

/// The training and validation losses by step, from the job's log.
fn curves(points: &[LogPoint]) -> Markup {
    let train = points.iter().filter(|p| p.validation_loss.is_none()).filter_map(|p| Some((p.step, p.loss?)));
    let validation = points.iter().filter_map(|p| Some((p.step, p.validation_loss?)));
    let series = [
        Series { name: "training loss".into(), points: train.collect() },
        Series { name: "validation loss".into(), points: validation.collect() },
    ];
    line_chart(&Chart { title: "Training and validation loss", x_label: "step", y_label: "loss" }, &series)
}

fn hyperparameters(r: &JobRecord) -> Markup {
    let s = &r.spec;
    summary(&[
        ("LoRA rank / alpha / dropout", html! { (s.rank) " / " (s.alpha) " / " (s.dropout) }),
        ("Target modules", html! { code { (s.targets.join(", ")) } }),
        (
            "Learning rate",
            html! { (s.learning_rate) " (warm-up " (s.warmup_steps) " steps, weight decay " (s.weight_decay) ")" },
        ),
        (
            "Steps",
            html! { @match s.steps { Some(n) => (n), None => { (s.epochs) " epochs" } } " (at most " (r.max_steps) ")" },
        ),
        (
            "Batch",
            html! { (s.batch_size) " × " (s.grad_accum) " accumulated, sequences of " (s.max_seq_len) " tokens" },
        ),
        ("Validation split", html! { (s.validation_percent) " % of rows, seed " (s.seed) }),
        ("Checkpoints kept", html! { (s.keep_checkpoints) " (resume every " (s.checkpoint_every) " steps)" }),
        ("Gradient sketch", html! { (s.sketch_k) " dimensions" }),
    ])
}

fn evaluation(o: &factory::JobOutput) -> Markup {
    let m = &o.metrics;
    let opt =
        |x: Option<f64>| html! { @match x { Some(x) => (format!("{x:.4}")), None => span.muted { "not measured" } } };
    summary(&[
        (
            "Validation loss",
            html! { (format!("{:.4}", m.validation.loss)) " (base model: " (format!("{:.4}", m.base_validation_loss)) ")" },
        ),
        ("Perplexity", html! { (format!("{:.4}", m.validation.perplexity)) }),
        ("Exact match", opt(m.validation.exact_match)),
        ("ROUGE-L", opt(m.validation.rouge_l)),
        ("Validation rows", html! { (m.validation.rows) " (" (m.validation.target_tokens) " target tokens)" }),
        (
            "Trained on",
            html! { (m.train_rows) " rows, " (m.train_sequences) " sequences, " (m.train_tokens) " tokens in " (m.steps) " steps" },
        ),
        ("Final training loss", html! { (format!("{:.4}", m.final_train_loss)) }),
        ("Throughput", html! { (format!("{:.0}", m.tokens_per_second)) " tokens/s" }),
    ])
}

/// What the model's registration carries: the hashes that tie it to its inputs and artefacts.
fn provenance(r: &JobRecord) -> Markup {
    let hash = |h: &primitives::B256| html! { span.mono.wrap { (h.to_string()) } };
    let Some(o) = &r.output else { return html! {} };
    html! {
        (summary(&[
            ("Base model hash", hash(&o.base_model_hash)),
            ("Adapter hash", hash(&o.adapter_hash)),
            ("Licences", html! { (r.licences.join(", ")) }),
            ("Sketch", html! { "k = " (o.sketch_k) ", seed " (o.sketch_seed) }),
        ]))
        @if let Some(a) = &r.artefacts {
            (table("Artefacts in the blob store", &["Artefact", "Blob hash"], html! {
                tr { td { "adapter config" } td { (hash(&a.adapter_config)) } }
                tr { td { "adapter weights" } td { (hash(&a.adapter_model)) } }
                tr { td { "training log" } td { (hash(&a.training_log)) } }
                tr { td { "metrics" } td { (hash(&a.metrics)) } }
                tr { td { "gradient sketches" } td { (hash(&a.sketch)) } }
                @for (c, h) in o.checkpoints.iter().zip(&a.checkpoints) {
                    tr { td { "checkpoint at step " (c.step) " (lr " (c.learning_rate) ")" } td { (hash(h)) } }
                }
            }))
        }
    }
}

/// How the model is proposed: wallet buttons with the calls encoded here, and the CLI commands.
fn propose(v: &ChainView, r: &JobRecord, model: Option<u64>) -> Result<Markup, WebError> {
    let owner = r.owner.to_checksum(None);
    let Some(id) = model else {
        let register = crate::actions::model_register(r).map_err(WebError::unavailable)?;
        return Ok(html! {
            p { "Its owner (" (account_link(&r.owner)) ") registers the model on chain as a draft, at "
                (factory::registration::DEFAULT_PRICE_IN_PER_1K) " OPEN per 1K input and "
                (factory::registration::DEFAULT_PRICE_OUT_PER_1K) " OPEN per 1K output tokens, then proposes it." }
            (crate::actions::button(Some("job-register"), "register", "Register the model (from the owner's account)",
                &register, "propose-result", crate::actions::Then::Reload))
            p #propose-result role="status" aria-live="polite" {}
            p.muted { "Or with the CLI (registers and proposes):" }
            pre { code { "openledger model propose --job " (r.id) " --from " (owner) } }
        });
    };
    let m = v
        .state()
        .model(ModelId(id))
        .map_err(WebError::unavailable)?
        .ok_or_else(|| WebError::unavailable(format!("model m{id} vanished from the chain")))?;
    let deposit = match v.call(primitives::system::Module::Governance, &IGovernance::proposalDepositCall {})? {
        Ok(d) => d,
        Err(_) => U256::ZERO,
    };
    let result = html! { p #propose-result role="status" aria-live="polite" {} };
    Ok(html! {
        p { "Registered as " (model_link(Some(id))) " (" (runtime::models::records::state_name(m.state)) ")." }
        @if m.state == DRAFT {
            p { "Its owner (" (account_link(&r.owner)) ") proposes it, then governance votes on making it live." }
            (crate::actions::button(Some("job-propose"), "propose", "Propose the model", &crate::actions::model_propose(id),
                "propose-result", crate::actions::Then::Reload))
            (result)
        } @else if m.state == PROPOSED {
            p { "Proposed. A governance proposal makes it live; it sends the deposit of "
                (crate::explorer::amount(deposit)) " (returned unless the proposal is vetoed or misses quorum)." }
            (crate::actions::button(Some("job-gov-propose"), "propose", "Create the governance proposal",
                &crate::actions::approve_proposal(id, deposit), "propose-result", crate::actions::Then::Proposal))
            (result)
        }
        p.muted { "With the CLI:" }
        pre { code {
            "openledger gov propose --description \"Make m" (id) " live\" --call \"models.approve [" (id) "]\" \\\n"
            "    --from <your address>"
        } }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_points_table_has_a_row_per_logged_point() {
        let points = [
            LogPoint { step: 1, loss: Some(2.5), lr: Some(0.002), validation_loss: None },
            LogPoint { step: 1, loss: None, lr: None, validation_loss: Some(2.75) },
            LogPoint { step: 2, loss: Some(2.25), lr: Some(0.002), validation_loss: None },
        ];
        let html = loss_points(&points).into_string();
        assert!(html.contains("<table id=\"loss-points\">"), "{html}");
        assert_eq!(html.matches("<tr>").count(), 1 + points.len(), "{html}");
        assert!(html.contains("2.7500") && html.contains("2.2500"), "{html}");
        assert_eq!(duration(3725), "1 h 02 min");
    }
}
