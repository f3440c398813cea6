//! Metering for OpenLoRA against the `inference` module: before generating,
//! reserve the most a request can cost against the payer's allowance for this
//! operator (what the chain says remains, minus what this node has reserved or
//! billed but not yet settled), so the node never serves more than it can
//! settle; afterwards bill what was delivered, sign an EIP-712 receipt with the
//! serving key, and settle receipts on-chain in batches that never exceed the
//! allowance. With a journal (`Meter::open`), every receipt is on disk
//! before the client sees it, and a restart settles what a crash left.

mod journal;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_sol_types::SolCall;
use chain::Chain;
use keys::SecretKey;
use primitives::abi::{IInference, InferenceReceipt, receipt_hash, receipt_signing_hash};
use primitives::system::Module;
use primitives::{Address, B256, Bytes};
use serde_json::json;
use serve::{Billing, BillingError, ModelEntry, Reservation, Usage, cost};

use crate::tx::TxFailure;
use crate::worker::Periodic;

/// Receipts settled per transaction at most.
const MAX_BATCH: usize = 64;

struct Signed {
    receipt: InferenceReceipt,
    signature: Vec<u8>,
    cost: u128,
    /// Settlement rounds that did not settle it.
    attempts: u32,
}

/// Rounds a receipt whose payer's allowance no longer covers it stays queued
/// (the payer may grant more) before it is dropped as refused.
const MAX_ALLOWANCE_ATTEMPTS: u32 = 32;

/// What the chain says of one receipt settled alone.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Settles,
    /// The payer's allowance does not cover it now; it may later.
    Uncovered(String),
    /// Refused for good (signature, nonce, model, prices, time, or any other
    /// refusal of the module's): it will never settle.
    Refused(String),
}

#[derive(Default)]
struct PayerState {
    reserved: u128,
    /// Tokens reserved by requests in flight under the payer's licences.
    licence_reserved: u64,
    /// Billed, not yet settled on-chain.
    unsettled: u128,
    next_nonce: u64,
}

#[derive(Default)]
struct State {
    payers: HashMap<Address, PayerState>,
    queue: Vec<Signed>,
    next_id: u64,
    /// Where billed receipts are kept until they settle (none: memory only).
    journal: Option<journal::Journal>,
}

impl State {
    /// Count a receipt billed to its payer and not yet settled.
    fn owe(&mut self, s: &Signed) {
        let p = self.payers.entry(s.receipt.payer).or_default();
        p.unsettled += s.cost;
        p.next_nonce = p.next_nonce.max(s.receipt.nonce + 1);
    }

    /// The receipt no longer counts against its payer (settled or dropped).
    fn forget(&mut self, s: &Signed) {
        if let Some(p) = self.payers.get_mut(&s.receipt.payer) {
            p.unsettled = p.unsettled.saturating_sub(s.cost);
        }
    }

    /// Rewrite the journal with only what is queued (logged on failure: the
    /// journal then holds receipts already settled, which a restart skips).
    fn compact(&mut self) {
        let Some(j) = self.journal.as_mut() else { return };
        if let Err(e) = j.rewrite(self.queue.iter()) {
            tracing::warn!("receipt journal not compacted: {e}");
        }
    }
}

/// The node's [`Billing`]: one serving operator.
pub struct Meter {
    chain: Arc<Chain>,
    /// `/metrics`: queued, stuck, settled and dropped receipts.
    metrics: Arc<serve::Metrics>,
    /// The operator's account: holds the bond, sends settlement transactions.
    operator: SecretKey,
    /// The registered serving key: signs receipts.
    serving: SecretKey,
    state: Mutex<State>,
    /// Held through a settlement round: the journal is compacted to the
    /// queue, so no round's batch may be in flight (out of the queue) then.
    round: Mutex<()>,
    handle: tokio::runtime::Handle,
    /// Attribution records waiting for their receipt to settle.
    to_post: Mutex<Option<Arc<crate::pending::PendingRecords>>>,
    /// Receipts settled whose record has not been posted (yet).
    settled: Mutex<std::collections::VecDeque<B256>>,
    /// Where a challenged record's bytes and prompt come from (the attribution service).
    revealer: Mutex<Option<Arc<Revealer>>>,
    /// Challenges already answered.
    revealed: Mutex<std::collections::HashSet<B256>>,
}

/// Record hash → (the record's canonical bytes, the prompt's token ids as u32 LE).
pub type Revealer = dyn Fn(&B256) -> Result<(Vec<u8>, Vec<u8>), String> + Send + Sync;

/// The settlement call of these receipts.
fn settle_call(batch: &[Signed]) -> Vec<u8> {
    settle(batch).abi_encode()
}

fn settle(batch: &[Signed]) -> IInference::settleCall {
    IInference::settleCall {
        receipts: batch.iter().map(|s| s.receipt.clone()).collect(),
        signatures: batch.iter().map(|s| Bytes::from(s.signature.clone())).collect(),
    }
}

/// The gas limit of a settlement transaction: what the inference module charges
/// for the call (so a change of its price never leaves batches out of gas),
/// plus the transaction's intrinsic and calldata gas and a margin.
fn settle_gas(batch: &[Signed], data: &[u8]) -> u64 {
    use runtime::Handler;
    settle(batch).gas() + 21_000 + 16 * data.len() as u64 + 50_000
}

/// Settled receipts remembered while their attribution record may still come.
const SETTLED_KEPT: usize = 10_000;

fn view<C: SolCall>(chain: &Chain, call: &C) -> Result<C::Return, String> {
    crate::tx::view_at(chain, Module::Inference.address(), call)
}

impl Meter {
    pub fn new(
        chain: Arc<Chain>,
        operator: SecretKey,
        serving: SecretKey,
        handle: tokio::runtime::Handle,
        metrics: Arc<serve::Metrics>,
    ) -> Arc<Meter> {
        Arc::new(Meter {
            chain,
            metrics,
            operator,
            serving,
            state: Mutex::new(State::default()),
            round: Mutex::new(()),
            handle,
            to_post: Mutex::new(None),
            settled: Mutex::new(Default::default()),
            revealer: Mutex::new(None),
            revealed: Mutex::new(Default::default()),
        })
    }

    /// A meter whose billed receipts are journaled at `journal` (created if
    /// missing). The receipts a previous run journaled and the chain has not
    /// settled are queued again, count against their payers' allowances, and
    /// keep nonces from being reused; the rest are left out.
    pub fn open(
        chain: Arc<Chain>,
        operator: SecretKey,
        serving: SecretKey,
        handle: tokio::runtime::Handle,
        metrics: Arc<serve::Metrics>,
        journal: &std::path::Path,
    ) -> Result<Arc<Meter>, String> {
        let (mut j, records) = journal::Journal::open(journal)
            .map_err(|e| format!("opening the receipt journal {}: {e}", journal.display()))?;
        let meter = Meter::new(chain, operator, serving, handle, metrics);
        let owed = meter.still_owed(records);
        {
            let mut st = meter.state.lock().unwrap();
            for s in &owed {
                st.owe(s);
            }
            if !owed.is_empty() {
                let value: u128 = owed.iter().map(|s| s.cost).sum();
                tracing::info!("{} receipts ({value} base units of OPEN) from the journal queued again", owed.len());
            }
            // Before any append: drops a torn tail and what settled.
            j.rewrite(owed.iter()).map_err(|e| format!("rewriting the receipt journal {}: {e}", journal.display()))?;
            st.queue = owed;
            st.journal = Some(j);
        }
        meter.publish_metrics();
        Ok(meter)
    }

    /// The journaled receipts the chain has not settled, each once. One the
    /// node cannot check (its state unreadable) is kept: settlement sorts it out.
    fn still_owed(&self, records: Vec<Signed>) -> Vec<Signed> {
        let me = self.operator.address();
        let mut last_nonces: HashMap<Address, u64> = HashMap::new();
        let mut seen = HashSet::new();
        let mut owed = Vec::new();
        for s in records {
            let hash = receipt_hash(&s.receipt);
            if s.receipt.operator != me {
                tracing::warn!(
                    "journaled receipt {hash} names operator {}, not this node's {me}: skipped",
                    s.receipt.operator
                );
                continue;
            }
            if !seen.insert(hash) {
                continue;
            }
            let last = match last_nonces.get(&s.receipt.payer) {
                Some(n) => Ok(*n),
                None => self.allowance(s.receipt.payer).map(|(_, n)| n),
            };
            let settled = last.and_then(|n| {
                last_nonces.insert(s.receipt.payer, n);
                if s.receipt.nonce <= n {
                    return Ok(true);
                }
                let r = view(&self.chain, &IInference::settledReceiptCall { receiptHash: hash })?;
                Ok(r.settledAt != 0 || r.payer != Address::ZERO)
            });
            match settled {
                Ok(true) => {}
                Ok(false) => owed.push(s),
                Err(e) => {
                    tracing::warn!("journaled receipt {hash}: its settlement could not be checked ({e}); queued again");
                    owed.push(s);
                }
            }
        }
        owed
    }

    /// Post these records (phase two) once their receipts settle.
    /// Records journaled before a restart are posted too: those whose receipt
    /// settled (its hold awaits a record) on the next pass, those not settled
    /// yet when they settle; those already posted or past are dropped.
    pub fn post_attributions_from(&self, to_post: Arc<crate::pending::PendingRecords>) {
        use runtime::inference::InferenceRead;
        use runtime::inference::records::OPEN;
        match self.chain.snapshot() {
            Ok(st) => {
                let mut settled = self.settled.lock().unwrap();
                for h in to_post.receipts() {
                    match st.hold(&h) {
                        Ok(Some(hold)) if hold.status == OPEN => settled.push_back(h),
                        Ok(Some(_)) => drop(to_post.take(&h)),
                        Ok(None) => {}
                        Err(e) => tracing::warn!("pending attribution record of {h}: {e}"),
                    }
                }
            }
            Err(e) => tracing::warn!("pending attribution records not checked against the chain: {e}"),
        }
        *self.to_post.lock().unwrap() = Some(to_post);
    }

    /// Post the records of settled receipts. A receipt can settle before its
    /// record is computed (billing comes first), so settled receipts without a
    /// record yet are remembered (the most recent `SETTLED_KEPT`) and posted
    /// when their record arrives.
    fn post_attributions(&self, newly_settled: &[B256], by: Option<Instant>) {
        let Some(q) = self.to_post.lock().unwrap().clone() else { return };
        let ready: Vec<B256> = {
            let mut settled = self.settled.lock().unwrap();
            settled.extend(newly_settled.iter().copied());
            while settled.len() > SETTLED_KEPT {
                settled.pop_front();
            }
            settled.iter().filter(|h| q.contains(h)).copied().collect()
        };
        self.settled.lock().unwrap().retain(|h| !ready.contains(h));
        for h in &ready {
            let Some(crate::pending::Pending { record, credits, retrieved }) = q.take(h) else { continue };
            let gas = 500_000 + 30_000 * credits.len() as u64 + 20_000 * retrieved.len() as u64;
            let data = if retrieved.is_empty() {
                IInference::postAttributionCall { receiptHash: *h, recordHash: record, credits }.abi_encode()
            } else {
                let retrieved = retrieved
                    .iter()
                    .map(|(d, v)| primitives::abi::DatanetVersionRef { datanetId: *d, version: *v })
                    .collect();
                IInference::postAttributionRetrievedCall { receiptHash: *h, recordHash: record, credits, retrieved }
                    .abi_encode()
            };
            if let Err(e) = self.send(data, gas, by) {
                tracing::warn!("attribution record of {h} not posted (the fallback will pay): {e}");
            }
        }
    }

    /// Answer challenges of this operator's records by revealing them.
    pub fn reveal_challenges_with(&self, f: Arc<Revealer>) {
        *self.revealer.lock().unwrap() = Some(f);
    }

    /// Reveal the record and prompt of every challenge of this operator's
    /// records still waiting for them (losing a challenge by silence slashes).
    /// Returns how many were revealed.
    pub fn reveal_challenged(&self) -> Result<usize, String> {
        use runtime::attribution::{AWAITING_REVEAL, AttributionRead};
        use runtime::inference::InferenceRead;
        let Some(f) = self.revealer.lock().unwrap().clone() else { return Ok(0) };
        let me = self.operator.address();
        let todo: Vec<(B256, B256)> = {
            let st = self.chain.snapshot().map_err(|e| e.to_string())?;
            let done = self.revealed.lock().unwrap();
            let mut v = Vec::new();
            for h in st.open_challenges().map_err(|e| e.to_string())? {
                let Some(c) = st.challenge(&h).map_err(|e| e.to_string())? else { continue };
                if c.operator != me || c.status != AWAITING_REVEAL || done.contains(&h) {
                    continue;
                }
                if let Some(hold) = st.hold(&h).map_err(|e| e.to_string())? {
                    v.push((h, hold.recordHash));
                }
            }
            v
        };
        let mut n = 0;
        for (h, record_hash) in todo {
            let (record, prompt) = f(&record_hash)?;
            let gas = 150_000 + 40 * (record.len() + prompt.len()) as u64;
            let call = primitives::abi::IAttribution::revealCall {
                receiptHash: h,
                record: record.into(),
                prompt: prompt.into(),
            };
            self.send_to(runtime::attribution::ADDRESS, call.abi_encode(), gas, None)?;
            tracing::info!("revealed the challenged attribution record of {h}");
            self.revealed.lock().unwrap().insert(h);
            n += 1;
        }
        Ok(n)
    }

    pub fn operator(&self) -> Address {
        self.operator.address()
    }

    /// (remaining + pending release, last settled nonce) for a payer on-chain.
    /// The payer's licence of `model` if it covers a request of up to `want`
    /// tokens now: open, within its time, and (a volume licence) with `want`
    /// tokens left beyond those reserved by the payer's requests in flight.
    /// A receipt billed under it that another settles past is paid by the
    /// allowance at settlement, as the chain decides.
    fn covering_licence(&self, payer: Address, model: u64, want: u64) -> Result<Option<u64>, BillingError> {
        let id = view(&self.chain, &IInference::licenceOfCall { holder: payer, modelId: model })
            .map_err(BillingError::Unavailable)?;
        if id == 0 {
            return Ok(None);
        }
        let l = view(&self.chain, &IInference::licenceCall { licenceId: id }).map_err(BillingError::Unavailable)?;
        let height = self.chain.head().header.number;
        if l.closed || height < l.start || (l.end != 0 && height >= l.end) {
            return Ok(None);
        }
        if l.tokens != 0 {
            let in_flight = self.state.lock().unwrap().payers.get(&payer).map_or(0, |p| p.licence_reserved);
            if want.saturating_add(in_flight) > l.tokensLeft {
                return Ok(None);
            }
        }
        Ok(Some(id))
    }

    /// What licence `id` would draw now for a receipt of `tokens` (the chain's rule).
    fn licence_draw(&self, id: u64, tokens: u64) -> Option<u128> {
        let l = view(&self.chain, &IInference::licenceCall { licenceId: id }).ok()?;
        let height = self.chain.head().header.number;
        runtime::inference::licences::next_draw(&l, tokens, height).map(|d| d.0)
    }

    fn allowance(&self, payer: Address) -> Result<(u128, u64), String> {
        let a = view(&self.chain, &IInference::allowanceCall { payer, operator: self.operator.address() })?;
        Ok((a.remaining.saturating_add(a.pendingRelease), a.lastNonce))
    }

    /// The agent whose wallet `payer` is (0: none).
    fn agent_of(&self, payer: Address) -> Result<u64, BillingError> {
        use crate::tx::{ViewError, call_view};
        use primitives::abi::{IAgents, UnknownFunction};
        match call_view(&self.chain, Module::Agents.address(), &IAgents::agentOfWalletCall { wallet: payer }) {
            Ok(id) => Ok(id),
            // A chain whose runtime has no agents module has no agent wallets.
            Err(ViewError::Reverted(d)) if d.starts_with(&<UnknownFunction as alloy_sol_types::SolError>::SELECTOR) => {
                Ok(0)
            }
            Err(e) => Err(BillingError::Unavailable(format!("agents.agentOfWallet: {e}"))),
        }
    }

    /// When `payer` is an agent's wallet, whether the agents module lets it pay
    /// for `model` now (not frozen, the model within its limits): a receipt it
    /// refuses would never settle, so the node refuses the request instead.
    fn agent_may_pay(&self, payer: Address, model: u64) -> Result<(), BillingError> {
        use primitives::abi::IAgents;
        let agent = self.agent_of(payer)?;
        if agent == 0 {
            return Ok(());
        }
        let verdict = crate::tx::call_view(
            &self.chain,
            Module::Agents.address(),
            &IAgents::canServeCall { wallet: payer, modelId: model },
        )
        .map_err(|e| BillingError::Unavailable(format!("agents.canServe: {e}")))?;
        if !verdict.ok {
            return Err(BillingError::Refused(format!(
                "{payer} is the wallet of agent {agent}, which may not pay for m{model} now: {}",
                verdict.reason
            )));
        }
        Ok(())
    }

    /// Start the settlement loop: every `every`, settle what is queued and
    /// answer challenges. It runs until the returned [`Periodic`] is stopped or dropped.
    pub fn start(self: &Arc<Self>, every: Duration) -> std::io::Result<Periodic> {
        let me = self.clone();
        Periodic::spawn("settlement", every, move || {
            if let Err(e) = me.settle_once() {
                tracing::warn!("settlement: {e}");
            }
            if let Err(e) = me.reveal_challenged() {
                tracing::warn!("answering an attribution challenge: {e}");
            }
        })
    }

    /// Receipts billed and not yet settled.
    pub fn queued(&self) -> usize {
        self.state.lock().unwrap().queue.len()
    }

    /// Whether receipt `hash` was billed here and waits in the queue to settle
    /// (one hash per queued receipt: the queue is what one settlement thread keeps up with).
    pub fn is_queued(&self, hash: &B256) -> bool {
        self.state.lock().unwrap().queue.iter().any(|s| receipt_hash(&s.receipt) == *hash)
    }

    /// Submit one settlement transaction for up to `MAX_BATCH` queued receipts
    /// and wait for its block. Returns how many settled.
    ///
    /// A batch settles all or nothing, so one receipt the chain refuses would
    /// hold back every other for ever. When a batch reverts, each receipt is
    /// tried alone against the chain's state (an `eth_call`, nothing sent):
    /// one refused for good is dropped and logged with its hash and the
    /// reason; one its payer's allowance no longer covers waits (up to
    /// `MAX_ALLOWANCE_ATTEMPTS` rounds); the rest go back to the head of the
    /// queue, to settle in the next round. A transient failure (not admitted,
    /// not mined in time) puts the whole batch back.
    pub fn settle_once(&self) -> Result<usize, String> {
        self.settle_round(None)
    }

    /// Settle what is queued before the node stops: rounds of
    /// [`Meter::settle_once`] until the queue is empty, a round makes no
    /// progress, or `within` has passed (every transaction's wait ends by
    /// then). Call it after the settlement thread has stopped and before the
    /// chain stops. It blocks, on a thread of its own (so any thread, even
    /// one of the runtime, may call it). Returns how many receipts are left;
    /// those are logged, and their payers keep that part of their allowance.
    pub fn flush(&self, within: Duration) -> usize {
        if self.queued() == 0 {
            return 0;
        }
        let deadline = Instant::now() + within;
        std::thread::scope(|s| {
            s.spawn(|| {
                while self.queued() > 0 && Instant::now() < deadline && !self.chain.is_stopped() {
                    let before = self.queued();
                    if let Err(e) = self.settle_round(Some(deadline)) {
                        tracing::warn!("settlement on stop: {e}");
                        if self.queued() >= before {
                            break;
                        }
                    }
                }
            });
        });
        let st = self.state.lock().unwrap();
        if !st.queue.is_empty() {
            let value: u128 = st.queue.iter().map(|s| s.cost).sum();
            tracing::error!(
                "{} receipts ({value} base units of OPEN) billed but not settled when the node stopped",
                st.queue.len()
            );
        }
        st.queue.len()
    }

    /// One settlement round; every transaction's wait ends by `by` (by default
    /// [`crate::tx::MINED_WITHIN`] after it is sent).
    fn settle_round(&self, by: Option<Instant>) -> Result<usize, String> {
        let _round = self.round.lock().unwrap();
        let batch: Vec<Signed> = {
            let mut st = self.state.lock().unwrap();
            let n = st.queue.len().min(MAX_BATCH);
            st.queue.drain(..n).collect()
        };
        if batch.is_empty() {
            self.publish_metrics();
            self.post_attributions(&[], by);
            return Ok(0);
        }
        let data = settle_call(&batch);
        let gas = settle_gas(&batch, &data);
        let result = self.send(data, gas, by);
        let out = match result {
            Ok(()) => {
                let mut st = self.state.lock().unwrap();
                for s in &batch {
                    st.forget(s);
                }
                st.compact();
                drop(st);
                self.metrics.settlement_settled.fetch_add(batch.len() as u64, Ordering::Relaxed);
                let hashes: Vec<B256> = batch.iter().map(|s| receipt_hash(&s.receipt)).collect();
                self.post_attributions(&hashes, by);
                Ok(batch.len())
            }
            Err(TxFailure::Transient(e)) => {
                self.requeue(batch);
                Err(format!("settlement not sent (retried next round): {e}"))
            }
            Err(TxFailure::Reverted { hash, data }) => {
                let (kept, dropped) = self.sort_out(batch);
                self.requeue(kept);
                if dropped > 0 {
                    self.state.lock().unwrap().compact();
                }
                Err(format!(
                    "settlement {hash} reverted ({}); {dropped} receipts refused for good were dropped, the rest retry",
                    crate::tx::error_name(&data)
                ))
            }
        };
        self.publish_metrics();
        out
    }

    /// Try each receipt of a reverted batch alone; drop those refused for
    /// good (or uncovered too long), and return the others in order with the
    /// number dropped.
    fn sort_out(&self, batch: Vec<Signed>) -> (Vec<Signed>, usize) {
        let mut kept = Vec::with_capacity(batch.len());
        let mut dropped = 0;
        for mut s in batch {
            s.attempts += 1;
            let why = match self.verdict(&s) {
                Verdict::Settles => None,
                Verdict::Uncovered(e) if s.attempts < MAX_ALLOWANCE_ATTEMPTS => {
                    tracing::info!("receipt {} waits for its payer's allowance: {e}", receipt_hash(&s.receipt));
                    None
                }
                Verdict::Uncovered(e) => Some(format!("{e} (for {} rounds)", s.attempts)),
                Verdict::Refused(e) => Some(e),
            };
            match why {
                None => kept.push(s),
                Some(why) => {
                    tracing::error!(
                        "dropped receipt {} (payer {}, nonce {}, model m{}, cost {}): the chain refuses it: {why}",
                        receipt_hash(&s.receipt),
                        s.receipt.payer,
                        s.receipt.nonce,
                        s.receipt.modelId,
                        s.cost
                    );
                    self.state.lock().unwrap().forget(&s);
                    self.metrics.settlement_dropped.fetch_add(1, Ordering::Relaxed);
                    dropped += 1;
                }
            }
        }
        (kept, dropped)
    }

    /// Settle one receipt alone against the latest state, keeping nothing.
    fn verdict(&self, s: &Signed) -> Verdict {
        use alloy_sol_types::SolInterface;
        let outcome = self.chain.snapshot().map_err(|e| e.to_string()).and_then(|st| {
            let env = self.chain.env_at(&self.chain.head().header);
            runtime::call(
                &st,
                &env,
                self.operator.address(),
                Module::Inference.address(),
                primitives::Amount::ZERO,
                &settle_call(std::slice::from_ref(s)),
                None,
            )
            .map_err(|e| e.to_string())
        });
        match outcome {
            Ok(o) if o.success => Verdict::Settles,
            Ok(o) => match IInference::IInferenceErrors::abi_decode(&o.output) {
                Ok(IInference::IInferenceErrors::AllowanceExceeded(e)) => {
                    Verdict::Uncovered(format!("{:?}", IInference::IInferenceErrors::AllowanceExceeded(e)))
                }
                _ => Verdict::Refused(crate::tx::error_name(&o.output)),
            },
            // The node could not read its state: nothing is known; keep it.
            Err(e) => Verdict::Uncovered(e),
        }
    }

    /// Put receipts back at the head of the queue, in order.
    fn requeue(&self, mut batch: Vec<Signed>) {
        let mut st = self.state.lock().unwrap();
        for s in &mut batch {
            s.attempts = s.attempts.max(1);
        }
        let rest = std::mem::take(&mut st.queue);
        st.queue = batch;
        st.queue.extend(rest);
    }

    /// Queue figures for `/metrics`: receipts queued, and those stuck (queued
    /// after at least one round that did not settle them).
    fn publish_metrics(&self) {
        let st = self.state.lock().unwrap();
        self.metrics.settlement_queued.store(st.queue.len() as u64, Ordering::Relaxed);
        self.metrics
            .settlement_stuck
            .store(st.queue.iter().filter(|s| s.attempts > 0).count() as u64, Ordering::Relaxed);
    }

    fn send(&self, data: Vec<u8>, gas: u64, by: Option<Instant>) -> Result<(), TxFailure> {
        self.send_to(Module::Inference.address(), data, gas, by)
    }

    /// Send a call of the operator and wait for its block, until `by` (by
    /// default [`crate::tx::MINED_WITHIN`] from now).
    fn send_to(&self, to: Address, data: Vec<u8>, gas: u64, by: Option<Instant>) -> Result<(), TxFailure> {
        let hash = crate::tx::submit(&self.chain, &self.handle, &self.operator, to, 0, data, gas)?;
        crate::tx::wait_mined(&self.chain, hash, by.unwrap_or_else(|| Instant::now() + crate::tx::MINED_WITHIN))
    }
}

impl Billing for Meter {
    /// Every answer is billed to a payer's allowance: anonymous requests are refused unread.
    fn requires_payer(&self) -> bool {
        true
    }

    /// An agent's wallet has no key: its current owner and operator act for it.
    fn acts_for(&self, caller: Address, payer: Address) -> bool {
        use primitives::abi::IAgents;
        let Ok(id) = self.agent_of(payer) else { return false };
        if id == 0 {
            return false;
        }
        crate::tx::call_view(&self.chain, Module::Agents.address(), &IAgents::agentCall { id })
            .is_ok_and(|a| caller == a.owner || caller == a.operator)
    }

    fn reserve(
        &self,
        payer: Option<Address>,
        model: &ModelEntry,
        prompt_tokens: usize,
        max_tokens: usize,
    ) -> Result<Reservation, BillingError> {
        let payer = payer.ok_or_else(|| {
            BillingError::Unauthenticated(
                "an API key is required: `Authorization: Bearer <key>` (openledger apikey new)".into(),
            )
        })?;
        self.agent_may_pay(payer, model.id)?;
        let want = (prompt_tokens + max_tokens) as u64;
        if let Some(licence) = self.covering_licence(payer, model.id, want)? {
            let mut st = self.state.lock().unwrap();
            let id = st.next_id;
            st.next_id += 1;
            st.payers.entry(payer).or_default().licence_reserved += want;
            return Ok(Reservation {
                id,
                payer,
                model: model.clone(),
                max_cost: 0,
                retrieval_hash: B256::ZERO,
                licence,
                licence_tokens: want,
            });
        }
        let max_cost = cost(prompt_tokens as u64, max_tokens as u64, model.price_in_per_1k, model.price_out_per_1k);
        let (on_chain, last_nonce) = self.allowance(payer).map_err(BillingError::Unavailable)?;
        let mut st = self.state.lock().unwrap();
        let id = st.next_id;
        st.next_id += 1;
        let p = st.payers.entry(payer).or_default();
        p.next_nonce = p.next_nonce.max(last_nonce + 1);
        let available = on_chain.saturating_sub(p.reserved).saturating_sub(p.unsettled);
        if max_cost > available {
            return Err(BillingError::InsufficientAllowance(format!(
                "this request may cost {max_cost} base units of OPEN ({prompt_tokens} tokens in, up to {max_tokens} out \
                 at the model's prices); the allowance of {payer} for this node has {available} left: \
                 openledger escrow allow {} AMOUNT",
                self.operator.address()
            )));
        }
        p.reserved += max_cost;
        Ok(Reservation {
            id,
            payer,
            model: model.clone(),
            max_cost,
            retrieval_hash: B256::ZERO,
            licence: 0,
            licence_tokens: 0,
        })
    }

    fn release(&self, r: Reservation) {
        let mut st = self.state.lock().unwrap();
        if let Some(p) = st.payers.get_mut(&r.payer) {
            p.reserved = p.reserved.saturating_sub(r.max_cost);
            p.licence_reserved = p.licence_reserved.saturating_sub(r.licence_tokens);
        }
    }

    fn bill(
        &self,
        r: Reservation,
        usage: Usage,
        request_hash: B256,
        response_hash: B256,
    ) -> Result<Option<serde_json::Value>, BillingError> {
        let tokens = (usage.prompt_tokens + usage.completion_tokens) as u64;
        // Under a licence the allowance owes nothing; the answer shows what the
        // licence will draw if no other receipt of the payer settles first.
        let (billed, quoted) = if r.licence != 0 {
            (0, self.licence_draw(r.licence, tokens).unwrap_or(0))
        } else {
            let c = cost(
                usage.prompt_tokens as u64,
                usage.completion_tokens as u64,
                r.model.price_in_per_1k,
                r.model.price_out_per_1k,
            )
            .min(r.max_cost);
            (c, c)
        };
        let mut st = self.state.lock().unwrap();
        let p = st.payers.entry(r.payer).or_default();
        p.reserved = p.reserved.saturating_sub(r.max_cost);
        p.licence_reserved = p.licence_reserved.saturating_sub(r.licence_tokens);
        let nonce = p.next_nonce.max(1);
        // Used even if the journal fails below: a receipt half-written may yet be read.
        p.next_nonce = nonce + 1;
        let receipt = InferenceReceipt {
            requestHash: request_hash,
            responseHash: response_hash,
            modelId: r.model.id,
            adapterHash: if r.model.has_adapter { r.model.adapter_hash } else { B256::ZERO },
            inputTokens: usage.prompt_tokens as u64,
            outputTokens: usage.completion_tokens as u64,
            priceInPer1k: r.model.price_in_per_1k,
            priceOutPer1k: r.model.price_out_per_1k,
            payer: r.payer,
            operator: self.operator.address(),
            nonce,
            issuedAt: self.chain.head().header.number,
            retrievalHash: r.retrieval_hash,
        };
        let hash = receipt_hash(&receipt);
        let sig = self.serving.sign_hash(&receipt_signing_hash(&receipt, self.chain.chain_id()));
        let sig_bytes = sig.as_bytes().to_vec();
        let out = json!({
            "version": primitives::abi::RECEIPT_VERSION,
            "hash": hash.to_string(),
            "requestHash": request_hash.to_string(),
            "responseHash": response_hash.to_string(),
            "model": format!("m{}", r.model.id),
            "adapterHash": receipt.adapterHash.to_string(),
            "inputTokens": receipt.inputTokens,
            "outputTokens": receipt.outputTokens,
            "priceInPer1k": receipt.priceInPer1k.to_string(),
            "priceOutPer1k": receipt.priceOutPer1k.to_string(),
            "cost": quoted.to_string(),
            "licence": r.licence,
            "payer": receipt.payer.to_checksum(None),
            "operator": receipt.operator.to_checksum(None),
            "nonce": nonce,
            "issuedAt": receipt.issuedAt,
            "retrievalHash": receipt.retrievalHash.to_string(),
            "signature": format!("0x{}", hex::encode(&sig_bytes)),
        });
        let signed = Signed { receipt, signature: sig_bytes, cost: billed, attempts: 0 };
        // On disk before the client sees it. A receipt not journaled is not
        // billed (its nonce stays unused: the chain only wants nonces to grow).
        if let Some(j) = st.journal.as_mut() {
            j.append(&signed).map_err(|e| BillingError::Unavailable(format!("the receipt journal: {e}")))?;
        }
        st.owe(&signed);
        st.queue.push(signed);
        self.metrics.settlement_queued.store(st.queue.len() as u64, Ordering::Relaxed);
        Ok(Some(out))
    }
}
