//! Typed reads and writes of agents, for this module and the others
//! (`inference` asks [`AgentsRead::settle_refusal`] for every receipt it settles).

use alloy_primitives::U256;
use primitives::state::{StateError, StateRead};
use primitives::{Address, B256};

use super::records::{AgentLimits, AgentRecord, AgentReputation, AgentsHoldings, PeriodUsage, TaskRecord};
use super::state_key;
use crate::Overlay;
use crate::codec::{IndexedList, IndexedSet, load, store};
use crate::fenwick;

fn u64_at(st: &(impl StateRead + ?Sized), key: &[u8]) -> Result<u64, StateError> {
    Ok(load::<u64>(st, key)?.unwrap_or(0))
}

fn owned(owner: &Address) -> IndexedSet<u64> {
    IndexedSet::new(state_key::agents_of(owner))
}

/// Reads of agents.
pub trait AgentsRead {
    /// How many agents were ever registered (ids are 1..=count).
    fn agent_count(&self) -> Result<u64, StateError>;
    fn agent(&self, id: u64) -> Result<Option<AgentRecord>, StateError>;
    /// The agent whose wallet `wallet` is (`None`: an ordinary address).
    fn agent_of_wallet(&self, wallet: &Address) -> Result<Option<u64>, StateError>;
    /// The owner's agents, `offset..offset + limit` (in no fixed order: a transfer moves the last into the hole).
    fn agents_of(&self, owner: &Address, offset: u64, limit: u64) -> Result<Vec<u64>, StateError>;
    /// How many agents `owner` holds (its ERC-721 balance).
    fn agent_balance(&self, owner: &Address) -> Result<u64, StateError>;
    /// The address approved for token `id` (zero: none).
    fn approved(&self, id: u64) -> Result<Address, StateError>;
    fn is_approved_for_all(&self, owner: &Address, operator: &Address) -> Result<bool, StateError>;
    fn limits(&self, id: u64) -> Result<Option<AgentLimits>, StateError>;
    /// Allowances granted in the period starting at `period_start`: in total and to `operator`.
    fn period_usage(&self, id: u64, operator: &Address, period_start: u64) -> Result<(u128, u128), StateError>;
    fn reputation(&self, id: u64) -> Result<AgentReputation, StateError>;
    fn memory_readers(&self, id: u64) -> Result<Vec<Address>, StateError>;
    fn task_count(&self) -> Result<u64, StateError>;
    fn task(&self, id: u64) -> Result<Option<TaskRecord>, StateError>;
    /// The height task `id` was disputed at (0: never).
    fn disputed_at(&self, id: u64) -> Result<u64, StateError>;
    /// The task a receipt was delivered with (0: none).
    fn task_of_receipt(&self, receipt_hash: &B256) -> Result<u64, StateError>;
    /// The agent's tasks, `offset..offset + limit`, in order.
    fn tasks_of(&self, agent: u64, offset: u64, limit: u64) -> Result<Vec<u64>, StateError>;
    /// Open offers not yet accepted, oldest first: `offset..offset + limit`.
    fn open_tasks(&self, offset: u64, limit: u64) -> Result<Vec<u64>, StateError>;
    /// What the module holds, by kind.
    fn agent_holdings(&self) -> Result<AgentsHoldings, StateError>;
    /// Why a receipt paid by `payer` for `model` issued at `issued_at` must not
    /// settle (`None`: it may). Only an agent's wallet is ever refused: frozen
    /// at or before `issued_at`, or the model outside its allowlist since the
    /// list changed at or before `issued_at`.
    fn settle_refusal(&self, payer: &Address, model: u64, issued_at: u64) -> Result<Option<String>, StateError>;
    /// Why a serving node must not serve `wallet` model `model` now (`None`: it may).
    fn serve_refusal(&self, wallet: &Address, model: u64) -> Result<Option<String>, StateError>;
}

impl<S: StateRead + ?Sized> AgentsRead for S {
    fn agent_count(&self) -> Result<u64, StateError> {
        u64_at(self, &state_key::count())
    }
    fn agent(&self, id: u64) -> Result<Option<AgentRecord>, StateError> {
        load(self, &state_key::agent(id))
    }
    fn agent_of_wallet(&self, wallet: &Address) -> Result<Option<u64>, StateError> {
        load::<u64>(self, &state_key::wallet(wallet))
    }
    fn agents_of(&self, owner: &Address, offset: u64, limit: u64) -> Result<Vec<u64>, StateError> {
        owned(owner).page(self, offset, limit)
    }
    fn agent_balance(&self, owner: &Address) -> Result<u64, StateError> {
        owned(owner).len(self)
    }
    fn approved(&self, id: u64) -> Result<Address, StateError> {
        Ok(load::<Address>(self, &state_key::approved(id))?.unwrap_or(Address::ZERO))
    }
    fn is_approved_for_all(&self, owner: &Address, operator: &Address) -> Result<bool, StateError> {
        Ok(self.get(&state_key::approved_for_all(owner, operator))?.is_some())
    }
    fn limits(&self, id: u64) -> Result<Option<AgentLimits>, StateError> {
        load(self, &state_key::limits(id))
    }
    fn period_usage(&self, id: u64, operator: &Address, period_start: u64) -> Result<(u128, u128), StateError> {
        let in_period = |u: Option<PeriodUsage>| u.filter(|u| u.periodStart == period_start).map_or(0, |u| u.amount);
        Ok((
            in_period(load(self, &state_key::usage(id))?),
            in_period(load(self, &state_key::operator_usage(id, operator))?),
        ))
    }
    fn reputation(&self, id: u64) -> Result<AgentReputation, StateError> {
        Ok(load(self, &state_key::reputation(id))?.unwrap_or_default())
    }
    fn memory_readers(&self, id: u64) -> Result<Vec<Address>, StateError> {
        Ok(load::<Vec<Address>>(self, &state_key::memory_readers(id))?.unwrap_or_default())
    }
    fn task_count(&self) -> Result<u64, StateError> {
        u64_at(self, &state_key::task_count())
    }
    fn task(&self, id: u64) -> Result<Option<TaskRecord>, StateError> {
        load(self, &state_key::task(id))
    }
    fn disputed_at(&self, id: u64) -> Result<u64, StateError> {
        u64_at(self, &state_key::disputed_at(id))
    }
    fn task_of_receipt(&self, receipt_hash: &B256) -> Result<u64, StateError> {
        u64_at(self, &state_key::receipt_task(receipt_hash))
    }
    fn tasks_of(&self, agent: u64, offset: u64, limit: u64) -> Result<Vec<u64>, StateError> {
        IndexedList::new(state_key::tasks_of(agent)).page(self, offset, limit)
    }
    fn open_tasks(&self, offset: u64, limit: u64) -> Result<Vec<u64>, StateError> {
        let mut out = Vec::new();
        for k in offset.saturating_add(1)..=offset.saturating_add(limit) {
            match fenwick::find(self, &state_key::open_offer_node, U256::from(k))? {
                Some(id) => out.push(id),
                None => break,
            }
        }
        Ok(out)
    }
    fn agent_holdings(&self) -> Result<AgentsHoldings, StateError> {
        match self.get(&state_key::holdings())? {
            Some(b) => AgentsHoldings::decode(&b),
            None => Ok(AgentsHoldings::default()),
        }
    }
    fn settle_refusal(&self, payer: &Address, model: u64, issued_at: u64) -> Result<Option<String>, StateError> {
        let Some(id) = self.agent_of_wallet(payer)? else { return Ok(None) };
        let Some(a) = self.agent(id)? else { return Ok(None) };
        if a.frozenAt != 0 && issued_at >= a.frozenAt {
            return Ok(Some(format!("agent {id} was frozen at block {}", a.frozenAt)));
        }
        let l = self.limits(id)?.unwrap_or_default();
        if !l.models.is_empty() && !l.models.contains(&model) && issued_at >= l.modelsSince {
            return Ok(Some(format!("model m{model} is outside agent {id}'s allowlist since block {}", l.modelsSince)));
        }
        Ok(None)
    }
    fn serve_refusal(&self, wallet: &Address, model: u64) -> Result<Option<String>, StateError> {
        let Some(id) = self.agent_of_wallet(wallet)? else { return Ok(None) };
        let Some(a) = self.agent(id)? else { return Ok(None) };
        if a.frozenAt != 0 {
            return Ok(Some(format!("agent {id} is frozen")));
        }
        let l = self.limits(id)?.unwrap_or_default();
        if !l.models.is_empty() && !l.models.contains(&model) {
            return Ok(Some(format!("model m{model} is not in agent {id}'s allowlist")));
        }
        Ok(None)
    }
}

/// Writes of agents that keep the indexes (count, wallet map, owners' sets,
/// open offers, task lists) in step with the records. Rules (who may) are the caller's.
pub trait AgentsWrite {
    /// Store `rec` under the next id with its wallet, owner and default limits; returns the id.
    fn insert_agent(&mut self, rec: AgentRecord, limits: &AgentLimits) -> Result<u64, StateError>;
    fn put_agent(&mut self, rec: &AgentRecord);
    /// Move token `id` from its owner to `to`: the approval is cleared, the operator becomes `to`.
    fn move_agent(&mut self, rec: &mut AgentRecord, to: Address) -> Result<(), StateError>;
    fn set_approved(&mut self, id: u64, to: Address);
    fn set_approved_for_all(&mut self, owner: &Address, operator: &Address, approved: bool);
    fn put_limits(&mut self, id: u64, limits: &AgentLimits);
    /// Record allowances granted in the period starting at `period_start` (in total and to `operator`).
    fn put_period_usage(&mut self, id: u64, operator: &Address, period_start: u64, total: u128, to_operator: u128);
    fn put_reputation(&mut self, id: u64, rep: &AgentReputation);
    fn put_memory_readers(&mut self, id: u64, readers: &[Address]);
    /// Store a new task under the next id (listed as an open offer, or in its agent's tasks); returns the id.
    fn insert_task(&mut self, task: TaskRecord) -> Result<u64, StateError>;
    fn put_task(&mut self, task: &TaskRecord);
    fn set_disputed_at(&mut self, id: u64, height: u64);
    /// Take an open offer off the list (accepted, cancelled or expired).
    fn close_offer(&mut self, id: u64) -> Result<(), StateError>;
    /// Add a task to an agent's list (an open offer it accepted).
    fn push_task_of(&mut self, agent: u64, task: u64) -> Result<(), StateError>;
    fn link_receipt(&mut self, receipt_hash: &B256, task: u64);
    fn put_holdings(&mut self, h: &AgentsHoldings);
}

impl AgentsWrite for Overlay<'_> {
    fn insert_agent(&mut self, rec: AgentRecord, limits: &AgentLimits) -> Result<u64, StateError> {
        let id = self.agent_count()? + 1;
        store(self, state_key::count(), &id);
        let rec = AgentRecord { id, wallet: primitives::abi::agent_wallet(id), ..rec };
        store(self, state_key::wallet(&rec.wallet), &id);
        owned(&rec.owner).insert(self, &id)?;
        self.put_limits(id, limits);
        store(self, state_key::agent(id), &rec);
        Ok(id)
    }
    fn put_agent(&mut self, rec: &AgentRecord) {
        store(self, state_key::agent(rec.id), rec);
    }
    fn move_agent(&mut self, rec: &mut AgentRecord, to: Address) -> Result<(), StateError> {
        owned(&rec.owner).remove(self, &rec.id)?;
        owned(&to).insert(self, &rec.id)?;
        self.set_approved(rec.id, Address::ZERO);
        rec.owner = to;
        rec.operator = to;
        self.put_agent(rec);
        Ok(())
    }
    fn set_approved(&mut self, id: u64, to: Address) {
        self.put(state_key::approved(id), (to != Address::ZERO).then(|| alloy_sol_types::SolValue::abi_encode(&to)));
    }
    fn set_approved_for_all(&mut self, owner: &Address, operator: &Address, approved: bool) {
        self.put(state_key::approved_for_all(owner, operator), approved.then(|| vec![1]));
    }
    fn put_limits(&mut self, id: u64, limits: &AgentLimits) {
        store(self, state_key::limits(id), limits);
    }
    fn put_period_usage(&mut self, id: u64, operator: &Address, period_start: u64, total: u128, to_operator: u128) {
        store(self, state_key::usage(id), &PeriodUsage { periodStart: period_start, amount: total });
        let op = PeriodUsage { periodStart: period_start, amount: to_operator };
        store(self, state_key::operator_usage(id, operator), &op);
    }
    fn put_reputation(&mut self, id: u64, rep: &AgentReputation) {
        store(self, state_key::reputation(id), rep);
    }
    fn put_memory_readers(&mut self, id: u64, readers: &[Address]) {
        let v = (!readers.is_empty()).then(|| alloy_sol_types::SolValue::abi_encode(&readers.to_vec()));
        self.put(state_key::memory_readers(id), v);
    }
    fn insert_task(&mut self, task: TaskRecord) -> Result<u64, StateError> {
        let id = self.task_count()? + 1;
        store(self, state_key::task_count(), &id);
        let task = TaskRecord { id, ..task };
        if task.agentId == 0 {
            fenwick::add(self, &state_key::open_offer_node, id, U256::from(1))?;
        } else {
            self.push_task_of(task.agentId, id)?;
        }
        self.put_task(&task);
        Ok(id)
    }
    fn put_task(&mut self, task: &TaskRecord) {
        store(self, state_key::task(task.id), task);
    }
    fn set_disputed_at(&mut self, id: u64, height: u64) {
        store(self, state_key::disputed_at(id), &height);
    }
    fn close_offer(&mut self, id: u64) -> Result<(), StateError> {
        fenwick::add(self, &state_key::open_offer_node, id, U256::MAX)
    }
    fn push_task_of(&mut self, agent: u64, task: u64) -> Result<(), StateError> {
        IndexedList::new(state_key::tasks_of(agent)).push(self, &task).map(|_| ())
    }
    fn link_receipt(&mut self, receipt_hash: &B256, task: u64) {
        store(self, state_key::receipt_task(receipt_hash), &task);
    }
    fn put_holdings(&mut self, h: &AgentsHoldings) {
        self.put(state_key::holdings(), Some(h.encode()));
    }
}
