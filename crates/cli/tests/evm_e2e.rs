//! Solidity on the chain, driven through JSON-RPC as a dapp developer drives
//! it: OpenZeppelin's ERC-20, Uniswap v2 from its npm artifacts (the pair's
//! bytecode unchanged, so the router's init-code hash holds), reverts with
//! custom errors, CREATE2, and a contract that stakes and is refused by a
//! native module. The artifacts are `contracts/out/` (contracts/README.md
//! rebuilds them).

mod common;

use std::time::Duration;

use alloy_primitives::TxKind;
use alloy_sol_types::{SolCall, SolConstructor, SolError, SolEvent, sol};
use common::*;
use primitives::abi::{IAssets, IGovernance, IModels, IShareToken, IStaking, Unauthorized};
use primitives::system::Module;
use primitives::{Address, B256, Bytes, U256, keccak256};
use rpc::client::RpcClient;
use rpc::types::{BlockNumberOrTag, Filter};
use serde_json::{Value, json};

sol! {
    contract TestToken {
        constructor(string name, string symbol, uint256 supply);
        event Transfer(address indexed from, address indexed to, uint256 value);
        function balanceOf(address account) external view returns (uint256);
        function totalSupply() external view returns (uint256);
        function transfer(address to, uint256 amount) external returns (bool);
        function approve(address spender, uint256 amount) external returns (bool);
    }
    contract Factory {
        constructor(address feeToSetter);
        function getPair(address a, address b) external view returns (address);
    }
    contract Router {
        constructor(address factory, address weth);
        function addLiquidityETH(address token, uint256 amountTokenDesired, uint256 amountTokenMin, uint256 amountETHMin, address to, uint256 deadline) external payable returns (uint256 amountToken, uint256 amountETH, uint256 liquidity);
        function swapExactETHForTokens(uint256 amountOutMin, address[] calldata path, address to, uint256 deadline) external payable returns (uint256[] memory amounts);
        function swapExactTokensForETH(uint256 amountIn, uint256 amountOutMin, address[] calldata path, address to, uint256 deadline) external returns (uint256[] memory amounts);
        function removeLiquidityETH(address token, uint256 liquidity, uint256 amountTokenMin, uint256 amountETHMin, address to, uint256 deadline) external returns (uint256 amountToken, uint256 amountETH);
    }
    contract Pair {
        function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
        function token0() external view returns (address);
        function balanceOf(address account) external view returns (uint256);
        function approve(address spender, uint256 amount) external returns (bool);
        function totalSupply() external view returns (uint256);
    }
    contract Probe {
        error Failed(uint256 code, address caller);
        function fail(uint256 code) external view;
        function forward(address target, bytes calldata data) external payable returns (bytes memory result);
        function deploy2(bytes32 salt) external returns (address child);
        function childInitCodeHash() external pure returns (bytes32);
        function blockInfo() external view returns (uint256 number, uint256 timestamp, uint256 chainid, uint256 basefee, address coinbase, uint256 prevrandao);
    }
    contract NativeCaller {
        function bankBalanceOf(address account) external view returns (uint256);
        function bond(address operator) external payable;
        function stakeAt(address operator) external view returns (uint256 amount, uint256 pendingRewards);
        function setParam(string calldata name, uint256 value) external;
        function propose(string calldata description, address[] calldata targets, bytes[] calldata calldatas) external payable returns (uint64 id);
        function castVote(uint64 id, uint8 support) external;
        function hasVoted(uint64 id) external view returns (bool);
    }
}

/// The revert data of a JSON-RPC error (code 3, "execution reverted").
fn revert_data(e: &rpc::client::ClientError) -> Bytes {
    match e {
        rpc::client::ClientError::Rpc { data: Some(v), .. } => v.as_str().unwrap().parse().unwrap(),
        other => panic!("not a revert: {other:?}"),
    }
}

/// A field of a `contracts/out/<name>.json` artifact, as bytes.
fn artifact(name: &str, field: &str) -> Vec<u8> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/out").join(format!("{name}.json"));
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let hex = v[field].as_str().unwrap_or_else(|| panic!("{name}.json has no {field}"));
    alloy_primitives::hex::decode(hex).unwrap()
}

/// A developer's wallet on the node: estimates, signs, sends, waits.
struct Dapp {
    c: RpcClient,
    k: keys::SecretKey,
    nonce: u64,
    /// OPEN spent on gas so far.
    gas_paid: U256,
}

impl Dapp {
    fn estimate(&mut self, to: Option<Address>, value: U256, data: &[u8]) -> Result<u64, rpc::client::ClientError> {
        let mut call = json!({"from": self.k.address(), "value": value, "data": Bytes::copy_from_slice(data)});
        if let Some(to) = to {
            call["to"] = json!(to);
        }
        self.c.call("eth_estimateGas", json!([call])).map(|v| hex_u(&v) as u64)
    }

    /// Send with the node's estimate (plus a margin, as wallets add); the receipt.
    fn send(&mut self, to: Option<Address>, value: U256, data: Vec<u8>) -> rpc::types::Receipt {
        let gas = self.estimate(to, value, &data).unwrap_or_else(|e| panic!("estimate: {e:?}"));
        let kind = to.map_or(TxKind::Create, TxKind::Call);
        let raw = signed_kind(&self.k, self.nonce, kind, value.to::<u128>(), data, gas + gas / 4);
        self.nonce += 1;
        let h = self.c.send_raw(&raw).unwrap();
        let r = self.c.wait_receipt(&h, Duration::from_secs(60)).unwrap();
        self.gas_paid += U256::from(r.gas_used) * U256::from(r.effective_gas_price);
        assert!(r.status(), "transaction to {to:?} failed: {r:?}");
        r
    }

    fn deploy(&mut self, name: &str, args: Vec<u8>) -> Address {
        let mut code = artifact(name, "bytecode");
        code.extend(args);
        let r = self.send(None, U256::ZERO, code);
        let at = r.contract_address.expect("a creation's receipt names the contract");
        assert_eq!(at, self.k.address().create(self.nonce - 1));
        assert_ne!(self.c.call("eth_getCode", json!([at, "latest"])).unwrap(), json!("0x"));
        at
    }

    fn call<C: SolCall>(&mut self, to: Address, call: C) -> C::Return {
        let out = self
            .c
            .call(
                "eth_call",
                json!([{"from": self.k.address(), "to": to, "data": Bytes::from(call.abi_encode())}, "latest"]),
            )
            .unwrap();
        let out: Bytes = out.as_str().unwrap().parse().unwrap();
        C::abi_decode_returns(&out).unwrap()
    }

    /// Uniswap v2 from its npm artifacts, with WETH9 as wrapped OPEN: (weth, factory, router).
    fn uniswap(&mut self) -> (Address, Address, Address) {
        let weth = self.deploy("uniswap/WETH9", vec![]);
        let factory = self.deploy(
            "uniswap/UniswapV2Factory",
            Factory::constructorCall { feeToSetter: self.k.address() }.abi_encode(),
        );
        let router = self.deploy("uniswap/UniswapV2Router02", Router::constructorCall { factory, weth }.abi_encode());
        (weth, factory, router)
    }

    fn open_balance(&mut self) -> U256 {
        self.c.balance(&self.k.address()).unwrap()
    }
}

fn get_amount_out(amount_in: U256, reserve_in: U256, reserve_out: U256) -> U256 {
    let with_fee = amount_in * U256::from(997);
    with_fee * reserve_out / (reserve_in * U256::from(1000) + with_fee)
}

#[test]
fn an_erc20_and_uniswap_v2_run_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let mut d = Dapp { c: node.client(), k: dev(3), nonce: 0, gas_paid: U256::ZERO };
    let me = d.k.address();
    let e18 = U256::from(10).pow(U256::from(18));

    // OpenZeppelin's ERC-20: deploy, read, transfer, its event, its storage slot.
    let supply = U256::from(1_000_000) * e18;
    let token = d.deploy(
        "TestToken",
        TestToken::constructorCall { name: "Test".into(), symbol: "TST".into(), supply }.abi_encode(),
    );
    assert_eq!(d.call(token, TestToken::totalSupplyCall {}), supply);
    let r = d.send(
        Some(token),
        U256::ZERO,
        TestToken::transferCall { to: dev(4).address(), amount: U256::from(5u64) }.abi_encode(),
    );
    assert_eq!(r.inner.logs()[0].topics()[0], TestToken::Transfer::SIGNATURE_HASH);
    assert_eq!(d.call(token, TestToken::balanceOfCall { account: dev(4).address() }), U256::from(5u64));
    let slot2 = d.c.call("eth_getStorageAt", json!([token, "0x2", "latest"])).unwrap();
    assert_eq!(
        slot2.as_str().unwrap().parse::<B256>().unwrap(),
        B256::from(supply),
        "OZ 5 keeps totalSupply in slot 2"
    );
    let transfers = Filter::new().from_block(0).to_block(BlockNumberOrTag::Latest).address(token);
    // The slot with its proof against the block's state root.
    let p = d.c.call("ol_getStorageProof", json!([token, "0x2", "latest"])).unwrap();
    let root =
        d.c.block(BlockNumberOrTag::Number(p["blockNumber"].as_u64().unwrap()), false)
            .unwrap()
            .unwrap()
            .header
            .state_root;
    let key: Bytes = p["key"].as_str().unwrap().parse().unwrap();
    let value: Bytes = p["value"].as_str().unwrap().parse().unwrap();
    let proof: Bytes = p["proof"].as_str().unwrap().parse().unwrap();
    assert_eq!(value.as_ref(), B256::from(supply).as_slice());
    storage::StateProof::verify_bytes(&root, &key, Some(&value), &proof).unwrap();
    assert!(storage::StateProof::verify_bytes(&root, &key, Some(B256::ZERO.as_slice()), &proof).is_err());
    let logs = d.c.logs(&transfers.event_signature(TestToken::Transfer::SIGNATURE_HASH)).unwrap();
    assert_eq!(logs.len(), 2, "the mint and the transfer: {logs:?}");
    assert_eq!(logs[1].topics()[2], dev(4).address().into_word());

    // Uniswap v2 with WETH9 as wrapped OPEN.
    let (weth, factory, router) = d.uniswap();
    d.send(Some(token), U256::ZERO, TestToken::approveCall { spender: router, amount: U256::MAX }.abi_encode());
    let deadline = U256::from(u64::MAX);
    let (tok_in, eth_in) = (U256::from(10_000) * e18, U256::from(100) * e18);
    d.send(
        Some(router),
        eth_in,
        Router::addLiquidityETHCall {
            token,
            amountTokenDesired: tok_in,
            amountTokenMin: tok_in,
            amountETHMin: eth_in,
            to: me,
            deadline,
        }
        .abi_encode(),
    );
    let pair = d.call(factory, Factory::getPairCall { a: token, b: weth });
    let (t0, t1) = if token < weth { (token, weth) } else { (weth, token) };
    let init_hash: B256 = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/out/uniswap/INIT_CODE_HASH"),
    )
    .unwrap()
    .trim()
    .parse()
    .unwrap();
    let salt = keccak256([t0.as_slice(), t1.as_slice()].concat());
    assert_eq!(pair, factory.create2(salt, init_hash), "the pair is where the router computes it");
    let liquidity = d.call(pair, Pair::balanceOfCall { account: me });
    assert_eq!(
        liquidity,
        (tok_in * eth_in).root(2) - U256::from(1000),
        "first liquidity is sqrt(x*y) - MINIMUM_LIQUIDITY"
    );

    // Swap OPEN for tokens: exactly the constant-product amount.
    let reserves = |d: &mut Dapp| {
        let r = d.call(pair, Pair::getReservesCall {});
        let (r0, r1) = (U256::from(r.reserve0), U256::from(r.reserve1));
        if token == t0 { (r0, r1) } else { (r1, r0) } // (token, weth)
    };
    let (rt, rw) = reserves(&mut d);
    let swap_in = e18;
    let expected = get_amount_out(swap_in, rw, rt);
    let before_tok = d.call(token, TestToken::balanceOfCall { account: me });
    let (open_before, gas_before) = (d.open_balance(), d.gas_paid);
    d.send(
        Some(router),
        swap_in,
        Router::swapExactETHForTokensCall { amountOutMin: expected, path: vec![weth, token], to: me, deadline }
            .abi_encode(),
    );
    assert_eq!(d.call(token, TestToken::balanceOfCall { account: me }), before_tok + expected);
    assert_eq!(
        d.open_balance(),
        open_before - swap_in - (d.gas_paid - gas_before),
        "OPEN: the swap and gas, to the wei"
    );

    // And back: tokens for OPEN.
    let (rt, rw) = reserves(&mut d);
    let back_in = U256::from(50) * e18;
    let back_out = get_amount_out(back_in, rt, rw);
    let (open_before, gas_before) = (d.open_balance(), d.gas_paid);
    d.send(
        Some(router),
        U256::ZERO,
        Router::swapExactTokensForETHCall {
            amountIn: back_in,
            amountOutMin: back_out,
            path: vec![token, weth],
            to: me,
            deadline,
        }
        .abi_encode(),
    );
    assert_eq!(d.open_balance(), open_before + back_out - (d.gas_paid - gas_before));

    // Remove all liquidity: the pool's share of both reserves comes back.
    let (rt, rw) = reserves(&mut d);
    let total = d.call(pair, Pair::totalSupplyCall {});
    let (want_tok, want_eth) = (liquidity * rt / total, liquidity * rw / total);
    d.send(Some(pair), U256::ZERO, Pair::approveCall { spender: router, amount: U256::MAX }.abi_encode());
    let before_tok = d.call(token, TestToken::balanceOfCall { account: me });
    let (open_before, gas_before) = (d.open_balance(), d.gas_paid);
    d.send(
        Some(router),
        U256::ZERO,
        Router::removeLiquidityETHCall {
            token,
            liquidity,
            amountTokenMin: want_tok,
            amountETHMin: want_eth,
            to: me,
            deadline,
        }
        .abi_encode(),
    );
    assert_eq!(d.call(token, TestToken::balanceOfCall { account: me }), before_tok + want_tok);
    assert_eq!(d.open_balance(), open_before + want_eth - (d.gas_paid - gas_before));
    assert_eq!(d.call(pair, Pair::balanceOfCall { account: me }), U256::ZERO);
    // WETH9 holds exactly the OPEN still wrapped: the pool's reserve behind
    // the locked minimum liquidity.
    let (_, rw) = reserves(&mut d);
    assert!(rw > U256::ZERO);
    assert_eq!(d.c.balance(&weth).unwrap(), rw);
    node.stop();
    // Every block re-executes to the same state roots and receipts.
    let out = cli_ok(&["debug", "replay", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(out.contains("match"), "{out}");
}

#[test]
fn reverts_create2_and_contracts_calling_native_modules() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let mut d = Dapp { c: node.client(), k: dev(3), nonce: 0, gas_paid: U256::ZERO };
    let me = d.k.address();

    // A custom error through eth_call and eth_estimateGas: code 3 with the data.
    let probe = d.deploy("Probe", vec![]);
    let data = Bytes::from(Probe::failCall { code: U256::from(7u64) }.abi_encode());
    let want = Probe::Failed { code: U256::from(7u64), caller: me }.abi_encode();
    for method in ["eth_call", "eth_estimateGas"] {
        let e = d.c.call(method, json!([{"from": me, "to": probe, "data": data}])).unwrap_err();
        assert_eq!(e.code(), Some(3), "{method}: {e:?}");
        assert_eq!(revert_data(&e).as_ref(), want.as_slice(), "{method}");
    }
    // A transaction that reverts in a nested call, traced as Foundry and Hardhat users read it.
    let inner = Probe::failCall { code: U256::from(9u64) }.abi_encode();
    let fwd = Probe::forwardCall { target: probe, data: inner.clone().into() }.abi_encode();
    let raw = signed_kind(&d.k, d.nonce, TxKind::Call(probe), 0, fwd.clone(), 200_000);
    d.nonce += 1;
    let h = d.c.send_raw(&raw).unwrap();
    let r = d.c.wait_receipt(&h, Duration::from_secs(60)).unwrap();
    assert!(!r.status());
    let t = d.c.call("debug_traceTransaction", json!([h, {"tracer": "callTracer"}])).unwrap();
    assert_eq!(t["type"], "CALL");
    assert_eq!(t["to"], json!(probe));
    assert_eq!(hex_u(&t["gas"]), 200_000);
    assert_eq!(hex_u(&t["gasUsed"]) as u64, r.gas_used);
    assert_eq!(t["error"], "execution reverted");
    let call = &t["calls"][0];
    assert_eq!(call["type"], "CALL");
    assert_eq!(call["from"], json!(probe));
    assert_eq!(call["input"], json!(Bytes::from(inner)));
    assert_eq!(
        call["output"],
        json!(Bytes::from(Probe::Failed { code: U256::from(9u64), caller: probe }.abi_encode()))
    );
    let top =
        d.c.call("debug_traceTransaction", json!([h, {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": true}}]))
            .unwrap();
    assert!(top.get("calls").is_none());
    let e = d.c.call("debug_traceTransaction", json!([h, {"tracer": "prestateTracer"}])).unwrap_err();
    assert!(e.to_string().contains("callTracer"), "{e}");

    // CREATE2 lands where the formula says.
    let salt = B256::repeat_byte(0x42);
    let hash = d.call(probe, Probe::childInitCodeHashCall {});
    d.send(Some(probe), U256::ZERO, Probe::deploy2Call { salt }.abi_encode());
    assert_ne!(d.c.call("eth_getCode", json!([probe.create2(salt, hash), "latest"])).unwrap(), json!("0x"));
    // The block as the EVM sees it: the chain id and the reward pool as coinbase.
    let info = d.call(probe, Probe::blockInfoCall {});
    assert_eq!(info.chainid, U256::from(31337));
    assert_eq!(info.coinbase, primitives::system::VALIDATOR_REWARD_POOL);

    // A contract stakes with the native staking module and reads its stake back.
    let caller = d.deploy("NativeCaller", vec![]);
    let validators = d.call(Module::Staking.address(), IStaking::operatorsCall { role: 1, offset: 0, limit: 1 });
    let validator = validators[0];
    let amount = U256::from(10).pow(U256::from(20));
    d.send(Some(caller), amount, NativeCaller::bondCall { operator: validator }.abi_encode());
    assert_eq!(d.call(caller, NativeCaller::stakeAtCall { operator: validator }).amount, amount);
    // The call into staking is a frame of the trace, with the value it carried.
    let bond_tx = d.c.call("eth_getBlockByNumber", json!(["latest", false])).unwrap()["transactions"][0].clone();
    let t = d.c.call("debug_traceTransaction", json!([bond_tx, {"tracer": "callTracer"}])).unwrap();
    assert_eq!(t["calls"][0]["to"], json!(Module::Staking.address()));
    assert_eq!(t["calls"][0]["from"], json!(caller));
    assert_eq!(hex_u(&t["calls"][0]["value"]), amount.to::<u128>());
    // The contract proposes and votes in the native governance with its stake.
    let deposit = d.call(Module::Governance.address(), IGovernance::proposalDepositCall {});
    let propose =
        NativeCaller::proposeCall { description: "a contract proposes".into(), targets: vec![], calldatas: vec![] };
    d.send(Some(caller), deposit, propose.abi_encode());
    let id = d.call(Module::Governance.address(), IGovernance::proposalCountCall {});
    let p = d.call(Module::Governance.address(), IGovernance::proposalCall { id });
    assert_eq!(p.proposer, caller);
    let head = d.c.block_number().unwrap();
    if p.voteStart > head {
        d.c.call("anvil_mine", json!([format!("{:#x}", p.voteStart - head)])).unwrap();
    }
    d.send(Some(caller), U256::ZERO, NativeCaller::castVoteCall { id, support: 1 }.abi_encode());
    assert!(d.call(caller, NativeCaller::hasVotedCall { id }));
    let p = d.call(Module::Governance.address(), IGovernance::proposalCall { id });
    assert_eq!(p.forVotes, amount, "the contract's stake is its voting power");

    let via_contract = d.call(caller, NativeCaller::bankBalanceOfCall { account: me });
    assert_eq!(via_contract, d.open_balance());
    // A module's custom error comes back to the contract's caller unchanged.
    let set = NativeCaller::setParamCall { name: "fees.treasury_bps".into(), value: U256::from(1u64) };
    let e =
        d.c.call("eth_call", json!([{"from": me, "to": caller, "data": Bytes::from(set.abi_encode())}])).unwrap_err();
    assert_eq!(revert_data(&e).as_ref(), Unauthorized { caller }.abi_encode().as_slice());

    // eth_call with a state override: the token balance slot of an account set by hand.
    let override_set = json!({ me.to_string(): {"balance": "0x1"} });
    let out = d
        .c
        .call("eth_call", json!([{"to": caller, "data": Bytes::from(NativeCaller::bankBalanceOfCall { account: me }.abi_encode())}, "latest", override_set]))
        .unwrap();
    assert_eq!(U256::from_str_radix(out.as_str().unwrap().trim_start_matches("0x"), 16).unwrap(), U256::from(1u64));
    // eth_estimateGas takes the same set: an empty account bonds through the contract.
    let nobody = Address::repeat_byte(0x77);
    let bond = json!({"from": nobody, "to": caller, "value": format!("{:#x}", amount), "data": Bytes::from(NativeCaller::bondCall { operator: validator }.abi_encode())});
    assert!(d.c.call("eth_estimateGas", json!([bond, "latest"])).is_err(), "no OPEN, no estimate");
    let rich = json!({ nobody.to_string(): {"balance": format!("{:#x}", amount * U256::from(2))} });
    assert!(hex_u(&d.c.call("eth_estimateGas", json!([bond, "latest", rich])).unwrap()) > 21_000);
    node.stop();
}

#[test]
fn a_models_revenue_shares_trade_in_a_uniswap_pool() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProc::start(dir.path(), &["--instant"]);
    let mut d = Dapp { c: node.client(), k: dev(5), nonce: 0, gas_paid: U256::ZERO };
    let me = d.k.address();
    let e18 = U256::from(10).pow(U256::from(18));
    let models = Module::Models.address();

    // A model of ours on the node's base model.
    let base = d.call(models, IModels::modelCall { id: 1 }).baseModelHash;
    let reg = adapter_registration("shares demo", base);
    d.send(Some(models), U256::ZERO, IModels::registerCall { registration: reg }.abi_encode());
    let id = d.call(models, IModels::modelCountCall {});
    assert_eq!(d.call(models, IModels::modelCall { id }).owner, me);

    // Split it into 1,000 shares; the share token is an ERC-20 like any other.
    let assets = Module::Assets.address();
    let asset = runtime::assets::model_asset(id);
    let supply = U256::from(1_000u64) * e18;
    d.send(Some(assets), U256::ZERO, IAssets::splitCall { assetId: asset, supply, symbol: "DEMO".into() }.abi_encode());
    let share = d.call(assets, IAssets::shareTokenCall { assetId: asset });
    assert_eq!(d.call(share, TestToken::balanceOfCall { account: me }), supply);
    assert_ne!(d.c.call("eth_getCode", json!([share, "latest"])).unwrap(), json!("0x"), "Solidity callers see code");

    // A pool of shares against OPEN in the dev chain's market (Uniswap v2 at
    // genesis), and a swap at the constant-product price.
    let m = primitives::system::dev_market();
    let (weth, factory, router) = (m.wopen, m.factory, m.router);
    d.send(Some(share), U256::ZERO, TestToken::approveCall { spender: router, amount: U256::MAX }.abi_encode());
    let deadline = U256::from(u64::MAX);
    let (sh_in, open_in) = (U256::from(400u64) * e18, U256::from(40u64) * e18);
    let add = Router::addLiquidityETHCall {
        token: share,
        amountTokenDesired: sh_in,
        amountTokenMin: sh_in,
        amountETHMin: open_in,
        to: me,
        deadline,
    };
    d.send(Some(router), open_in, add.abi_encode());
    let pair = d.call(factory, Factory::getPairCall { a: share, b: weth });
    assert_eq!(d.call(share, TestToken::balanceOfCall { account: pair }), sh_in);
    // The pair is a contract that cannot claim: its shares do not earn.
    assert!(!d.call(assets, IAssets::earningCall { account: pair }));
    assert_eq!(d.call(share, IShareToken::earningSupplyCall {}), supply - sh_in);

    let mut b = Dapp { c: node.client(), k: dev(6), nonce: 0, gas_paid: U256::ZERO };
    let buyer = b.k.address();
    let swap_in = e18;
    let expected = get_amount_out(swap_in, open_in, sh_in);
    let swap =
        Router::swapExactETHForTokensCall { amountOutMin: expected, path: vec![weth, share], to: buyer, deadline };
    b.send(Some(router), swap_in, swap.abi_encode());
    assert_eq!(b.call(share, TestToken::balanceOfCall { account: buyer }), expected);
    assert_eq!(b.call(share, IShareToken::earningSupplyCall {}), supply - sh_in + expected, "the buyer's shares earn");

    // The web app's Assets page lists the token with its pool and price.
    let (status, body) = node.http_get("/assets");
    let page = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("DEMO") && page.contains(&format!("{pair:#x}").to_lowercase()[..10]), "{page}");
    assert!(!page.contains("no pool"), "{page}");
    // The token's own page: its holders (found through its Transfer logs,
    // filed under it in the history index), the pool's price history (its
    // Sync logs) and the model's licence offers.
    let n = primitives::system::share_token_index(&share).unwrap();
    let (status, body) = node.http_get(&format!("/assets/{n}"));
    let page = String::from_utf8(body).unwrap();
    assert_eq!(status, 200, "{page}");
    for a in [me, buyer, pair] {
        assert!(page.contains(&a.to_checksum(None)), "holder {a} listed: {page}");
    }
    assert!(page.contains("3 holders"), "{page}");
    assert!(page.contains("Price per share") && page.contains("<svg"), "a price chart: {page}");
    assert!(page.contains("offers no licences"), "{page}");
    for (path, code) in [("/assets/999", 404), ("/assets/abc", 400), ("/assets/99999999999", 404)] {
        assert_eq!(node.http_get(path).0, code, "{path}");
    }
    node.stop();
}
