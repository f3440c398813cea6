//! Genesis overrides of parameter defaults.

use super::view::ParamsWrite;
use super::{ParamError, check};
use crate::Overlay;

pub fn init(st: &mut Overlay, overrides: &[(String, u128)]) -> Result<(), ParamError> {
    for (name, value) in overrides {
        let spec = check(name, *value)?;
        st.put_param(spec.name, *value, 0).map_err(|e| ParamError::State(e.to_string()))?;
    }
    Ok(())
}
