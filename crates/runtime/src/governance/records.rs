//! Stored records of governance (ABI-encoded `sol!` structs).

use alloy_sol_types::sol;

sol! {
    struct ProposalRecord {
        address proposer;
        /// Stored state: PENDING until tallied (ACTIVE is derived from the height), then final ones.
        uint8 state;
        uint64 voteStart;
        uint64 voteEnd;
        uint64 eta;
        uint256 forVotes;
        uint256 againstVotes;
        uint256 abstainVotes;
        uint256 vetoVotes;
        uint256 deposit;
        string description;
        address[] targets;
        bytes[] calldatas;
    }
}
