//! Metering: before generating, the node reserves the most a request can cost
//! against the caller's allowance; afterwards it bills the tokens actually
//! delivered at the model's prices and returns a signed receipt. The
//! implementation that talks to the chain (`inference` module) lives in the
//! node; this is the seam the API uses.

use primitives::{Address, B256};

use crate::openai::ModelEntry;

/// Tokens in and out of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

/// A reservation against a payer's allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: u64,
    pub payer: Address,
    pub model: ModelEntry,
    pub max_cost: u128,
    /// The receipt's `retrievalHash`: zero, or the hash of the Datanet versions
    /// the answer retrieved from (set by the API after reserving).
    pub retrieval_hash: B256,
    /// The payer's licence of the model that covers this request (0: none,
    /// the allowance pays), and the tokens reserved under it.
    pub licence: u64,
    pub licence_tokens: u64,
}

/// Why a request cannot be paid for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BillingError {
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    InsufficientAllowance(String),
    #[error("{0}")]
    Unavailable(String),
    /// The payer may not be served this model now (a frozen agent, a model
    /// outside an agent's limits): refused before anything is generated.
    #[error("{0}")]
    Refused(String),
}

/// What the API needs from metering.
pub trait Billing: Send + Sync + 'static {
    /// Whether every request needs an authenticated payer. When it does, an
    /// anonymous request is refused (401) before its body is read, so it costs
    /// no parsing or tokenization.
    fn requires_payer(&self) -> bool {
        false
    }
    /// Whether `caller` acts for `payer` (an address no key holds, such as an
    /// agent's wallet, whose owner and operator act for it): it may then read
    /// what the payer may, such as its attribution records.
    fn acts_for(&self, _caller: Address, _payer: Address) -> bool {
        false
    }
    /// Reserve the cost of `prompt_tokens` in and up to `max_tokens` out.
    fn reserve(
        &self,
        payer: Option<Address>,
        model: &ModelEntry,
        prompt_tokens: usize,
        max_tokens: usize,
    ) -> Result<Reservation, BillingError>;
    /// Give a reservation back unused (the request failed before generating).
    fn release(&self, r: Reservation);
    /// Bill what was delivered; returns the receipt as JSON (with its signature).
    fn bill(
        &self,
        r: Reservation,
        usage: Usage,
        request_hash: B256,
        response_hash: B256,
    ) -> Result<Option<serde_json::Value>, BillingError>;
}

/// The cost of a request in base units: `ceil((in × price_in + out × price_out) / 1000)`,
/// prices per 1K tokens; the same rule the `inference` module applies at settlement.
pub fn cost(prompt_tokens: u64, completion_tokens: u64, price_in_per_1k: u128, price_out_per_1k: u128) -> u128 {
    let total = (prompt_tokens as u128)
        .saturating_mul(price_in_per_1k)
        .saturating_add((completion_tokens as u128).saturating_mul(price_out_per_1k));
    total.div_ceil(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_rounds_up_per_request() {
        assert_eq!(cost(0, 0, 5, 7), 0);
        assert_eq!(cost(1, 0, 1, 0), 1);
        assert_eq!(cost(1000, 1000, 3, 4), 7);
        assert_eq!(cost(10, 20, 1000, 2000), 10 + 40);
    }
}
