//! Staking's stored records, ABI-encoded through `sol!` structs.

use alloy_sol_types::sol;

sol! {
    struct OperatorRecord {
        uint8 role;
        uint256 selfBond;
        uint256 delegated;
        uint16 commissionBps;
        bytes32 consensusKey;
        address servingKey;
        uint64 jailedUntil;
        bool jailed;
        /// Pool index when this operator's rewards were last settled.
        uint256 lastPoolIndex;
        /// Rewards per delegation unit (scaled by INDEX_SCALE) paid to this operator's delegators.
        uint256 delegatorIndex;
        /// The operator's unclaimed commission and self-bond rewards.
        uint256 rewards;
        uint64 registeredAt;
        /// The stake this operator counts in its pool's total: self bond plus
        /// delegations while it is active (not jailed, self bond at least the
        /// minimum), zero otherwise. Rewards accrue on it.
        uint256 countedStake;
        /// Units of every delegation (see `DelegationRecord`); `delegated` is
        /// `delegatedUnits × slashFactor / SLASH_SCALE`, rounded down.
        uint256 delegatedUnits;
        /// Units of the unbondings from this operator still in their cooldown.
        uint256 unbondingUnits;
        /// What one unit is worth, scaled by SLASH_SCALE: starts at SLASH_SCALE and
        /// each slash of `f` multiplies it by `1 - f`. Zero after a 100% slash
        /// (the operator is tombstoned: nobody can bond to it again).
        uint256 slashFactor;
    }

    /// A delegation, in units: worth `units × slashFactor / SLASH_SCALE` tokens of
    /// its operator, so a slash is one write to the operator, whatever the
    /// number of delegators.
    struct DelegationRecord {
        uint256 units;
        /// The operator's `delegatorIndex` when rewards were last settled.
        uint256 lastIndex;
        uint256 rewards;
        /// Tokens of this delegation counted in the delegator's voting power; a
        /// slash lowers the value at once, and the power follows when the
        /// delegation is next touched or swept (`SweepJob`), whichever comes first.
        uint256 power;
    }

    struct PoolRecord {
        /// Stake of the pool's active (not jailed) operators.
        uint256 totalStake;
        /// Rewards per staked token, scaled by INDEX_SCALE.
        uint256 index;
    }

    /// Unbonded stake in its cooldown, in units of its operator: worth
    /// `units × f / SLASH_SCALE` where `f` is the operator's slash factor after
    /// its last slash before `releaseHeight` (slashes from then on spare it).
    struct UnbondingRecord {
        address operator;
        uint256 units;
        uint64 releaseHeight;
    }

    /// One slash's mark on an operator's slash factor.
    struct SlashFactor {
        uint64 height;
        /// The operator's slash factor after this slash.
        uint256 factor;
    }

    /// Delegations whose voting power still counts stake a slash took:
    /// delegators `next..end` of `operator`'s list are synced at the end of
    /// blocks, a bounded number per block.
    struct SweepJob {
        address operator;
        uint64 next;
        uint64 end;
    }

    struct Checkpoint {
        uint64 height;
        uint256 power;
    }

    struct ValidatorSetRecord {
        address[] operators;
        bytes32[] consensusKeys;
        uint256[] powers;
    }

    /// A validator's signing over the sliding downtime window: bit `h % window`
    /// of `bitmap` is set when it missed height `h`. Heights `since..=last`
    /// were tracked without a gap; a gap (it left the set) or a new
    /// `staking.downtime_window` starts the window over.
    struct LivenessRecord {
        uint64 window;
        uint64 since;
        uint64 last;
        /// Set bits of `bitmap`: heights missed among the last `window` tracked.
        uint32 missed;
        bytes bitmap;
    }

    struct SlashRecord {
        uint64 height;
        uint32 fractionPpm;
        uint256 amount;
        string reason;
        address reporter;
    }
}
