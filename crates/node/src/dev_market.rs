//! The dev chain's market: Uniswap v2 (WETH9 as WOPEN, the factory, Router02)
//! from the unchanged npm artifacts in `contracts/out/uniswap`, deployed at
//! genesis from [`DEV_DEPLOYER`] so their addresses are the same on every
//! dev node: every share token can get a pool against OPEN and a price.

use alloy_sol_types::SolValue;
use primitives::{Address, Amount};
use runtime::genesis::GenesisCall;

pub use primitives::system::{DEV_DEPLOYER, DevMarket, dev_market};

const WETH9: &str = include_str!("../../../contracts/out/uniswap/WETH9.json");
const FACTORY: &str = include_str!("../../../contracts/out/uniswap/UniswapV2Factory.json");
const ROUTER: &str = include_str!("../../../contracts/out/uniswap/UniswapV2Router02.json");

fn bytecode(artifact: &str) -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(artifact).expect("a committed artifact is JSON");
    let hex = v["bytecode"].as_str().expect("a committed artifact has bytecode");
    alloy_primitives::hex::decode(hex).expect("a committed artifact's bytecode is hex")
}

/// The genesis deployments, in nonce order: WETH9, the factory (its fee
/// switch held by the treasury), the router.
pub fn dev_market_calls() -> Vec<GenesisCall> {
    let m = dev_market();
    let deploy = |mut code: Vec<u8>, args: Vec<u8>| {
        code.extend(args);
        GenesisCall { from: DEV_DEPLOYER, to: Address::ZERO, value: Amount::ZERO, data: code.into() }
    };
    vec![
        deploy(bytecode(WETH9), vec![]),
        deploy(bytecode(FACTORY), primitives::system::TREASURY.abi_encode()),
        deploy(bytecode(ROUTER), (m.factory, m.wopen).abi_encode_params()),
    ]
}

#[cfg(test)]
mod tests {
    use alloy_sol_types::{SolCall, sol};

    use primitives::address;

    use super::*;

    sol! {
        function factory() external view returns (address);
        function WETH() external view returns (address);
        function feeToSetter() external view returns (address);
    }

    #[test]
    fn the_dev_genesis_deploys_uniswap_at_fixed_addresses() {
        let g = crate::config::dev_genesis();
        let empty = runtime::EmptyState;
        let mut st = runtime::Overlay::new(&empty);
        g.apply(&mut st).unwrap();
        let m = dev_market();
        for a in [m.wopen, m.factory, m.router] {
            assert!(!runtime::evm::code_at(&st, &a).unwrap().is_empty(), "{a} has code");
        }
        let env = runtime::BlockEnv {
            chain_id: g.chain_id,
            number: 1,
            timestamp: g.timestamp + 1,
            base_fee: 1,
            gas_limit: 30_000_000,
            coinbase: primitives::system::VALIDATOR_REWARD_POOL,
            last_commit: None,
        };
        let call = |to: Address, data: Vec<u8>| {
            let out = runtime::call(&st, &env, Address::ZERO, to, Amount::ZERO, &data, None).unwrap();
            assert!(out.success);
            Address::from_slice(&out.output[12..32])
        };
        assert_eq!(call(m.router, factoryCall {}.abi_encode()), m.factory);
        assert_eq!(call(m.router, WETHCall {}.abi_encode()), m.wopen);
        assert_eq!(call(m.factory, feeToSetterCall {}.abi_encode()), primitives::system::TREASURY);
        // The addresses README.md names.
        assert_eq!(m.wopen, address!("0x27e3F860Bb6654DAd6d9C200c15c5Ab04011283c"));
        assert_eq!(m.factory, address!("0x343F38e60595DE86d7A64E423eFbdEAEb33fbE09"));
        assert_eq!(m.router, address!("0x11796B98e2a715B986A49A86C78f96e83027BbEf"));
    }
}
