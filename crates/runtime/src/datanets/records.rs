//! Stored records of datanets (ABI-encoded `sol!` structs).

use alloy_sol_types::sol;

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
        uint64 maxSubmissionBytes;
        uint64 contributorDailyBytes;
        uint64 datanetDailyBytes;
        uint32 contributorDailyFiles;
        uint64 createdAt;
    }

    struct ContributionRecord {
        uint64 datanetId;
        address contributor;
        bytes32 contentHash;
        bytes32 rowsRoot;
        uint32 rowCount;
        uint64 byteSize;
        uint16 qualityBps;
        uint32 scorerVersion;
        uint32 exactDuplicates;
        uint32 nearDuplicates;
        bytes32 findingsHash;
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

    struct VersionRecord {
        bytes32 root;
        uint64 parent;
        /// Rows of the approved contributions (tombstoned positions included).
        uint64 rowCount;
        /// Rows that may be used for training (tombstoned ones excluded).
        uint64 liveRows;
        uint64 contributions;
        uint64 createdAt;
        /// Closed to new training (a later tombstone removed rows it contains).
        bool closed;
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

    struct ReputationRecord {
        uint64 submitted;
        uint64 approved;
        uint64 rejected;
        uint64 withdrawn;
        uint64 rows;
        uint64 bytesApproved;
    }
}

pub const PENDING: u8 = 0;
pub const APPROVED: u8 = 1;
pub const REJECTED: u8 = 2;
pub const WITHDRAWN: u8 = 3;
/// Approved, then flagged as duplicated or adversarial: it stops earning.
pub const FLAGGED: u8 = 4;
