//! The validators' verifier service: for every challenge of an attribution
//! record whose record and prompt were revealed, recompute the record from
//! public inputs (`AttributionService::judge`), sign the verdict with this
//! validator's consensus key and submit it (`IAttribution.submitVerdict`).
//! The chain counts the signature by the power the validator had in the set
//! snapshot when the challenge opened; more than two thirds decides.
//!
//! A verifier that cannot judge (the model's artefacts are not here) signs
//! nothing, and the challenge lapses if no two thirds can. Each validator
//! submits its own signature in its own transaction (sent by `relayer`, any
//! funded account), so no gossip of signatures is needed.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_sol_types::SolCall;
use chain::Chain;
use primitives::abi::{IAttribution, verdict_digest};
use primitives::{B256, Bytes};
use runtime::attribution::{AWAITING_VERDICT, AttributionRead};

use crate::attribution::AttributionService;
use crate::worker::Periodic;

pub struct Verifier {
    pub chain: Arc<Chain>,
    pub attribution: Arc<AttributionService>,
    pub key: keys::ConsensusKey,
    /// Pays the gas of verdict transactions.
    pub relayer: keys::SecretKey,
    pub handle: tokio::runtime::Handle,
    /// Challenges judged here (signed, or found unjudgeable), not looked at again.
    done: Mutex<HashSet<B256>>,
}

/// What the verifier did about one challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    Signed { receipt: B256, record_correct: bool },
    CannotJudge { receipt: B256, why: String },
}

impl Verifier {
    pub fn new(
        chain: Arc<Chain>,
        attribution: Arc<AttributionService>,
        key: keys::ConsensusKey,
        relayer: keys::SecretKey,
        handle: tokio::runtime::Handle,
    ) -> Arc<Verifier> {
        Arc::new(Verifier { chain, attribution, key, relayer, handle, done: Mutex::new(HashSet::new()) })
    }

    /// Look for revealed challenges every `every`, on a thread of its own
    /// (recomputing a record runs the model), until the returned [`Periodic`]
    /// is stopped or dropped.
    pub fn start(self: &Arc<Self>, every: Duration) -> std::io::Result<Periodic> {
        let me = self.clone();
        Periodic::spawn("verifier", every, move || {
            if let Err(e) = me.run_once() {
                tracing::warn!("attribution verifier: {e}");
            }
        })
    }

    /// Judge every revealed challenge this validator has not signed yet.
    pub fn run_once(&self) -> Result<Vec<Judged>, String> {
        let me = self.key.public();
        let todo: Vec<(B256, u64, runtime::attribution::Revealed)> = {
            let st = self.chain.snapshot().map_err(|e| e.to_string())?;
            let done = self.done.lock().unwrap();
            let mut v = Vec::new();
            for h in st.open_challenges().map_err(|e| e.to_string())? {
                if done.contains(&h) {
                    continue;
                }
                let Some(c) = st.challenge(&h).map_err(|e| e.to_string())? else { continue };
                if c.status != AWAITING_VERDICT || c.signers.contains(&me) {
                    continue;
                }
                let set = runtime::attribution::judging_set(&st, c.openedAt).map_err(|e| e.to_string())?;
                if !set.consensusKeys.contains(&me) {
                    continue;
                }
                if let Some(r) = st.revealed(&h).map_err(|e| e.to_string())? {
                    v.push((h, c.openedAt, r));
                }
            }
            v
        };
        let mut out = Vec::new();
        for (h, opened_at, revealed) in todo {
            let judged = match self.attribution.judge(h, &revealed.record, &revealed.prompt) {
                Ok((correct, checks)) => {
                    for c in checks.iter().filter(|c| !c.ok) {
                        tracing::info!("challenge of {h}: check failed: {} {}", c.check, c.detail);
                    }
                    let digest = verdict_digest(self.chain.chain_id(), h, opened_at, correct);
                    let call = IAttribution::submitVerdictCall {
                        receiptHash: h,
                        recordCorrect: correct,
                        consensusKeys: vec![me],
                        signatures: vec![Bytes::from(self.key.sign(digest.as_slice()).to_vec())],
                    };
                    crate::tx::submit_and_wait(
                        &self.chain,
                        &self.handle,
                        &self.relayer,
                        runtime::attribution::ADDRESS,
                        0,
                        call.abi_encode(),
                        1_500_000,
                    )?;
                    tracing::info!(
                        "challenge of {h}: signed the verdict: record {}",
                        if correct { "right" } else { "wrong" }
                    );
                    Judged::Signed { receipt: h, record_correct: correct }
                }
                Err(why) => {
                    tracing::warn!("challenge of {h}: cannot judge here: {why}");
                    Judged::CannotJudge { receipt: h, why }
                }
            };
            self.done.lock().unwrap().insert(h);
            out.push(judged);
        }
        Ok(out)
    }
}
