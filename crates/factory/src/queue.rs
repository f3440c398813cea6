//! The node's job queue: jobs persisted as files under `<data-dir>/jobs/`, run
//! one at a time by a worker thread, resumed after a restart from their last
//! checkpoint, cancellable, with progress for watchers.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ml::{Model, TextTokenizer};
use primitives::rows::VersionRow;
use primitives::{Address, B256};
use serde::{Deserialize, Serialize};

use crate::FactoryError;
use crate::data::Dataset;
use crate::job::{self, JobOutput, Progress, job_dir};
use crate::spec::{DatanetVersion, JobSpec};

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled)
    }
}

/// Blob hashes of a finished job's artefacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artefacts {
    pub adapter_config: B256,
    pub adapter_model: B256,
    pub checkpoints: Vec<B256>,
    pub training_log: B256,
    pub metrics: B256,
    pub sketch: B256,
}

/// A job as persisted in `<jobs>/<id>/job.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    pub id: u64,
    pub owner: Address,
    pub spec: JobSpec,
    pub status: JobStatus,
    #[serde(default)]
    pub error: Option<String>,
    pub created_at: u64,
    #[serde(default)]
    pub output: Option<JobOutput>,
    #[serde(default)]
    pub artefacts: Option<Artefacts>,
    /// The licences of the Datanet versions, in the order of `spec.datanets`.
    #[serde(default)]
    pub licences: Vec<String>,
    /// The most optimiser steps this job runs ([`JobSpec::max_steps`] at
    /// submission), counted against its owner's quota while it waits or runs.
    #[serde(default)]
    pub max_steps: u64,
}

impl JobRecord {
    /// The metrics bytes registered on-chain: canonical JSON of the metrics and
    /// the artefacts' blob hashes (where serving nodes fetch the adapter).
    pub fn metrics_bytes(&self) -> Option<Vec<u8>> {
        let (o, a) = (self.output.as_ref()?, self.artefacts.as_ref()?);
        let v = serde_json::json!({ "metrics": o.metrics, "artefacts": a });
        Some(crate::spec::canonical_json(&v).into_bytes())
    }
}

/// How much one owner may have waiting in the queue (governed by the node's
/// configuration, `openledger.toml`). A job counts from submission until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobLimits {
    /// Jobs queued or running per owner.
    pub max_queued_jobs_per_owner: usize,
    /// Optimiser steps ([`JobSpec::max_steps`]) of an owner's queued and running jobs.
    pub max_queued_steps_per_owner: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits { max_queued_jobs_per_owner: 4, max_queued_steps_per_owner: 20_000 }
    }
}

/// What the queue needs from the node.
pub trait FactoryEnv: Send + Sync + 'static {
    /// The base model a job names, loaded: `None` is the node's base model, and a
    /// name is that base model's model id (`m1`) or base model hash. Anything else
    /// is [`FactoryError::UnknownBaseModel`] (never a file the node looks up).
    fn base_model(&self, name: Option<&str>) -> Result<(Arc<Model>, Arc<TextTokenizer>), FactoryError>;
    /// Refuse versions that do not exist or are closed to training; returns their licences.
    fn check_versions(&self, versions: &[DatanetVersion]) -> Result<Vec<String>, FactoryError>;
    /// The number of rows of a version (from the chain), for the step quota.
    fn row_count(&self, v: DatanetVersion) -> Result<u64, FactoryError>;
    /// Refuse (`FactoryError::NotMember`) a trainer who may not train on one of the
    /// versions: allow-list Datanets are trainable only by their members, owner and curators.
    fn may_train(&self, trainer: Address, versions: &[DatanetVersion]) -> Result<(), FactoryError>;
    /// The rows of a version, checked against the chain.
    fn rows(&self, v: DatanetVersion) -> Result<Vec<VersionRow>, FactoryError>;
    /// Store bytes in the blob store; returns their content hash.
    fn put_blob(&self, bytes: Vec<u8>) -> Result<B256, FactoryError>;
    fn now(&self) -> u64;
}

struct State {
    jobs: HashMap<u64, JobRecord>,
    cancel: HashMap<u64, Arc<AtomicBool>>,
    progress: HashMap<u64, Progress>,
    next_id: u64,
    stopping: bool,
}

/// The persisted queue and its worker.
pub struct JobQueue {
    root: PathBuf,
    env: Arc<dyn FactoryEnv>,
    limits: JobLimits,
    state: Mutex<State>,
    wake: Condvar,
    worker: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn io(p: &Path) -> impl Fn(std::io::Error) -> FactoryError + '_ {
    move |e| FactoryError::Io(format!("{}: {e}", p.display()))
}

impl JobQueue {
    /// Open the queue in `root` (created if missing); jobs that were running
    /// when the node stopped go back to the queue and resume from their checkpoint.
    pub fn open(root: &Path, env: Arc<dyn FactoryEnv>) -> Result<Arc<JobQueue>, FactoryError> {
        Self::open_with_limits(root, env, JobLimits::default())
    }

    /// [`JobQueue::open`] with per-owner quotas.
    pub fn open_with_limits(
        root: &Path,
        env: Arc<dyn FactoryEnv>,
        limits: JobLimits,
    ) -> Result<Arc<JobQueue>, FactoryError> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let mut jobs = HashMap::new();
        let mut next_id = 1;
        for e in std::fs::read_dir(root).map_err(io(root))? {
            let e = e.map_err(io(root))?;
            let p = e.path().join("job.json");
            let Ok(text) = std::fs::read_to_string(&p) else { continue };
            let mut r: JobRecord =
                serde_json::from_str(&text).map_err(|err| FactoryError::Io(format!("{}: {err}", p.display())))?;
            if r.status == JobStatus::Running {
                r.status = JobStatus::Queued;
            }
            next_id = next_id.max(r.id + 1);
            jobs.insert(r.id, r);
        }
        let q = Arc::new(JobQueue {
            root: root.to_path_buf(),
            env,
            limits,
            state: Mutex::new(State {
                jobs,
                cancel: HashMap::new(),
                progress: HashMap::new(),
                next_id,
                stopping: false,
            }),
            wake: Condvar::new(),
            worker: Mutex::new(None),
        });
        Ok(q)
    }

    /// Start the worker thread (once; not after [`JobQueue::stop`]).
    pub fn start(self: &Arc<Self>) {
        let mut worker = self.worker.lock().unwrap();
        if worker.is_some() || self.state.lock().unwrap().stopping {
            return;
        }
        let q = self.clone();
        let handle = std::thread::Builder::new()
            .name("factory".into())
            .spawn(move || q.work())
            .expect("spawn the factory worker");
        *worker = Some(handle);
    }

    /// Stop picking up jobs: the running one stops at its next step (its state
    /// saved, to resume at the next start) and the worker thread is joined.
    pub fn stop(&self) {
        {
            let mut st = self.state.lock().unwrap();
            st.stopping = true;
            for c in st.cancel.values() {
                c.store(true, Ordering::SeqCst);
            }
            self.wake.notify_all();
        }
        let handle = self.worker.lock().unwrap().take();
        if let Some(h) = handle
            && h.thread().id() != std::thread::current().id()
            && h.join().is_err()
        {
            tracing::error!("the factory worker panicked");
        }
    }

    fn persist(&self, r: &JobRecord) -> Result<(), FactoryError> {
        let dir = job_dir(&self.root, r.id);
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let p = dir.join("job.json");
        let tmp = dir.join("job.json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(r).expect("json")).map_err(io(&tmp))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &p).map_err(io(&p))
    }

    /// Check and enqueue a job; it is durable when this returns.
    pub fn submit(&self, owner: Address, spec: JobSpec) -> Result<JobRecord, FactoryError> {
        spec.validate()?;
        let licences = self.env.check_versions(&spec.datanets)?;
        self.env.may_train(owner, &spec.datanets)?;
        // Refuse what the model can show to be wrong before queueing.
        let (model, _) = self.env.base_model(spec.base_model.as_deref())?;
        spec.lora()?.validate(&model.config)?;
        if spec.max_seq_len > model.config.max_position_embeddings {
            return Err(FactoryError::Spec(format!(
                "maxSeqLen {} is beyond the base model's context of {}",
                spec.max_seq_len, model.config.max_position_embeddings
            )));
        }
        let mut rows = 0u64;
        for v in &spec.datanets {
            rows = rows.saturating_add(self.env.row_count(*v)?);
        }
        let max_steps = spec.max_steps(rows);
        let mut st = self.state.lock().unwrap();
        // Counted under the lock, so concurrent submissions cannot both pass.
        let (jobs, steps) = st
            .jobs
            .values()
            .filter(|r| r.owner == owner && !r.status.is_final())
            .fold((0usize, 0u64), |(n, s), r| (n + 1, s.saturating_add(r.max_steps)));
        let l = self.limits;
        if jobs >= l.max_queued_jobs_per_owner {
            return Err(FactoryError::Quota(format!(
                "{owner} already has {jobs} jobs queued or running, the most this node allows per owner \
                 ({}); wait for one to end or cancel one",
                l.max_queued_jobs_per_owner
            )));
        }
        if steps.saturating_add(max_steps) > l.max_queued_steps_per_owner {
            return Err(FactoryError::Quota(format!(
                "this job runs up to {max_steps} training steps and {owner} already has {steps} queued or running; \
                 this node allows {} per owner (set `steps`, or wait for a job to end)",
                l.max_queued_steps_per_owner
            )));
        }
        let id = st.next_id;
        let r = JobRecord {
            id,
            owner,
            spec,
            status: JobStatus::Queued,
            error: None,
            created_at: self.env.now(),
            output: None,
            artefacts: None,
            licences,
            max_steps,
        };
        self.persist(&r)?;
        st.next_id += 1;
        st.jobs.insert(id, r.clone());
        self.wake.notify_all();
        Ok(r)
    }

    pub fn get(&self, id: u64) -> Option<(JobRecord, Option<Progress>)> {
        let st = self.state.lock().unwrap();
        st.jobs.get(&id).map(|r| (r.clone(), st.progress.get(&id).cloned()))
    }

    pub fn list(&self) -> Vec<JobRecord> {
        let st = self.state.lock().unwrap();
        let mut v: Vec<JobRecord> = st.jobs.values().cloned().collect();
        v.sort_by_key(|r| r.id);
        v
    }

    /// Cancel a job (only its owner may).
    pub fn cancel(&self, id: u64, caller: Address) -> Result<JobRecord, FactoryError> {
        let mut st = self.state.lock().unwrap();
        let r = st.jobs.get(&id).cloned().ok_or(FactoryError::UnknownJob(id))?;
        if r.owner != caller {
            return Err(FactoryError::Forbidden(format!("job {id} belongs to {}", r.owner)));
        }
        match r.status {
            JobStatus::Queued => {
                let mut r = r;
                r.status = JobStatus::Cancelled;
                self.persist(&r)?;
                st.jobs.insert(id, r.clone());
                Ok(r)
            }
            JobStatus::Running => {
                if let Some(c) = st.cancel.get(&id) {
                    c.store(true, Ordering::SeqCst);
                }
                Ok(r)
            }
            _ => Err(FactoryError::Spec(format!("job {id} has already ended ({:?})", r.status))),
        }
    }

    fn work(self: Arc<Self>) {
        loop {
            let (id, flag) = {
                let mut st = self.state.lock().unwrap();
                loop {
                    if st.stopping {
                        return;
                    }
                    let next = st.jobs.values().filter(|r| r.status == JobStatus::Queued).map(|r| r.id).min();
                    if let Some(id) = next {
                        let flag = Arc::new(AtomicBool::new(false));
                        st.cancel.insert(id, flag.clone());
                        let r = st.jobs.get_mut(&id).expect("listed");
                        r.status = JobStatus::Running;
                        let r = r.clone();
                        if let Err(e) = self.persist(&r) {
                            tracing::error!("job {id}: {e}");
                        }
                        break (id, flag);
                    }
                    st = self.wake.wait(st).unwrap();
                }
            };
            let result = self.run_one(id, &flag);
            let mut st = self.state.lock().unwrap();
            st.cancel.remove(&id);
            let stopping = st.stopping;
            let Some(r) = st.jobs.get_mut(&id) else { continue };
            match result {
                Ok(Some((out, art))) => {
                    r.status = JobStatus::Succeeded;
                    r.output = Some(out);
                    r.artefacts = Some(art);
                }
                // Cancelled by the node stopping: resume on the next start.
                Ok(None) if stopping => r.status = JobStatus::Running,
                Ok(None) => r.status = JobStatus::Cancelled,
                Err(e) => {
                    tracing::warn!("job {id} failed: {e}");
                    r.status = JobStatus::Failed;
                    r.error = Some(e.to_string());
                }
            }
            let r = r.clone();
            if let Err(e) = self.persist(&r) {
                tracing::error!("job {id}: {e}");
            }
        }
    }

    fn run_one(&self, id: u64, cancel: &AtomicBool) -> Result<Option<(JobOutput, Artefacts)>, FactoryError> {
        let r = self.state.lock().unwrap().jobs.get(&id).cloned().ok_or(FactoryError::UnknownJob(id))?;
        let (model, tok) = self.env.base_model(r.spec.base_model.as_deref())?;
        let mut rows = Vec::new();
        for v in &r.spec.datanets {
            rows.extend(self.env.rows(*v)?);
        }
        let eos = tok.eos_ids(&model.config.eos_token_ids).first().copied();
        let data = Dataset::build(&rows, &tok, eos, r.spec.max_seq_len, r.spec.seed, r.spec.validation_percent)?;
        let dir = job_dir(&self.root, id);
        let mut report = |p: Progress| {
            self.state.lock().unwrap().progress.insert(id, p);
        };
        let Some(out) = job::run(&r.spec, &model, &tok, &data, &dir, cancel, &mut report)? else {
            return Ok(None);
        };
        let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| FactoryError::Io(format!("{name}: {e}")));
        let adapter_config = self.env.put_blob(read("adapter/adapter_config.json")?)?;
        let adapter_model = self.env.put_blob(read("adapter/adapter_model.safetensors")?)?;
        let mut checkpoints = Vec::new();
        for c in &out.checkpoints {
            checkpoints.push(self.env.put_blob(read(&c.file)?)?);
        }
        let training_log = self.env.put_blob(read(&out.log_file)?)?;
        let metrics = self.env.put_blob(serde_json::to_vec_pretty(&out.metrics).expect("json"))?;
        let sketch = self.env.put_blob(read(&out.sketch_file)?)?;
        Ok(Some((out, Artefacts { adapter_config, adapter_model, checkpoints, training_log, metrics, sketch })))
    }

    /// The directory of a job's files.
    pub fn dir(&self, id: u64) -> PathBuf {
        job_dir(&self.root, id)
    }
}
