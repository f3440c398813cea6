//! One handler per function of `IAssets`.

use primitives::abi::IAssets;
use primitives::system::share_token_address;
use primitives::{Address, U256};

use super::records::ShareRecord;
use super::view::AssetsRead;
use super::{ADDRESS, KIND_MODEL, MAX_SHARE_TOKENS, MAX_SUPPLY, shares, state_key};
use crate::context::{CallCtx, CallFail};
use crate::dispatch::Handler;
use crate::{Overlay, revert};

const VIEW_GAS: u64 = 2_000;

/// The owner of `asset`, which must be a model (the kind that earns so far).
fn asset_owner(st: &Overlay, asset: U256) -> Result<Address, CallFail> {
    match super::asset_parts(asset) {
        Some((KIND_MODEL, _)) => {
            super::nft::owner_of(st, asset).map_err(|_| revert(IAssets::UnknownAsset { assetId: asset }))
        }
        Some((super::KIND_DATANET, _)) if super::nft::owner_of(st, asset).is_ok() => {
            Err(revert(IAssets::NothingToShare { assetId: asset }))
        }
        _ => Err(revert(IAssets::UnknownAsset { assetId: asset })),
    }
}

fn valid_symbol(s: &str) -> bool {
    (1..=11).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl Handler for IAssets::splitCall {
    fn gas(&self) -> u64 {
        150_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let owner = asset_owner(st, self.assetId)?;
        // Governance acts for what the treasury owns (the base model).
        let governs =
            owner == primitives::system::TREASURY && ctx.sender == primitives::system::Module::Governance.address();
        if ctx.sender != owner && !governs {
            return Err(revert(IAssets::NotAssetOwner { assetId: self.assetId, caller: ctx.sender, owner }));
        }
        if let Some(n) = st.share_token_of(&self.assetId)? {
            return Err(revert(IAssets::AlreadySplit { assetId: self.assetId, shareToken: share_token_address(n) }));
        }
        if self.supply.is_zero() || self.supply > MAX_SUPPLY {
            return Err(revert(IAssets::InvalidShareSupply { supply: self.supply }));
        }
        if !valid_symbol(&self.symbol) {
            return Err(revert(IAssets::InvalidSymbol { symbol: self.symbol }));
        }
        let n = st.share_token_count()? + 1;
        if n > MAX_SHARE_TOKENS {
            return Err(revert(IAssets::TooManyShareTokens { max: U256::from(MAX_SHARE_TOKENS) }));
        }
        st.put(state_key::count(), Some(n.to_be_bytes().to_vec()));
        st.put(state_key::share_of(&self.assetId), Some(n.to_be_bytes().to_vec()));
        let mut t = ShareRecord {
            assetId: self.assetId,
            symbol: self.symbol,
            totalSupply: self.supply,
            earningSupply: U256::ZERO,
            acc: U256::ZERO,
            dust: U256::ZERO,
            held: U256::ZERO,
        };
        shares::mint_all(st, ctx, n, &mut t, owner)?;
        let token = share_token_address(n);
        ctx.emit(ADDRESS, &IAssets::Split { assetId: self.assetId, shareToken: token, supply: self.supply, to: owner });
        Ok(token)
    }
}

impl Handler for IAssets::shareTokenCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.share_token_of(&self.assetId)?.map_or(Address::ZERO, share_token_address))
    }
}

impl Handler for IAssets::earningCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.earns(&self.account)?)
    }
}

impl Handler for IAssets::setEarningCall {
    fn gas(&self) -> u64 {
        20_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        st.put(state_key::earning(&ctx.sender), Some(vec![self.on as u8]));
        ctx.emit(ADDRESS, &IAssets::EarningSet { account: ctx.sender, earning: self.on });
        Ok(IAssets::setEarningReturn {})
    }
}

impl Handler for IAssets::shareTokenCountCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.share_token_count()?)
    }
}
