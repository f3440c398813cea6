//! The bank's genesis: initial balances, counted as the genesis supply.

use primitives::{Address, Amount};

use super::records::Supply;
use super::view::{BankRead, BankWrite};
use crate::Overlay;
use crate::context::CallFail;

pub fn init(st: &mut Overlay, alloc: &[(Address, Amount)]) -> Result<(), CallFail> {
    let mut total = Amount::ZERO;
    for (a, amt) in alloc {
        let mut acct = st.account(a)?;
        acct.balance = acct.balance.checked_add(*amt).map_err(|_| crate::revert(primitives::abi::Overflow {}))?;
        total = total.checked_add(*amt).map_err(|_| crate::revert(primitives::abi::Overflow {}))?;
        st.put_account(a, acct);
    }
    st.put_supply(Supply { genesis: total, issued: Amount::ZERO, burned: Amount::ZERO });
    Ok(())
}
