//! `--workload erc20`: the EVM path. Before the clock starts every sender
//! deploys its own OpenZeppelin ERC-20 (`contracts/out/TestToken.json`, the
//! committed artifact, built into the binary) with its nonce 0 and is minted
//! the whole supply; the measured transactions are `transfer(RECIPIENT, 1)`
//! calls on the sender's own token, nonces 1.. After the run every receipt
//! must be a success and each token's balances must add up.

use alloy_primitives::{Address, Bytes, TxKind, U256, keccak256};
use alloy_sol_types::SolValue;
use anyhow::{Context, Result, bail};
use rpc::client::RpcClient;
use serde_json::{Value, json};

use super::{RECIPIENT, SignedTransfer, TxSpec, Workload, WorkloadCheck, dev_keys, sign};

/// The committed artifact (`cd contracts && node build.mjs` rebuilds it).
const ARTIFACT: &str = include_str!("../../../../contracts/out/TestToken.json");
/// Tokens minted to each deployer: 10^6 with 18 decimals.
pub(crate) const SUPPLY: u128 = 1_000_000 * 10u128.pow(18);
/// Token units per transfer.
pub(crate) const AMOUNT: u64 = 1;
/// Gas for a deployment (TestToken takes about 1.1M).
const DEPLOY_GAS: u64 = 3_000_000;
/// Gas for a `transfer` (about 52k to a fresh holder, 35k after).
pub(crate) const TRANSFER_GAS: u64 = 80_000;

/// The creation bytecode of TestToken from its artifact.
pub(crate) fn token_bytecode() -> Result<Vec<u8>> {
    let v: Value = serde_json::from_str(ARTIFACT).context("contracts/out/TestToken.json is not JSON")?;
    let hex =
        v.get("bytecode").and_then(Value::as_str).context("contracts/out/TestToken.json has no \"bytecode\" string")?;
    let code = alloy_primitives::hex::decode(hex).context("TestToken bytecode is not hex")?;
    if code.is_empty() {
        bail!("TestToken bytecode is empty");
    }
    Ok(code)
}

/// Deployment input: bytecode, then the constructor's (string name, string symbol, uint256 supply).
pub(crate) fn deploy_input(code: &[u8], sender: usize) -> Vec<u8> {
    let args = (format!("Bench Token {sender}"), format!("BT{sender}"), U256::from(SUPPLY)).abi_encode_params();
    [code, &args].concat()
}

fn selector(signature: &str) -> [u8; 4] {
    let h = keccak256(signature.as_bytes());
    [h[0], h[1], h[2], h[3]]
}

/// Calldata of `transfer(to, amount)`.
pub(crate) fn transfer_input(to: Address, amount: U256) -> Vec<u8> {
    [&selector("transfer(address,uint256)")[..], &(to, amount).abi_encode_params()].concat()
}

/// Calldata of `balanceOf(holder)`.
pub(crate) fn balance_of_input(holder: Address) -> Vec<u8> {
    [&selector("balanceOf(address)")[..], &holder.abi_encode()].concat()
}

/// Sign the deployments (set-up) and `txs` token transfers from the first
/// `senders` dev accounts. Transfer `i` is sent by sender `i % senders` with
/// nonce `1 + i / senders`, to the token that sender deployed with nonce 0.
pub(crate) fn build_erc20_workload(txs: usize, senders: usize) -> Result<Workload> {
    let keys = dev_keys(senders)?;
    let code = token_bytecode()?;
    let addrs: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let tokens: Vec<Address> = addrs.iter().map(|a| a.create(0)).collect();
    let setup = (0..senders)
        .map(|s| {
            sign(
                &keys[s],
                s,
                TxSpec {
                    nonce: 0,
                    gas: DEPLOY_GAS,
                    to: TxKind::Create,
                    value: U256::ZERO,
                    input: deploy_input(&code, s),
                },
            )
        })
        .collect();
    let input = transfer_input(RECIPIENT, U256::from(AMOUNT));
    let txs = (0..txs)
        .map(|i| {
            let s = i % senders;
            let spec = TxSpec {
                nonce: 1 + (i / senders) as u64,
                gas: TRANSFER_GAS,
                to: TxKind::Call(tokens[s]),
                value: U256::ZERO,
                input: input.clone(),
            };
            sign(&keys[s], s, spec)
        })
        .collect();
    Ok(Workload { senders: addrs, setup, txs, check: WorkloadCheck::Erc20 { tokens } })
}

/// `balanceOf(holder)` on `token` at the latest block.
fn balance_of(c: &mut RpcClient, token: Address, holder: Address) -> Result<U256> {
    let input = Bytes::from(balance_of_input(holder));
    let v = c
        .call("eth_call", json!([{"to": token, "data": input}, "latest"]))
        .with_context(|| format!("eth_call balanceOf({holder}) on {token}"))?;
    let hex = v.as_str().with_context(|| format!("eth_call balanceOf answered {v}"))?;
    let bytes = alloy_primitives::hex::decode(hex).with_context(|| format!("eth_call balanceOf answered {hex}"))?;
    if bytes.len() != 32 {
        bail!("eth_call balanceOf({holder}) on {token} answered {} bytes, want 32", bytes.len());
    }
    Ok(U256::from_be_slice(&bytes))
}

/// Each sender's token: the recipient holds what that sender sent, the sender the rest.
pub(crate) fn verify_balances(
    c: &mut RpcClient,
    senders: &[Address],
    tokens: &[Address],
    txs: &[SignedTransfer],
) -> Result<()> {
    for (s, (&sender, &token)) in senders.iter().zip(tokens).enumerate() {
        let sent = U256::from(txs.iter().filter(|t| t.sender == s).count() as u64 * AMOUNT);
        let to = balance_of(c, token, RECIPIENT)?;
        let from = balance_of(c, token, sender)?;
        if to != sent || from != U256::from(SUPPLY) - sent {
            bail!(
                "token {token} of sender {s}: recipient holds {to}, sender {from}; want {sent} and {}",
                U256::from(SUPPLY) - sent
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    #[test]
    fn calldata_matches_the_abi() {
        // The well-known selectors.
        assert_eq!(&transfer_input(RECIPIENT, U256::from(1u8))[..4], &[0xa9, 0x05, 0x9c, 0xbb]);
        assert_eq!(&balance_of_input(RECIPIENT)[..4], &[0x70, 0xa0, 0x82, 0x31]);
        let t = transfer_input(address!("0x00000000000000000000000000000000000000aa"), U256::from(5u8));
        assert_eq!(t.len(), 4 + 64);
        assert_eq!(t[4 + 31], 0xaa);
        assert_eq!(t[4 + 63], 5);
        assert_eq!(balance_of_input(RECIPIENT).len(), 4 + 32);
    }

    #[test]
    fn the_deployment_carries_the_constructor_arguments() {
        let code = token_bytecode().unwrap();
        assert!(code.len() > 1000);
        let input = deploy_input(&code, 3);
        assert_eq!(&input[..code.len()], &code[..]);
        let (name, symbol, supply) = <(String, String, U256)>::abi_decode_params(&input[code.len()..]).unwrap();
        assert_eq!((name.as_str(), symbol.as_str(), supply), ("Bench Token 3", "BT3", U256::from(SUPPLY)));
    }

    #[test]
    fn workload_plan() {
        let w = build_erc20_workload(23, 3).unwrap();
        assert_eq!((w.setup.len(), w.txs.len()), (3, 23));
        let WorkloadCheck::Erc20 { tokens } = &w.check else { panic!("not an ERC-20 workload") };
        assert_eq!(tokens[0], address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"), "first deployment of account 0");
        for (s, d) in w.setup.iter().enumerate() {
            assert_eq!((d.sender, d.nonce), (s, 0));
        }
        for (i, t) in w.txs.iter().enumerate() {
            assert_eq!((t.sender, t.nonce), (i % 3, 1 + (i / 3) as u64));
        }
        use alloy_consensus::Transaction;
        use alloy_consensus::transaction::SignerRecoverable;
        use alloy_eips::eip2718::Decodable2718;
        let env = alloy_consensus::TxEnvelope::decode_2718(&mut w.txs[4].raw.as_slice()).unwrap();
        assert_eq!(env.to(), Some(tokens[1]));
        assert_eq!(env.gas_limit(), TRANSFER_GAS);
        assert_eq!(env.input().as_ref(), transfer_input(RECIPIENT, U256::from(AMOUNT)).as_slice());
        assert_eq!(env.recover_signer().unwrap(), w.senders[1]);
        let deploy = alloy_consensus::TxEnvelope::decode_2718(&mut w.setup[2].raw.as_slice()).unwrap();
        assert!(deploy.to().is_none(), "a creation");
        assert!(build_erc20_workload(5, 0).is_err());
    }
}
