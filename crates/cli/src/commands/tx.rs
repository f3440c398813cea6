//! `tx transfer`: build, sign and send a transaction, then wait for its receipt;
//! [`send`] is what every command that sends a transaction uses.

use std::time::Duration;

use alloy_consensus::TxEip1559;
use alloy_primitives::TxKind;
use anyhow::{Context, anyhow, bail};
use primitives::{Address, Amount, Bytes, U256};
use rpc::types::{BlockNumberOrTag, Receipt};
use serde_json::{Value, json};

use super::RpcArgs;
use super::keys::SignerArgs;
use crate::output::Out;

#[derive(clap::Subcommand, Debug)]
pub enum TxCmd {
    /// Send OPEN to an address.
    Transfer {
        #[command(flatten)]
        signer: SignerArgs,
        /// Recipient address.
        #[arg(long)]
        to: Address,
        /// Amount: OPEN ("1.5") or base units ("1000wei").
        #[arg(long)]
        amount: Amount,
        #[command(flatten)]
        rpc: RpcArgs,
        /// Return after submission instead of waiting for the receipt.
        #[arg(long)]
        no_wait: bool,
    },
}

fn hex_u(v: &Value) -> anyhow::Result<u128> {
    let s = v.as_str().ok_or_else(|| anyhow!("expected a hex quantity, got {v}"))?;
    u128::from_str_radix(s.trim_start_matches("0x"), 16).with_context(|| format!("bad quantity {s}"))
}

/// An `eth_call` / `eth_estimateGas` request object; a creation has no `to`.
pub fn call_request(from: Address, to: TxKind, value: Amount, input: &[u8]) -> Value {
    let mut call = json!({"from": from, "value": format!("{:#x}", value.0)});
    if let TxKind::Call(to) = to {
        call["to"] = json!(to);
    }
    if !input.is_empty() {
        call["data"] = json!(Bytes::copy_from_slice(input));
    }
    call
}

/// Sign and send a call (`input` empty for a plain transfer) or, with
/// `TxKind::Create`, a contract creation (`input` the init code); wait for the
/// receipt unless `no_wait`.
pub fn send(
    signer: &SignerArgs,
    rpc: &RpcArgs,
    to: TxKind,
    value: Amount,
    input: Bytes,
    no_wait: bool,
) -> anyhow::Result<(primitives::B256, Option<Receipt>)> {
    let key = signer.key()?;
    let mut c = rpc.client();
    let chain_id = c.chain_id()?;
    let nonce = c.nonce(&key.address(), true)?;
    let head = c.block(BlockNumberOrTag::Latest, false)?.ok_or_else(|| anyhow!("the node has no latest block"))?;
    let base = u128::from(head.header.base_fee_per_gas.ok_or_else(|| anyhow!("the latest block has no base fee"))?);
    let tip = hex_u(&c.call("eth_maxPriorityFeePerGas", json!([]))?)?;
    let call = call_request(key.address(), to, value, &input);
    let gas = match c.call("eth_estimateGas", json!([call])) {
        Ok(g) => hex_u(&g)? as u64,
        Err(e) => bail!("the node refuses this transaction: {e}"),
    };
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: 2 * base + tip,
        max_priority_fee_per_gas: tip,
        to,
        value: U256::from(value.0),
        access_list: Default::default(),
        input,
    };
    let raw = keys::encode_2718(&keys::sign_eip1559(&key, tx));
    let hash = c.send_raw(&raw)?;
    if no_wait {
        return Ok((hash, None));
    }
    let r = c.wait_receipt(&hash, Duration::from_secs(60))?;
    Ok((hash, Some(r)))
}

pub fn run(c: TxCmd, out: Out) -> anyhow::Result<()> {
    match c {
        TxCmd::Transfer { signer, to, amount, rpc, no_wait } => {
            let (hash, receipt) = send(&signer, &rpc, TxKind::Call(to), amount, Bytes::new(), no_wait)?;
            match receipt {
                None => out.print(|| format!("submitted {hash}"), json!({"hash": hash})),
                Some(r) => {
                    let ok = r.status();
                    out.print(
                        || {
                            format!(
                                "{} {hash}\nblock {}  gas used {}",
                                if ok { "mined" } else { "FAILED" },
                                r.block_number.unwrap_or(0),
                                r.gas_used
                            )
                        },
                        json!({"hash": hash, "receipt": r}),
                    );
                    if !ok {
                        bail!("transaction {hash} failed");
                    }
                }
            }
        }
    }
    Ok(())
}
