//! Typed reads and writes of models, for this module and the others
//! (`inference` reads whether a model is live and its prices).

use primitives::state::{StateError, StateRead};
use primitives::{Address, ModelId};

use super::records::{LIVE, ModelPrice, ModelRecord, ModelRecordExt};
use super::state_key;
use crate::Overlay;
use crate::codec::{load, store};

/// Reads of models.
pub trait ModelsRead {
    /// How many models were ever registered (ids are 1..=count).
    fn model_count(&self) -> Result<u64, StateError>;
    fn model(&self, id: ModelId) -> Result<Option<ModelRecord>, StateError>;
    /// Whether the model exists and is live (may be served and paid for).
    fn is_live(&self, id: ModelId) -> Result<bool, StateError>;
    /// The model's prices, whatever its state; `None` if it does not exist.
    fn price(&self, id: ModelId) -> Result<Option<ModelPrice>, StateError>;
    /// The owner's models, in registration order.
    fn models_of(&self, owner: &Address) -> Result<Vec<ModelId>, StateError>;
    /// Every live model, ascending.
    fn live_models(&self) -> Result<Vec<ModelId>, StateError>;
    /// The block a live model was retired at; `None` if it was never retired
    /// while live (a draft or proposed model retired never settles).
    fn retired_at(&self, id: ModelId) -> Result<Option<u64>, StateError>;
    /// The base model (no adapter) registered first with `hash`, if any.
    fn base_model_of(&self, hash: &primitives::B256) -> Result<Option<ModelId>, StateError>;
}

impl<S: StateRead + ?Sized> ModelsRead for S {
    fn model_count(&self) -> Result<u64, StateError> {
        Ok(load::<u64>(self, &state_key::count())?.unwrap_or(0))
    }
    fn model(&self, id: ModelId) -> Result<Option<ModelRecord>, StateError> {
        load(self, &state_key::model(id))
    }
    fn base_model_of(&self, hash: &primitives::B256) -> Result<Option<ModelId>, StateError> {
        Ok(load::<u64>(self, &state_key::base_by_hash(hash))?.map(ModelId))
    }
    fn is_live(&self, id: ModelId) -> Result<bool, StateError> {
        Ok(self.model(id)?.is_some_and(|m| m.state == LIVE))
    }
    fn price(&self, id: ModelId) -> Result<Option<ModelPrice>, StateError> {
        Ok(self.model(id)?.map(|m| m.price()))
    }
    fn models_of(&self, owner: &Address) -> Result<Vec<ModelId>, StateError> {
        Ok(ids(load::<Vec<u64>>(self, &state_key::models_of(owner))?))
    }
    fn live_models(&self) -> Result<Vec<ModelId>, StateError> {
        Ok(ids(load::<Vec<u64>>(self, &state_key::live())?))
    }
    fn retired_at(&self, id: ModelId) -> Result<Option<u64>, StateError> {
        load::<u64>(self, &state_key::retired_at(id))
    }
}

fn ids(v: Option<Vec<u64>>) -> Vec<ModelId> {
    v.unwrap_or_default().into_iter().map(ModelId).collect()
}

/// Writes of models that keep the indexes (count, per owner, live list) in step
/// with the records. Rules (who may, which transitions) are the caller's.
pub trait ModelsWrite {
    /// Store `rec` under the next id and index it; returns the id.
    fn insert_model(&mut self, rec: &ModelRecord) -> Result<ModelId, StateError>;
    /// Replace the record of an existing model, moving it in or out of the live list with its state.
    fn update_model(&mut self, id: ModelId, rec: &ModelRecord) -> Result<(), StateError>;
    /// Give model `id` to `to`, moving it between the owners' lists (the
    /// `assets` token's transfer is the only caller).
    fn set_model_owner(&mut self, id: ModelId, to: &Address) -> Result<(), StateError>;
}

impl ModelsWrite for Overlay<'_> {
    fn insert_model(&mut self, rec: &ModelRecord) -> Result<ModelId, StateError> {
        let id = ModelId(self.model_count()? + 1);
        store(self, state_key::count(), &id.0);
        let rec = ModelRecord { id: id.0, ..rec.clone() };
        store(self, state_key::model(id), &rec);
        let mut by = load::<Vec<u64>>(self, &state_key::models_of(&rec.owner))?.unwrap_or_default();
        by.push(id.0);
        store(self, state_key::models_of(&rec.owner), &by);
        if rec.state == LIVE {
            set_live(self, id, true)?;
        }
        if rec.adapterHash == primitives::B256::ZERO && self.base_model_of(&rec.baseModelHash)?.is_none() {
            store(self, state_key::base_by_hash(&rec.baseModelHash), &id.0);
        }
        Ok(id)
    }

    fn update_model(&mut self, id: ModelId, rec: &ModelRecord) -> Result<(), StateError> {
        let old = self.model(id)?.ok_or_else(|| StateError(format!("update of unknown model {id}")))?;
        if old.owner != rec.owner {
            return Err(StateError(format!("model {id}: the owner never changes")));
        }
        store(self, state_key::model(id), rec);
        if (old.state == LIVE) != (rec.state == LIVE) {
            set_live(self, id, rec.state == LIVE)?;
        }
        Ok(())
    }

    fn set_model_owner(&mut self, id: ModelId, to: &Address) -> Result<(), StateError> {
        let mut rec = self.model(id)?.ok_or_else(|| StateError(format!("owner change of unknown model {id}")))?;
        move_model(self, id, &rec.owner, to)?;
        rec.owner = *to;
        store(self, state_key::model(id), &rec);
        Ok(())
    }
}

/// Move model `id` from `from`'s list to `to`'s.
fn move_model(st: &mut Overlay, id: ModelId, from: &Address, to: &Address) -> Result<(), StateError> {
    let mut v = load::<Vec<u64>>(st, &state_key::models_of(from))?.unwrap_or_default();
    v.retain(|x| *x != id.0);
    store(st, state_key::models_of(from), &v);
    let mut w = load::<Vec<u64>>(st, &state_key::models_of(to))?.unwrap_or_default();
    w.push(id.0);
    store(st, state_key::models_of(to), &w);
    Ok(())
}

fn set_live(st: &mut Overlay, id: ModelId, live: bool) -> Result<(), StateError> {
    let mut v = load::<Vec<u64>>(st, &state_key::live())?.unwrap_or_default();
    match (v.binary_search(&id.0), live) {
        (Err(i), true) => v.insert(i, id.0),
        (Ok(i), false) => {
            v.remove(i);
        }
        _ => return Ok(()),
    }
    store(st, state_key::live(), &v);
    Ok(())
}
