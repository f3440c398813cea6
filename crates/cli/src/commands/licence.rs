//! `licence offer|withdraw|buy|close|show|list`: prepaid licences of a model
//! (the `inference` contract, `0x…1007`). A model's owner offers them; an app
//! buys one once and its receipts for the model are then drawn from it at the
//! licence's rate instead of its allowance (see `runtime::inference::licences`).

use alloy_sol_types::SolCall;
use anyhow::{anyhow, bail};
use primitives::abi::{IInference, Licence, LicenceOffer};
use primitives::system::Module;
use primitives::{Address, Amount, U256};
use rpc::client::RpcClient;
use serde_json::{Value, json};

use super::RpcArgs;
use super::agent::parse_model;
use super::keys::SignerArgs;
use crate::contract::{send_call, send_sol, signer_address, try_view, view};
use crate::output::{Out, open};

const INFERENCE: Address = Module::Inference.address();

#[derive(clap::Subcommand, Debug)]
pub enum LicenceCmd {
    /// Offer licences of a model you own: a price, bounded by --blocks, --tokens or both.
    Offer {
        /// The model: `m2` or `2`.
        #[arg(long, value_parser = parse_model)]
        model: u64,
        /// What a buyer pays once: "50" OPEN or "1000wei".
        #[arg(long)]
        price: Amount,
        /// How long a licence lasts, in blocks from its purchase (0: no time bound).
        #[arg(long, default_value_t = 0)]
        blocks: u64,
        /// How many tokens (input plus output) it covers (0: no volume bound).
        #[arg(long, default_value_t = 0)]
        tokens: u64,
        /// A non-commercial licence (the default is commercial).
        #[arg(long)]
        non_commercial: bool,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Withdraw an offer of a model you own (licences bought from it stay valid).
    Withdraw {
        #[arg(long)]
        offer: u64,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Buy a licence from an offer, paying its price.
    Buy {
        #[arg(long)]
        offer: u64,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Close a licence that is over (anyone), paying out what is left; the
    /// holder of a licence of a retired model gets what is left back.
    Close {
        #[arg(long)]
        licence: u64,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// A licence, by id, or a holder's licence of a model.
    Show {
        #[arg(long, conflicts_with_all = ["holder", "model"], required_unless_present = "model")]
        licence: Option<u64>,
        #[arg(long, requires = "model")]
        holder: Option<Address>,
        #[arg(long, value_parser = parse_model, requires = "holder")]
        model: Option<u64>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// A model's open offers.
    List {
        #[arg(long, value_parser = parse_model)]
        model: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

pub fn run(c: LicenceCmd, out: Out) -> anyhow::Result<()> {
    match c {
        LicenceCmd::Offer { model, price, blocks, tokens, non_commercial, signer, rpc } => {
            if blocks == 0 && tokens == 0 {
                bail!("bound the licence: give --blocks, --tokens or both");
            }
            let call = IInference::offerLicenceCall {
                modelId: model,
                price: price.0,
                durationBlocks: blocks,
                tokens,
                commercial: !non_commercial,
            };
            let sent = send_sol(&signer, &rpc, INFERENCE, &call, "inference.offerLicence")?;
            let ev = sent
                .event::<IInference::LicenceOffered>(INFERENCE)
                .ok_or_else(|| anyhow!("inference.offerLicence emitted no LicenceOffered event"))?;
            out.print(
                || {
                    format!(
                        "offer {} on model {model}: {}\n{}",
                        ev.offerId,
                        terms(price.0, blocks, tokens, call.commercial),
                        sent.human("inference.offerLicence")
                    )
                },
                sent.json(json!({"offer": ev.offerId, "model": model})),
            );
            Ok(())
        }
        LicenceCmd::Withdraw { offer, signer, rpc } => {
            let call = IInference::withdrawLicenceOfferCall { offerId: offer };
            let sent = send_sol(&signer, &rpc, INFERENCE, &call, "inference.withdrawLicenceOffer")?;
            out.print(
                || format!("offer {offer} withdrawn\n{}", sent.human("inference.withdrawLicenceOffer")),
                sent.json(json!({"offer": offer})),
            );
            Ok(())
        }
        LicenceCmd::Buy { offer, signer, rpc } => buy(offer, &signer, &rpc, out),
        LicenceCmd::Close { licence, signer, rpc } => {
            let call = IInference::closeLicenceCall { licenceId: licence };
            let sent = send_sol(&signer, &rpc, INFERENCE, &call, "inference.closeLicence")?;
            let ev = sent
                .event::<IInference::LicenceClosed>(INFERENCE)
                .ok_or_else(|| anyhow!("inference.closeLicence emitted no LicenceClosed event"))?;
            let what = if ev.refunded { "returned to its holder" } else { "paid out" };
            out.print(
                || {
                    format!(
                        "licence {licence} closed: {} {what}\n{}",
                        open(U256::from(ev.remainder)),
                        sent.human("inference.closeLicence")
                    )
                },
                sent.json(json!({"licence": licence, "remainder": ev.remainder.to_string(), "refunded": ev.refunded})),
            );
            Ok(())
        }
        LicenceCmd::Show { licence, holder, model, rpc } => {
            let mut c = rpc.client();
            let id = match (licence, holder, model) {
                (Some(id), _, _) => id,
                (None, Some(h), Some(m)) => {
                    let id = view(&mut c, INFERENCE, &IInference::licenceOfCall { holder: h, modelId: m })?;
                    if id == 0 {
                        bail!("{h} holds no open licence of model {m}");
                    }
                    id
                }
                _ => bail!("give --licence, or --holder and --model"),
            };
            let l = get_licence(&mut c, id)?;
            let height = c.block_number()?;
            out.print(|| show(id, &l, height), licence_json(id, &l, height));
            Ok(())
        }
        LicenceCmd::List { model, rpc } => {
            let mut c = rpc.client();
            let ids = view(&mut c, INFERENCE, &IInference::licenceOffersCall { modelId: model })?;
            let mut lines = vec![];
            let mut all = vec![];
            for id in ids {
                let o: LicenceOffer = view(&mut c, INFERENCE, &IInference::licenceOfferCall { offerId: id })?;
                lines.push(format!("offer {id}: {}", terms(o.price, o.durationBlocks, o.tokens, o.commercial)));
                all.push(json!({"offer": id, "price": o.price.to_string(), "blocks": o.durationBlocks, "tokens": o.tokens, "commercial": o.commercial}));
            }
            if lines.is_empty() {
                lines.push(format!("model {model} has no open licence offers"));
            }
            out.print(|| lines.join("\n"), json!({"model": model, "offers": all}));
            Ok(())
        }
    }
}

fn terms(price: u128, blocks: u64, tokens: u64, commercial: bool) -> String {
    let mut bounds = vec![];
    if blocks != 0 {
        bounds.push(format!("{blocks} blocks"));
    }
    if tokens != 0 {
        bounds.push(format!("{tokens} tokens"));
    }
    let kind = if commercial { "commercial" } else { "non-commercial" };
    format!("{} for {} ({kind})", open(U256::from(price)), bounds.join(" or "))
}

fn get_licence(c: &mut RpcClient, id: u64) -> anyhow::Result<Licence> {
    match try_view(c, INFERENCE, &IInference::licenceCall { licenceId: id })? {
        Ok(l) => Ok(l),
        Err(_) => bail!("there is no licence {id}"),
    }
}

fn buy(offer: u64, signer: &SignerArgs, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let o: LicenceOffer = match try_view(&mut c, INFERENCE, &IInference::licenceOfferCall { offerId: offer })? {
        Ok(o) => o,
        Err(_) => bail!("there is no licence offer {offer}"),
    };
    if !o.open {
        bail!("offer {offer} was withdrawn");
    }
    let buyer = signer_address(signer)?;
    let held = view(&mut c, INFERENCE, &IInference::licenceOfCall { holder: buyer, modelId: o.modelId })?;
    let data = IInference::buyLicenceCall { offerId: offer }.abi_encode();
    let sent = send_call(signer, rpc, INFERENCE, Amount(o.price), data, "inference.buyLicence")?;
    let ev = sent
        .event::<IInference::LicenceBought>(INFERENCE)
        .ok_or_else(|| anyhow!("inference.buyLicence emitted no LicenceBought event"))?;
    let note = if held != 0 { format!(" (licence {held}, over, was closed first)") } else { String::new() };
    out.print(
        || {
            format!(
                "licence {} of model {}: {}{note}\n{}",
                ev.licenceId,
                o.modelId,
                terms(o.price, o.durationBlocks, o.tokens, o.commercial),
                sent.human("inference.buyLicence")
            )
        },
        sent.json(json!({"licence": ev.licenceId, "model": o.modelId, "end": ev.end, "tokens": ev.tokens})),
    );
    Ok(())
}

fn show(id: u64, l: &Licence, height: u64) -> String {
    let mut lines = vec![
        format!("licence {id} of model {} held by {}", l.modelId, l.holder),
        format!("bought         block {} from offer {} for {}", l.start, l.offerId, open(U256::from(l.price))),
        format!("commercial     {}", if l.commercial { "yes" } else { "no" }),
    ];
    if l.end != 0 {
        lines.push(format!("ends           block {} ({})", l.end, if height >= l.end { "passed" } else { "not yet" }));
    }
    if l.tokens != 0 {
        lines.push(format!("tokens left    {} of {}", l.tokensLeft, l.tokens));
    }
    lines.push(format!("prepaid left   {}", open(U256::from(l.amountLeft))));
    lines.push(format!("state          {}", state(l, height)));
    lines.join("\n")
}

fn state(l: &Licence, height: u64) -> &'static str {
    if l.closed {
        "closed"
    } else if (l.end != 0 && height >= l.end) || (l.tokens != 0 && l.tokensLeft == 0) {
        "over (anyone can close it)"
    } else {
        "active"
    }
}

fn licence_json(id: u64, l: &Licence, height: u64) -> Value {
    json!({
        "licence": id, "model": l.modelId, "holder": l.holder, "offer": l.offerId,
        "commercial": l.commercial, "price": l.price.to_string(), "start": l.start, "end": l.end,
        "tokens": l.tokens, "tokensLeft": l.tokensLeft, "amountLeft": l.amountLeft.to_string(),
        "state": state(l, height),
    })
}
