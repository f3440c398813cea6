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
/// `staking/ops/<role>` → `address[]`, registration order.
pub fn operators(role: u8) -> Vec<u8> {
    k(&[b"ops/", &[role]])
}
/// `staking/d/<operator><account>` → `DelegationRecord`.
pub fn delegation(op: &Address, account: &Address) -> Vec<u8> {
    k(&[b"d/", op.as_slice(), account.as_slice()])
}
/// `staking/dl/<operator>` → `address[]`: accounts delegating to the operator.
pub fn delegators(op: &Address) -> Vec<u8> {
    k(&[b"dl/", op.as_slice()])
}
/// `staking/pool/<role>` → `PoolRecord`.
pub fn pool(role: u8) -> Vec<u8> {
    k(&[b"pool/", &[role]])
}
/// `staking/unb/<account>` → `UnbondingRecord[]`.
pub fn unbondings(account: &Address) -> Vec<u8> {
    k(&[b"unb/", account.as_slice()])
}
/// `staking/unbop/<operator>` → `address[]`: accounts with pending unbondings at the operator.
pub fn unbonding_accounts(op: &Address) -> Vec<u8> {
    k(&[b"unbop/", op.as_slice()])
}
/// `staking/vp/<account>` → `Checkpoint[]` of the account's voting power.
pub fn power_checkpoints(account: &Address) -> Vec<u8> {
    k(&[b"vp/", account.as_slice()])
}
/// `staking/tvp` → `Checkpoint[]` of the total voting power.
pub fn total_power_checkpoints() -> Vec<u8> {
    k(&[b"tvp"])
}
/// `staking/vsets` → `uint64[]`: heights at which the validator set changed.
pub fn validator_set_heights() -> Vec<u8> {
    k(&[b"vsets"])
}
/// `staking/vset/<height BE>` → `ValidatorSetRecord`.
pub fn validator_set(height: u64) -> Vec<u8> {
    k(&[b"vset/", &height.to_be_bytes()])
}
/// `staking/slashes/<operator>` → `SlashRecord[]`: the evidence of every slash.
pub fn slashes(op: &Address) -> Vec<u8> {
    k(&[b"slashes/", op.as_slice()])
}

/// `staking/ck/<consensus key>` → the operator holding it (keys are unique).
pub fn consensus_key_owner(key: &primitives::B256) -> Vec<u8> {
    k(&[b"ck/", key.as_slice()])
}
