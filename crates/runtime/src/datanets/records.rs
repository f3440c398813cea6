//! Stored records of datanets (ABI-encoded `sol!` structs).

use alloy_sol_types::sol;
use primitives::abi::{ContributionAttestation, DatanetLimits};
/// Versions and reputations are stored as the ABI's structs, which the
/// `version` and `reputation` views return as they are.
pub use primitives::abi::{DatanetVersion as VersionRecord, Reputation as ReputationRecord};

sol! {
    struct DatanetRecord {
        address owner;
        string name;
        string summary;
        string description;
        string[] tags;
        uint8 dataType;
        string licence;
        uint8 policy;
        uint256 contributorBond;
        uint8 flags;
        uint64 versionCount;
        /// A static struct, encoded in place: the record's bytes are those of the
        /// four limits inline.
        DatanetLimits limits;
        uint64 createdAt;
    }

    /// A contribution: what its attester signed (Datanet, contributor, content
    /// and rows hashes, size, quality, duplicates, findings), then its bond and
    /// its curation.
    struct ContributionRecord {
        ContributionAttestation attestation;
        uint256 bond;
        /// 0 pending, 1 approved, 2 rejected, 3 withdrawn, 4 flagged (approved, then found duplicated or adversarial).
        uint8 status;
        uint8 reason;
        string note;
        uint64 submittedAt;
        uint64 decidedAt;
        /// The version its approval created.
        uint64 version;
        uint32 tombstoned;
        address attester;
    }


    struct Usage {
        uint64 bytesUsed;
        uint32 files;
    }

    struct TombstoneRecord {
        /// The first version without the row.
        uint64 version;
        string reason;
    }

    /// A contributor's standing in one Datanet, kept up to date by every
    /// decision so the leaderboard never scans contributions.
    struct StandingRecord {
        /// Live rows of its approved (not flagged) contributions.
        uint64 approvedRows;
        uint64 approved;
        /// Approved or rejected (a flagged contribution no longer counts).
        uint64 decided;
    }

}

pub const PENDING: u8 = 0;
pub const APPROVED: u8 = 1;
pub const REJECTED: u8 = 2;
pub const WITHDRAWN: u8 = 3;
/// Approved, then flagged as duplicated or adversarial: it stops earning.
pub const FLAGGED: u8 = 4;

#[cfg(test)]
mod tests {
    use alloy_sol_types::SolValue;
    use primitives::{Address, U256};

    use super::*;

    sol! {
        struct FlatDatanetRecord {
            address owner;
            string name;
            string summary;
            string description;
            string[] tags;
            uint8 dataType;
            string licence;
            uint8 policy;
            uint256 contributorBond;
            uint8 flags;
            uint64 versionCount;
            uint64 maxSubmissionBytes;
            uint64 contributorDailyBytes;
            uint64 datanetDailyBytes;
            uint32 contributorDailyFiles;
            uint64 createdAt;
        }

        function version(uint64 id, uint64 v) external view returns (bytes32 root, uint64 parent, uint64 rowCount, uint64 liveRows, uint64 contributions, uint64 createdAt, bool closed);
        function reputation(address contributor) external view returns (uint64 submitted, uint64 approved, uint64 rejected, uint64 withdrawn, uint64 rows, uint64 bytesApproved);
    }

    #[test]
    fn version_and_reputation_views_answer_as_before_they_returned_structs() {
        use alloy_sol_types::SolCall;
        use primitives::abi::IDatanets;

        let v = VersionRecord {
            root: primitives::B256::repeat_byte(1),
            parent: 2,
            rowCount: 3,
            liveRows: 4,
            contributions: 5,
            createdAt: 6,
            closed: true,
        };
        let old = versionReturn {
            root: v.root,
            parent: 2,
            rowCount: 3,
            liveRows: 4,
            contributions: 5,
            createdAt: 6,
            closed: true,
        };
        assert_eq!(IDatanets::versionCall::SELECTOR, versionCall::SELECTOR);
        assert_eq!(IDatanets::versionCall::abi_encode_returns(&v), versionCall::abi_encode_returns(&old));
        let r = ReputationRecord { submitted: 1, approved: 2, rejected: 3, withdrawn: 4, rows: 5, bytesApproved: 6 };
        let old = reputationReturn { submitted: 1, approved: 2, rejected: 3, withdrawn: 4, rows: 5, bytesApproved: 6 };
        assert_eq!(IDatanets::reputationCall::SELECTOR, reputationCall::SELECTOR);
        assert_eq!(IDatanets::reputationCall::abi_encode_returns(&r), reputationCall::abi_encode_returns(&old));
        // Stored records keep their bytes too.
        assert_eq!(v.abi_encode(), IDatanets::versionCall::abi_encode_returns(&v));
    }

    #[test]
    fn a_datanet_record_encodes_its_limits_inline() {
        let limits = DatanetLimits {
            maxSubmissionBytes: 1,
            contributorDailyBytes: 2,
            datanetDailyBytes: 3,
            contributorDailyFiles: 4,
        };
        let d = DatanetRecord {
            owner: Address::repeat_byte(7),
            name: "n".into(),
            summary: "s".into(),
            description: "d".into(),
            tags: vec!["t".into()],
            dataType: 0,
            licence: "CC-BY-4.0".into(),
            policy: 1,
            contributorBond: U256::from(5),
            flags: 0,
            versionCount: 9,
            limits,
            createdAt: 11,
        };
        // The layout stored before the limits were a struct: the four values in place.
        let flat = FlatDatanetRecord {
            owner: d.owner,
            name: d.name.clone(),
            summary: d.summary.clone(),
            description: d.description.clone(),
            tags: d.tags.clone(),
            dataType: d.dataType,
            licence: d.licence.clone(),
            policy: d.policy,
            contributorBond: d.contributorBond,
            flags: d.flags,
            versionCount: d.versionCount,
            maxSubmissionBytes: 1,
            contributorDailyBytes: 2,
            datanetDailyBytes: 3,
            contributorDailyFiles: 4,
            createdAt: d.createdAt,
        };
        assert_eq!(d.abi_encode(), flat.abi_encode());
        assert_eq!(DatanetRecord::abi_decode(&flat.abi_encode()).unwrap().abi_encode(), d.abi_encode());
    }
}
