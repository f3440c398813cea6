//! Contracts of a few hand-written EVM bytes, for tests that need a contract
//! without a compiler: a proxy that forwards its calldata.

use primitives::Address;

pub const CALL: u8 = 0xf1;
pub const DELEGATECALL: u8 = 0xf4;
pub const STATICCALL: u8 = 0xfa;

/// Runtime code of a proxy: calldata is `target (20 bytes) ‖ inner calldata`;
/// it makes `op` (CALL forwards the call's value) to the target with the inner
/// calldata, then returns what the target returned, or reverts with its revert
/// data (`then_revert`: reverts with nothing whatever happened).
pub fn proxy(op: u8, then_revert: bool) -> Vec<u8> {
    // memory[0..] = calldata[20..]
    let mut c = vec![0x60, 0x14, 0x36, 0x03, 0x60, 0x14, 0x5f, 0x37];
    // retSize, retOffset, argsSize, argsOffset
    c.extend([0x5f, 0x5f, 0x60, 0x14, 0x36, 0x03, 0x5f]);
    if op == CALL {
        c.push(0x34); // CALLVALUE
    }
    // address = calldata[0..32] >> 96, gas, the call
    c.extend([0x5f, 0x35, 0x60, 0x60, 0x1c, 0x5a, op]);
    if then_revert {
        c.extend([0x50, 0x5f, 0x5f, 0xfd]);
        return c;
    }
    c.extend([0x3d, 0x5f, 0x5f, 0x3e]); // returndatacopy(0, 0, returndatasize)
    let ok = c.len() + 6;
    c.extend([0x60, ok as u8, 0x57, 0x3d, 0x5f, 0xfd, 0x5b, 0x3d, 0x5f, 0xf3]);
    assert_eq!(c[ok], 0x5b);
    c
}

/// Init code that deploys `runtime` unchanged.
pub fn deployer(runtime: &[u8]) -> Vec<u8> {
    let n = runtime.len() as u8;
    let mut c = vec![0x60, n, 0x60, 0x0a, 0x5f, 0x39, 0x60, n, 0x5f, 0xf3];
    c.extend_from_slice(runtime);
    c
}

pub fn through(target: Address, inner: Vec<u8>) -> Vec<u8> {
    let mut d = target.to_vec();
    d.extend(inner);
    d
}
