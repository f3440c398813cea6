//! The fixed addresses of the system contracts and the one EIP-712 domain rule.
//!
//! Every runtime module owns one address in `0x…1001`–`0x…10ff`, well clear of
//! Ethereum's precompiles (`0x01`–`0x11`). The table is complete from the first
//! release, so an address never changes meaning when a module lands later.

use alloy_primitives::{Address, U256, address};
use alloy_sol_types::Eip712Domain;

/// A runtime module that owns a system-contract address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Module {
    Bank,
    Params,
    Staking,
    Governance,
    Datanets,
    Models,
    Inference,
    Attribution,
    Agents,
    Assets,
}

/// Every module, in address order.
pub const SYSTEM_MODULES: [Module; 10] = [
    Module::Bank,
    Module::Params,
    Module::Staking,
    Module::Governance,
    Module::Datanets,
    Module::Models,
    Module::Inference,
    Module::Attribution,
    Module::Agents,
    Module::Assets,
];

/// The treasury: an account no key controls; only governance proposals spend it.
pub const TREASURY: Address = address!("0x00000000000000000000000000000000000010fe");
/// Governance proposals' deposits, held apart from the governance address: a
/// passed proposal runs its calls as the governance address, so whatever that
/// address holds a proposal can spend; this account only governance's own
/// code moves (locking a deposit, returning or burning it).
pub const GOVERNANCE_DEPOSITS: Address = address!("0x00000000000000000000000000000000000010fc");
/// Accounts a module holds funds in apart from its own address (part of the
/// supply equation's "held by modules").
pub const MODULE_ESCROWS: [Address; 1] = [GOVERNANCE_DEPOSITS];
/// The validators' reward pool. Staking owns it; until staking pays out, fees accrue here.
pub const VALIDATOR_REWARD_POOL: Address = address!("0x00000000000000000000000000000000000010fd");

impl Module {
    /// The module's system-contract address.
    pub const fn address(self) -> Address {
        let mut b = [0u8; 20];
        b[18] = 0x10;
        b[19] = match self {
            Module::Bank => 0x01,
            Module::Params => 0x02,
            Module::Staking => 0x03,
            Module::Governance => 0x04,
            Module::Datanets => 0x05,
            Module::Models => 0x06,
            Module::Inference => 0x07,
            Module::Attribution => 0x08,
            Module::Agents => 0x09,
            Module::Assets => 0x0a,
        };
        Address::new(b)
    }

    /// Lower-case name used in state-key prefixes, the CLI and `ol_` queries.
    pub const fn name(self) -> &'static str {
        match self {
            Module::Bank => "bank",
            Module::Params => "params",
            Module::Staking => "staking",
            Module::Governance => "governance",
            Module::Datanets => "datanets",
            Module::Models => "models",
            Module::Inference => "inference",
            Module::Attribution => "attribution",
            Module::Agents => "agents",
            Module::Assets => "assets",
        }
    }

    pub fn from_address(a: &Address) -> Option<Module> {
        SYSTEM_MODULES.into_iter().find(|m| m.address() == *a)
    }

    pub fn from_name(s: &str) -> Option<Module> {
        SYSTEM_MODULES.into_iter().find(|m| m.name() == s)
    }

    /// The EIP-712 domain of every typed signature addressed to this module
    /// (attestations, receipts, records, verdicts): name "OpenLedger",
    /// version [`EIP712_VERSION`], the chain id, and the module's address as the
    /// verifying contract.
    pub fn eip712_domain(self, chain_id: u64) -> Eip712Domain {
        Eip712Domain::new(
            Some("OpenLedger".into()),
            Some(EIP712_VERSION.into()),
            Some(U256::from(chain_id)),
            Some(self.address()),
            None,
        )
    }
}

/// The address of revenue-share token `n` (from 1): `2^33 + n`, a range no
/// key reaches and no contract creation produces. Each is an ERC-20 whose
/// calls the `assets` module answers.
pub const fn share_token_address(n: u32) -> Address {
    let mut b = [0u8; 20];
    b[15] = 0x02;
    let n = n.to_be_bytes();
    b[16] = n[0];
    b[17] = n[1];
    b[18] = n[2];
    b[19] = n[3];
    Address::new(b)
}

/// The share token number of `a`, if it is a share token address.
pub fn share_token_index(a: &Address) -> Option<u32> {
    let b = a.as_slice();
    let n = u32::from_be_bytes([b[16], b[17], b[18], b[19]]);
    (b[..15].iter().all(|x| *x == 0) && b[15] == 0x02 && n != 0).then_some(n)
}

/// The account that deploys the dev chain's market at genesis (no key holds it).
pub const DEV_DEPLOYER: Address = address!("0x00000000000000000000000000000000000010f0");

/// Addresses of the dev chain's Uniswap v2 contracts (the dev genesis deploys
/// them from [`DEV_DEPLOYER`] in this order, so they are the same on every
/// dev node; on another chain there may be no code there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevMarket {
    /// WETH9, wrapping OPEN.
    pub wopen: Address,
    pub factory: Address,
    pub router: Address,
}

/// Where the dev genesis deploys the market.
pub fn dev_market() -> DevMarket {
    DevMarket { wopen: DEV_DEPLOYER.create(0), factory: DEV_DEPLOYER.create(1), router: DEV_DEPLOYER.create(2) }
}

/// Version string of the EIP-712 domain.
pub const EIP712_VERSION: &str = "1";

/// Whether an address is reserved by the protocol (a module, the treasury or the reward pool).
pub fn is_system_address(a: &Address) -> bool {
    let b = a.as_slice();
    b[..18].iter().all(|x| *x == 0) && b[18] == 0x10
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for m in SYSTEM_MODULES {
            assert!(seen.insert(m.address()));
            assert_eq!(Module::from_address(&m.address()), Some(m));
            assert_eq!(Module::from_name(m.name()), Some(m));
            assert!(is_system_address(&m.address()));
        }
        assert_eq!(Module::Bank.address(), address!("0x0000000000000000000000000000000000001001"));
        assert!(is_system_address(&TREASURY));
        assert!(!is_system_address(&address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")));
        assert_eq!(share_token_address(1), address!("0x0000000000000000000000000000000200000001"));
        assert_eq!(share_token_index(&share_token_address(77)), Some(77));
        assert_eq!(share_token_index(&Module::Assets.address()), None);
        assert_eq!(share_token_index(&address!("0x0000000000000000000000000000000200000000")), None);
    }

    #[test]
    fn domain_separator_depends_on_chain_and_module() {
        let a = Module::Datanets.eip712_domain(31337).separator();
        let b = Module::Datanets.eip712_domain(1).separator();
        let c = Module::Inference.eip712_domain(31337).separator();
        assert_ne!(a, b);
        assert_ne!(a, c);
    }
}
