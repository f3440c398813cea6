//! Every storage key of staking. Prefix `staking/`. Records are ABI-encoded
//! structs (canonical, decoded with validation by alloy).

use primitives::Address;

fn k(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = b"staking/".to_vec();
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// `staking/op/<operator>` → `OperatorRecord`.
pub fn operator(op: &Address) -> Vec<u8> {
    k(&[b"op/", op.as_slice()])
}
/// `staking/ops/<role>/` → indexed list (`codec::IndexedList`) of operator addresses, registration order.
pub fn operators(role: u8) -> Vec<u8> {
    k(&[b"ops/", &[role], b"/"])
}
/// `staking/d/<operator><account>` → `DelegationRecord`.
pub fn delegation(op: &Address, account: &Address) -> Vec<u8> {
    k(&[b"d/", op.as_slice(), account.as_slice()])
}
/// `staking/dl/<operator>/` → indexed list of accounts that ever delegated to the operator.
pub fn delegators(op: &Address) -> Vec<u8> {
    k(&[b"dl/", op.as_slice(), b"/"])
}
/// `staking/dm/<operator><account>` → present once the account is in the operator's delegator list.
pub fn delegator_listed(op: &Address, account: &Address) -> Vec<u8> {
    k(&[b"dm/", op.as_slice(), account.as_slice()])
}
/// `staking/pool/<role>` → `PoolRecord`.
pub fn pool(role: u8) -> Vec<u8> {
    k(&[b"pool/", &[role]])
}
/// `staking/unb/<account>` → `UnbondingRecord[]` (at most `MAX_UNBONDINGS`).
pub fn unbondings(account: &Address) -> Vec<u8> {
    k(&[b"unb/", account.as_slice()])
}
/// `staking/sf/<operator>/` → indexed list of `SlashFactor`s, one per slash, by height.
pub fn slash_factors(op: &Address) -> Vec<u8> {
    k(&[b"sf/", op.as_slice(), b"/"])
}
/// `staking/due/<release height BE>/` → indexed list of operators with
/// unbondings released at that height.
pub fn due_operators(release: u64) -> Vec<u8> {
    k(&[b"due/", &release.to_be_bytes(), b"/"])
}
/// `staking/dueu/<release height BE><operator>` → `uint256` units of the
/// operator's unbondings released at that height (present once listed in `due_operators`).
pub fn due_units(release: u64, op: &Address) -> Vec<u8> {
    k(&[b"dueu/", &release.to_be_bytes(), op.as_slice()])
}
/// `staking/sweep/` → indexed list of `SweepJob`s.
pub fn sweep_jobs() -> Vec<u8> {
    k(&[b"sweep/"])
}
/// `staking/sweepc` → u64 BE: the first sweep job not finished.
pub fn sweep_cursor() -> Vec<u8> {
    k(&[b"sweepc"])
}
/// `staking/vp/<account>/` → indexed list of `Checkpoint`s of the account's voting power.
pub fn power_checkpoints(account: &Address) -> Vec<u8> {
    k(&[b"vp/", account.as_slice(), b"/"])
}
/// `staking/tvp/` → indexed list of `Checkpoint`s of the total voting power.
pub fn total_power_checkpoints() -> Vec<u8> {
    k(&[b"tvp/"])
}
/// `staking/set/` → `codec::IndexedSet` of the validators in the set (at most
/// `staking.max_validators`); eligible validators outside it wait.
pub fn validator_members() -> Vec<u8> {
    k(&[b"set/"])
}
/// `staking/vsets/` → indexed list of `uint64` heights at which the validator set changed.
pub fn validator_set_heights() -> Vec<u8> {
    k(&[b"vsets/"])
}
/// `staking/vdirty` → present when something that can change the validator
/// set happened since the last snapshot.
pub fn validator_set_dirty() -> Vec<u8> {
    k(&[b"vdirty"])
}
/// `staking/reconcile` → (min self bond seen u128 BE ‖ role u8 ‖ next index u64 BE): the
/// recount of every operator after governance moved `staking.min_self_bond`, a
/// bounded slice per block.
pub fn reconcile() -> Vec<u8> {
    k(&[b"reconcile"])
}
/// `staking/vset/<height BE>` → `ValidatorSetRecord`.
pub fn validator_set(height: u64) -> Vec<u8> {
    k(&[b"vset/", &height.to_be_bytes()])
}
/// `staking/slashes/<operator>/` → indexed list of `SlashRecord`s: the evidence of every slash.
pub fn slashes(op: &Address) -> Vec<u8> {
    k(&[b"slashes/", op.as_slice(), b"/"])
}
/// `staking/tomb/<operator>` → present once the operator was proven to
/// double-sign: it never unjails (a 100% slash, `slashFactor` zero, tombstones too).
pub fn tombstone(op: &Address) -> Vec<u8> {
    k(&[b"tomb/", op.as_slice()])
}
/// `staking/ev/<operator><height BE><round BE><kind>` → present once double-sign
/// evidence for that message was accepted (kind 0 a proposal, else the vote kind).
pub fn evidence(op: &Address, height: u64, round: u32, kind: u8) -> Vec<u8> {
    k(&[b"ev/", op.as_slice(), &height.to_be_bytes(), &round.to_be_bytes(), &[kind]])
}
/// `staking/live/<operator>` → `LivenessRecord`: the validator's downtime window.
pub fn liveness(op: &Address) -> Vec<u8> {
    k(&[b"live/", op.as_slice()])
}

/// `staking/ck/<consensus key>` → the operator holding it (keys are unique).
pub fn consensus_key_owner(key: &primitives::B256) -> Vec<u8> {
    k(&[b"ck/", key.as_slice()])
}
