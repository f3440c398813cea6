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
        /// Rewards per delegated token (scaled by INDEX_SCALE) paid to this operator's delegators.
        uint256 delegatorIndex;
        /// The operator's unclaimed commission and self-bond rewards.
        uint256 rewards;
        uint64 registeredAt;
        /// The stake this operator counts in its pool's total: self bond plus
        /// delegations while it is active (not jailed, self bond at least the
        /// minimum), zero otherwise. Rewards accrue on it.
        uint256 countedStake;
    }

    struct DelegationRecord {
        uint256 amount;
        uint256 lastIndex;
        uint256 rewards;
    }

    struct PoolRecord {
        /// Stake of the pool's active (not jailed) operators.
        uint256 totalStake;
        /// Rewards per staked token, scaled by INDEX_SCALE.
        uint256 index;
    }

    struct UnbondingRecord {
        address operator;
        uint256 amount;
        uint64 releaseHeight;
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

    struct SlashRecord {
        uint64 height;
        uint32 fractionPpm;
        uint256 amount;
        string reason;
        address reporter;
    }
}
