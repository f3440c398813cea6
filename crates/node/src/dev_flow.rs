//! A dev node driven in process, as a client drives it over RPC: transactions
//! signed by dev keys and submitted to the chain, each waited for until mined;
//! models registered, proposed and made live by one governance proposal; a
//! payer's allowance and API key. For what needs a node with live models
//! without a client in between (`bench serve --billed`, the thousand-adapter
//! test): the chain checks every call as it checks anyone's.

use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use alloy_sol_types::SolCall;
use chain::Chain;
use primitives::abi::{IGovernance, IInference, IModels, ModelRegistration};
use primitives::system::Module;
use primitives::{Address, B256, Bytes, U256};
use runtime::governance::GovernanceRead;
use runtime::models::ModelsRead;

/// How long a transaction may take to be mined.
const MINED_WITHIN: Duration = Duration::from_secs(120);

/// Dev account `i` of the standard test mnemonic.
pub fn dev_key(i: u32) -> keys::SecretKey {
    keys::derive_account(keys::DEV_MNEMONIC, i).expect("the dev mnemonic derives")
}

/// An EIP-1559 transaction from `k`, signed and encoded.
pub fn signed_tx(
    chain: &Chain,
    k: &keys::SecretKey,
    nonce: u64,
    to: Address,
    value: u128,
    data: Vec<u8>,
    gas: u64,
) -> Vec<u8> {
    let t = TxEip1559 {
        chain_id: chain.chain_id(),
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 50_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::from(data),
    };
    keys::encode_2718(&keys::sign_eip1559(k, t))
}

/// Wait until `hash` is mined; whether it succeeded.
pub async fn mined(chain: &Chain, hash: B256) -> Result<bool, String> {
    let deadline = Instant::now() + MINED_WITHIN;
    loop {
        let st = chain.snapshot().map_err(|e| e.to_string())?;
        if let Some(loc) = st.tx_location(&hash).map_err(|e| e.to_string())? {
            let receipts = st.receipts(loc.block).map_err(|e| e.to_string())?.unwrap_or_default();
            return Ok(receipts.get(loc.index as usize).is_some_and(|r| r.success));
        }
        drop(st);
        if Instant::now() >= deadline {
            return Err(format!("transaction {hash} was not mined within {MINED_WITHIN:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Submit calls from `k` with consecutive nonces, then wait for all: an error
/// names the first that reverted.
pub async fn send_all(
    chain: &Chain,
    k: &keys::SecretKey,
    calls: Vec<(Address, u128, Vec<u8>, u64)>,
) -> Result<(), String> {
    let start = chain.pending_nonce(&k.address()).map_err(|e| e.to_string())?;
    let mut hashes = Vec::with_capacity(calls.len());
    for (i, (to, value, data, gas)) in calls.into_iter().enumerate() {
        let raw = signed_tx(chain, k, start + i as u64, to, value, data, gas);
        hashes.push(chain.submit(&raw).await.map_err(|e| e.to_string())?);
    }
    for (i, h) in hashes.iter().enumerate() {
        if !mined(chain, *h).await? {
            return Err(format!("call {i} from {} ({h}) reverted", k.address()));
        }
    }
    Ok(())
}

/// One call from `k`, waited for.
pub async fn send(
    chain: &Chain,
    k: &keys::SecretKey,
    to: Address,
    value: u128,
    data: Vec<u8>,
    gas: u64,
) -> Result<(), String> {
    send_all(chain, k, vec![(to, value, data, gas)]).await
}

/// Register `regs` from `owner` and propose them; their ids, in order. The ids
/// are read as the next ones, so nobody else may register meanwhile.
pub async fn register_and_propose(
    chain: &Chain,
    owner: &keys::SecretKey,
    regs: Vec<ModelRegistration>,
) -> Result<Vec<u64>, String> {
    let first = chain.snapshot().map_err(|e| e.to_string())?.model_count().map_err(|e| e.to_string())? + 1;
    let ids: Vec<u64> = (first..first + regs.len() as u64).collect();
    let models = Module::Models.address();
    let register =
        regs.into_iter().map(|registration| (models, 0, IModels::registerCall { registration }.abi_encode(), 400_000));
    let propose = ids.iter().map(|&id| (models, 0, IModels::proposeCall { id }.abi_encode(), 100_000));
    send_all(chain, owner, register.chain(propose).collect()).await?;
    Ok(ids)
}

/// Make proposed models live with one governance proposal (approve calls of
/// 250 ids), voted for by `voter` (dev account 0 holds the dev stake) and
/// carried through its voting delay and period by transfers from `filler`
/// (blocks are sealed by transactions).
pub async fn approve_by_governance(
    chain: &Chain,
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
    send(chain, voter, gov, deposit, propose, 2_000_000).await?;
    let st = chain.snapshot().map_err(|e| e.to_string())?;
    let id = st.proposal_count().map_err(|e| e.to_string())?;
    let p = st.proposal(id).map_err(|e| e.to_string())?.ok_or("the proposal was not stored")?;
    drop(st);
    let advance_past = |height: u64| async move {
        while chain.head().header.number < height {
            send(chain, filler, filler.address(), 1, vec![], 21_000).await?;
        }
        Ok::<(), String>(())
    };
    advance_past(p.voteStart).await?;
    send(chain, voter, gov, 0, IGovernance::castVoteCall { id, support: 1 }.abi_encode(), 300_000).await?;
    advance_past(p.voteEnd + 1).await?;
    let gas = 2_000_000 + 7_000_000 * ids.len().div_ceil(250) as u64;
    send(chain, voter, gov, 0, IGovernance::executeCall { id }.abi_encode(), gas).await
}

/// Deposit `amount` for `payer`, allow the node's serving `operator` to bill
/// it, and bind `api_key` to it.
pub async fn open_allowance(
    chain: &Chain,
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
            (inf, amount, IInference::depositCall {}.abi_encode(), 200_000),
            (inf, 0, IInference::allowCall { operator, amount }.abi_encode(), 200_000),
            (inf, 0, IInference::bindApiKeyCall { keyHash: key_hash }.abi_encode(), 200_000),
        ],
    )
    .await
}
