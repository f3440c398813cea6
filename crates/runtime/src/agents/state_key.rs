//! Every storage key of agents. Prefix `agents/`. Records are ABI-encoded
//! `sol!` values; amounts are u128 BE.

use primitives::{Address, B256};

fn k(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = b"agents/".to_vec();
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// `agents/count` → u64: agents ever registered (ids are 1..=count; none is burned).
pub fn count() -> Vec<u8> {
    k(&[b"count"])
}
/// `agents/a/<id BE>` → `AgentRecord`.
pub fn agent(id: u64) -> Vec<u8> {
    k(&[b"a/", &id.to_be_bytes()])
}
/// `agents/w/<wallet>` → u64: the agent whose wallet this is.
pub fn wallet(wallet: &Address) -> Vec<u8> {
    k(&[b"w/", wallet.as_slice()])
}
/// `agents/by/<owner>/` → `codec::IndexedSet<u64>` of the owner's agents (its ERC-721 balance is its length).
pub fn agents_of(owner: &Address) -> Vec<u8> {
    k(&[b"by/", owner.as_slice(), b"/"])
}
/// `agents/ap/<id BE>` → 20-byte address approved for the token (absent: none).
pub fn approved(id: u64) -> Vec<u8> {
    k(&[b"ap/", &id.to_be_bytes()])
}
/// `agents/oa/<owner><operator>` → `[1]`: the operator may move every token of the owner.
pub fn approved_for_all(owner: &Address, operator: &Address) -> Vec<u8> {
    k(&[b"oa/", owner.as_slice(), operator.as_slice()])
}
/// `agents/l/<id BE>` → `AgentLimits`.
pub fn limits(id: u64) -> Vec<u8> {
    k(&[b"l/", &id.to_be_bytes()])
}
/// `agents/u/<id BE>` → `PeriodUsage`: allowances granted in the agent's current period.
pub fn usage(id: u64) -> Vec<u8> {
    k(&[b"u/", &id.to_be_bytes()])
}
/// `agents/uo/<id BE><serving operator>` → `PeriodUsage`: granted to one serving operator in the period.
pub fn operator_usage(id: u64, operator: &Address) -> Vec<u8> {
    k(&[b"uo/", &id.to_be_bytes(), operator.as_slice()])
}
/// `agents/r/<id BE>` → `AgentReputation`.
pub fn reputation(id: u64) -> Vec<u8> {
    k(&[b"r/", &id.to_be_bytes()])
}
/// `agents/mr/<id BE>` → `address[]`: who may read the memory besides owner and operator.
pub fn memory_readers(id: u64) -> Vec<u8> {
    k(&[b"mr/", &id.to_be_bytes()])
}
/// `agents/tcount` → u64: tasks ever posted (ids are 1..=count).
pub fn task_count() -> Vec<u8> {
    k(&[b"tcount"])
}
/// `agents/t/<task id BE>` → `TaskRecord`.
pub fn task(id: u64) -> Vec<u8> {
    k(&[b"t/", &id.to_be_bytes()])
}
/// `agents/td/<task id BE>` → u64: the height a task was disputed at (absent: never).
pub fn disputed_at(id: u64) -> Vec<u8> {
    k(&[b"td/", &id.to_be_bytes()])
}
/// `agents/ta/<agent id BE>/` → `codec::IndexedList` of the agent's tasks (directed
/// to it, or open offers it accepted), in order.
pub fn tasks_of(agent: u64) -> Vec<u8> {
    k(&[b"ta/", &agent.to_be_bytes(), b"/"])
}
/// `agents/oo/<node index BE>` → U256 BE: a node of the Fenwick tree of open
/// offers over task ids (1 at an open offer's id), for paging them in order.
pub fn open_offer_node(index: u64) -> Vec<u8> {
    k(&[b"oo/", &index.to_be_bytes()])
}
/// `agents/rt/<receipt hash>` → u64: the task a settled receipt was delivered with.
pub fn receipt_task(receipt_hash: &B256) -> Vec<u8> {
    k(&[b"rt/", receipt_hash.as_slice()])
}
/// `agents/holdings` → `AgentsHoldings` (2 × u128 BE): task escrow and bonds (with unbonding).
pub fn holdings() -> Vec<u8> {
    k(&[b"holdings"])
}
