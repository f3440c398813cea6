//! `escrow deposit|allow|release|complete-release|withdraw|show`: the inference escrow that pays for requests.

use alloy_sol_types::SolCall;
use primitives::abi::IInference;
use primitives::system::Module;
use primitives::{Address, Amount};
use serde_json::{Value, json};

use super::RpcArgs;
use super::keys::SignerArgs;
use crate::contract::{send_call, view};
use crate::output::Out;

const INFERENCE: Address = Module::Inference.address();

#[derive(clap::Subcommand, Debug)]
pub enum EscrowCmd {
    /// Put OPEN into your inference escrow.
    Deposit {
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Grant a serving operator an allowance from your escrow (it may bill up to it).
    Allow {
        operator: Address,
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Ask for unspent allowance back (effective after the release delay).
    Release {
        operator: Address,
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Move a released allowance back into your escrow once the delay has passed.
    CompleteRelease {
        operator: Address,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Take free escrow back to your balance.
    Withdraw {
        amount: Amount,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Escrow and allowances of an account.
    Show {
        account: Address,
        /// Operators to show allowances for (default: every registered endpoint, and the dev operator).
        #[arg(long = "operator")]
        operators: Vec<Address>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

pub(super) fn inference_call(
    signer: &SignerArgs,
    rpc: &RpcArgs,
    value: Amount,
    call: impl SolCall,
    what: &str,
) -> anyhow::Result<Value> {
    let s = send_call(signer, rpc, INFERENCE, value, call.abi_encode(), what)?;
    Ok(s.json(json!({})))
}

pub fn escrow(c: EscrowCmd, out: Out) -> anyhow::Result<()> {
    match c {
        EscrowCmd::Deposit { amount, signer, rpc } => {
            let v = inference_call(&signer, &rpc, amount, IInference::depositCall {}, "inference.deposit")?;
            out.print(|| format!("deposited {amount} OPEN into the inference escrow"), v);
        }
        EscrowCmd::Allow { operator, amount, signer, rpc } => {
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::allowCall { operator, amount: amount.0 },
                "inference.allow",
            )?;
            out.print(|| format!("allowed {operator} to bill up to {amount} OPEN more"), v);
        }
        EscrowCmd::Release { operator, amount, signer, rpc } => {
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::releaseCall { operator, amount: amount.0 },
                "inference.release",
            )?;
            out.print(|| format!("release of {amount} OPEN from {operator} requested"), v);
        }
        EscrowCmd::CompleteRelease { operator, signer, rpc } => {
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::completeReleaseCall { operator },
                "inference.completeRelease",
            )?;
            out.print(|| "released allowance returned to the escrow".into(), v);
        }
        EscrowCmd::Withdraw { amount, signer, rpc } => {
            let v = inference_call(
                &signer,
                &rpc,
                Amount::ZERO,
                IInference::withdrawCall { amount: amount.0 },
                "inference.withdraw",
            )?;
            out.print(|| format!("withdrew {amount} OPEN from the escrow"), v);
        }
        EscrowCmd::Show { account, mut operators, rpc } => {
            let mut c = rpc.client();
            let free = view(&mut c, INFERENCE, &IInference::escrowOfCall { payer: account })?;
            if operators.is_empty() {
                if let Ok(eps) = view(&mut c, INFERENCE, &IInference::endpointsCall {}) {
                    operators.extend(eps.iter().map(|e| e.operator));
                }
                let dev = node::dev_serving_operator().address();
                if !operators.contains(&dev) {
                    operators.push(dev);
                }
            }
            let mut rows = Vec::new();
            for op in operators {
                let a = view(&mut c, INFERENCE, &IInference::allowanceCall { payer: account, operator: op })?;
                rows.push(json!({
                    "operator": op, "remaining": a.remaining.to_string(), "pendingRelease": a.pendingRelease.to_string(),
                    "releaseAt": a.releaseAt, "lastNonce": a.lastNonce,
                }));
            }
            let v = json!({"account": account, "freeEscrow": free.to_string(), "allowances": rows});
            out.print(
                || {
                    let mut s = format!("{account}: {} OPEN free in escrow", Amount(free));
                    for r in &rows {
                        let rem: u128 = r["remaining"].as_str().unwrap_or("0").parse().unwrap_or(0);
                        s += &format!(
                            "\n  allowance for {}: {} OPEN (last receipt nonce {})",
                            r["operator"].as_str().unwrap_or(""),
                            Amount(rem),
                            r["lastNonce"]
                        );
                    }
                    s
                },
                v,
            );
        }
    }
    Ok(())
}
