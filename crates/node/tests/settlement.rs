//! The settlement queue never stalls on a receipt the chain refuses: a batch
//! that reverts is sorted out receipt by receipt, the refused receipt is
//! dropped (logged, counted in `/metrics`) and the others settle.

use std::sync::Arc;

use alloy_sol_types::SolCall;
use chain::{BlockTime, Chain, ChainConfig};
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{B256, ModelId, ONE_OPEN};
use runtime::models::ModelsRead;
use serve::{Billing, ModelEntry, Usage};

fn open_chain(dir: &std::path::Path) -> Arc<Chain> {
    let c = Chain::open(ChainConfig {
        data_dir: dir.to_path_buf(),
        genesis: node::dev_genesis(),
        block_time: BlockTime::Instant,
        history: 64,
        pool: Default::default(),
        max_txs_per_block: 1_000,
    })
    .unwrap();
    c.start();
    c
}

#[test]
fn a_refused_receipt_is_dropped_and_the_rest_settle() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _in_runtime = rt.enter();
    let chain = open_chain(dir.path());
    let operator = node::dev_serving_operator();
    let payer = node::dev_accounts()[0].clone();
    let inference = Module::Inference.address();
    node::send_and_wait(&chain, &payer, inference, 10 * ONE_OPEN, IInference::depositCall {}.abi_encode()).unwrap();
    let allow = IInference::allowCall { operator: operator.address(), amount: 10 * ONE_OPEN };
    node::send_and_wait(&chain, &payer, inference, 0, allow.abi_encode()).unwrap();

    let metrics = Arc::new(serve::Metrics::default());
    let meter =
        node::Meter::new(chain.clone(), operator, node::dev_serving_key(), rt.handle().clone(), metrics.clone());
    let base = chain.snapshot().unwrap().model(ModelId(1)).unwrap().unwrap();
    let entry = |id: u64| ModelEntry {
        id,
        name: "base".into(),
        owner: base.owner,
        live: true,
        has_adapter: false,
        adapter_hash: B256::ZERO,
        base_hash: base.baseModelHash,
        price_in_per_1k: base.priceInPer1k,
        price_out_per_1k: base.priceOutPer1k,
        created: 0,
    };
    // Three answers billed; the second names a model the chain does not know
    // (a refusal the old queue did not recognise: it retried the whole batch for ever).
    for (i, id) in [1u64, 999, 1].into_iter().enumerate() {
        let r = meter.reserve(Some(payer.address()), &entry(id), 100, 50).unwrap();
        let usage = Usage { prompt_tokens: 100, completion_tokens: 50 };
        let h = B256::repeat_byte(i as u8 + 1);
        meter.bill(r, usage, h, h).unwrap().expect("a receipt");
    }
    assert_eq!(meter.queued(), 3);
    let e = meter.settle_once().unwrap_err();
    assert!(e.contains("UnknownModel") && e.contains("1 receipts refused"), "{e}");
    assert_eq!(meter.queued(), 2, "the refused receipt is dropped, the others wait");
    let shown = metrics.render();
    assert!(shown.contains("openledger_settlement_dropped_total 1\n"), "{shown}");
    assert!(shown.contains("openledger_settlement_stuck_receipts 2\n"), "{shown}");
    // The next round settles the rest.
    assert_eq!(meter.settle_once().unwrap(), 2);
    assert_eq!(meter.queued(), 0);
    let a = runtime::call(
        &chain.snapshot().unwrap(),
        &chain.env_at(&chain.head().header),
        primitives::Address::ZERO,
        inference,
        primitives::Amount::ZERO,
        &IInference::allowanceCall { payer: payer.address(), operator: meter.operator() }.abi_encode(),
        None,
    )
    .unwrap();
    let a = IInference::allowanceCall::abi_decode_returns(&a.output).unwrap();
    assert_eq!(a.lastNonce, 3, "both good receipts settled");
    let shown = metrics.render();
    assert!(shown.contains("openledger_settlement_settled_total 2\n"), "{shown}");
    assert!(shown.contains("openledger_settlement_queued_receipts 0\n"), "{shown}");
    chain.stop();
}
