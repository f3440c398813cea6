//! `assets`: intelligence assets owned in shares.
//!
//! - **Assets** are named by a token id, `kind << 64 | id`: kind 0 a model
//!   (Datanets, kind 1, and agents, kind 2, are reserved for their ownership
//!   tokens). Today only models earn: the owner part of every receipt the
//!   inference module settles.
//! - **Split.** A model's owner splits its future earnings into `supply`
//!   fungible shares (18 decimals), all minted to the owner, once and for
//!   good: the module makes a share token, an ERC-20 at
//!   [`primitives::system::share_token_address`]`(n)` whose calls this module
//!   answers (so every ERC-20 tool, and a Uniswap v2 pair, use it unchanged).
//!   The owner keeps the model's rights (pricing, proposals); its earnings go
//!   to the shareholders.
//! - **Earnings, pro rata, no loop over holders.** A deposit adds
//!   `floor((amount × SCALE + dust) / earningSupply)` to the token's
//!   reward-per-share index `acc` and keeps the division's remainder in
//!   `dust` (in OPEN × SCALE) for the next deposit, so Σ increments ×
//!   earning supplies = Σ deposits × SCALE − dust exactly; a holder is
//!   settled (`owed += balance × (acc − debt) / SCALE`, rounded down) before
//!   its balance changes and when it claims. The holders' claimable amounts
//!   therefore never sum to more than the deposits; what they leave (below
//!   one wei per settlement, plus `dust / SCALE`) stays with this module,
//!   counted in `held` per token; nothing leaves but claims.
//! - **Who earns.** An account without code earns; a contract earns only
//!   after it calls `setEarning(true)` (a multisig can; a Uniswap pair or a
//!   router cannot claim, so they do not earn). Shares that do not earn are
//!   left out of `earningSupply`, so their would-be earnings go to the shares
//!   that earn, never to an address that cannot claim them. An account's
//!   status is fixed in a token when it is settled there (any transfer, or a
//!   `claim`), so `setEarning` takes effect in each token at its next one. If
//!   no share earns when a deposit comes, the model's owner is paid as if it
//!   had not split.
//! - Shares cannot be sent to the zero address, a system contract or a share
//!   token (nobody could move them back).

mod calls;
mod nft;
pub mod params;
pub mod records;
mod shares;
pub mod state_key;
pub mod view;

use primitives::abi::IAssets::IAssetsCalls;
use primitives::system::Module;
use primitives::{Address, U256};

use crate::dispatch::{SystemModule, calls};
pub use records::{HolderRecord, ShareRecord};
pub(crate) use shares::decode_share_call;
pub use view::{AssetsRead, AssetsWrite};

pub const ADDRESS: Address = Module::Assets.address();
/// Scale of the reward-per-share index (10^36: a deposit's increment keeps 36
/// decimal digits of a wei per share).
pub const SCALE: U256 = U256::from_limbs([0xb34b9f1000000000, 0x00c097ce7bc90715, 0, 0]);
/// Largest share supply (10^36 base units, 10^18 shares): with OPEN's supply
/// below 2^128 the index arithmetic stays within 256 bits.
pub const MAX_SUPPLY: U256 = SCALE;
/// Most share tokens.
pub const MAX_SHARE_TOKENS: u32 = 1_000_000;
/// Asset kinds (the top bits of an asset id).
pub const KIND_MODEL: u64 = 0;
pub const KIND_DATANET: u64 = 1;

/// The asset id (ERC-721 token id) of model `id`.
pub fn model_asset(id: u64) -> U256 {
    U256::from(id) | (U256::from(KIND_MODEL) << 64)
}

/// The asset id (ERC-721 token id) of Datanet `id`.
pub fn datanet_asset(id: u64) -> U256 {
    U256::from(id) | (U256::from(KIND_DATANET) << 64)
}

/// (kind, id) of an asset id, if it names a kind.
pub fn asset_parts(asset: U256) -> Option<(u64, u64)> {
    let kind = u64::try_from(asset >> 64).ok()?;
    Some((kind, (asset & U256::from(u64::MAX)).to()))
}

pub struct Assets;

impl SystemModule for Assets {
    type Calls = IAssetsCalls;
    calls!(IAssetsCalls {
        name,
        symbol,
        tokenURI,
        balanceOf,
        ownerOf,
        transferFrom,
        safeTransferFrom_0,
        safeTransferFrom_1,
        approve,
        getApproved,
        setApprovalForAll,
        isApprovedForAll,
        supportsInterface,
        split,
        shareToken,
        earning,
        setEarning,
        shareTokenCount,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_is_ten_to_the_36() {
        assert_eq!(SCALE, U256::from(10u64).pow(U256::from(36u64)));
    }
}
