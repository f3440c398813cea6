//! The functions of `IModels`, one handler each, its gas beside it.

use super::*;
use crate::dispatch::Handler;

/// Gas of a view.
const VIEW_GAS: u64 = 5_000;

impl Handler for IModels::registerCall {
    /// Per Datanet version two records are read; hyperparameters and metrics are kept in state.
    fn gas(&self) -> u64 {
        let r = &self.registration;
        150_000
            + 20_000 * r.datanets.len() as u64
            + 5_000 * r.checkpointHashes.len() as u64
            + 20 * (r.hyperparams.len() + r.metrics.len()) as u64
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let height = ctx.env.number;
        let sender = ctx.sender;
        let rec = draft(st, sender, self.registration, height)?;
        let id = st.insert_model(&rec)?;
        ctx.emit(ADDRESS, &IModels::ModelRegistered { id: id.0, owner: sender, adapterHash: rec.adapterHash });
        let mint = primitives::abi::IAssets::Transfer {
            from: Address::ZERO,
            to: sender,
            tokenId: crate::assets::model_asset(id.0),
        };
        ctx.emit(crate::assets::ADDRESS, &mint);
        Ok(id.0)
    }
}

impl Handler for IModels::proposeCall {
    fn gas(&self) -> u64 {
        30_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut rec = get(st, self.id)?;
        if rec.owner != sender {
            return Err(revert(IModels::NotOwner { caller: sender }));
        }
        if rec.state != DRAFT {
            return Err(transition(self.id, rec.state, PROPOSED));
        }
        rec.state = PROPOSED;
        st.update_model(ModelId(self.id), &rec)?;
        ctx.emit(ADDRESS, &IModels::ModelProposed { id: self.id });
        Ok(IModels::proposeReturn {})
    }
}

impl Handler for IModels::approveCall {
    /// Per id one record rewrite and a live-list entry: a thousand ids fit a block.
    fn gas(&self) -> u64 {
        20_000 + 12_000 * self.ids.len() as u64
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let governance = Module::Governance.address();
        if sender != governance {
            return Err(revert(Unauthorized { caller: sender }));
        }
        if self.ids.len() > MAX_IDS {
            return Err(invalid("at most 256 ids per approve"));
        }
        // All or nothing: the first refusal reverts every approval before it.
        for id in self.ids {
            let mut rec = get(st, id)?;
            if rec.state != PROPOSED {
                return Err(transition(id, rec.state, LIVE));
            }
            rec.state = LIVE;
            st.update_model(ModelId(id), &rec)?;
            ctx.emit(ADDRESS, &IModels::ModelApproved { id });
        }
        Ok(IModels::approveReturn {})
    }
}

impl Handler for IModels::retireCall {
    fn gas(&self) -> u64 {
        40_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let governance = Module::Governance.address();
        let mut rec = get(st, self.id)?;
        if rec.owner != sender && sender != governance {
            return Err(revert(IModels::NotOwner { caller: sender }));
        }
        if rec.state == RETIRED {
            return Err(revert(IModels::AlreadyRetired { id: self.id }));
        }
        // Only a live model's receipts may settle after retirement (within
        // the grace period): it alone was ever billable.
        if rec.state == LIVE {
            crate::codec::store(st, state_key::retired_at(ModelId(self.id)), &ctx.env.number);
        }
        rec.state = RETIRED;
        st.update_model(ModelId(self.id), &rec)?;
        ctx.emit(ADDRESS, &IModels::ModelRetired { id: self.id });
        Ok(IModels::retireReturn {})
    }
}

impl Handler for IModels::setPriceCall {
    fn gas(&self) -> u64 {
        30_000
    }

    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let sender = ctx.sender;
        let mut rec = get(st, self.id)?;
        if !acts_as_owner(&rec, &sender) {
            return Err(revert(IModels::NotOwner { caller: sender }));
        }
        if rec.state == RETIRED {
            return Err(revert(IModels::AlreadyRetired { id: self.id }));
        }
        check_price(&rec.datanets, &rec.licences, self.priceInPer1k, self.priceOutPer1k)?;
        rec.priceInPer1k = self.priceInPer1k;
        rec.priceOutPer1k = self.priceOutPer1k;
        st.update_model(ModelId(self.id), &rec)?;
        ctx.emit(
            ADDRESS,
            &IModels::ModelRepriced { id: self.id, priceInPer1k: self.priceInPer1k, priceOutPer1k: self.priceOutPer1k },
        );
        Ok(IModels::setPriceReturn {})
    }
}

impl Handler for IModels::modelCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get(st, self.id)
    }
}

impl Handler for IModels::retiredAtCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        get(st, self.id)?;
        Ok(st.retired_at(ModelId(self.id))?.unwrap_or(0))
    }
}

impl Handler for IModels::modelCountCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        Ok(st.model_count()?)
    }
}

impl Handler for IModels::modelsOfCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let ids: Vec<u64> = st.models_of(&self.owner)?.into_iter().map(u64::from).collect();
        Ok(ids)
    }
}

impl Handler for IModels::liveModelsCall {
    fn gas(&self) -> u64 {
        VIEW_GAS
    }

    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Self::Return, CallFail> {
        let live = st.live_models()?;
        let from = live.partition_point(|m| m.0 < self.start);
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX).min(MAX_IDS);
        let page: Vec<u64> = live[from..].iter().take(limit).map(|m| m.0).collect();
        Ok(page)
    }
}
