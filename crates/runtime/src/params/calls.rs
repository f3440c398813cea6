//! The functions of `IParams`, one handler each, its gas beside it.

use super::*;
use crate::dispatch::Handler;

fn unknown(name: &str) -> CallFail {
    revert(IParams::UnknownParam { name: name.to_string() })
}

impl Handler for IParams::getCall {
    fn gas(&self) -> u64 {
        2_000
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<U256, CallFail> {
        Ok(U256::from(st.param_by_name(&self.name)?.ok_or_else(|| unknown(&self.name))?))
    }
}

impl Handler for IParams::getAtCall {
    /// A binary search over the history: at most 64 reads.
    fn gas(&self) -> u64 {
        10_000
    }
    fn execute(self, st: &mut Overlay, _ctx: &mut CallCtx) -> Result<U256, CallFail> {
        let s = spec(&self.name).ok_or_else(|| unknown(&self.name))?;
        Ok(U256::from(st.param_at(s, self.height)?))
    }
}

impl Handler for IParams::namesCall {
    fn gas(&self) -> u64 {
        2_000
    }
    fn execute(self, _st: &mut Overlay, _ctx: &mut CallCtx) -> Result<Vec<String>, CallFail> {
        Ok(ALL.iter().map(|s| s.name.to_string()).collect())
    }
}

impl Handler for IParams::setCall {
    /// A change also appends to the parameter's history.
    fn gas(&self) -> u64 {
        40_000
    }
    fn execute(self, st: &mut Overlay, ctx: &mut CallCtx) -> Result<IParams::setReturn, CallFail> {
        if ctx.sender != Module::Governance.address() {
            return Err(revert(primitives::abi::Unauthorized { caller: ctx.sender }));
        }
        let value = u128::try_from(self.value).unwrap_or(u128::MAX);
        let s = match check(&self.name, value) {
            Ok(s) => s,
            Err(ParamError::Unknown(name)) => return Err(unknown(&name)),
            Err(ParamError::State(e)) => return Err(CallFail::Fatal(primitives::state::StateError(e))),
            Err(ParamError::OutOfRange { name, min, max, .. }) => {
                return Err(revert(IParams::ParamOutOfRange {
                    name,
                    value: self.value,
                    min: U256::from(min),
                    max: U256::from(max),
                }));
            }
        };
        let old = st.param(s)?;
        st.put_param(s.name, value, ctx.env.number)?;
        ctx.emit(ADDRESS, &IParams::ParamChanged { name: self.name, oldValue: U256::from(old), newValue: self.value });
        Ok(IParams::setReturn {})
    }
}
