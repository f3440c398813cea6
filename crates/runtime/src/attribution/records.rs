//! Stored records of challenges (ABI-encoded `sol!` structs); the challenge
//! itself is `primitives::abi::AttributionChallenge`, as the view returns it.

use alloy_sol_types::sol;

sol! {
    /// What the challenged operator revealed, kept until the challenge resolves.
    struct Revealed {
        bytes record;
        bytes prompt;
    }
}
