//! The web app's Playground over this node's attribution records
//! ([`web::playground::AnswerRecords`]): who may read a record is decided by
//! the rule of `GET /v1/attribution/{receipt}` ([`serve::record_view`]), and
//! a record is verified by recomputing it as a validator's verifier judges a
//! revealed one ([`AttributionService::judge_recomputing`]), after the checks
//! `openledger attribution verify` makes of a published record
//! ([`attribution::signed_record_checks`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use primitives::{Address, B256};
use runtime::inference::InferenceRead;
use web::playground::{AnswerRecords, RecordLookup, Verdict};

use crate::attribution::AttributionService;

/// Verdicts kept (a recomputation is costly; a settled receipt's record and
/// the chain it is judged against do not change). Past it, the oldest go.
const KEPT_VERDICTS: usize = 1024;

/// Verdicts by receipt, with the record hash posted on-chain when judged,
/// and the receipts in the order they were judged (the oldest go first).
#[derive(Default)]
struct Verdicts {
    by_receipt: HashMap<B256, (B256, Verdict)>,
    order: VecDeque<B256>,
}

/// The Playground's view of this node's records.
pub struct PlaygroundRecords {
    openlora: Arc<serve::OpenLora>,
    meter: Arc<crate::Meter>,
    attribution: Arc<AttributionService>,
    verdicts: Mutex<Verdicts>,
    /// Held while a record is recomputed: one recomputation at a time, so a
    /// burst of requests (for one receipt or many) queues behind it instead
    /// of filling the blocking pool, and a receipt asked for twice is judged once.
    judging: Mutex<()>,
}

impl PlaygroundRecords {
    pub fn new(
        openlora: Arc<serve::OpenLora>,
        meter: Arc<crate::Meter>,
        attribution: Arc<AttributionService>,
    ) -> PlaygroundRecords {
        PlaygroundRecords { openlora, meter, attribution, verdicts: Mutex::default(), judging: Mutex::default() }
    }
}

impl AnswerRecords for PlaygroundRecords {
    fn lookup(&self, receipt: B256, caller: Option<Address>) -> RecordLookup {
        match serve::record_view(&self.openlora, receipt, caller) {
            serve::RecordView::Ready(v) => RecordLookup::Ready(v),
            serve::RecordView::Forbidden => RecordLookup::Private,
            serve::RecordView::Status(serve::JobStatus::Queued { position }) => {
                RecordLookup::Pending(format!("queued, position {position}"))
            }
            serve::RecordView::Status(serve::JobStatus::Computing) => RecordLookup::Pending("computing".into()),
            serve::RecordView::Status(serve::JobStatus::Failed(e)) => RecordLookup::NoRecord(format!(
                "its computation failed on this node ({e}); once the attribution timeout passes, the data share goes \
                 to the fallback"
            )),
            serve::RecordView::Status(serve::JobStatus::Dropped(e)) => RecordLookup::NoRecord(format!(
                "it was dropped ({e}); once the attribution timeout passes, the data share goes to the fallback"
            )),
            serve::RecordView::Unknown => RecordLookup::Unknown,
        }
    }

    fn settling(&self, receipt: B256) -> bool {
        self.meter.is_queued(&receipt)
    }

    fn verify(&self, receipt: B256) -> Result<Verdict, String> {
        let (signed, _) =
            serve::Attributor::record(&*self.attribution, receipt).ok_or("this node holds no record of it")?;
        let hold = {
            let st = self.attribution.chain.snapshot().map_err(|e| e.to_string())?;
            st.hold(&receipt).map_err(|e| e.to_string())?
        };
        let Some(hold) = hold else {
            return Err("the receipt has not settled yet, and a record is judged against its settlement: \
                        try again in a few blocks"
                .into());
        };
        let cached = || -> Option<Verdict> {
            let kept = self.verdicts.lock().unwrap();
            kept.by_receipt.get(&receipt).filter(|(posted, _)| *posted == hold.recordHash).map(|(_, v)| v.clone())
        };
        if let Some(v) = cached() {
            return Ok(v);
        }
        let _judging = self.judging.lock().unwrap_or_else(|e| e.into_inner());
        // Another request may have judged it while this one waited.
        if let Some(v) = cached() {
            return Ok(v);
        }
        let mut checks = attribution::signed_record_checks(&signed, Some(hold.recordHash));
        let (record, prompt) = self.attribution.reveal_inputs(&attribution::record_hash(&signed["record"]))?;
        let (_, judged, mine) = self.attribution.judge_recomputing(receipt, &record, &prompt)?;
        checks.extend(judged);
        let verdict = Verdict {
            ok: checks.iter().all(|c| c.ok),
            checks: checks.into_iter().map(|c| (c.check, c.ok, c.detail)).collect(),
            recomputed: mine.as_ref().map(attribution::record_hash),
        };
        let mut kept = self.verdicts.lock().unwrap();
        if kept.by_receipt.insert(receipt, (hold.recordHash, verdict.clone())).is_none() {
            kept.order.push_back(receipt);
            while kept.order.len() > KEPT_VERDICTS {
                if let Some(old) = kept.order.pop_front() {
                    kept.by_receipt.remove(&old);
                }
            }
        }
        Ok(verdict)
    }
}
