//! One fine-tuning job (`/models/jobs/{id}`): its state, progress and ETA,
//! hyperparameters and Datanet versions, the training and validation loss
//! curves from its log, and once it succeeded its evaluation, its provenance
//! (the hashes its model registration carries) and how to propose the model.
//!
//! While the job is queued or running the page reloads itself every five
//! seconds (`<meta http-equiv="refresh">`, no script); a finished job's page
//! does not.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use factory::job::{LogPoint, read_log};
use factory::{JobQueue, JobRecord, JobStatus, Progress};
use maud::{Markup, html};

use super::{base_model, latest_loss, model_link, percent, queue, state, versions};
use crate::Web;
use crate::chart::{Chart, Series, line_chart};
use crate::explorer::{account_link, path_param, summary};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Most log points one page reads (the curves of a longer run show its first ones).
pub const MAX_POINTS: usize = factory::routes::MAX_HISTORY_POINTS;
/// Seconds between reloads of a queued or running job's page.
pub const REFRESH_SECONDS: u32 = 5;

pub async fn handler(
    State(web): State<Web>,
    id: Result<Path<String>, PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    let jobs = queue(&web);
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        let id = query::number(&path_param(id)?, "job id")?;
        page(v, &*jobs?, id)
    })
    .await
}

fn page(v: &ChainView, q: &JobQueue, id: u64) -> Result<Page, WebError> {
    let (r, progress) =
        q.get(id).ok_or_else(|| WebError::not_found(format!("this node has no fine-tuning job {id}")))?;
    let points = read_log(&q.dir(id), 0, MAX_POINTS).map_err(WebError::unavailable)?;
    let model = super::OwnerModels::default().of(v, &r)?;
    let live = !r.status.is_final();
    let body = html! {
        @if live { p.note role="status" { "This page reloads every " (REFRESH_SECONDS) " seconds while the job runs." } }
        (status(&r, progress.as_ref(), model))
        h2 { "Datanet versions" }
        (versions(&r))
        h2 { "Loss" }
        (curves(&points))
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
            (propose(&r, model))
        }
    };
    let page = Page::new(format!("Job #{id}: {}", r.spec.name), Section::Models, body);
    Ok(if live { page.refreshing(REFRESH_SECONDS) } else { page })
}

fn status(r: &JobRecord, p: Option<&Progress>, model: Option<u64>) -> Markup {
    let pct = percent(r, p);
    let eta = p.and_then(|p| p.eta_seconds).filter(|s| s.is_finite() && *s >= 0.0 && !r.status.is_final());
    summary(&[
        ("State", html! { (state(r.status)) @if let Some(p) = p { " (" (p.phase) ")" } }),
        (
            "Progress",
            html! { @match pct {
                Some(n) => { progress max="100" value=(n) { (n) " %" } " " (n) " %"
                    @if let Some(p) = p { " · step " (p.step) " of " (p.total_steps) } },
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

fn propose(r: &JobRecord, model: Option<u64>) -> Markup {
    let owner = r.owner.to_checksum(None);
    html! {
        @match model {
            Some(id) => {
                p { "Registered as " (model_link(Some(id))) ". Governance makes it live with a proposal:" }
                pre { code {
                    "openledger gov propose --description \"Approve m" (id) "\" --call \"models.approve [" (id) "]\" \\\n"
                    "    --from <your address>"
                } }
            },
            None => {
                p { "Its owner registers the model on chain and proposes it to governance with the CLI (the web app does not sign):" }
                pre { code { "openledger model propose --job " (r.id) " --from " (owner) } }
            },
        }
    }
}
