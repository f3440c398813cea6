//! The Models section: this node's ModelFactory jobs (`/models/jobs?before=N&limit=L`,
//! newest first), one job (`/models/jobs/{id}`: progress, hyperparameters,
//! loss curves, evaluation, provenance, and proposing its model; its live
//! section alone at `/models/jobs/{id}?fragment=1`), and the form that starts
//! one (`/models/new`, posting to the node's `POST /v1/jobs` with the
//! browser's wallet).
//!
//! Jobs are local to the node that runs them (its `factory::JobQueue`); the
//! chain knows only the models they registered, found here by the job's
//! adapter hash among its owner's models. A node without a job queue answers
//! 503 on these pages.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use factory::{JobQueue, JobRecord, JobStatus, Progress};
use maud::{Markup, html};
use primitives::{Address, B256};
use runtime::models::ModelsRead;

use crate::Web;
use crate::explorer::{account_link, model_href};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

pub mod job;
pub mod new;

/// Jobs on one page, by default and at most.
pub const PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;
/// An owner's newest models searched for a job's model.
const MAX_OWNER_MODELS: usize = 200;

/// The Models section's routes.
pub fn routes() -> Router<Web> {
    Router::new()
        .route("/models/jobs", get(list_handler))
        .route("/models/jobs/{id}", get(job::handler))
        .route(NEW_JOB_PATH, get(new::handler))
}

/// The form that starts a fine-tune.
pub const NEW_JOB_PATH: &str = "/models/new";

pub fn job_href(id: u64) -> String {
    format!("/models/jobs/{id}")
}

/// The section's own links, on each of its pages.
pub fn subnav() -> Markup {
    html! {
        nav aria-label="Models" { ul.inline {
            li { a href="/models/jobs" { "Fine-tuning jobs" } }
            li { a href=(NEW_JOB_PATH) { "New fine-tune" } }
        } }
    }
}

/// The node's job queue, or a 503 when it runs none.
pub fn queue(web: &Web) -> Result<Arc<JobQueue>, WebError> {
    web.jobs.clone().ok_or_else(|| WebError::unavailable("this node runs no ModelFactory job queue"))
}

/// A job's state in words and a symbol (never colour alone).
pub fn state(s: JobStatus) -> Markup {
    match s {
        JobStatus::Queued => html! { span { "… queued" } },
        JobStatus::Running => html! { span { "▶ running" } },
        JobStatus::Succeeded => html! { span.ok { "✓ succeeded" } },
        JobStatus::Failed => html! { span.failed { "✗ failed" } },
        JobStatus::Cancelled => html! { span.muted { "■ cancelled" } },
    }
}

/// How far a job is, in percent: its last progress report, 100 when it succeeded.
pub fn percent(r: &JobRecord, p: Option<&Progress>) -> Option<u64> {
    match (r.status, p) {
        (JobStatus::Succeeded, _) => Some(100),
        (_, Some(p)) if p.total_steps > 0 => Some(p.step.min(p.total_steps) * 100 / p.total_steps),
        _ => None,
    }
}

/// The newest training loss known: the running job's last report, or the final one.
pub fn latest_loss(r: &JobRecord, p: Option<&Progress>) -> Option<f64> {
    p.and_then(|p| p.loss).or_else(|| r.output.as_ref().map(|o| o.metrics.final_train_loss))
}

/// The Datanet versions a job trains on, each linked to its Datanet's versions.
pub fn versions(r: &JobRecord) -> Markup {
    html! {
        ul.inline { @for d in r.spec.datanets.iter().take(crate::explorer::MAX_LIST) {
            li { a href=(format!("{}#versions", crate::datanets::href(d.datanet))) { "d" (d.datanet) " v" (d.version) } }
        } }
    }
}

/// The base model a job names, as it named it.
pub fn base_model(r: &JobRecord) -> Markup {
    match &r.spec.base_model {
        Some(m) => html! { span.mono.wrap { (m) } },
        None => html! { span.muted { "the node's base model" } },
    }
}

/// The models job owners registered, each owner's newest read once a page:
/// the model a finished job registered is the one with the job's adapter hash.
#[derive(Default)]
pub struct OwnerModels(HashMap<Address, Vec<(B256, u64)>>);

impl OwnerModels {
    /// The model job `r` registered on chain, if it did.
    pub fn of(&mut self, v: &ChainView, r: &JobRecord) -> Result<Option<u64>, WebError> {
        let Some(out) = r.output.as_ref().filter(|_| r.status == JobStatus::Succeeded) else { return Ok(None) };
        if let Entry::Vacant(slot) = self.0.entry(r.owner) {
            let ids = v.state().models_of(&r.owner).map_err(WebError::unavailable)?;
            let mut models = Vec::new();
            for id in ids.iter().rev().take(MAX_OWNER_MODELS) {
                if let Some(m) = v.state().model(*id).map_err(WebError::unavailable)? {
                    models.push((m.adapterHash, id.0));
                }
            }
            slot.insert(models);
        }
        Ok(self.0[&r.owner].iter().find(|(h, _)| *h == out.adapter_hash).map(|(_, id)| *id))
    }
}

pub fn model_link(id: Option<u64>) -> Markup {
    match id {
        Some(id) => html! { a href=(model_href(id)) { "m" (id) } },
        None => html! { span.muted { "not registered" } },
    }
}

async fn list_handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    let jobs = queue(&web);
    render(web, move |v| list(v, &*jobs?, q.as_deref())).await
}

/// Jobs newest first: ids below `before`, `limit` of them.
fn list(v: &ChainView, q: &JobQueue, raw: Option<&str>) -> Result<Page, WebError> {
    let params = query::params(raw, &["before", "limit"])?;
    let limit = query::limit(&params, PAGE, MAX_PAGE)?;
    let before = query::optional_number(&params, "before", "job id")?.unwrap_or(u64::MAX);
    let all = q.list();
    let shown: Vec<&JobRecord> = all.iter().rev().filter(|r| r.id < before).take(limit as usize).collect();
    let mut rows = Vec::with_capacity(shown.len());
    let mut models = OwnerModels::default();
    for r in &shown {
        let progress = q.get(r.id).and_then(|(_, p)| p);
        let model = models.of(v, r)?;
        rows.push(html! { tr {
            td { a href=(job_href(r.id)) { "#" (r.id) } }
            td { span.text { (r.spec.name) } }
            td { (account_link(&r.owner)) }
            td { (base_model(r)) }
            td { (versions(r)) }
            td { (state(r.status)) }
            td.num { @match percent(r, progress.as_ref()) { Some(p) => { (p) " %" }, None => span.muted { "—" } } }
            td.num { @match latest_loss(r, progress.as_ref()) { Some(l) => (format!("{l:.4}")), None => span.muted { "—" } } }
            td { (crate::format::utc(r.created_at)) }
            td { (model_link(model)) }
        } });
    }
    let older = shown.last().map(|r| r.id).filter(|id| all.first().is_some_and(|f| f.id < *id));
    let body = html! {
        (subnav())
        p { a.button #new-job href=(NEW_JOB_PATH) { "Start a fine-tune" } }
        p {
            (all.len()) " fine-tuning jobs on this node. A job trains a LoRA adapter on Datanet versions; its owner then "
            "registers the model on chain and governance makes it live."
        }
        @if rows.is_empty() { p.muted { "No job here." } }
        @else {
            (table("Fine-tuning jobs, newest first", &[
                "Job", "Name", "Owner", "Base model", "Datanet versions", "State", "Progress", "Latest loss", "Submitted", "Model",
            ], html! { @for r in rows { (r) } }))
        }
        nav.pager aria-label="Pages of jobs" {
            @if before != u64::MAX { a href=(format!("/models/jobs?limit={limit}")) rel="prev" { "← Newest" } }
            @if let Some(id) = older { a href=(format!("/models/jobs?limit={limit}&before={id}")) rel="next" { "Older →" } }
        }
        p.muted { "Jobs are kept by the node that runs them; the chain holds the models they register (see the Explorer)." }
    };
    Ok(Page::new("Fine-tuning jobs", Section::Models, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: JobStatus) -> JobRecord {
        JobRecord {
            id: 1,
            owner: Address::ZERO,
            spec: factory::JobSpec::new(vec![factory::DatanetVersion { datanet: 3, version: 2 }]),
            status,
            error: None,
            created_at: 0,
            output: None,
            artefacts: None,
            licences: vec![],
            max_steps: 10,
        }
    }

    #[test]
    fn progress_is_a_bounded_percentage() {
        let running = record(JobStatus::Running);
        assert_eq!(percent(&running, None), None);
        assert_eq!(percent(&running, Some(&Progress::at("training", 3, 8))), Some(37));
        assert_eq!(percent(&running, Some(&Progress::at("training", 9, 8))), Some(100));
        assert_eq!(percent(&running, Some(&Progress::at("training", 0, 0))), None);
        assert_eq!(percent(&record(JobStatus::Succeeded), None), Some(100));
        let mut p = Progress::at("training", 1, 2);
        p.loss = Some(2.5);
        assert_eq!(latest_loss(&running, Some(&p)), Some(2.5));
        assert_eq!(latest_loss(&running, None), None);
    }

    #[test]
    fn versions_link_to_their_datanet() {
        let html = versions(&record(JobStatus::Queued)).into_string();
        assert!(html.contains("href=\"/datanets/3#versions\"") && html.contains("d3 v2"), "{html}");
    }
}
