//! `query ...`: read the chain over JSON-RPC.

use alloy_sol_types::SolCall;
use anyhow::{Context, anyhow, bail};
use primitives::abi::{IBank, IParams};
use primitives::system::Module;
use primitives::{Address, Amount, B256, Bytes, U256};
use rpc::types::BlockNumberOrTag;
use serde_json::{Value, json};

use super::RpcArgs;
use crate::output::Out;

#[derive(clap::Subcommand, Debug)]
pub enum QueryCmd {
    /// Balance and nonce of an address.
    Balance {
        address: Address,
        /// Block number (default: latest).
        #[arg(long)]
        block: Option<u64>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// A block by number ("latest" by default).
    Block {
        #[arg(default_value = "latest")]
        number: String,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// A transaction by hash.
    Tx {
        hash: B256,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// A receipt by hash.
    Receipt {
        hash: B256,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Every governed parameter and its value.
    Params {
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// The supply equation's terms.
    Supply {
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// An account's state with its Merkle proof, verified here against the block header.
    Proof {
        address: Address,
        #[arg(long)]
        block: Option<u64>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Node status.
    Status {
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

fn tag(block: Option<u64>) -> Value {
    match block {
        Some(n) => json!(format!("{n:#x}")),
        None => json!("latest"),
    }
}

fn hex_u128(v: &Value) -> anyhow::Result<u128> {
    let s = v.as_str().ok_or_else(|| anyhow!("expected a hex quantity, got {v}"))?;
    u128::from_str_radix(s.trim_start_matches("0x"), 16).with_context(|| format!("bad quantity {s}"))
}

fn view(c: &mut rpc::client::RpcClient, to: Address, data: Vec<u8>) -> anyhow::Result<Bytes> {
    let v = c.call("eth_call", json!([{"to": to, "data": Bytes::from(data)}, "latest"]))?;
    let s = v.as_str().ok_or_else(|| anyhow!("eth_call returned {v}"))?;
    s.parse::<Bytes>().map_err(|e| anyhow!("{e}"))
}

pub fn run(c: QueryCmd, out: Out) -> anyhow::Result<()> {
    match c {
        QueryCmd::Balance { address, block, rpc } => {
            let mut c = rpc.client();
            let bal = hex_u128(&c.call("eth_getBalance", json!([address, tag(block)]))?)?;
            let nonce = hex_u128(&c.call("eth_getTransactionCount", json!([address, tag(block)]))?)?;
            out.print(
                || format!("{} OPEN  (nonce {nonce})", Amount(bal)),
                json!({"address": address, "balance": bal.to_string(), "balanceOpen": Amount(bal).to_string(), "nonce": nonce}),
            );
        }
        QueryCmd::Block { number, rpc } => {
            let mut c = rpc.client();
            // A decimal number, a 0x-hex number or a tag ("latest").
            let block = match number.parse::<u64>() {
                Ok(n) => BlockNumberOrTag::Number(n),
                Err(_) => number.parse::<BlockNumberOrTag>().with_context(|| format!("block number {number:?}"))?,
            };
            let Some(b) = c.block(block, false)? else {
                bail!("block {number} not found");
            };
            let h = &b.header;
            out.print(
                || {
                    format!(
                        "block {}  hash {}\nparent {}\nstate root {}\ntimestamp {}  gas used {}  base fee {}\ntransactions {}",
                        h.number,
                        h.hash,
                        h.parent_hash,
                        h.state_root,
                        h.timestamp,
                        h.gas_used,
                        h.base_fee_per_gas.unwrap_or(0),
                        b.transactions.len()
                    )
                },
                json!(b),
            );
        }
        QueryCmd::Tx { hash, rpc } => {
            let Some(t) = rpc.client().transaction(&hash)? else {
                bail!("transaction {hash} is unknown to the node");
            };
            let t = json!(t);
            out.print(|| serde_json::to_string_pretty(&t).unwrap(), t.clone());
        }
        QueryCmd::Receipt { hash, rpc } => {
            let Some(r) = rpc.client().receipt(&hash)? else {
                bail!("no receipt for {hash} (unknown, or not yet in a block)");
            };
            let r = json!(r);
            out.print(|| serde_json::to_string_pretty(&r).unwrap(), r.clone());
        }
        QueryCmd::Params { rpc } => {
            let mut c = rpc.client();
            let names = IParams::namesCall::abi_decode_returns(&view(
                &mut c,
                Module::Params.address(),
                IParams::namesCall {}.abi_encode(),
            )?)?;
            let mut rows = Vec::new();
            for n in names {
                let v = IParams::getCall::abi_decode_returns(&view(
                    &mut c,
                    Module::Params.address(),
                    IParams::getCall { name: n.clone() }.abi_encode(),
                )?)?;
                let doc = runtime::params::spec(&n).map(|s| s.doc).unwrap_or("");
                rows.push((n, v, doc));
            }
            out.print(
                || rows.iter().map(|(n, v, d)| format!("{n:<20} {v:<20} {d}")).collect::<Vec<_>>().join("\n"),
                json!(
                    rows.iter().map(|(n, v, _)| (n.clone(), json!(v.to_string()))).collect::<serde_json::Map<_, _>>()
                ),
            );
        }
        QueryCmd::Supply { rpc } => {
            let mut c = rpc.client();
            let r = IBank::supplyCall::abi_decode_returns(&view(
                &mut c,
                Module::Bank.address(),
                IBank::supplyCall {}.abi_encode(),
            )?)?;
            let f = |v: U256| Amount::from_u256(v).map(|a| a.to_string()).unwrap_or_else(|_| v.to_string());
            out.print(
                || {
                    format!(
                        "total {} OPEN = genesis {} + issued {} - burned {}\ntreasury {}\nvalidator reward pool {}",
                        f(r.total), f(r.genesis), f(r.issued), f(r.burned), f(r.treasury), f(r.rewardPool)
                    )
                },
                json!({"total": r.total.to_string(), "genesis": r.genesis.to_string(), "issued": r.issued.to_string(), "burned": r.burned.to_string(), "treasury": r.treasury.to_string(), "rewardPool": r.rewardPool.to_string()}),
            );
        }
        QueryCmd::Proof { address, block, rpc } => {
            let mut c = rpc.client();
            let key = runtime::bank::state_key::account(&address);
            let p = c.call("ol_getProof", json!([Bytes::from(key.clone()), tag(block)]))?;
            let number = p["blockNumber"].as_u64().ok_or_else(|| anyhow!("bad proof response: {p}"))?;
            let header =
                c.block(BlockNumberOrTag::Number(number), false)?.ok_or_else(|| anyhow!("no header {number}"))?;
            let root = header.header.state_root;
            let claimed: B256 = p["stateRoot"].as_str().unwrap_or("").parse()?;
            if claimed != root {
                bail!("proof is for state root {claimed}, but block {number}'s header says {root}");
            }
            let value: Option<Bytes> = match &p["value"] {
                Value::Null => None,
                v => Some(v.as_str().unwrap_or("").parse()?),
            };
            let proof: Bytes = p["proof"].as_str().unwrap_or("").parse()?;
            storage::StateProof::verify_bytes(&root, &key, value.as_ref().map(|v| &v[..]), &proof)
                .map_err(|e| anyhow!("proof does NOT verify against block {number}: {e}"))?;
            let acct = match &value {
                Some(v) => runtime::bank::Account::decode(v)?,
                None => runtime::bank::Account::default(),
            };
            out.print(
                || format!("verified against block {number} state root {root}\nbalance {} OPEN  nonce {}", acct.balance, acct.nonce),
                json!({"verified": true, "blockNumber": number, "stateRoot": root, "balance": acct.balance.0.to_string(), "nonce": acct.nonce}),
            );
        }
        QueryCmd::Status { rpc } => {
            let s = rpc.client().call("ol_status", json!([]))?;
            out.print(|| serde_json::to_string_pretty(&s).unwrap(), s.clone());
        }
    }
    Ok(())
}
