//! A node killed between billing and settlement loses no receipt: the meter's
//! journal holds every receipt it handed out, and the meter opened again on
//! it settles them, skips what the chain already settled, ignores a torn tail
//! and never reuses a nonce.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy_sol_types::SolCall;
use chain::{BlockTime, Chain, ChainConfig};
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{B256, ModelId, ONE_OPEN};
use runtime::models::ModelsRead;
use serve::{Billing, ModelEntry, Usage};

/// A running dev chain whose first dev account allows the serving operator 10 OPEN.
struct Setup {
    _dir: tempfile::TempDir,
    chain: Arc<Chain>,
    journal: PathBuf,
    rt: tokio::runtime::Runtime,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let in_runtime = rt.enter();
    let chain = Chain::open(ChainConfig {
        data_dir: dir.path().join("chain"),
        genesis: node::dev_genesis(),
        block_time: BlockTime::Instant,
        history: 64,
        pool: Default::default(),
        max_txs_per_block: 1_000,
    })
    .unwrap();
    chain.start();
    let payer = node::dev_accounts()[0].clone();
    let inference = Module::Inference.address();
    node::send_and_wait(&chain, &payer, inference, 10 * ONE_OPEN, IInference::depositCall {}.abi_encode()).unwrap();
    let allow = IInference::allowCall { operator: node::dev_serving_operator().address(), amount: 10 * ONE_OPEN };
    node::send_and_wait(&chain, &payer, inference, 0, allow.abi_encode()).unwrap();
    let journal = dir.path().join("receipts.journal");
    drop(in_runtime);
    Setup { _dir: dir, chain, journal, rt }
}

impl Setup {
    /// The meter as a (re)started node opens it.
    fn meter(&self) -> Arc<node::Meter> {
        node::Meter::open(
            self.chain.clone(),
            node::dev_serving_operator(),
            node::dev_serving_key(),
            self.rt.handle().clone(),
            Arc::new(serve::Metrics::default()),
            &self.journal,
        )
        .unwrap()
    }

    /// Bill one answer of the base model; returns (nonce, cost) of its receipt.
    fn bill(&self, meter: &node::Meter, tag: u8) -> (u64, u128) {
        let m = self.chain.snapshot().unwrap().model(ModelId(1)).unwrap().unwrap();
        let model = ModelEntry {
            id: 1,
            name: "base".into(),
            owner: m.owner,
            live: true,
            has_adapter: false,
            adapter_hash: B256::ZERO,
            base_hash: m.baseModelHash,
            price_in_per_1k: m.priceInPer1k,
            price_out_per_1k: m.priceOutPer1k,
            created: 0,
        };
        let payer = node::dev_accounts()[0].address();
        let r = meter.reserve(Some(payer), &model, 100, 50).unwrap();
        let usage = Usage { prompt_tokens: 100, completion_tokens: 50 };
        let h = B256::repeat_byte(tag);
        let receipt = meter.bill(r, usage, h, h).unwrap().expect("a receipt");
        (receipt["nonce"].as_u64().unwrap(), receipt["cost"].as_str().unwrap().parse().unwrap())
    }

    fn allowance(&self) -> IInference::allowanceReturn {
        let call = IInference::allowanceCall {
            payer: node::dev_accounts()[0].address(),
            operator: node::dev_serving_operator().address(),
        };
        let (st, env) = (self.chain.snapshot().unwrap(), self.chain.env_at(&self.chain.head().header));
        let at = primitives::Address::ZERO;
        let out =
            runtime::call(&st, &env, at, Module::Inference.address(), Default::default(), &call.abi_encode(), None);
        IInference::allowanceCall::abi_decode_returns(&out.unwrap().output).unwrap()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.chain.stop();
    }
}

fn truncate_by(path: &Path, n: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len - n).unwrap();
}

#[test]
fn receipts_billed_before_a_crash_settle_after_the_restart() {
    let s = setup();
    let before = s.allowance();
    let meter = s.meter();
    let (n1, c1) = s.bill(&meter, 1);
    let (n2, c2) = s.bill(&meter, 2);
    assert_eq!((n1, n2), (before.lastNonce + 1, before.lastNonce + 2));
    // The crash: the meter goes without a flush or a settlement round.
    drop(meter);

    let meter = s.meter();
    assert_eq!(meter.queued(), 2, "both journaled receipts are queued again");
    let (n3, c3) = s.bill(&meter, 3);
    assert_eq!(n3, n2 + 1, "a receipt billed after the restart takes a nonce above the journaled ones");
    assert_eq!(meter.settle_once().unwrap(), 3);
    let after = s.allowance();
    assert_eq!(after.lastNonce, n3);
    assert_eq!(before.remaining - after.remaining, c1 + c2 + c3, "the allowance paid exactly what was billed");
    drop(meter);

    // Settled receipts leave the journal: a second restart queues nothing.
    assert_eq!(s.meter().queued(), 0);
}

#[test]
fn a_torn_tail_is_dropped_and_the_receipts_before_it_kept() {
    let s = setup();
    let before = s.allowance();
    let meter = s.meter();
    let (n1, c1) = s.bill(&meter, 1);
    s.bill(&meter, 2);
    drop(meter);
    // The second record's write was cut short by the crash.
    truncate_by(&s.journal, 30);

    let meter = s.meter();
    assert_eq!(meter.queued(), 1, "the torn record is dropped, the one before it kept");
    assert_eq!(meter.settle_once().unwrap(), 1);
    let after = s.allowance();
    assert_eq!(after.lastNonce, n1);
    assert_eq!(before.remaining - after.remaining, c1);
    // The journal was rewritten without the torn tail: new records follow good ones.
    let (n, _) = s.bill(&meter, 3);
    assert!(n > n1);
    drop(meter);
    assert_eq!(s.meter().queued(), 1);
}

#[test]
fn a_corrupt_record_ends_the_journal_without_a_panic() {
    let s = setup();
    let meter = s.meter();
    s.bill(&meter, 1);
    s.bill(&meter, 2);
    drop(meter);
    let mut bytes = std::fs::read(&s.journal).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&s.journal, &bytes).unwrap();
    assert_eq!(s.meter().queued(), 1, "the record failing its checksum is dropped");

    std::fs::write(&s.journal, b"not a journal at all").unwrap();
    assert_eq!(s.meter().queued(), 0);
}

#[test]
fn a_receipt_the_chain_already_settled_is_not_queued_again() {
    let s = setup();
    let meter = s.meter();
    let (n1, _) = s.bill(&meter, 1);
    // The node dies after the settlement lands but before the journal is compacted.
    let journaled = std::fs::read(&s.journal).unwrap();
    assert_eq!(meter.settle_once().unwrap(), 1);
    drop(meter);
    std::fs::write(&s.journal, &journaled).unwrap();
    let remaining = s.allowance().remaining;

    let meter = s.meter();
    assert_eq!(meter.queued(), 0, "the settled receipt is skipped");
    let (n2, _) = s.bill(&meter, 2);
    assert_eq!(n2, n1 + 1);
    assert_eq!(meter.settle_once().unwrap(), 1);
    assert!(s.allowance().remaining < remaining);
}
