//! Stored records of the assets module (ABI-encoded `sol!` structs).

use alloy_sol_types::sol;

sol! {
    /// A share token: its asset, supply and the reward-per-share index.
    struct ShareRecord {
        uint256 assetId;
        string symbol;
        uint256 totalSupply;
        /// Shares whose holders earn (see `HolderRecord.earning`).
        uint256 earningSupply;
        /// OPEN per earning share since the split, scaled by `SCALE`.
        uint256 acc;
        /// What the last division left over, in OPEN × SCALE (below
        /// `earningSupply`), carried into the next deposit.
        uint256 dust;
        /// OPEN the module holds for this token: deposited and not claimed.
        uint256 held;
    }

    /// One holder of one share token.
    struct HolderRecord {
        uint256 balance;
        /// `acc` when this holder was last settled.
        uint256 debt;
        /// OPEN earned and settled, not yet claimed.
        uint256 owed;
        /// Whether the balance counts in `earningSupply` (fixed at the last settlement).
        bool earning;
    }
}
