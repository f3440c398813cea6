//! A dev node driven in process, as a client drives it over RPC: transactions
//! signed by dev keys and submitted to the chain, each waited for until mined;
//! models registered, proposed and made live by one governance proposal; a
//! payer's allowance and API key. For what needs a node with live models
//! without a client in between (`bench serve --billed`, the thousand-adapter
//! test): the chain checks every call as it checks anyone's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_sol_types::SolCall;
use chain::Chain;
use primitives::abi::{IGovernance, IInference, IModels, ModelRegistration};
use primitives::system::Module;
use primitives::{Address, B256, Bytes};
use runtime::governance::GovernanceRead;
use runtime::models::ModelsRead;

pub use crate::tx::Call;
use crate::tx::{signed_call, wait_mined};

/// How long a transaction may take to be mined.
const MINED_WITHIN: Duration = Duration::from_secs(120);
/// The fee cap of dev transactions: far above the dev chain's base fee, however
/// full a batch of them makes its blocks, so that none signed ahead is stranded.
const DEV_MAX_FEE: u128 = 50_000_000_000;

/// Dev account `i` of the standard test mnemonic.
pub fn dev_key(i: u32) -> keys::SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, i).expect("the dev mnemonic derives")
}

/// A model entry on `base` with `adapter` (zero: the base model itself), no
/// Datanets, the dev prices, and `metrics` (e.g. the adapter's artefacts).
pub fn adapter_registration(name: String, base: B256, adapter: B256, metrics: String) -> ModelRegistration {
    ModelRegistration {
        name,
        baseModelHash: base,
        adapterHash: adapter,
        datanets: vec![],
        hyperparams: Bytes::new(),
        metrics: Bytes::from(metrics.into_bytes()),
        trainingLogHash: B256::repeat_byte(1),
        checkpointHashes: vec![],
        checkpointLearningRates: vec![],
        sketchHash: B256::ZERO,
        sketchSeed: 0,
        sketchK: 0,
        priceInPer1k: 1_000_000,
        priceOutPer1k: 2_000_000,
    }
}

/// `call` from `k` with `nonce`, signed and encoded at the dev fee cap.
pub fn signed_tx(chain: &Chain, k: &keys::SecretKey, nonce: u64, call: Call) -> Vec<u8> {
    signed_call(chain, k, nonce, DEV_MAX_FEE, call)
}

/// Submit `calls` from `k` with consecutive nonces, then wait for all (off the
/// async threads): an error names the first that failed and the module's error.
pub async fn send_all(chain: &Arc<Chain>, k: &keys::SecretKey, calls: Vec<Call>) -> Result<(), String> {
    let start = chain.pending_nonce(&k.address()).map_err(|e| e.to_string())?;
    let mut hashes = Vec::with_capacity(calls.len());
    for (i, call) in calls.into_iter().enumerate() {
        let raw = signed_tx(chain, k, start + i as u64, call);
        hashes.push(chain.submit(&raw).await.map_err(|e| e.to_string())?);
    }
    let (c, from) = (chain.clone(), k.address());
    tokio::task::spawn_blocking(move || {
        for (i, h) in hashes.iter().enumerate() {
            wait_mined(&c, *h, Instant::now() + MINED_WITHIN).map_err(|e| format!("call {i} from {from}: {e}"))?;
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// One call from `k`, waited for.
pub async fn send(chain: &Arc<Chain>, k: &keys::SecretKey, call: Call) -> Result<(), String> {
    send_all(chain, k, vec![call]).await
}

/// Register `regs` from `owner` and propose them; their ids, in order. The ids
/// are read as the next ones, so nobody else may register meanwhile.
pub async fn register_and_propose(
    chain: &Arc<Chain>,
    owner: &keys::SecretKey,
    regs: Vec<ModelRegistration>,
) -> Result<Vec<u64>, String> {
    let first = chain.snapshot().map_err(|e| e.to_string())?.model_count().map_err(|e| e.to_string())? + 1;
    let ids: Vec<u64> = (first..first + regs.len() as u64).collect();
    let models = Module::Models.address();
    let call = |data: Vec<u8>, gas: u64| Call { to: models, value: 0, data, gas };
    let register =
        regs.into_iter().map(|registration| call(IModels::registerCall { registration }.abi_encode(), 400_000));
    let propose = ids.iter().map(|&id| call(IModels::proposeCall { id }.abi_encode(), 100_000));
    send_all(chain, owner, register.chain(propose).collect()).await?;
    Ok(ids)
}

/// Make proposed models live with one governance proposal (approve calls of
/// 250 ids), voted for by `voter` (dev account 0 holds the dev stake) and
/// carried through its voting delay and period by transfers from `filler`
/// (blocks are sealed by transactions).
pub async fn approve_by_governance(
    chain: &Arc<Chain>,
    voter: &keys::SecretKey,
    filler: &keys::SecretKey,
    ids: &[u64],
) -> Result<(), String> {
    let calldatas: Vec<Bytes> =
        ids.chunks(250).map(|c| Bytes::from(IModels::approveCall { ids: c.to_vec() }.abi_encode())).collect();
    if calldatas.len() > runtime::governance::MAX_CALLS {
        return Err(format!("{} models are more than one proposal approves", ids.len()));
    }
    let targets = vec![Module::Models.address(); calldatas.len()];
    let gov = Module::Governance.address();
    let deposit = 10 * primitives::ONE_OPEN;
    let description = format!("make {} models live", ids.len());
    let propose = IGovernance::proposeCall { description, targets, calldatas }.abi_encode();
    send(chain, voter, Call { to: gov, value: deposit, data: propose, gas: 2_000_000 }).await?;
    let st = chain.snapshot().map_err(|e| e.to_string())?;
    let id = st.proposal_count().map_err(|e| e.to_string())?;
    let p = st.proposal(id).map_err(|e| e.to_string())?.ok_or("the proposal was not stored")?;
    drop(st);
    let advance_past = |height: u64| async move {
        while chain.head().header.number < height {
            send(chain, filler, Call { to: filler.address(), value: 1, data: vec![], gas: 21_000 }).await?;
        }
        Ok::<(), String>(())
    };
    advance_past(p.voteStart).await?;
    let vote = IGovernance::castVoteCall { id, support: 1 }.abi_encode();
    send(chain, voter, Call { to: gov, value: 0, data: vote, gas: 300_000 }).await?;
    advance_past(p.voteEnd + 1).await?;
    let gas = 2_000_000 + 7_000_000 * ids.len().div_ceil(250) as u64;
    send(chain, voter, Call { to: gov, value: 0, data: IGovernance::executeCall { id }.abi_encode(), gas }).await
}

/// Deposit `amount` for `payer`, allow the node's serving `operator` to bill
/// it, and bind `api_key` to it.
pub async fn open_allowance(
    chain: &Arc<Chain>,
    payer: &keys::SecretKey,
    operator: Address,
    amount: u128,
    api_key: &str,
) -> Result<(), String> {
    let inf = Module::Inference.address();
    let key_hash = httpapi::auth::api_key_hash(api_key);
    send_all(
        chain,
        payer,
        vec![
            Call { to: inf, value: amount, data: IInference::depositCall {}.abi_encode(), gas: 200_000 },
            Call { to: inf, value: 0, data: IInference::allowCall { operator, amount }.abi_encode(), gas: 200_000 },
            Call {
                to: inf,
                value: 0,
                data: IInference::bindApiKeyCall { keyHash: key_hash }.abi_encode(),
                gas: 200_000,
            },
        ],
    )
    .await
}
