//! The values consensus agrees on and the names it uses: heights, validator
//! addresses and block ids.

use std::fmt;

use alloy_primitives::{Address, B256};
use borsh::io::{Read, Result as IoResult, Write};
use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types as mc;

/// A block height. Height 0 is the genesis state; consensus decides from 1.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's operator address (the 20-byte secp256k1 address it bonded
/// with in `staking`), which names it in votes and certificates.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ValidatorAddress(pub Address);

impl fmt::Display for ValidatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Address for ValidatorAddress {}

impl BorshSerialize for ValidatorAddress {
    fn serialize<W: Write>(&self, writer: &mut W) -> IoResult<()> {
        writer.write_all(self.0.as_slice())
    }
}

impl BorshDeserialize for ValidatorAddress {
    fn deserialize_reader<R: Read>(reader: &mut R) -> IoResult<Self> {
        Ok(ValidatorAddress(Address::from(<[u8; 20]>::deserialize_reader(reader)?)))
    }
}

/// What consensus decides: the id of a block, the keccak hash of its header.
/// It is its own id: votes carry it, proposal parts carry the block.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockId(pub B256);

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl mc::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> BlockId {
        *self
    }
}

impl BorshSerialize for BlockId {
    fn serialize<W: Write>(&self, writer: &mut W) -> IoResult<()> {
        writer.write_all(self.0.as_slice())
    }
}

impl BorshDeserialize for BlockId {
    fn deserialize_reader<R: Read>(reader: &mut R) -> IoResult<Self> {
        Ok(BlockId(B256::from(<[u8; 32]>::deserialize_reader(reader)?)))
    }
}

/// A round as our signed bytes carry it: `None` for Malachite's `Round::Nil`.
pub(crate) fn round_number(round: mc::Round) -> Option<u32> {
    round.as_u32()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc::Height as _;

    #[test]
    fn heights_count_from_one_and_never_wrap() {
        assert_eq!(<Height as mc::Height>::INITIAL, Height(1));
        assert_eq!(Height(1).increment(), Height(2));
        assert_eq!(Height(0).decrement(), None);
        assert_eq!(Height(u64::MAX).increment(), Height(u64::MAX));
    }

    #[test]
    fn names_encode_as_their_raw_bytes() {
        let a = ValidatorAddress(Address::repeat_byte(7));
        assert_eq!(borsh::to_vec(&a).unwrap(), vec![7u8; 20]);
        let id = BlockId(B256::repeat_byte(9));
        assert_eq!(borsh::from_slice::<BlockId>(&borsh::to_vec(&id).unwrap()).unwrap(), id);
        assert!(borsh::from_slice::<BlockId>(&[1u8; 31]).is_err());
    }
}
