//! The engine's wire, WAL and sync codec: borsh, bounded.
//!
//! Malachite is codec-agnostic: it asks for a `Codec<T>` per message type.
//! Its own generic messages (signed votes and proposals, certificates, sync
//! requests and responses, stream frames) have borsh encodings behind its
//! `borsh` features; ours derive borsh. [`WireCodec`] encodes them all, and
//! refuses input larger than [`MAX_MESSAGE_BYTES`], malformed or with trailing
//! bytes, and proposal parts whose block exceeds [`MAX_BLOCK_BYTES`], with an
//! error: bytes from the network never panic the node.

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use malachitebft_app_channel::app::types::codec::{Codec, HasEncodedLen};
use malachitebft_core_consensus::{LivenessMsg, ProposedValue, SignedConsensusMsg};
use malachitebft_core_types::{
    ExtendedCommitCertificate, ExtendedCommitSignature, PolkaCertificate, Round, ValidatorProof,
};
use malachitebft_engine::util::streaming::{StreamContent, StreamMessage};
use malachitebft_sync as sync;

use crate::context::OlContext;
use crate::messages::{MAX_BLOCK_BYTES, ProposalPart, SignedExtension};
use crate::signing::Signature;
use crate::types::{BlockId, Height, ValidatorAddress};

/// The largest message the codec encodes or decodes: a sync response of a few
/// blocks (Malachite's default response cap is 10 MiB) plus framing.
pub const MAX_MESSAGE_BYTES: usize = 11 * 1024 * 1024;

/// Why bytes could not be decoded (or a message encoded).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("message of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("proposal part carries a block of {len} bytes, over the limit of {max}")]
    BlockTooLarge { len: usize, max: usize },
}

/// Borsh for every message the engine sends, logs or syncs.
#[derive(Copy, Clone, Debug, Default)]
pub struct WireCodec;

/// The checks a decoded message must pass beyond its encoding.
trait Checked {
    fn check(&self) -> Result<(), CodecError> {
        Ok(())
    }
}

fn check_part(part: &ProposalPart) -> Result<(), CodecError> {
    match part.block.len() {
        len if len > MAX_BLOCK_BYTES => Err(CodecError::BlockTooLarge { len, max: MAX_BLOCK_BYTES }),
        _ => Ok(()),
    }
}

impl Checked for ProposalPart {
    fn check(&self) -> Result<(), CodecError> {
        check_part(self)
    }
}

impl Checked for StreamMessage<ProposalPart> {
    fn check(&self) -> Result<(), CodecError> {
        match &self.content {
            StreamContent::Data(part) => check_part(part),
            StreamContent::Fin => Ok(()),
        }
    }
}

impl Checked for SignedConsensusMsg<OlContext> {}
impl Checked for LivenessMsg<OlContext> {}
impl Checked for ProposedValue<OlContext> {}
impl Checked for PolkaCertificate<OlContext> {}
impl Checked for sync::Status<OlContext> {}
impl Checked for sync::Request<OlContext> {}

fn encode<T: BorshSerialize>(msg: &T) -> Result<Bytes, CodecError> {
    let bytes = borsh::to_vec(msg).map_err(|e| CodecError::Malformed(e.to_string()))?;
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge { len: bytes.len(), max: MAX_MESSAGE_BYTES });
    }
    Ok(Bytes::from(bytes))
}

fn decode<T: BorshDeserialize + Checked>(bytes: &[u8]) -> Result<T, CodecError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(CodecError::TooLarge { len: bytes.len(), max: MAX_MESSAGE_BYTES });
    }
    let msg: T = borsh::from_slice(bytes).map_err(|e| CodecError::Malformed(e.to_string()))?;
    msg.check()?;
    Ok(msg)
}

macro_rules! borsh_codec {
    ($($ty:ty),* $(,)?) => {$(
        impl Codec<$ty> for WireCodec {
            type Error = CodecError;

            fn decode(&self, bytes: Bytes) -> Result<$ty, CodecError> {
                decode(&bytes)
            }

            fn encode(&self, msg: &$ty) -> Result<Bytes, CodecError> {
                encode(msg)
            }
        }
    )*};
}

borsh_codec!(
    ProposalPart,
    StreamMessage<ProposalPart>,
    SignedConsensusMsg<OlContext>,
    LivenessMsg<OlContext>,
    ProposedValue<OlContext>,
    PolkaCertificate<OlContext>,
    sync::Status<OlContext>,
    sync::Request<OlContext>,
);

/// A sync response as borsh sees it: Malachite's `ExtendedCommitCertificate`
/// has no borsh encoding, so its fields are spelled out here.
#[derive(BorshSerialize, BorshDeserialize)]
struct ResponseWire {
    start_height: Height,
    values: Vec<DecidedWire>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct DecidedWire {
    value_bytes: Vec<u8>,
    height: Height,
    round: Round,
    value_id: BlockId,
    signatures: Vec<(ValidatorAddress, Signature, Option<SignedExtension>)>,
}

impl Checked for ResponseWire {}

impl ResponseWire {
    fn from_response(response: &sync::Response<OlContext>) -> Self {
        let sync::Response::ValueResponse(r) = response;
        let values = r
            .values
            .iter()
            .map(|v| DecidedWire {
                value_bytes: v.value_bytes.to_vec(),
                height: v.certificate.height,
                round: v.certificate.round,
                value_id: v.certificate.value_id,
                signatures: v
                    .certificate
                    .commit_signatures
                    .iter()
                    .map(|s| (s.address, s.signature, s.extension.clone()))
                    .collect(),
            })
            .collect();
        Self { start_height: r.start_height, values }
    }

    fn into_response(self) -> sync::Response<OlContext> {
        let values = self
            .values
            .into_iter()
            .map(|v| {
                let commit_signatures = v
                    .signatures
                    .into_iter()
                    .map(|(address, signature, extension)| ExtendedCommitSignature { address, signature, extension })
                    .collect();
                let certificate = ExtendedCommitCertificate {
                    height: v.height,
                    round: v.round,
                    value_id: v.value_id,
                    commit_signatures,
                };
                sync::RawDecidedValue::new(Bytes::from(v.value_bytes), certificate)
            })
            .collect();
        sync::Response::ValueResponse(sync::ValueResponse::new(self.start_height, values))
    }
}

impl Codec<sync::Response<OlContext>> for WireCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<sync::Response<OlContext>, CodecError> {
        decode::<ResponseWire>(&bytes).map(ResponseWire::into_response)
    }

    fn encode(&self, msg: &sync::Response<OlContext>) -> Result<Bytes, CodecError> {
        encode(&ResponseWire::from_response(msg))
    }
}

impl HasEncodedLen<sync::Response<OlContext>> for WireCodec {
    fn encoded_len(&self, msg: &sync::Response<OlContext>) -> Result<usize, CodecError> {
        borsh::object_length(&ResponseWire::from_response(msg)).map_err(|e| CodecError::Malformed(e.to_string()))
    }
}

/// A validator proof as borsh sees it (Malachite gives the proof no encoding).
#[derive(BorshSerialize, BorshDeserialize)]
struct ProofWire {
    public_key: Vec<u8>,
    peer_id: Vec<u8>,
    signature: Signature,
}

impl Checked for ProofWire {}

impl Codec<ValidatorProof<OlContext>> for WireCodec {
    type Error = CodecError;

    fn decode(&self, bytes: Bytes) -> Result<ValidatorProof<OlContext>, CodecError> {
        let wire: ProofWire = decode(&bytes)?;
        Ok(ValidatorProof::new(wire.public_key, wire.peer_id, wire.signature))
    }

    fn encode(&self, proof: &ValidatorProof<OlContext>) -> Result<Bytes, CodecError> {
        encode(&ProofWire {
            public_key: proof.public_key.clone(),
            peer_id: proof.peer_id.clone(),
            signature: proof.signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Address, B256};
    use keys::ConsensusKey;
    use malachitebft_core_types::{NilOrVal, SignedMessage, VoteType};
    use malachitebft_engine::util::streaming::StreamId;

    use crate::messages::Vote;
    use crate::signing::ConsensusSigner;

    fn addr(i: u8) -> ValidatorAddress {
        ValidatorAddress(Address::repeat_byte(i))
    }

    fn signed_vote() -> SignedConsensusMsg<OlContext> {
        let vote = Vote {
            kind: VoteType::Prevote,
            height: Height(5),
            round: Round::new(0),
            value: NilOrVal::Val(BlockId(B256::repeat_byte(3))),
            validator: addr(1),
            extension: None,
        };
        SignedConsensusMsg::Vote(SignedMessage::new(vote, Signature([7; 64])))
    }

    fn part(block: Vec<u8>) -> StreamMessage<ProposalPart> {
        let mut part = ProposalPart {
            height: Height(5),
            round: Round::new(1),
            pol_round: Round::Nil,
            proposer: addr(2),
            value: BlockId(B256::repeat_byte(4)),
            block,
            signature: Signature([0; 64]),
        };
        ConsensusSigner::new(ConsensusKey::dev("p"), 1).sign_part(&mut part);
        StreamMessage::new(StreamId::new(Bytes::from_static(b"s1")), 0, StreamContent::Data(part))
    }

    fn response() -> sync::Response<OlContext> {
        let certificate = ExtendedCommitCertificate {
            height: Height(9),
            round: Round::new(2),
            value_id: BlockId(B256::repeat_byte(9)),
            commit_signatures: vec![ExtendedCommitSignature {
                address: addr(3),
                signature: Signature([1; 64]),
                extension: Some(SignedMessage::new(vec![1, 2, 3], Signature([2; 64]))),
            }],
        };
        let value = sync::RawDecidedValue::new(Bytes::from_static(b"block nine"), certificate);
        sync::Response::ValueResponse(sync::ValueResponse::new(Height(9), vec![value]))
    }

    /// Every strict prefix of a valid encoding, and the encoding with a byte
    /// appended, are refused with an error.
    fn refuses_truncation_and_trailing<T>(msg: &T)
    where
        WireCodec: Codec<T, Error = CodecError>,
    {
        let bytes = WireCodec.encode(msg).unwrap();
        for len in 0..bytes.len() {
            assert!(WireCodec.decode(bytes.slice(..len)).is_err(), "prefix of {len} bytes decoded");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(WireCodec.decode(Bytes::from(longer)).is_err());
    }

    #[test]
    fn messages_round_trip() {
        let vote = signed_vote();
        assert_eq!(WireCodec.decode(WireCodec.encode(&vote).unwrap()).ok(), Some(vote));
        let part = part(vec![9; 100]);
        assert_eq!(WireCodec.decode(WireCodec.encode(&part).unwrap()).ok(), Some(part));
        let response = response();
        let back: sync::Response<OlContext> = WireCodec.decode(WireCodec.encode(&response).unwrap()).unwrap();
        assert_eq!(back, response);
        assert_eq!(WireCodec.encoded_len(&response).unwrap(), WireCodec.encode(&response).unwrap().len());
    }

    #[test]
    fn truncated_or_extended_messages_are_refused() {
        refuses_truncation_and_trailing(&signed_vote());
        refuses_truncation_and_trailing(&part(vec![1; 10]));
        refuses_truncation_and_trailing(&response());
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in [0usize, 1, 2, 7, 31, 64, 200, 4096] {
            for _ in 0..50 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect();
                let bytes = Bytes::from(bytes);
                let _ = Codec::<SignedConsensusMsg<OlContext>>::decode(&WireCodec, bytes.clone());
                let _ = Codec::<LivenessMsg<OlContext>>::decode(&WireCodec, bytes.clone());
                let _ = Codec::<StreamMessage<ProposalPart>>::decode(&WireCodec, bytes.clone());
                let _ = Codec::<sync::Response<OlContext>>::decode(&WireCodec, bytes.clone());
                let _ = Codec::<sync::Request<OlContext>>::decode(&WireCodec, bytes.clone());
                let _ = Codec::<sync::Status<OlContext>>::decode(&WireCodec, bytes.clone());
                let _ = Codec::<ValidatorProof<OlContext>>::decode(&WireCodec, bytes.clone());
                let _ = Codec::<ProposedValue<OlContext>>::decode(&WireCodec, bytes);
            }
        }
    }

    #[test]
    fn huge_length_prefixes_fail_without_allocating() {
        // A vote tag, then a block-sized vector claiming 4 GiB.
        let mut bytes = borsh::to_vec(&Height(1)).unwrap();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Codec::<sync::Response<OlContext>>::decode(&WireCodec, Bytes::from(bytes)).is_err());
    }

    #[test]
    fn oversized_input_and_blocks_are_refused() {
        let big = Bytes::from(vec![0u8; MAX_MESSAGE_BYTES + 1]);
        assert!(matches!(
            Codec::<SignedConsensusMsg<OlContext>>::decode(&WireCodec, big),
            Err(CodecError::TooLarge { .. })
        ));
        let fat = part(vec![0; MAX_BLOCK_BYTES + 1]);
        let bytes = Bytes::from(borsh::to_vec(&fat).unwrap());
        assert!(matches!(
            Codec::<StreamMessage<ProposalPart>>::decode(&WireCodec, bytes),
            Err(CodecError::BlockTooLarge { .. })
        ));
    }
}
