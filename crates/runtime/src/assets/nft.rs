//! Ownership of models and Datanets as ERC-721 tokens: the token is the
//! owner field of the model's or Datanet's record, so moving it moves what
//! that owner may do and what it earns (an asset not split).

use primitives::abi::IAssets;
use primitives::system::{is_system_address, share_token_index};
use primitives::{Address, ModelId, U256};

use super::{ADDRESS, KIND_DATANET, KIND_MODEL, asset_parts, state_key};
use crate::context::{CallCtx, CallFail};
use crate::datanets::{DatanetsRead, DatanetsWrite};
use crate::dispatch::Handler;
use crate::models::{ModelsRead, ModelsWrite};
use crate::{Overlay, revert};

const VIEW_GAS: u64 = 2_000;
/// The record rewritten, the owners' lists moved, the approval cleared.
const TRANSFER_GAS: u64 = 60_000;
/// ERC-165, ERC-721 and ERC-721 Metadata.
const INTERFACES: [[u8; 4]; 3] = primitives::abi::ERC721_INTERFACE_IDS;

/// The owner of token `token` (a model or a Datanet), or `ERC721NonexistentToken`.
pub(super) fn owner_of(st: &Overlay, token: U256) -> Result<Address, CallFail> {
    let none = || revert(IAssets::ERC721NonexistentToken { tokenId: token });
    match asset_parts(token).ok_or_else(none)? {
        (KIND_MODEL, id) => Ok(st.model(ModelId(id))?.ok_or_else(none)?.owner),
        (KIND_DATANET, id) => Ok(st.datanet(id)?.ok_or_else(none)?.owner),
        _ => Err(none()),
    }
}

fn approved(st: &Overlay, token: &U256) -> Result<Address, CallFail> {
    Ok(st.get(&state_key::approved(token))?.map(|b| Address::from_slice(&b)).unwrap_or(Address::ZERO))
}

fn is_operator(st: &Overlay, owner: &Address, operator: &Address) -> Result<bool, CallFail> {
    Ok(st.get(&state_key::operator(owner, operator))?.is_some())
}

/// `transferFrom`'s rules and effect; `safe` refuses receivers with code.
fn transfer(
    st: &mut Overlay,
    ctx: &mut CallCtx,
    from: Address,
    to: Address,
    token: U256,
    safe: bool,
) -> Result<(), CallFail> {
    let owner = owner_of(st, token)?;
    let sender = ctx.sender;
    if sender != owner && approved(st, &token)? != sender && !is_operator(st, &owner, &sender)? {
        return Err(revert(IAssets::ERC721InsufficientApproval { operator: sender, tokenId: token }));
    }
    if from != owner {
        return Err(revert(IAssets::ERC721IncorrectOwner { sender: from, tokenId: token, owner }));
    }
    let has_code = st.get(&crate::evm::state_key::code_hash(&to))?.is_some();
    if to == Address::ZERO || is_system_address(&to) || share_token_index(&to).is_some() || (safe && has_code) {
        return Err(revert(IAssets::ERC721InvalidReceiver { receiver: to }));
    }
    match asset_parts(token) {
        Some((KIND_MODEL, id)) => st.set_model_owner(ModelId(id), &to)?,
        Some((_, id)) => st.set_datanet_owner(id, &to)?,
        None => unreachable!("owner_of found the token"),
    }
    st.put(state_key::approved(&token), None);
    ctx.emit(ADDRESS, &IAssets::Transfer { from, to, tokenId: token });
    Ok(())
}

impl Handler for IAssets::nameCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok("OpenLedger Assets".into())
    }
}

impl Handler for IAssets::symbolCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok("ASSET".into())
    }
}

impl Handler for IAssets::tokenURICall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        owner_of(st, self.tokenId)?;
        Ok(match asset_parts(self.tokenId) {
            Some((KIND_MODEL, id)) => format!("openledger:model/{id}"),
            Some((_, id)) => format!("openledger:datanet/{id}"),
            None => unreachable!("owner_of found the token"),
        })
    }
}

impl Handler for IAssets::balanceOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        if self.owner == Address::ZERO {
            return Err(revert(IAssets::ERC721InvalidOwner { owner: self.owner }));
        }
        Ok(U256::from(st.models_of(&self.owner)?.len() + st.datanets_of(&self.owner)?.len()))
    }
}

impl Handler for IAssets::ownerOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        owner_of(st, self.tokenId)
    }
}

impl Handler for IAssets::transferFromCall {
    fn gas(&self) -> u64 {
        TRANSFER_GAS
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        transfer(st, ctx, self.from, self.to, self.tokenId, false)?;
        Ok(IAssets::transferFromReturn {})
    }
}

impl Handler for IAssets::safeTransferFrom_0Call {
    fn gas(&self) -> u64 {
        TRANSFER_GAS
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        transfer(st, ctx, self.from, self.to, self.tokenId, true)?;
        Ok(IAssets::safeTransferFrom_0Return {})
    }
}

impl Handler for IAssets::safeTransferFrom_1Call {
    fn gas(&self) -> u64 {
        TRANSFER_GAS
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        transfer(st, ctx, self.from, self.to, self.tokenId, true)?;
        Ok(IAssets::safeTransferFrom_1Return {})
    }
}

impl Handler for IAssets::approveCall {
    fn gas(&self) -> u64 {
        30_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let owner = owner_of(st, self.tokenId)?;
        let sender = ctx.sender;
        if sender != owner && !is_operator(st, &owner, &sender)? {
            return Err(revert(IAssets::ERC721InvalidApprover { approver: sender }));
        }
        let v = (self.to != Address::ZERO).then(|| self.to.to_vec());
        st.put(state_key::approved(&self.tokenId), v);
        ctx.emit(ADDRESS, &IAssets::Approval { owner, approved: self.to, tokenId: self.tokenId });
        Ok(IAssets::approveReturn {})
    }
}

impl Handler for IAssets::getApprovedCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        owner_of(st, self.tokenId)?;
        approved(st, &self.tokenId)
    }
}

impl Handler for IAssets::setApprovalForAllCall {
    fn gas(&self) -> u64 {
        30_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        if self.operator == Address::ZERO {
            return Err(revert(IAssets::ERC721InvalidOperator { operator: self.operator }));
        }
        let sender = ctx.sender;
        st.put(state_key::operator(&sender, &self.operator), self.approved.then(|| vec![1]));
        let ev = IAssets::ApprovalForAll { owner: sender, operator: self.operator, approved: self.approved };
        ctx.emit(ADDRESS, &ev);
        Ok(IAssets::setApprovalForAllReturn {})
    }
}

impl Handler for IAssets::isApprovedForAllCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        is_operator(st, &self.owner, &self.operator)
    }
}

impl Handler for IAssets::supportsInterfaceCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(INTERFACES.contains(&self.interfaceId.0))
    }
}
