//! Who may read which blob through `GET /v1/blobs/{hash}`: deny by default.
//!
//! A blob is served only when this node can say what it is:
//! - a contribution's file, rows or findings report: to whoever may read its
//!   Datanet (`datanets::DatanetService::reader_role`: anyone for a public
//!   Datanet; members, owner, curators, serving operators of live models that
//!   name it, and validators while a challenge is open, for an allow-list one);
//! - an artefact of a **live** model (adapter, adapter config, checkpoints,
//!   gradient sketch, training log, and every artefact its metrics name): to
//!   anyone, so serving nodes and verifiers can fetch and check them;
//! - an artefact of a training job of this node that no live model names: to
//!   the job's owner only (a job on an allow-list Datanet's rows must not
//!   publish them through its adapter before governance makes a model of it live);
//! - an attribution record this node made: to the payer and the serving
//!   operator, to anyone when the payer published it (`serve::RecordAccess`);
//! - an agent blob stored through `POST /v1/agents/blobs`: a public one to
//!   anyone, a memory snapshot to whom the agents module's `canReadMemory`
//!   allows (`crate::agents_route::AgentBlobs`).
//!
//! Everything else (the prompts kept for challenges, records from before a
//! restart, unknown hashes) is refused.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chain::Chain;
use primitives::{Address, B256, ModelId};
use runtime::models::{LIVE, ModelRecord, ModelsRead};

use crate::agents_route::AgentBlobs;
use crate::attribution::AttributionService;

/// The node's [`blobs::BlobAccessPolicy`].
pub struct NodeBlobPolicy {
    chain: Arc<Chain>,
    datanets: datanets::DatanetBlobPolicy,
    jobs: Arc<factory::JobQueue>,
    attribution: Option<Arc<AttributionService>>,
    agents: Option<Arc<AgentBlobs>>,
    /// The artefacts of live models, at a state height.
    live: Mutex<Option<(u64, Arc<HashSet<B256>>)>>,
}

impl NodeBlobPolicy {
    pub fn new(
        chain: Arc<Chain>,
        datanets: Arc<datanets::DatanetService>,
        jobs: Arc<factory::JobQueue>,
        attribution: Option<Arc<AttributionService>>,
        agents: Option<Arc<AgentBlobs>>,
    ) -> NodeBlobPolicy {
        NodeBlobPolicy {
            chain,
            datanets: datanets::DatanetBlobPolicy(datanets),
            jobs,
            attribution,
            agents,
            live: Mutex::new(None),
        }
    }

    /// Every artefact hash of the models live at the latest state (recomputed once per block).
    fn live_artefacts(&self) -> Result<Arc<HashSet<B256>>, String> {
        let st = self.chain.snapshot().map_err(|e| e.to_string())?;
        let height = runtime::state_height(&st).map_err(|e| e.to_string())?;
        if let Some((h, set)) = &*self.live.lock().unwrap()
            && *h == height
        {
            return Ok(set.clone());
        }
        let mut set = HashSet::new();
        for id in 1..=st.model_count().map_err(|e| e.to_string())? {
            if let Some(r) = st.model(ModelId(id)).map_err(|e| e.to_string())?
                && r.state == LIVE
            {
                set.extend(model_artefacts(&r));
            }
        }
        let set = Arc::new(set);
        *self.live.lock().unwrap() = Some((height, set.clone()));
        Ok(set)
    }
}

/// The blob hashes a model record names: its adapter, checkpoints, sketch and
/// training log, and the artefacts its metrics bytes list.
pub fn model_artefacts(r: &ModelRecord) -> Vec<B256> {
    let mut v = vec![r.adapterHash, r.sketchHash, r.trainingLogHash];
    v.extend(r.checkpointHashes.iter().copied());
    if let Ok(m) = serde_json::from_slice::<serde_json::Value>(&r.metrics)
        && let Some(a) = m["artefacts"].as_object()
    {
        for x in a.values() {
            let hashes = match x.as_array() {
                Some(list) => list.iter().filter_map(|h| h.as_str()).collect::<Vec<_>>(),
                None => x.as_str().into_iter().collect(),
            };
            v.extend(hashes.into_iter().filter_map(|h| h.parse::<B256>().ok()));
        }
    }
    v.retain(|h| *h != B256::ZERO);
    v
}

fn job_artefacts(a: &factory::Artefacts) -> impl Iterator<Item = &B256> {
    [&a.adapter_config, &a.adapter_model, &a.training_log, &a.metrics, &a.sketch].into_iter().chain(&a.checkpoints)
}

impl blobs::BlobAccessPolicy for NodeBlobPolicy {
    fn allowed(&self, hash: &B256, caller: Option<Address>) -> Result<bool, String> {
        if let Some(ok) = self.datanets.decide(hash, caller)? {
            return Ok(ok);
        }
        if let Some(ok) = self.agents.as_ref().map(|a| a.decide(hash, caller)).transpose()?.flatten() {
            return Ok(ok);
        }
        if self.live_artefacts()?.contains(hash) {
            return Ok(true);
        }
        if let Some(c) = caller
            && self
                .jobs
                .list()
                .iter()
                .any(|j| j.owner == c && j.artefacts.as_ref().is_some_and(|a| job_artefacts(a).any(|h| h == hash)))
        {
            return Ok(true);
        }
        if let Some(access) = self.attribution.as_ref().and_then(|a| a.record_blob_access(hash)) {
            return Ok(access.allows(caller));
        }
        Ok(false)
    }
}
