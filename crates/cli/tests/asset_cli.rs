//! `openledger asset …` against a real node: a model registered over RPC (no
//! command registers one without training), then through the CLI only: split
//! into shares, Uniswap v2 deployed from its artifacts, liquidity, quotes,
//! swaps both ways filled at their quotes, a claim, the model's token given
//! away; bad input is a clear error, never a panic.

mod common;

use std::process::Output;
use std::time::Duration;

use alloy_sol_types::SolCall;
use common::*;
use primitives::abi::IModels;
use primitives::system::Module;
use primitives::{Address, Bytes, U256};
use serde_json::{Value, json};

fn e18(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18u64))
}

fn artifact(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../contracts/out/uniswap")
        .join(format!("{name}.json"));
    p.to_str().unwrap().to_string()
}

/// `ARGS… --rpc NODE`.
fn run(node: &NodeProc, args: &[&str]) -> Output {
    cli(&[args, &["--rpc", node.rpc.as_str()]].concat())
}

fn ok(node: &NodeProc, args: &[&str]) -> String {
    cli_ok(&[args, &["--rpc", node.rpc.as_str()]].concat())
}

/// `--json asset ARGS…`, parsed.
fn asset_json(node: &NodeProc, args: &[&str]) -> Value {
    serde_json::from_str(&ok(node, &[&["--json", "asset"], args].concat())).unwrap()
}

/// `asset ARGS…` fails cleanly (exit 1, no panic); its error message.
fn asset_err(node: &NodeProc, args: &[&str]) -> String {
    let o = run(node, &[&["asset"], args].concat());
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "asset {args:?} should fail:\n{}\n{err}", String::from_utf8_lossy(&o.stdout));
    assert!(!err.contains("panicked"), "{err}");
    err
}

fn u(v: &Value) -> U256 {
    v.as_str().unwrap_or_else(|| panic!("not a decimal string: {v}")).parse().unwrap()
}

/// `eth_call` of a typed call.
fn call<C: SolCall>(node: &NodeProc, to: Address, c: C) -> C::Return {
    let out =
        node.client().call("eth_call", json!([{"to": to, "data": Bytes::from(c.abi_encode())}, "latest"])).unwrap();
    C::abi_decode_returns(&out.as_str().unwrap().parse::<Bytes>().unwrap()).unwrap()
}

/// Dev account `i` registers a model on the node's base model (m1's hash); its id.
fn register_model(node: &NodeProc, i: u32) -> u64 {
    let models = Module::Models.address();
    let base = call(node, models, IModels::modelCall { id: 1 }).baseModelHash;
    let reg = adapter_registration("shares via the CLI", base);
    let k = dev(i);
    let mut c = node.client();
    let nonce = c.nonce(&k.address(), true).unwrap();
    let data = IModels::registerCall { registration: reg }.abi_encode();
    let h = c.send_raw(&signed(&k, nonce, models, 0, data, 2_000_000)).unwrap();
    assert!(c.wait_receipt(&h, Duration::from_secs(60)).unwrap().status());
    call(node, models, IModels::modelCountCall {})
}

/// WETH9, the factory and the router, deployed by dev account 2 through `contract deploy --quiet`.
fn deploy_uniswap(node: &NodeProc) -> (String, String) {
    let deploy = |args: &[&str]| -> String {
        ok(node, &[&["contract", "deploy"], args, &["--quiet", "--dev-account", "2"]].concat()).trim().to_string()
    };
    let weth = deploy(&[&artifact("WETH9")]);
    let factory = deploy(&[&artifact("UniswapV2Factory"), &dev(2).address().to_string()]);
    let router = deploy(&[&artifact("UniswapV2Router02"), &factory, &weth]);
    (weth, router)
}

/// What Uniswap v2 pays for `amount_in` against these reserves (0.3% fee).
fn amount_out(amount_in: U256, reserve_in: U256, reserve_out: U256) -> U256 {
    let with_fee = amount_in * U256::from(997);
    with_fee * reserve_out / (reserve_in * U256::from(1000) + with_fee)
}

#[test]
fn a_model_split_pooled_traded_and_given_away_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let (owner, buyer, heir) = (dev(2).address(), dev(3).address(), dev(4).address());
    let id = register_model(&node, 2);
    let m = id.to_string();

    // Before the split: an owner, no shares.
    let v = asset_json(&node, &["info", "--model", &format!("m{id}")]);
    assert_eq!(v["owner"], json!(owner));
    assert_eq!(v["shareToken"], Value::Null);
    assert!(ok(&node, &["asset", "info", "--model", &m]).contains("not split into shares"));

    // Split refused to a non-owner, for nothing, or for a model that does not exist.
    let e = asset_err(&node, &["split", "--model", &m, "--supply", "1000", "--symbol", "DEMO", "--dev-account", "3"]);
    assert!(e.contains("NotAssetOwner") && e.contains("nothing sent"), "{e}");
    let e = asset_err(&node, &["split", "--model", &m, "--supply", "0", "--symbol", "DEMO", "--dev-account", "2"]);
    assert!(e.contains("--supply must be more than zero"), "{e}");
    let e = asset_err(&node, &["split", "--model", "999", "--supply", "1", "--symbol", "DEMO", "--dev-account", "2"]);
    assert!(e.contains("UnknownAsset"), "{e}");
    let e = asset_err(&node, &["split", "--model", &m, "--supply", "1", "--symbol", "NOT OK", "--dev-account", "2"]);
    assert!(e.contains("InvalidSymbol"), "{e}");
    let e = asset_err(&node, &["info", "--model", "999"]);
    assert!(e.contains("there is no model 999") && e.contains("ERC721NonexistentToken"), "{e}");
    assert!(asset_err(&node, &["info", "--datanet", "7"]).contains("there is no Datanet 7"));
    let o = run(&node, &["asset", "info", "--model", "x1"]);
    assert_eq!(o.status.code(), Some(2), "clap refuses a model that is not m<id>");
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not a model"));

    // The split: 1,000 shares, all the owner's.
    let s = asset_json(&node, &["split", "--model", &m, "--supply", "1000", "--symbol", "DEMO", "--dev-account", "2"]);
    assert_eq!(s["status"], "0x1");
    assert_eq!(u(&s["supply"]), e18(1000));
    let share = s["shareToken"].as_str().unwrap().to_string();
    let v = asset_json(&node, &["info", "--model", &m, "--holder", &owner.to_string()]);
    assert_eq!(v["shareToken"]["address"], json!(share));
    assert_eq!(v["shareToken"]["symbol"], "DEMO");
    assert_eq!(u(&v["shareToken"]["totalSupply"]), e18(1000));
    assert_eq!(u(&v["shareToken"]["earningSupply"]), e18(1000));
    assert_eq!(u(&v["holder"]["balance"]), e18(1000));
    assert_eq!(u(&v["holder"]["earned"]), U256::ZERO);
    let human = ok(&node, &["asset", "info", "--model", &m, "--holder", &owner.to_string()]);
    assert!(human.contains("total supply   1000 DEMO") && human.contains("1000 DEMO, 0 OPEN earned"), "{human}");
    let e = asset_err(&node, &["split", "--model", &m, "--supply", "5", "--symbol", "MORE", "--dev-account", "2"]);
    assert!(e.contains("AlreadySplit"), "{e}");

    // Uniswap v2; no pool yet, and routers that are not routers.
    let (weth, router) = deploy_uniswap(&node);
    let e = asset_err(&node, &["quote", "--model", &m, "--router", &router, "--open", "1"]);
    assert!(e.contains("no DEMO/WETH pool") && e.contains("add-liquidity"), "{e}");
    let nobody = Address::repeat_byte(0x42).to_string();
    let e = asset_err(&node, &["quote", "--model", &m, "--router", &nobody, "--open", "1"]);
    assert!(e.contains("there is no contract at --router"), "{e}");
    let e = asset_err(&node, &["quote", "--model", &m, "--router", &weth, "--open", "1"]);
    assert!(e.contains("does not answer as a UniswapV2Router02"), "{e}");
    let e = asset_err(&node, &["quote", "--model", "999", "--router", &router, "--open", "1"]);
    assert!(e.contains("there is no model 999"), "{e}");

    // A pool of 400 shares against 40 OPEN.
    let add_args = ["add-liquidity", "--model", &m, "--router", &router, "--shares", "400", "--open", "40"];
    let a = asset_json(&node, &[&add_args[..], &["--dev-account", "2"]].concat());
    assert_eq!(a["status"], "0x1");
    assert!(u(&a["liquidity"]) > U256::ZERO, "{a}");
    let pair: Address = a["pair"].as_str().unwrap().parse().unwrap();
    assert_ne!(pair, Address::ZERO);
    let v = asset_json(&node, &["info", "--model", &m, "--holder", &owner.to_string()]);
    assert_eq!(u(&v["holder"]["balance"]), e18(600));
    assert_eq!(u(&v["shareToken"]["earningSupply"]), e18(600), "the pair's shares do not earn");

    // Buying with 1 OPEN: the quote is the constant-product price, and the swap fills at it.
    let q = asset_json(&node, &["quote", "--model", &m, "--router", &router, "--open", "1"]);
    let quoted = u(&q["amountOut"]);
    assert_eq!(quoted, amount_out(e18(1), e18(40), e18(400)));
    assert_eq!(u(&q["pricePerShare"]), e18(1) * e18(1) / quoted);
    let human = ok(&node, &["asset", "quote", "--model", &m, "--router", &router, "--open", "1"]);
    assert!(
        human.starts_with("1 OPEN → ") && human.contains(" DEMO\nprice ") && human.ends_with("OPEN per DEMO\n"),
        "{human}"
    );
    let s = asset_json(&node, &["swap", "--model", &m, "--router", &router, "--open", "1", "--dev-account", "3"]);
    assert_eq!(u(&s["received"]), quoted);
    assert_eq!(u(&s["amountOutMin"]), quoted * U256::from(9950) / U256::from(10_000));
    let v = asset_json(&node, &["info", "--model", &m, "--holder", &buyer.to_string()]);
    assert_eq!(u(&v["holder"]["balance"]), quoted);

    // Selling 5 shares back (the router approved on the way), at the quote.
    let q = asset_json(&node, &["quote", "--model", &m, "--router", &router, "--shares", "5"]);
    let quoted_open = u(&q["amountOut"]);
    let sell =
        ["swap", "--model", &m, "--router", &router, "--shares", "5", "--slippage-bps", "0", "--dev-account", "3"];
    let s = asset_json(&node, &sell);
    assert_eq!(u(&s["received"]), quoted_open);
    let v = asset_json(&node, &["info", "--model", &m, "--holder", &buyer.to_string()]);
    assert_eq!(u(&v["holder"]["balance"]), quoted - e18(5));
    let e = asset_err(&node, &["swap", "--model", &m, "--router", &router, "--shares", "5000", "--dev-account", "3"]);
    assert!(e.contains("less than the 5000 DEMO to sell"), "{e}");
    let e = asset_err(
        &node,
        &["swap", "--model", &m, "--router", &router, "--shares", "5", "--slippage-bps", "20000", "--dev-account", "3"],
    );
    assert!(e.contains("--slippage-bps must be at most 10000"), "{e}");

    // More liquidity goes in at the pool's price; amounts off it are refused with the amounts that fit.
    let more =
        ["add-liquidity", "--model", &m, "--router", &router, "--shares", "10", "--open", "2", "--dev-account", "3"];
    let e = asset_err(&node, &more);
    assert!(e.contains("the pool trades at") && e.contains("raise --slippage-bps"), "{e}");
    let more = [
        "add-liquidity",
        "--model",
        &m,
        "--router",
        &router,
        "--shares",
        "1",
        "--open",
        "1",
        "--slippage-bps",
        "10000",
    ];
    let a = asset_json(&node, &[&more[..], &["--dev-account", "3"]].concat());
    assert_eq!(a["pair"], json!(pair));
    assert!(u(&a["liquidity"]) > U256::ZERO, "{a}");

    // Holders (from the token's transfers) and the pool's price after each trade.
    let h = asset_json(&node, &["holders", "--model", &m]);
    assert_eq!(h["holders"], 3, "owner, buyer and the pair: {h}");
    assert_eq!(h["complete"], true);
    assert_eq!(h["largest"][0]["holder"], json!(owner), "{h}");
    let h = asset_json(&node, &["holders", "--model", &m, "--limit", "1", "--scan", "1"]);
    assert_eq!(h["complete"], false, "one transfer read of several: {h}");
    let p = asset_json(&node, &["history", "--model", &m, "--router", &router]);
    let points = p["points"].as_array().unwrap();
    // Mint, buy, sell, mint: one Sync each.
    assert_eq!(points.len(), 4, "{p}");
    assert_eq!(u(&points[0]["pricePerShare"]), e18(40) * e18(1) / e18(400), "the pool opened at 0.1 OPEN a share");
    assert!(u(&points[1]["pricePerShare"]) > u(&points[0]["pricePerShare"]), "a buy raises the price");
    assert!(u(&points[2]["pricePerShare"]) < u(&points[1]["pricePerShare"]), "a sale lowers it");

    // Nothing earned yet: a claim pays nothing and says so.
    let c = asset_json(&node, &["claim", "--model", &m, "--dev-account", "3"]);
    assert_eq!((c["status"].as_str(), u(&c["claimed"])), (Some("0x1"), U256::ZERO));

    // The model's token to another account; only its owner may move it.
    let e = asset_err(&node, &["transfer", "--model", &m, "--to", &heir.to_string(), "--dev-account", "3"]);
    assert!(e.contains("ERC721"), "{e}");
    let t = ok(&node, &["asset", "transfer", "--model", &m, "--to", &heir.to_string(), "--dev-account", "2"]);
    assert!(t.starts_with(&format!("model {id} now owned by {heir}")), "{t}");
    assert_eq!(asset_json(&node, &["info", "--model", &m])["owner"], json!(heir));
    node.stop();
}
