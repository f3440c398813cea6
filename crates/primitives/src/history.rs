//! What a transaction or a log is about: the subjects the node's history index
//! files it under, so an account's (or a Datanet's, a model's, a
//! contribution's) history is a range read rather than a scan of every block.
//!
//! A transaction is filed under its sender and its recipient. A log of a
//! system contract is filed under what its indexed topics name, read from the
//! contract's ABI: every `address` topic, and the `uint64` ids of Datanets
//! (`datanetId`, or `id` in the Datanets contract), models (`modelId`, or `id`
//! in the Models contract) and contributions (`contributionId`). Other ids
//! (proposals, agents, receipt hashes) are not subjects. A log of an event
//! no system ABI declares is filed under every topic after the first that
//! looks like an address (its top 12 bytes zero, not all zero).
//!
//! A few events name a subject in their data rather than in a topic (the
//! ABI is consensus-visible, so it stays as it is): [`data_subjects`] reads
//! those, e.g. the model of the inference module's `ReceiptSettled`, so a
//! model's history holds every receipt settled for it, whoever paid and served.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use alloy_primitives::{Address, B256, Log};
use alloy_sol_types::SolEvent;

use crate::system::{Module, SYSTEM_MODULES};

/// What a history is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Address(Address),
    Datanet(u64),
    Model(u64),
    Contribution(u64),
}

/// Bytes of [`Subject::to_bytes`].
pub const SUBJECT_BYTES: usize = 21;

impl Subject {
    /// A fixed-width key: a kind byte, then the address or the id (big-endian,
    /// right-aligned in 20 bytes), so one subject's entries are contiguous.
    pub fn to_bytes(&self) -> [u8; SUBJECT_BYTES] {
        let mut k = [0u8; SUBJECT_BYTES];
        let (kind, id) = match self {
            Subject::Address(a) => {
                k[1..].copy_from_slice(a.as_slice());
                return k;
            }
            Subject::Datanet(id) => (1, id),
            Subject::Model(id) => (2, id),
            Subject::Contribution(id) => (3, id),
        };
        k[0] = kind;
        k[13..].copy_from_slice(&id.to_be_bytes());
        k
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Address(a) => write!(f, "{a}"),
            Subject::Datanet(id) => write!(f, "datanet {id}"),
            Subject::Model(id) => write!(f, "model {id}"),
            Subject::Contribution(id) => write!(f, "contribution {id}"),
        }
    }
}

/// The subject sent the transaction.
pub const ROLE_SENDER: u8 = 1;
/// The subject is the transaction's recipient.
pub const ROLE_RECIPIENT: u8 = 2;
/// A log of the transaction names the subject in an indexed topic.
pub const ROLE_LOG: u8 = 4;
/// The subject, a contract other than a system module (an EVM contract, a
/// share token), emitted a log of the transaction: a contract's own events
/// (a token's transfers, a pool's swaps and reserves) are its history.
pub const ROLE_EMITTER: u8 = 8;

/// The subject a log is filed under as its emitter: its address, unless it is
/// a system module (their logs are filed by what they name, and a module's
/// own history would be every receipt and vote).
pub fn emitter_subject(log: &Log) -> Option<Subject> {
    Module::from_address(&log.address).is_none().then_some(Subject::Address(log.address))
}

/// Most entries a history page holds; larger requests are clamped to it.
pub const MAX_HISTORY_PAGE: usize = 100;

/// A position in a history, newest first: a page continues strictly before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HistoryCursor {
    pub block: u64,
    pub tx_index: u32,
    /// 0: the transaction itself; `n + 1`: its log `n`.
    pub slot: u32,
}

/// Text form `block-tx-slot` (for `?before=` links and JSON-RPC).
impl fmt::Display for HistoryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.block, self.tx_index, self.slot)
    }
}

impl FromStr for HistoryCursor {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("bad history cursor {s:?} (expected block-tx-slot, e.g. 12-0-1)");
        let mut parts = s.split('-');
        let mut next = || parts.next().ok_or_else(bad);
        let (b, t, l) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(HistoryCursor {
            block: b.parse().map_err(|_| bad())?,
            tx_index: t.parse().map_err(|_| bad())?,
            slot: l.parse().map_err(|_| bad())?,
        })
    }
}

/// One transaction, or one log, in a subject's history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryEntry {
    pub block: u64,
    pub tx_index: u32,
    /// The log's index within its transaction; `None` for the transaction itself.
    pub log_index: Option<u32>,
    /// [`ROLE_SENDER`] | [`ROLE_RECIPIENT`] | [`ROLE_LOG`].
    pub roles: u8,
}

impl HistoryEntry {
    /// Where the next (older) page starts.
    pub fn cursor(&self) -> HistoryCursor {
        HistoryCursor { block: self.block, tx_index: self.tx_index, slot: self.log_index.map_or(0, |i| i + 1) }
    }
}

/// A page of a subject's history, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// The cursor of the next, older page; `None` when this page is the last.
    pub next: Option<HistoryCursor>,
    /// The oldest block the index covers (older blocks were never stored:
    /// a node started from a state snapshot has none below its height).
    pub indexed_from: u64,
    /// The index covers blocks up to and including this one.
    pub indexed_to: Option<u64>,
}

/// The subjects of a transaction sent by `sender` to `to` (`None`: a creation).
pub fn tx_subjects(sender: Address, to: Option<Address>) -> Vec<Subject> {
    let mut s = vec![Subject::Address(sender)];
    if let Some(to) = to.filter(|t| *t != sender) {
        s.push(Subject::Address(to));
    }
    s
}

/// The subjects a log's indexed topics name, without repeats.
pub fn log_subjects(log: &Log) -> Vec<Subject> {
    let topics = log.topics();
    let Some(sig) = topics.first() else { return vec![] };
    let mut out: Vec<Subject> = match EVENT_TOPICS.get(&(log.address, *sig)) {
        Some(kinds) => kinds.iter().zip(&topics[1..]).filter_map(|(k, t)| k.map(|k| k.subject(t))).collect(),
        None => topics[1..].iter().filter_map(address_like).map(Subject::Address).collect(),
    };
    out.sort();
    out.dedup();
    out
}

/// The subjects a system log names in its data, not in a topic: the model of
/// the inference module's `ReceiptSettled` (its topics name the receipt, the
/// payer and the operator; the model owner finds its receipts through the
/// model). Empty for every other log, and for one that does not decode.
pub fn data_subjects(log: &Log) -> Vec<Subject> {
    if log.address != Module::Inference.address()
        || log.topics().first() != Some(&crate::abi::IInference::ReceiptSettled::SIGNATURE_HASH)
    {
        return vec![];
    }
    crate::abi::IInference::ReceiptSettled::decode_log_data(&log.data)
        .map(|e| vec![Subject::Model(e.modelId)])
        .unwrap_or_default()
}

fn address_like(t: &B256) -> Option<Address> {
    (t[..12].iter().all(|b| *b == 0) && *t != B256::ZERO).then(|| Address::from_slice(&t[12..]))
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Address,
    Datanet,
    Model,
    Contribution,
}

impl Kind {
    fn subject(self, topic: &B256) -> Subject {
        let id = || u64::from_be_bytes(topic[24..].try_into().expect("8 bytes"));
        match self {
            Kind::Address => Subject::Address(Address::from_slice(&topic[12..])),
            Kind::Datanet => Subject::Datanet(id()),
            Kind::Model => Subject::Model(id()),
            Kind::Contribution => Subject::Contribution(id()),
        }
    }

    fn of(module: Module, ty: &str, name: &str) -> Option<Kind> {
        match (ty, name, module) {
            ("address", _, _) => Some(Kind::Address),
            ("uint64", "datanetId", _) | ("uint64", "id", Module::Datanets) => Some(Kind::Datanet),
            ("uint64", "modelId", _) | ("uint64", "id", Module::Models) => Some(Kind::Model),
            ("uint64", "contributionId", _) => Some(Kind::Contribution),
            _ => None,
        }
    }
}

/// (emitting contract, event signature) → what each indexed topic names.
type EventTopics = HashMap<(Address, B256), Vec<Option<Kind>>>;

static EVENT_TOPICS: LazyLock<EventTopics> = LazyLock::new(|| {
    let mut m = HashMap::new();
    for module in SYSTEM_MODULES {
        for event in crate::abi::interface(module).events().filter(|e| !e.anonymous) {
            let kinds = event.inputs.iter().filter(|p| p.indexed).map(|p| Kind::of(module, &p.ty, &p.name)).collect();
            m.insert((module.address(), event.selector()), kinds);
        }
    }
    m
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::{IBank, IDatanets, IGovernance, IInference};

    fn log(module: Module, e: &impl SolEvent) -> Log {
        Log { address: module.address(), data: e.encode_log_data() }
    }

    #[test]
    fn system_events_name_addresses_and_ids_by_abi() {
        let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
        let t = IBank::Transfer { from: a, to: b, value: alloy_primitives::U256::from(5) };
        assert_eq!(log_subjects(&log(Module::Bank, &t)), vec![Subject::Address(a), Subject::Address(b)]);
        let approved = IDatanets::ContributionApproved {
            datanetId: 7,
            contributionId: 9,
            curator: a,
            version: 2,
            versionRoot: B256::ZERO,
        };
        assert_eq!(
            log_subjects(&log(Module::Datanets, &approved)),
            vec![Subject::Address(a), Subject::Datanet(7), Subject::Contribution(9)]
        );
        // A proposal id is no subject, although it looks like an address.
        let voted = IGovernance::VoteCast { id: 3, voter: b, support: 1, weight: Default::default() };
        assert_eq!(log_subjects(&log(Module::Governance, &voted)), vec![Subject::Address(b)]);
        // Unknown events: address-like topics only.
        let mut other = log(Module::Bank, &t);
        other.address = Address::repeat_byte(1);
        other.data = alloy_primitives::LogData::new_unchecked(
            vec![B256::repeat_byte(1), a.into_word(), B256::ZERO, B256::repeat_byte(2)],
            Default::default(),
        );
        assert_eq!(log_subjects(&other), vec![Subject::Address(a)]);
    }

    #[test]
    fn a_settled_receipt_is_filed_under_its_model_from_its_data() {
        let (payer, operator) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
        let settled = IInference::ReceiptSettled {
            receiptHash: B256::repeat_byte(7),
            payer,
            operator,
            modelId: 42,
            cost: 1000,
            dataShare: 300,
        };
        let l = log(Module::Inference, &settled);
        assert_eq!(log_subjects(&l), vec![Subject::Address(payer), Subject::Address(operator)]);
        assert_eq!(data_subjects(&l), vec![Subject::Model(42)]);
        // The same event from another contract, another event, or a log whose data
        // does not decode, names no subject in its data.
        let mut other = l.clone();
        other.address = Address::repeat_byte(1);
        assert!(data_subjects(&other).is_empty());
        let t = IBank::Transfer { from: payer, to: operator, value: alloy_primitives::U256::from(5) };
        assert!(data_subjects(&log(Module::Bank, &t)).is_empty());
        let mut short = l.clone();
        short.data = alloy_primitives::LogData::new_unchecked(l.topics().to_vec(), vec![0u8; 7].into());
        assert!(data_subjects(&short).is_empty());
    }

    #[test]
    fn subject_keys_differ_by_kind() {
        let keys = [
            Subject::Address(Address::with_last_byte(1)),
            Subject::Datanet(1),
            Subject::Model(1),
            Subject::Contribution(1),
        ]
        .map(|s| s.to_bytes());
        for (i, k) in keys.iter().enumerate() {
            assert!(keys[i + 1..].iter().all(|o| o != k));
        }
        assert_eq!(tx_subjects(Address::ZERO, Some(Address::ZERO)).len(), 1);
    }
}
