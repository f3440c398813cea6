//! Stored records of inference (ABI-encoded `sol!` structs) and the holdings
//! the supply report shows.

use alloy_sol_types::sol;
use primitives::Amount;
/// A receipt's data part held for attribution: stored as the ABI's
/// `AttributionHold`, which the `hold(receiptHash)` view returns as it is.
pub use primitives::abi::AttributionHold as HoldRecord;
/// A serving operator's announced endpoint: stored as the ABI's
/// `ServingEndpoint`, which the `endpoint` views return as it is.
pub use primitives::abi::ServingEndpoint as EndpointRecord;
/// How a settled receipt's cost was paid out: stored as the ABI's
/// `SettledReceipt`, which the `settledReceipt(receiptHash)` view returns.
pub use primitives::abi::SettledReceipt;
use primitives::state::StateError;

sol! {
    /// A payer's allowance for one serving operator.
    struct AllowanceRecord {
        /// Spendable by the operator; a release moves part of it to `pendingRelease`.
        uint128 remaining;
        /// Requested back by the payer; still spendable (after `remaining`) until completed.
        uint128 pendingRelease;
        /// Height from which `completeRelease` may return `pendingRelease`.
        uint64 releaseAt;
        /// Highest nonce settled for (payer, operator).
        uint64 lastNonce;
    }


    /// Credits of a posted record, amounts already computed from the hold.
    struct PendingCredits {
        uint64[] contributionIds;
        uint128[] amounts;
    }

    struct ContributionAccount {
        /// Finalized credits not yet claimed.
        uint128 accrued;
        /// Every finalized credit ever.
        uint128 totalCredited;
        /// The Datanet's reward-per-row suffix sum (scaled by 1e18) at the last claim.
        uint256 paidIndex;
    }
}

/// Hold awaiting an attribution record.
pub const OPEN: u8 = 1;
/// Record posted; credits pending until the challenge window passes.
pub const POSTED: u8 = 2;
/// Credits accrued to their contributions.
pub const FINALIZED: u8 = 3;
/// Paid to the Datanet versions' reward-per-row accumulators.
pub const FALLBACK: u8 = 4;

/// What the inference module holds, by kind. Every amount lives in the module's
/// bank balance; the sum equals that balance (OPEN sent to the address by a
/// plain `IBank.transfer` is outside every kind and stuck, as tokens sent to a
/// contract are).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InferenceHoldings {
    /// Payers' free escrow.
    pub free_escrow: Amount,
    /// Unspent allowances granted to serving operators.
    pub allowances: Amount,
    /// Released allowances still in their delay (spendable by their operator).
    pub pending_releases: Amount,
    /// Data parts of settled receipts awaiting an attribution record.
    pub open_holds: Amount,
    /// Data parts whose record is posted and in its challenge window.
    pub pending_attributions: Amount,
    /// Finalized credits not yet claimed.
    pub accrued_credits: Amount,
    /// Fallback paid to reward-per-row accumulators and not yet claimed (with the
    /// rounding remainders no claim can reach).
    pub fallback_pool: Amount,
    /// Licences' prepaid amounts not yet drawn by receipts or paid out at closing.
    pub licences: Amount,
}

impl InferenceHoldings {
    /// The sum of every kind.
    pub fn total(&self) -> Amount {
        Amount(
            self.free_escrow.0
                + self.allowances.0
                + self.pending_releases.0
                + self.open_holds.0
                + self.pending_attributions.0
                + self.accrued_credits.0
                + self.fallback_pool.0
                + self.licences.0,
        )
    }

    fn fields(&self) -> [Amount; 8] {
        [
            self.free_escrow,
            self.allowances,
            self.pending_releases,
            self.open_holds,
            self.pending_attributions,
            self.accrued_credits,
            self.fallback_pool,
            self.licences,
        ]
    }

    pub fn encode(&self) -> Vec<u8> {
        self.fields().iter().flat_map(|a| a.to_be_bytes()).collect()
    }

    pub fn decode(b: &[u8]) -> Result<InferenceHoldings, StateError> {
        // Seven kinds before licences: a record written then reads with none.
        if b.len() != 8 * 16 && b.len() != 7 * 16 {
            return Err(StateError(format!("inference totals record of {} bytes", b.len())));
        }
        let f = |i: usize| Amount::from_be_bytes(b[16 * i..16 * (i + 1)].try_into().unwrap());
        Ok(InferenceHoldings {
            free_escrow: f(0),
            allowances: f(1),
            pending_releases: f(2),
            open_holds: f(3),
            pending_attributions: f(4),
            accrued_credits: f(5),
            fallback_pool: f(6),
            licences: if b.len() == 8 * 16 { f(7) } else { Amount::ZERO },
        })
    }
}
