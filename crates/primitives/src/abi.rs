//! Solidity interfaces of the system contracts, through alloy's `sol!`.
//!
//! Each module at its fixed address ([`crate::system::Module::address`]) speaks
//! exactly this ABI; wallets and libraries call it like any contract. Errors
//! shared by every module are declared once at the top.
//!
//! Interfaces and the shared errors carry `#[sol(abi)]`: their JSON ABI
//! (`IBank::abi::contract()`, with argument and event field names and indexed
//! flags) is what the web explorer decodes calls, logs and reverts with.

use alloy_sol_types::sol;

use crate::system::Module;

mod agents;
pub use agents::*;
mod assets;
pub use assets::*;

sol! {
    #![sol(all_derives)]

    /// The caller may not do this (not the owner, not governance, ...).
    #[sol(abi)]
    error Unauthorized(address caller);
    /// The calldata names no function of this contract.
    #[sol(abi)]
    error UnknownFunction(bytes4 selector);
    /// The calldata does not decode as the function's arguments.
    #[sol(abi)]
    error InvalidArguments();
    /// Value was sent to a function that does not take any.
    #[sol(abi)]
    error NonPayable();
    /// The transaction's gas limit does not cover the call.
    #[sol(abi)]
    error OutOfGas(uint64 required, uint64 available);
    /// A balance or held amount is too small.
    #[sol(abi)]
    error InsufficientBalance(uint256 available, uint256 required);
    /// An arithmetic overflow would occur.
    #[sol(abi)]
    error Overflow();
    /// A system contract was called from a static context (STATICCALL) and
    /// the call would have written state, moved OPEN or emitted an event.
    #[sol(abi)]
    error WriteInStaticCall();
    /// A system contract was reached by DELEGATECALL or CALLCODE: its code
    /// runs only as itself.
    #[sol(abi)]
    error DelegateCallToSystem();

    /// OPEN, the native token, with an ERC-20 face at the bank's address.
    #[sol(abi)]
    interface IBank {
        event Transfer(address indexed from, address indexed to, uint256 value);

        function name() external view returns (string memory);
        function symbol() external view returns (string memory);
        function decimals() external view returns (uint8);
        function totalSupply() external view returns (uint256);
        function balanceOf(address account) external view returns (uint256);
        /// Move OPEN from the caller; emits Transfer.
        function transfer(address to, uint256 amount) external returns (bool);
        /// The supply equation's terms: total == genesis + issued - burned == accounts + treasury + held by modules.
        function supply() external view returns (uint256 total, uint256 genesis, uint256 issued, uint256 burned, uint256 treasury, uint256 rewardPool);
    }

    /// The governed parameter registry. Only the governance address may set.
    #[sol(abi)]
    interface IParams {
        event ParamChanged(string name, uint256 oldValue, uint256 newValue);
        error UnknownParam(string name);
        error ParamOutOfRange(string name, uint256 value, uint256 min, uint256 max);

        function get(string calldata name) external view returns (uint256);
        /// The value in force after block `height` (every change is kept, so a
        /// verifier judges a record by the parameters of the block it was made at).
        function getAt(string calldata name, uint64 height) external view returns (uint256);
        function set(string calldata name, uint256 value) external;
        function names() external view returns (string[] memory);
    }

    /// A vote a validator signed with its consensus key: what
    /// [`crate::consensus::vote_sign_bytes`] takes (the chain id is the
    /// chain's own) and the signature. Two of them are double-sign evidence
    /// (`IStaking.reportDoubleVote`).
    struct SignedVote {
        uint64 height;
        uint32 round;
        /// 1 prevote, 2 precommit ([`crate::consensus::VoteKind::code`]).
        uint8 kind;
        /// False for a nil vote (then `value` is ignored).
        bool hasValue;
        /// The block id voted for.
        bytes32 value;
        /// The 64-byte ed25519 signature over the vote's signed bytes.
        bytes signature;
    }

    /// A proposal a validator signed with its consensus key: what
    /// [`crate::consensus::proposal_sign_bytes`] takes and the signature.
    struct SignedProposal {
        uint64 height;
        uint32 round;
        /// False for a fresh value (then `polRound` is ignored).
        bool hasPolRound;
        /// The round of the proof-of-lock the value is re-proposed from.
        uint32 polRound;
        /// The block id proposed.
        bytes32 value;
        /// The 64-byte ed25519 signature over the proposal's signed bytes.
        bytes signature;
    }

    /// Bonded roles: validators (produce blocks, sign verdicts) and serving
    /// operators (serve models, sign receipts). An operator address holds the
    /// stake and registers its signing keys; anyone may delegate to it.
    #[sol(abi)]
    interface IStaking {
        event OperatorRegistered(address indexed operator, uint8 role, bytes32 consensusKey, address servingKey, uint16 commissionBps);
        event Bonded(address indexed operator, address indexed account, uint256 amount);
        event UnbondStarted(address indexed operator, address indexed account, uint256 amount, uint64 releaseHeight);
        event Withdrawn(address indexed account, uint256 amount);
        event RewardsDeposited(string pool, uint256 amount);
        event RewardsClaimed(address indexed operator, address indexed account, uint256 amount);
        event Slashed(address indexed operator, uint256 amount, uint32 fractionPpm, uint64 jailedUntil, string reason, address reporter);
        event Unjailed(address indexed operator);
        event ConsensusKeyRotated(address indexed operator, bytes32 key);
        event ServingKeyRotated(address indexed operator, address key);
        event CommissionChanged(address indexed operator, uint16 commissionBps);
        /// Double-sign evidence was accepted: the operator is slashed
        /// (`Slashed`, reason "double vote" or "double proposal"), jailed for
        /// good and tombstoned. `kind` is 0 for proposals, the vote kind otherwise.
        event DoubleSignReported(address indexed operator, uint64 height, uint32 round, uint8 kind, address reporter);

        error NotOperator(address account);
        error AlreadyRegistered(address operator);
        error BelowMinimumBond(uint256 amount, uint256 minimum);
        error InsufficientStake(uint256 available, uint256 requested);
        error OperatorJailed(address operator, uint64 until);
        error NotJailed(address operator);
        error UnknownRole(uint8 role);
        error UnknownPool(string pool);
        error InvalidKey();
        error InvalidFraction(uint32 fractionPpm);
        error TooManyUnbondings(uint256 max);
        error ValueMismatch(uint256 expected, uint256 sent);
        /// The operator was slashed 100% or proven to have double-signed: it
        /// never rejoins the validator set and nobody can bond to it again.
        error Tombstoned(address operator);
        /// Double-sign evidence that is malformed (unknown vote kind, a signature not 64 bytes, height 0).
        error InvalidEvidence(string reason);
        /// The two messages do not conflict: not the same height, round (and
        /// vote kind), or the same value.
        error EvidenceNotConflicting();
        /// Message `index` (0 or 1) is not signed by the operator's consensus
        /// key in force at its height.
        error BadEvidenceSignature(uint8 index);
        /// The operator was not in the validator set of the evidence's height.
        error NotInValidatorSet(address operator, uint64 height);
        /// The evidence is older than `staking.evidence_max_age` blocks.
        error EvidenceTooOld(uint64 height, uint64 oldestAccepted);
        /// The evidence is for a height after the current block.
        error EvidenceFromFuture(uint64 height, uint64 current);
        /// Evidence for this (operator, height, round, kind) was already accepted.
        error EvidenceAlreadySubmitted(address operator, uint64 height, uint32 round, uint8 kind);

        /// Become an operator (role 1 validator, 2 serving operator) with `msg.value` as the self bond.
        function registerOperator(uint8 role, bytes32 consensusKey, address servingKey, uint16 commissionBps) external payable;
        /// Add `msg.value` to the stake at `operator` (self bond if the caller is the operator, a delegation otherwise).
        function bond(address operator) external payable;
        /// Start unbonding the caller's own stake at `operator`; withdrawable after the cooldown.
        function unbond(address operator, uint256 amount) external;
        /// Move the caller's matured unbondings to its balance.
        function withdraw() external;
        /// Pay the caller's rewards at `operator` (its commission and self-bond share, or its delegation's share).
        function claimRewards(address operator) external;
        function rotateConsensusKey(bytes32 key) external;
        function rotateServingKey(address key) external;
        function setCommission(uint16 commissionBps) external;
        function unjail() external;
        /// Pay `msg.value` (== amount) to the stakers of pool "validators" or "serving", pro rata to stake.
        function depositRewards(uint256 amount, string calldata pool) external payable;
        /// Slash `fractionPpm` of an operator's stake (self bond, delegations, pending unbondings) and jail it.
        /// Callable by governance and by system modules (attribution challenges).
        function slash(address operator, uint32 fractionPpm, uint64 jailBlocks, string calldata reason, address reporter) external;
        /// Prove that `operator` signed two different votes of one height,
        /// round and kind (a nil vote counts as a value): it is slashed
        /// `staking.double_sign_slash_ppm`, jailed for good and tombstoned; the
        /// caller gets the reporter's share. Anyone may call it, within
        /// `staking.evidence_max_age` blocks of the votes' height.
        function reportDoubleVote(address operator, SignedVote calldata a, SignedVote calldata b) external;
        /// The same for two proposals of one height and round for different blocks.
        function reportDoubleProposal(address operator, SignedProposal calldata a, SignedProposal calldata b) external;

        function operatorInfo(address operator) external view returns (uint8 role, uint256 selfBond, uint256 delegated, uint16 commissionBps, bytes32 consensusKey, address servingKey, uint64 jailedUntil);
        function stakeOf(address operator, address account) external view returns (uint256 amount, uint256 pendingRewards);
        function unbondings(address account) external view returns (address[] memory operators, uint256[] memory amounts, uint64[] memory releaseHeights);
        /// Stake counted in pool "validators" or "serving": its active operators' (seated, for validators).
        function poolStake(string calldata pool) external view returns (uint256);
        /// Operators of `role` in registration order, `limit` (at most 256) from `offset`.
        function operators(uint8 role, uint64 offset, uint64 limit) external view returns (address[] memory);
        function validatorSetAt(uint64 height) external view returns (address[] memory operators, bytes32[] memory consensusKeys, uint256[] memory powers);
        function votingPower(address account) external view returns (uint256);
        function votingPowerAt(address account, uint64 height) external view returns (uint256);
        function totalVotingPowerAt(uint64 height) external view returns (uint256);
        /// Whether the operator is tombstoned (proven to double-sign, or slashed 100%).
        function tombstoned(address operator) external view returns (bool);
        /// Whether evidence against `operator` at (height, round, kind) was
        /// accepted; `kind` 0 is a proposal, 1 a prevote, 2 a precommit.
        function evidenceSubmitted(address operator, uint64 height, uint32 round, uint8 kind) external view returns (bool);
        /// The operator's liveness in the current downtime window: heights it
        /// missed and heights tracked since its window (re)started.
        function liveness(address operator) external view returns (uint32 missed, uint64 tracked);
    }

    /// Token-weighted governance over staked OPEN (OpenZeppelin Governor's model):
    /// a proposal is text plus calls to system contracts, executed with the
    /// governance address as sender once passed and past the timelock.
    #[sol(abi)]
    interface IGovernance {
        event ProposalCreated(uint64 indexed id, address indexed proposer, string description, address[] targets, bytes[] calldatas, uint64 voteStart, uint64 voteEnd);
        event VoteCast(uint64 indexed id, address indexed voter, uint8 support, uint256 weight);
        event ProposalTallied(uint64 indexed id, uint8 state, uint256 forVotes, uint256 againstVotes, uint256 abstainVotes, uint256 vetoVotes);
        event ProposalQueued(uint64 indexed id, uint64 eta);
        event ProposalExecuted(uint64 indexed id);
        event ProposalCanceled(uint64 indexed id);
        event DepositReturned(uint64 indexed id, address indexed proposer, uint256 amount);
        event DepositBurned(uint64 indexed id, uint256 amount);
        event TreasurySpent(address indexed to, uint256 amount);

        error BelowProposalThreshold(uint256 power, uint256 threshold);
        error DepositMismatch(uint256 required, uint256 sent);
        error EmptyProposal();
        error TooManyCalls(uint256 max);
        error TargetNotSystem(address target);
        error UnknownProposal(uint64 id);
        error VotingClosed(uint64 id, uint64 voteStart, uint64 voteEnd, uint64 height);
        error AlreadyVoted(uint64 id, address voter);
        error NoVotingPower(address voter);
        error InvalidSupport(uint8 support);
        error NotQueued(uint64 id, uint8 state);
        error TimelockNotExpired(uint64 id, uint64 eta, uint64 height);
        error NotProposer(address caller);
        error VotingStarted(uint64 id);
        error ProposalCallFailed(uint256 index, bytes reason);
        error TooManyOpenProposals(uint256 max);

        /// States: 0 pending, 1 active, 2 canceled, 3 defeated, 4 succeeded, 5 queued, 6 expired, 7 executed, 8 vetoed.
        function propose(string calldata description, address[] calldata targets, bytes[] calldata calldatas) external payable returns (uint64);
        /// support: 0 against, 1 for, 2 abstain, 3 veto (against, and burns the deposit if vetoes pass the veto threshold).
        function castVote(uint64 id, uint8 support) external;
        function execute(uint64 id) external;
        function cancel(uint64 id) external;
        /// Only by a proposal: move OPEN out of the treasury.
        function spendTreasury(address to, uint256 amount) external;

        function proposal(uint64 id) external view returns (address proposer, uint8 state, uint64 voteStart, uint64 voteEnd, uint64 eta, uint256 forVotes, uint256 againstVotes, uint256 abstainVotes, uint256 vetoVotes, uint256 deposit, string memory description);
        function proposalCalls(uint64 id) external view returns (address[] memory targets, bytes[] memory calldatas);
        function proposalCount() external view returns (uint64);
        function hasVoted(uint64 id, address voter) external view returns (bool);
        /// The deposit a proposal made now must send: `governance.deposit`, doubled
        /// for every 8 proposals already open (so filling the 64 slots costs
        /// 2,040 times one deposit, lost without quorum).
        function proposalDeposit() external view returns (uint256);
    }

    /// What an ingest attester signs (EIP-712, domain of the datanets module):
    /// the parsed, deduplicated and scored contribution as the ingest service saw it.
    struct ContributionAttestation {
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
        /// blake3 of the per-row findings report, which is kept as a blob.
        bytes32 findingsHash;
        /// Unix seconds when the attester signed; stale attestations are refused.
        uint64 issuedAt;
    }

    /// Per-Datanet daily limits (0 = the governed default).
    struct DatanetLimits {
        uint64 maxSubmissionBytes;
        uint64 contributorDailyBytes;
        uint64 datanetDailyBytes;
        uint32 contributorDailyFiles;
    }

    /// An immutable version of a Datanet, as stored and as `IDatanets.version`
    /// answers it (a static struct: its encoding is the seven values in order).
    struct DatanetVersion {
        bytes32 root;
        uint64 parent;
        /// Rows of the approved contributions (tombstoned positions included).
        uint64 rowCount;
        /// Rows that may be used for training (tombstoned and flagged ones excluded).
        uint64 liveRows;
        uint64 contributions;
        uint64 createdAt;
        /// Closed to new training (a later tombstone or flag removed rows it contains).
        bool closed;
    }

    /// A contributor's record across Datanets, as stored and as `IDatanets.reputation`
    /// answers it: contributions submitted, approved, rejected, withdrawn, approved rows
    /// and approved bytes.
    struct Reputation {
        uint64 submitted;
        uint64 approved;
        uint64 rejected;
        uint64 withdrawn;
        uint64 rows;
        uint64 bytesApproved;
    }

    /// Datanets: domain data networks. Contributions arrive with an attestation of
    /// the ingest service, lock a bond, and are approved (a new immutable version
    /// whose root commits to every approved contribution) or rejected by curators.
    #[sol(abi)]
    interface IDatanets {
        event DatanetCreated(uint64 indexed id, address indexed owner, string name, uint8 dataType, string licence, uint8 policy);
        event DatanetUpdated(uint64 indexed id);
        event CuratorsSet(uint64 indexed id, address[] curators);
        event AttestersSet(uint64 indexed id, address[] attesters);
        event MembersChanged(uint64 indexed id, address[] added, address[] removed);
        event FlagsSet(uint64 indexed id, uint8 flags);
        event ContributionSubmitted(uint64 indexed datanetId, uint64 indexed contributionId, address indexed contributor, bytes32 contentHash, bytes32 rowsRoot, uint32 rowCount, uint64 byteSize, uint16 qualityBps, uint256 bond);
        event ContributionApproved(uint64 indexed datanetId, uint64 indexed contributionId, address indexed curator, uint64 version, bytes32 versionRoot);
        event ContributionRejected(uint64 indexed datanetId, uint64 indexed contributionId, address indexed curator, uint8 reason, string note, uint256 slashed);
        event ContributionWithdrawn(uint64 indexed datanetId, uint64 indexed contributionId);
        /// A curator found an approved contribution duplicated or adversarial: it stops earning
        /// (no new credits, no fallback share; what it earned before stays claimable).
        event ContributionFlagged(uint64 indexed datanetId, uint64 indexed contributionId, address indexed curator, uint8 reason, string note);
        event RowTombstoned(uint64 indexed datanetId, uint64 indexed contributionId, uint32 rowIndex, string reason, uint64 version, bytes32 versionRoot);

        error UnknownDatanet(uint64 id);
        error UnknownContribution(uint64 id);
        error UnsupportedDataType(uint8 dataType);
        error InvalidDatanet(string reason);
        error NotOwner(address caller);
        error NotCurator(address caller);
        error NotMember(address caller);
        error DatanetFrozen(uint64 id);
        error UntrustedAttester(address attester);
        error InvalidAttestation(string reason);
        error AttestationExpired(uint64 issuedAt, uint64 now);
        error AttestationReused();
        error BondMismatch(uint256 required, uint256 sent);
        error LimitExceeded(string limit, uint256 used, uint256 requested, uint256 max);
        error NotPending(uint64 contributionId, uint8 status);
        error NotContributor(address caller);
        error InvalidRowProof();
        error AlreadyTombstoned(uint64 contributionId, uint32 rowIndex);

        /// dataType: 0 text (1 image and 2 audio are declared and refused until supported).
        /// policy: 0 open, 1 allow-list (members only).
        function createDatanet(string calldata name, string calldata summary, string calldata description, string[] calldata tags, uint8 dataType, string calldata licence, uint8 policy, uint256 contributorBond, address[] calldata curators, address[] calldata attesters, DatanetLimits calldata limits) external returns (uint64);
        function updateMetadata(uint64 id, string calldata summary, string calldata description, string[] calldata tags) external;
        function setCurators(uint64 id, address[] calldata curators) external;
        function setAttesters(uint64 id, address[] calldata attesters) external;
        function setMembers(uint64 id, address[] calldata add, address[] calldata remove) external;
        /// Governance only. Bit 0: frozen (no submissions or approvals).
        function setFlags(uint64 id, uint8 flags) external;
        /// msg.value must equal the Datanet's contributor bond.
        function submitContribution(ContributionAttestation calldata attestation, bytes calldata signature) external payable returns (uint64);
        function approve(uint64 contributionId) external;
        /// reason: 0 other, 1 spam, 2 duplicate, 3 low quality, 4 off topic, 5 licence. Spam and duplicate slash part of the bond.
        function reject(uint64 contributionId, uint8 reason, string calldata note) external;
        function withdraw(uint64 contributionId) external;
        /// Owner or governance: replace a row's leaf by the null leaf (licence or consent), making a new version.
        /// The Datanet's owner, a curator or governance: flag an approved contribution as
        /// duplicated (reason 1), adversarial (2) or otherwise unfit (3); it stops earning.
        function flag(uint64 contributionId, uint8 reason, string calldata note) external;
        /// Contributions of a Datanet flagged so far, in flagging order.
        /// A page of the contributions flagged in the Datanet, in flagging order (`limit` at most 256).
        function flagged(uint64 datanetId, uint64 offset, uint64 limit) external view returns (uint64[] memory);
        function tombstone(uint64 contributionId, uint32 rowIndex, bytes32 rowLeaf, bytes32[] calldata proof, string calldata reason) external;

        function datanet(uint64 id) external view returns (address owner, string memory name, string memory summary, string memory description, string[] memory tags, uint8 dataType, string memory licence, uint8 policy, uint256 contributorBond, uint8 flags, uint64 versionCount, DatanetLimits memory limits);
        function datanetCount() external view returns (uint64);
        function curators(uint64 id) external view returns (address[] memory);
        function attesters(uint64 id) external view returns (address[] memory);
        function isMember(uint64 id, address account) external view returns (bool);
        function version(uint64 id, uint64 v) external view returns (DatanetVersion memory);
        function contribution(uint64 contributionId) external view returns (uint64 datanetId, address contributor, bytes32 contentHash, bytes32 rowsRoot, uint32 rowCount, uint64 byteSize, uint16 qualityBps, uint32 scorerVersion, uint32 exactDuplicates, uint32 nearDuplicates, bytes32 findingsHash, uint256 bond, uint8 status, uint8 reason, string memory note, uint64 version, uint32 tombstoned, address attester);
        /// A page of the Datanet's contributions in submission order (`limit` at most 256).
        function contributionsOf(uint64 id, uint64 offset, uint64 limit) external view returns (uint64[] memory);
        /// How many contributions the Datanet has received.
        function contributionCount(uint64 id) external view returns (uint64);
        /// A page of the contributor's contributions in submission order (`limit` at most 256).
        function contributionsBy(address contributor, uint64 offset, uint64 limit) external view returns (uint64[] memory);
        function isTombstoned(uint64 contributionId, uint32 rowIndex) external view returns (bool);
        function reputation(address contributor) external view returns (Reputation memory);
        /// A page of the Datanet's contributors in order of first contribution
        /// (`limit` at most 256), with their approved live rows and acceptance
        /// rate (approved / decided, in basis points); a leaderboard sorts them.
        function leaderboard(uint64 id, uint64 offset, uint32 limit) external view returns (address[] memory contributors, uint64[] memory approvedRows, uint16[] memory acceptanceBps);
        /// How many contributors the Datanet has had.
        function contributorCount(uint64 id) external view returns (uint64);
    }
}

sol! {
    #![sol(all_derives)]

    /// A Datanet version: one a model was trained on, or one an answer
    /// retrieved rows from.
    struct DatanetVersionRef {
        uint64 datanetId;
        uint64 version;
    }

    /// What a model builder (ModelFactory) registers when a training job ends.
    struct ModelRegistration {
        /// 1 to 128 bytes, shown to users.
        string name;
        /// Model hash (`primitives::model_hash`) of the base model the adapter applies to.
        bytes32 baseModelHash;
        /// Adapter hash of the PEFT adapter; zero for a model without an adapter.
        bytes32 adapterHash;
        /// At most 32, distinct; each must exist and be open to training.
        DatanetVersionRef[] datanets;
        /// Canonical bytes the factory defines (at most 8 KiB); the runtime stores them and their blake3.
        bytes hyperparams;
        /// Evaluation metrics, canonical bytes the factory defines (at most 8 KiB), stored with their blake3.
        bytes metrics;
        /// blake3 of the training-log blob.
        bytes32 trainingLogHash;
        /// Kept LoRA checkpoints (at most 64), with the learning rate at each as lr × 1e9
        /// (2e-4 is 200000); both lists have the same length.
        bytes32[] checkpointHashes;
        uint64[] checkpointLearningRates;
        /// blake3 of the per-row gradient-sketch blob, and the seed and k of `ml::project`.
        bytes32 sketchHash;
        uint64 sketchSeed;
        uint32 sketchK;
        /// Base units of OPEN per 1K input and per 1K output tokens.
        uint128 priceInPer1k;
        uint128 priceOutPer1k;
    }

    /// A model as `IModels.model` answers it.
    struct ModelInfo {
        uint64 id;
        address owner;
        string name;
        /// 0 draft, 1 proposed, 2 live, 3 retired.
        uint8 state;
        bytes32 baseModelHash;
        bytes32 adapterHash;
        DatanetVersionRef[] datanets;
        /// The licence of each Datanet in `datanets` (same order), copied at registration.
        string[] licences;
        bytes32 hyperparamsHash;
        bytes hyperparams;
        bytes32 metricsHash;
        bytes metrics;
        bytes32 trainingLogHash;
        bytes32[] checkpointHashes;
        uint64[] checkpointLearningRates;
        bytes32 sketchHash;
        uint64 sketchSeed;
        uint32 sketchK;
        uint128 priceInPer1k;
        uint128 priceOutPer1k;
        /// Block of registration (0 for the base model registered at genesis).
        uint64 createdAt;
    }

    /// Models: fine-tuned (or base) models with their provenance, prices and lifecycle
    /// draft → proposed → live → retired. Governance makes models live with
    /// `approve(ids)` from an executed proposal. The base model is m1, live and owned
    /// by the treasury, when the genesis names one.
    #[sol(abi)]
    interface IModels {
        event ModelRegistered(uint64 indexed id, address indexed owner, bytes32 adapterHash);
        event ModelProposed(uint64 indexed id);
        event ModelApproved(uint64 indexed id);
        event ModelRetired(uint64 indexed id);
        event ModelRepriced(uint64 indexed id, uint128 priceInPer1k, uint128 priceOutPer1k);

        error UnknownModel(uint64 id);
        error NotOwner(address caller);
        /// The model is in state `from`, from which it cannot move to `to`.
        error InvalidTransition(uint64 id, uint8 from, uint8 to);
        error InvalidModel(string reason);
        error UnknownDatanetVersion(uint64 datanetId, uint64 version);
        /// A later tombstone removed rows this version contains.
        error VersionClosed(uint64 datanetId, uint64 version);
        /// A non-commercial licence (an "NC" component, e.g. CC-BY-NC-4.0) forbids a non-zero price.
        error NonCommercialLicence(uint64 datanetId, string licence);
        /// The model is retired already (it can be neither retired again nor repriced).
        error AlreadyRetired(uint64 id);

        /// Register a draft owned by the caller.
        function register(ModelRegistration calldata registration) external returns (uint64 id);
        /// Owner only: draft → proposed.
        function propose(uint64 id) external;
        /// Governance only: every id proposed → live, all or nothing.
        function approve(uint64[] calldata ids) external;
        /// Owner or governance: draft, proposed or live → retired.
        /// Retire a model. A live model's receipts issued before its retirement
        /// settle within `inference.retired_grace_blocks`; a draft or proposed
        /// model was never billable, and nothing ever settles for it.
        function retire(uint64 id) external;
        /// The block a live model was retired at (0 if it was never retired while live).
        function retiredAt(uint64 id) external view returns (uint64);
        /// Owner only (governance for models the treasury owns); not for retired models.
        function setPrice(uint64 id, uint128 priceInPer1k, uint128 priceOutPer1k) external;

        function model(uint64 id) external view returns (ModelInfo memory);
        function modelCount() external view returns (uint64);
        /// Ids registered by `owner`, in registration order.
        function modelsOf(address owner) external view returns (uint64[] memory);
        /// Live ids ≥ `start`, ascending, at most `limit` (capped at 256): page with start = last id + 1.
        function liveModels(uint64 start, uint64 limit) external view returns (uint64[] memory);
    }

    /// What a serving operator signs for every answer it bills: EIP-712 typed data
    /// under the inference module's domain (`Module::Inference.eip712_domain(chain_id)`).
    /// Its hash ([`receipt_hash`]) is the EIP-712 struct hash, over the type
    /// `InferenceReceipt(bytes32 requestHash,bytes32 responseHash,uint64 modelId,bytes32 adapterHash,uint64 inputTokens,uint64 outputTokens,uint128 priceInPer1k,uint128 priceOutPer1k,address payer,address operator,uint64 nonce,uint64 issuedAt,bytes32 retrievalHash)`.
    ///
    /// Version 3 ([`RECEIPT_VERSION`]): `retrievalHash` was added, naming the
    /// Datanet versions the answer retrieved rows from, so their contributors
    /// may be credited ([`retrieval_hash`], `IInference.postAttributionRetrieved`).
    /// Version 2 added `issuedAt`, so a receipt of a retired model settles only
    /// if it was issued while the model was live. Each version changes the type
    /// hash, so an older version's signature never verifies as a newer receipt.
    struct InferenceReceipt {
        bytes32 requestHash;
        bytes32 responseHash;
        uint64 modelId;
        /// The model record's adapter hash (zero for a model without an adapter).
        bytes32 adapterHash;
        uint64 inputTokens;
        uint64 outputTokens;
        /// The model's prices when served (base units of OPEN per 1K tokens); settlement
        /// refuses a receipt whose prices are not the model's current ones.
        uint128 priceInPer1k;
        uint128 priceOutPer1k;
        address payer;
        /// The serving operator's address (the one that holds the bond), not its serving key.
        address operator;
        /// Strictly increasing per (payer, operator); gaps are allowed.
        uint64 nonce;
        /// The block height the serving node's chain was at when it answered
        /// (settlement refuses a receipt from the future, and one of a retired
        /// model issued after its retirement).
        uint64 issuedAt;
        /// Zero when the answer used no retrieval; else [`retrieval_hash`] of the
        /// Datanet versions it retrieved rows from. A non-zero hash holds the data
        /// part even for a model without Datanet versions.
        bytes32 retrievalHash;
    }

    /// One contribution credited by an attribution record.
    struct Credit {
        uint64 contributionId;
        /// Share of the receipt's data part in parts per million; a record's weights sum to 1,000,000.
        uint32 weightPpm;
    }

    /// Where a serving operator serves, and which models.
    struct ServingEndpoint {
        address operator;
        string url;
        uint64[] modelIds;
        uint64 updatedAt;
    }

    /// A receipt's data part, held until attribution pays it out.
    struct AttributionHold {
        uint128 amount;
        uint64 modelId;
        address operator;
        uint64 settledAt;
        /// 1 open (awaiting a record), 2 posted (credits pending the challenge window),
        /// 3 finalized (credits accrued), 4 fallback (paid to the versions' reward-per-row accumulators).
        uint8 status;
        uint64 postedAt;
        bytes32 recordHash;
    }

    /// How a settled receipt's cost was paid out (kept per receipt hash, so an
    /// agent's task, an explorer or a trail finds every party's part).
    struct SettledReceipt {
        address payer;
        address operator;
        uint64 modelId;
        address modelOwner;
        uint64 settledAt;
        uint128 cost;
        /// The model's whole owner part. A fine-tune pays its base model
        /// `assets.base_royalty_bps` of it; a model split into shares pays
        /// it to its shareholders (`IAssets.EarningsDeposited`), not to
        /// `modelOwner`.
        uint128 ownerPart;
        /// Held for attribution (see `hold`); zero for a model without Datanet
        /// versions whose receipt retrieved nothing.
        uint128 dataPart;
        uint128 servingPart;
        uint128 stakersPart;
        /// The cost minus every other part.
        uint128 treasuryPart;
    }

    /// A model owner's standing offer of a licence: prepaid use of the model,
    /// bounded by time (`durationBlocks`), by volume (`tokens`, input plus
    /// output tokens of receipts), or both.
    struct LicenceOffer {
        uint64 modelId;
        uint128 price;
        /// Zero: no time bound (then `tokens` is not zero).
        uint64 durationBlocks;
        /// Zero: no volume bound (then `durationBlocks` is not zero).
        uint64 tokens;
        /// A non-commercial model (`IAssets.terms`) offers only non-commercial licences.
        bool commercial;
        /// Withdrawn offers stay readable and can no longer be bought.
        bool open;
    }

    /// A bought licence. Its holder's receipts for the model, issued from
    /// `start` (and before `end` if it has one), draw their cost from
    /// `amountLeft` at the licence's own rate instead of the allowance:
    /// `amountLeft × n / tokensLeft` for n tokens of a volume licence,
    /// `amountLeft × (t − lastDraw) / (end − lastDraw)` with t = min(height,
    /// end) for a time licence. The draw is split like any receipt's cost.
    struct Licence {
        uint64 modelId;
        address holder;
        uint64 offerId;
        bool commercial;
        uint128 price;
        uint64 start;
        /// Zero: no time bound.
        uint64 end;
        /// Zero on a time licence: no volume bound. On a volume licence,
        /// zero means used up.
        uint64 tokens;
        uint64 tokensLeft;
        uint128 amountLeft;
        uint64 lastDraw;
        bool closed;
    }

    /// Paying for inference: prepaid escrows, allowances granted to serving operators,
    /// API keys bound to addresses, serving endpoints, settlement of signed receipts in
    /// batches with the fee split, and the two-phase attribution of each receipt's data part.
    #[sol(abi)]
    interface IInference {
        event EscrowDeposited(address indexed payer, uint128 amount);
        event EscrowWithdrawn(address indexed payer, uint128 amount);
        event AllowanceGranted(address indexed payer, address indexed operator, uint128 amount, uint128 remaining);
        event ReleaseRequested(address indexed payer, address indexed operator, uint128 amount, uint64 releaseAt);
        event ReleaseCompleted(address indexed payer, address indexed operator, uint128 amount);
        event ApiKeyBound(bytes32 indexed keyHash, address indexed owner);
        event ApiKeyRevoked(bytes32 indexed keyHash, address indexed owner);
        event EndpointRegistered(address indexed operator, string url, uint64[] modelIds);
        event EndpointRemoved(address indexed operator);
        /// `dataShare` is the amount held for attribution (zero for a model without
        /// Datanet versions, unless the receipt names retrieved versions).
        event ReceiptSettled(bytes32 indexed receiptHash, address indexed payer, address indexed operator, uint64 modelId, uint128 cost, uint128 dataShare);
        event AttributionPosted(bytes32 indexed receiptHash, bytes32 recordHash, uint32 credits);
        /// One per credit when a record is finalized (the per-inference detail lives in logs; state keeps totals).
        event Credited(bytes32 indexed receiptHash, uint64 indexed contributionId, uint128 amount);
        /// Credits of a record became claimable; `dust` (the rounding remainder) went to the treasury.
        event AttributionFinalized(bytes32 indexed receiptHash, uint128 credited, uint128 dust);
        /// A pending credit to a contribution flagged before finalization went to the treasury.
        event CreditForfeited(bytes32 indexed receiptHash, uint64 indexed contributionId, uint128 amount);
        event FallbackPaid(bytes32 indexed receiptHash, uint64 indexed datanetId, uint64 version, uint128 amount);
        event Claimed(uint64 indexed contributionId, address indexed contributor, uint128 amount);

        error NotServingOperator(address operator);
        error ZeroAmount();
        error InsufficientEscrow(uint128 available, uint128 required);
        error NothingToRelease(address payer, address operator);
        error ReleaseNotReady(uint64 releaseAt, uint64 height);
        error KeyTaken(bytes32 keyHash, address owner);
        error NotKeyOwner(address caller);
        error BadKeyHash();
        error InvalidEndpoint(string reason);
        error TooManyEndpoints(uint256 max);
        error UnknownEndpoint(address operator);
        /// The batch is malformed (empty, too large, one signature per receipt).
        error InvalidBatch(string reason);
        /// Receipt `index` names another operator than the caller.
        error NotReceiptOperator(uint256 index, address operator);
        /// Receipt `index`'s signature is malformed or not by the operator's serving key.
        error BadSignature(uint256 index);
        error NonceReused(address payer, uint64 nonce, uint64 lastNonce);
        error UnknownModel(uint64 modelId);
        /// Only live models' receipts settle, and a retired model's receipts issued
        /// while it was live, within `inference.retired_grace_blocks` of its retirement.
        error ModelNotServable(uint64 modelId, uint8 state);
        /// The receipt's `issuedAt` is after the block it settles in, or (a retired
        /// model) after the retirement, or the grace period is over.
        error ReceiptOutOfTime(uint256 index, uint64 issuedAt, uint64 notAfter);
        error AdapterMismatch(uint64 modelId, bytes32 expected, bytes32 got);
        error PriceMismatch(uint64 modelId, uint128 priceInPer1k, uint128 priceOutPer1k);
        /// Receipt `index` is paid by an agent's wallet and the agent refuses it: it
        /// was issued at or after the agent's freeze, or for a model outside the
        /// agent's allowlist at or after the list changed (`IAgents.canServe` says so beforehand).
        error AgentRefused(uint256 index, string reason);
        error AllowanceExceeded(address payer, address operator, uint128 available, uint128 required);
        error UnknownReceipt(bytes32 receiptHash);
        /// Only the operator that settled a receipt posts its attribution.
        error NotSettlingOperator(address caller);
        error HoldClosed(bytes32 receiptHash, uint8 status);
        error AttributionTimedOut(bytes32 receiptHash, uint64 deadline);
        error NotTimedOut(bytes32 receiptHash, uint64 deadline);
        error ChallengeWindowOpen(bytes32 receiptHash, uint64 until);
        /// A challenge of the record is open: its credits wait for the verdict.
        error UnderChallenge(bytes32 receiptHash);
        error BadCredits(string reason);
        /// The retrieved Datanet versions are malformed (not 1 to
        /// `MAX_RETRIEVED_VERSIONS` entries strictly increasing by (datanetId,
        /// version), a version 0) or name a version that does not exist.
        error BadRetrieved(string reason);
        /// `retrieval_hash(retrieved)` is not the hash the receipt signed
        /// (`expected`, zero for a receipt that retrieved nothing).
        error RetrievalMismatch(bytes32 receiptHash, bytes32 expected, bytes32 got);
        error UnknownContribution(uint64 contributionId);
        error NotContributor(address caller);
        error NothingToClaim(uint64 contributionId);

        /// Add `msg.value` to the caller's free escrow.
        function deposit() external payable;
        /// Move `amount` of the caller's free escrow back to its balance.
        function withdraw(uint128 amount) external;
        /// Move `amount` of the caller's free escrow into its allowance for serving operator `operator`
        /// (bonded, active). Allowances are backed: what one operator may spend no other can.
        function allow(address operator, uint128 amount) external;
        /// Ask for `amount` of the unspent allowance back; it stays spendable by the operator (after the
        /// allowance itself) until `completeRelease` after `inference.release_delay_blocks`.
        function release(address operator, uint128 amount) external;
        /// Move a matured pending release back to the caller's free escrow.
        function completeRelease(address operator) external;
        /// Bind an API key's hash (blake3 of the key's UTF-8 bytes) to the caller; a hash binds once.
        function bindApiKey(bytes32 keyHash) external;
        /// The owner only: unbind a key hash.
        function revokeApiKey(bytes32 keyHash) external;
        /// A bonded serving operator announces (or replaces) where it serves and which models.
        function registerEndpoint(string calldata url, uint64[] calldata modelIds) external;
        function removeEndpoint() external;
        /// The operator itself settles receipts it signed with its serving key, all or nothing.
        function settle(InferenceReceipt[] calldata receipts, bytes[] calldata signatures) external;
        /// The settling operator posts a receipt's attribution record before the timeout; empty
        /// credits select the fallback at once.
        function postAttribution(bytes32 receiptHash, bytes32 recordHash, Credit[] calldata credits) external;
        /// `postAttribution` for a receipt that retrieved rows: `retrieved` must hash
        /// ([`retrieval_hash`]) to the receipt's `retrievalHash`, and each version must
        /// exist. Credits may then also name contributions approved in a retrieved
        /// version (of its Datanet, at or before it), besides the model's versions.
        /// Emits `AttributionPosted`; empty credits select the fallback (the model's
        /// versions, else the treasury) at once.
        function postAttributionRetrieved(bytes32 receiptHash, bytes32 recordHash, Credit[] calldata credits, DatanetVersionRef[] calldata retrieved) external;
        /// Anyone, after the challenge window: posted credits become claimable.
        function finalizeAttribution(bytes32 receiptHash) external;
        /// Anyone, after the timeout with no record: the hold goes to the fallback.
        function expireAttribution(bytes32 receiptHash) external;
        /// The contributor: pay its finalized credits and its fallback share.
        function claim(uint64 contributionId) external returns (uint128);

        // ---- licences ----
        event LicenceOffered(uint64 indexed offerId, uint64 indexed modelId, uint128 price, uint64 durationBlocks, uint64 tokens, bool commercial);
        event LicenceOfferWithdrawn(uint64 indexed offerId, uint64 indexed modelId);
        event LicenceBought(uint64 indexed licenceId, uint64 indexed offerId, address indexed holder, uint64 modelId, uint128 price, uint64 end, uint64 tokens);
        /// A receipt's cost drawn from a licence (`ReceiptSettled` follows with that cost).
        event LicenceDrawn(uint64 indexed licenceId, bytes32 indexed receiptHash, uint128 amount, uint64 tokensLeft);
        /// `remainder` was paid out (split as a receipt without an operator) or, `refunded`, returned to the holder.
        event LicenceClosed(uint64 indexed licenceId, uint128 remainder, bool refunded);

        error NotModelOwner(uint64 modelId, address caller, address owner);
        error InvalidLicenceTerms(string reason);
        error NonCommercialModel(uint64 modelId);
        error TooManyOffers(uint64 modelId, uint256 max);
        error UnknownOffer(uint64 offerId);
        error OfferWithdrawn(uint64 offerId);
        /// `msg.value` must be the offer's price.
        error WrongPayment(uint128 sent, uint128 price);
        /// The buyer already holds a licence of the model that is not over.
        error LicenceHeld(uint64 licenceId);
        error UnknownLicence(uint64 licenceId);
        /// Not over yet: before `end`, with tokens left, on a model still servable.
        error LicenceNotOver(uint64 licenceId);

        /// The model's owner (its ownership token's holder) offers licences on it.
        function offerLicence(uint64 modelId, uint128 price, uint64 durationBlocks, uint64 tokens, bool commercial) external returns (uint64 offerId);
        /// The model's owner withdraws an offer; licences bought stay valid.
        function withdrawLicenceOffer(uint64 offerId) external;
        /// Buy an open offer, paying its price as `msg.value`; the licence
        /// starts at this block. Refused while the caller holds one of the
        /// model that is not over.
        function buyLicence(uint64 offerId) external payable returns (uint64 licenceId);
        /// Anyone, once a licence is over (its end passed, or its tokens used):
        /// what is left is paid out as a receipt without an operator (owner,
        /// data by the fallback, stakers; the serving part to the treasury).
        /// The holder may also close a licence of a model retired past its
        /// grace: what is left returns to the holder.
        function closeLicence(uint64 licenceId) external returns (uint128 remainder);
        function licenceOffer(uint64 offerId) external view returns (LicenceOffer memory);
        /// Open offers of a model (at most `MAX_OFFERS`).
        function licenceOffers(uint64 modelId) external view returns (uint64[] memory offerIds);
        function licence(uint64 licenceId) external view returns (Licence memory);
        /// The holder's licence of the model that is not closed (zero: none).
        function licenceOf(address holder, uint64 modelId) external view returns (uint64 licenceId);

        function escrowOf(address payer) external view returns (uint128);
        function allowance(address payer, address operator) external view returns (uint128 remaining, uint128 pendingRelease, uint64 releaseAt, uint64 lastNonce);
        /// The address a key hash is bound to (zero if none).
        function apiKeyOwner(bytes32 keyHash) external view returns (address);
        function endpoint(address operator) external view returns (ServingEndpoint memory);
        /// Every registered endpoint (at most 256), in registration order.
        function endpoints() external view returns (ServingEndpoint[] memory);
        function hold(bytes32 receiptHash) external view returns (AttributionHold memory);
        /// The retrieval hash of a receipt's hold (zero if none, or no retrieval).
        function retrievalHashOf(bytes32 receiptHash) external view returns (bytes32);
        /// How a settled receipt was paid out (all zero: not settled).
        function settledReceipt(bytes32 receiptHash) external view returns (SettledReceipt memory);
        /// Credits of a posted record awaiting the challenge window.
        function pendingCredits(bytes32 receiptHash) external view returns (uint64[] memory contributionIds, uint128[] memory amounts);
        /// Finalized credits plus fallback share, not counting pending credits.
        function claimable(uint64 contributionId) external view returns (uint128);
        /// Finalized credits not yet claimed, and every finalized credit ever.
        function accrued(uint64 contributionId) external view returns (uint128 unclaimed, uint128 total);
        /// Total fallback paid to a Datanet version's reward-per-row accumulator.
        function versionFallback(uint64 datanetId, uint64 version) external view returns (uint128);
        /// What the module holds, by kind; their sum is the module's balance.
        function holdings() external view returns (uint128 freeEscrow, uint128 allowances, uint128 pendingReleases, uint128 openHolds, uint128 pendingAttributions, uint128 accruedCredits, uint128 fallbackPool, uint128 licences);
        /// The receipt's hash (EIP-712 struct hash) and the digest its serving key signs on this chain.
        function receiptDigest(InferenceReceipt calldata receipt) external view returns (bytes32 receiptHash, bytes32 signingHash);
    }
}

/// The version of [`InferenceReceipt`] this code signs and settles.
pub const RECEIPT_VERSION: u32 = 3;

/// Most Datanet versions one answer retrieves from (and one
/// `postAttributionRetrieved` names).
pub const MAX_RETRIEVED_VERSIONS: usize = 8;

/// A receipt's `retrievalHash` for the Datanet versions its answer retrieved
/// rows from: `keccak256(abi.encode(retrieved))` of the `DatanetVersionRef[]`
/// (offset word, length, then datanetId and version per entry), and zero for
/// none. Pass the list in [`check_retrieved`]'s canonical order.
pub fn retrieval_hash(retrieved: &[DatanetVersionRef]) -> alloy_primitives::B256 {
    use alloy_sol_types::SolValue;
    if retrieved.is_empty() {
        return alloy_primitives::B256::ZERO;
    }
    alloy_primitives::keccak256(retrieved.to_vec().abi_encode())
}

/// Whether `retrieved` is a canonical list of retrieved Datanet versions: 1 to
/// [`MAX_RETRIEVED_VERSIONS`] entries, strictly increasing by (datanetId,
/// version), each version at least 1. The error says which rule fails.
pub fn check_retrieved(retrieved: &[DatanetVersionRef]) -> Result<(), String> {
    if retrieved.is_empty() || retrieved.len() > MAX_RETRIEVED_VERSIONS {
        return Err(format!("1 to {MAX_RETRIEVED_VERSIONS} retrieved Datanet versions, not {}", retrieved.len()));
    }
    if let Some(r) = retrieved.iter().find(|r| r.version == 0) {
        return Err(format!("Datanet {} version 0 does not exist (versions start at 1)", r.datanetId));
    }
    for w in retrieved.windows(2) {
        let (p, r) = (&w[0], &w[1]);
        if (p.datanetId, p.version) >= (r.datanetId, r.version) {
            return Err(format!(
                "retrieved versions must strictly increase by (datanet, version): {}/{} after {}/{}",
                r.datanetId, r.version, p.datanetId, p.version
            ));
        }
    }
    Ok(())
}

/// A receipt's hash: its EIP-712 struct hash. Holds and logs are keyed by it.
pub fn receipt_hash(receipt: &InferenceReceipt) -> alloy_primitives::B256 {
    alloy_sol_types::SolStruct::eip712_hash_struct(receipt)
}

/// The digest a serving key signs for `receipt` on chain `chain_id`: the EIP-712
/// signing hash `keccak256(0x1901 ‖ domainSeparator ‖ receipt_hash)` under
/// `Module::Inference.eip712_domain(chain_id)`.
pub fn receipt_signing_hash(receipt: &InferenceReceipt, chain_id: u64) -> alloy_primitives::B256 {
    alloy_sol_types::SolStruct::eip712_signing_hash(receipt, &crate::system::Module::Inference.eip712_domain(chain_id))
}

/// The signer of a 65-byte `r ‖ s ‖ v` signature over [`receipt_signing_hash`]
/// (`v` 27/28 or 0/1); `None` if the bytes are not a valid signature.
pub fn recover_receipt_signer(
    receipt: &InferenceReceipt,
    chain_id: u64,
    signature: &[u8],
) -> Option<alloy_primitives::Address> {
    let sig = alloy_primitives::Signature::from_raw(signature).ok()?;
    sig.recover_address_from_prehash(&receipt_signing_hash(receipt, chain_id)).ok()
}

/// What a receipt costs in base units of OPEN:
/// `ceil((inputTokens × priceInPer1k + outputTokens × priceOutPer1k) / 1000)`.
/// Rounding is up, once per receipt, so a non-zero usage of a priced model never
/// costs zero. `None` if the cost does not fit in u128.
pub fn receipt_cost(receipt: &InferenceReceipt) -> Option<u128> {
    use alloy_primitives::U256;
    let total = U256::from(receipt.inputTokens) * U256::from(receipt.priceInPer1k)
        + U256::from(receipt.outputTokens) * U256::from(receipt.priceOutPer1k);
    let cost = total.div_ceil(U256::from(1000u32));
    u128::try_from(cost).ok()
}

#[cfg(test)]
mod inference_tests {
    use super::*;
    use alloy_primitives::{Address, B256, keccak256};

    fn receipt() -> InferenceReceipt {
        InferenceReceipt {
            requestHash: B256::repeat_byte(1),
            responseHash: B256::repeat_byte(2),
            modelId: 3,
            adapterHash: B256::repeat_byte(4),
            inputTokens: 1_500,
            outputTokens: 250,
            priceInPer1k: 1_000,
            priceOutPer1k: 3,
            payer: Address::repeat_byte(5),
            operator: Address::repeat_byte(6),
            nonce: 7,
            issuedAt: 8,
            retrievalHash: B256::repeat_byte(9),
        }
    }

    #[test]
    fn receipt_hash_is_the_eip712_struct_hash() {
        let r = receipt();
        let ty = "InferenceReceipt(bytes32 requestHash,bytes32 responseHash,uint64 modelId,bytes32 adapterHash,uint64 inputTokens,uint64 outputTokens,uint128 priceInPer1k,uint128 priceOutPer1k,address payer,address operator,uint64 nonce,uint64 issuedAt,bytes32 retrievalHash)";
        let mut enc = keccak256(ty).to_vec();
        let word = |v: alloy_primitives::U256| v.to_be_bytes::<32>();
        enc.extend_from_slice(r.requestHash.as_slice());
        enc.extend_from_slice(r.responseHash.as_slice());
        enc.extend_from_slice(&word(alloy_primitives::U256::from(r.modelId)));
        enc.extend_from_slice(r.adapterHash.as_slice());
        enc.extend_from_slice(&word(alloy_primitives::U256::from(r.inputTokens)));
        enc.extend_from_slice(&word(alloy_primitives::U256::from(r.outputTokens)));
        enc.extend_from_slice(&word(alloy_primitives::U256::from(r.priceInPer1k)));
        enc.extend_from_slice(&word(alloy_primitives::U256::from(r.priceOutPer1k)));
        enc.extend_from_slice(B256::left_padding_from(r.payer.as_slice()).as_slice());
        enc.extend_from_slice(B256::left_padding_from(r.operator.as_slice()).as_slice());
        enc.extend_from_slice(&word(alloy_primitives::U256::from(r.nonce)));
        enc.extend_from_slice(&word(alloy_primitives::U256::from(r.issuedAt)));
        enc.extend_from_slice(r.retrievalHash.as_slice());
        assert_eq!(receipt_hash(&r), keccak256(&enc));
        // The signing digest binds the chain and the inference module.
        let sep = crate::system::Module::Inference.eip712_domain(31337).separator();
        let mut m = vec![0x19, 0x01];
        m.extend_from_slice(sep.as_slice());
        m.extend_from_slice(receipt_hash(&r).as_slice());
        assert_eq!(receipt_signing_hash(&r, 31337), keccak256(&m));
        assert_ne!(receipt_signing_hash(&r, 31337), receipt_signing_hash(&r, 1));
    }

    #[test]
    fn cost_rounds_up_once_per_receipt() {
        let mut r = receipt();
        // 1500 × 1000 + 250 × 3 = 1,500,750 → 1,500.75 → 1501.
        assert_eq!(receipt_cost(&r), Some(1_501));
        r.inputTokens = 0;
        r.outputTokens = 1;
        assert_eq!(receipt_cost(&r), Some(1));
        r.outputTokens = 0;
        assert_eq!(receipt_cost(&r), Some(0));
        r.inputTokens = u64::MAX;
        r.priceInPer1k = u128::MAX;
        assert_eq!(receipt_cost(&r), None);
    }

    fn refs(list: &[(u64, u64)]) -> Vec<DatanetVersionRef> {
        list.iter().map(|(d, v)| DatanetVersionRef { datanetId: *d, version: *v }).collect()
    }

    #[test]
    fn retrieval_hash_is_keccak_of_the_abi_encoded_array() {
        assert_eq!(retrieval_hash(&[]), B256::ZERO, "no retrieval, no hash");
        let list = refs(&[(1, 2), (3, 4)]);
        // abi.encode(DatanetVersionRef[]): offset 0x20, length 2, then the four words.
        let word = |v: u64| alloy_primitives::U256::from(v).to_be_bytes::<32>();
        let mut enc = vec![];
        for v in [0x20, 2, 1, 2, 3, 4] {
            enc.extend_from_slice(&word(v));
        }
        assert_eq!(retrieval_hash(&list), keccak256(&enc));
        // Pinned, so the encoding cannot drift silently (signed receipts carry it).
        let pinned: B256 = "0xb1c410a96332fe016a2f894fed995e5c0d92d053e5b15a3ccbcfeda96ea9fc58".parse().unwrap();
        assert_eq!(retrieval_hash(&list), pinned);
        assert_ne!(retrieval_hash(&refs(&[(1, 2)])), retrieval_hash(&list));
        assert_ne!(retrieval_hash(&refs(&[(3, 4), (1, 2)])), retrieval_hash(&list), "order matters");
    }

    #[test]
    fn retrieved_lists_must_be_canonical() {
        assert!(check_retrieved(&refs(&[(1, 1)])).is_ok());
        assert!(check_retrieved(&refs(&[(1, 1), (1, 2), (2, 1)])).is_ok());
        let eight: Vec<(u64, u64)> = (1..=8).map(|d| (d, 1)).collect();
        assert!(check_retrieved(&refs(&eight)).is_ok());
        let nine: Vec<(u64, u64)> = (1..=9).map(|d| (d, 1)).collect();
        let err = |list: &[(u64, u64)]| check_retrieved(&refs(list)).unwrap_err();
        assert_eq!(err(&nine), "1 to 8 retrieved Datanet versions, not 9");
        assert_eq!(err(&[]), "1 to 8 retrieved Datanet versions, not 0");
        assert!(err(&[(1, 0)]).contains("version 0"));
        assert!(err(&[(1, 2), (1, 2)]).contains("strictly increase"), "a duplicate");
        assert!(err(&[(1, 2), (1, 1)]).contains("1/1 after 1/2"), "versions out of order");
        assert!(err(&[(2, 1), (1, 5)]).contains("strictly increase"), "Datanets out of order");
    }

    #[test]
    fn malformed_signatures_recover_nothing() {
        assert_eq!(recover_receipt_signer(&receipt(), 31337, &[0u8; 10]), None);
        assert_eq!(recover_receipt_signer(&receipt(), 31337, &[0u8; 65]), None);
    }
}

sol! {
    #![sol(all_derives)]

    /// A challenge of a posted attribution record.
    struct AttributionChallenge {
        address challenger;
        uint128 bond;
        /// The record the challenger computed (for the record; verifiers recompute their own).
        bytes32 challengerRecordHash;
        /// The serving operator that posted the challenged record.
        address operator;
        uint64 openedAt;
        /// The operator must reveal the record and prompt by this height or lose.
        uint64 revealBy;
        /// The validators must reach a verdict by this height, else the challenge lapses.
        uint64 verdictBy;
        /// 1 awaiting reveal, 2 revealed (awaiting the verdict), 3 upheld (the record was wrong:
        /// slashed), 4 rejected (the record was right: bond forfeited), 5 defaulted (not revealed:
        /// slashed), 6 lapsed (no verdict in time: bond returned, credits replaced by the fallback).
        uint8 status;
        /// Validator-set snapshot that judges: the set in force at `openedAt`.
        uint256 totalPower;
        uint256 powerRecordCorrect;
        uint256 powerRecordWrong;
        /// Consensus keys that signed so far.
        bytes32[] signers;
    }

    /// Proof of Attribution's challenges: anyone who recomputes a posted record
    /// and disagrees bonds a challenge within the challenge window; the operator
    /// reveals the record and the prompt; the validators' verifier services
    /// recompute it and sign a verdict with their consensus keys (ed25519),
    /// checked against staking's validator-set snapshot at the challenge's
    /// opening; more than two thirds of the set's power decides.
    #[sol(abi)]
    interface IAttribution {
        event ChallengeOpened(bytes32 indexed receiptHash, address indexed challenger, address indexed operator, uint128 bond, bytes32 challengerRecordHash, uint64 revealBy);
        /// The record's canonical bytes (their blake3 is the posted record hash) and the prompt's token ids (u32 little-endian).
        event RecordRevealed(bytes32 indexed receiptHash, bytes record, bytes prompt, uint64 verdictBy);
        event VerdictSigned(bytes32 indexed receiptHash, bytes32 indexed consensusKey, bool recordCorrect);
        /// `status` as in `AttributionChallenge`; `slashed` from the operator's stake.
        event ChallengeResolved(bytes32 indexed receiptHash, uint8 status, uint256 slashed, uint128 bondReturned);

        error UnknownReceipt(bytes32 receiptHash);
        /// The record cannot be challenged (not posted, window over, already finalized, ...).
        error NotChallengeable(bytes32 receiptHash, string reason);
        error BondTooSmall(uint256 required, uint256 given);
        error ChallengeExists(bytes32 receiptHash);
        error NoChallenge(bytes32 receiptHash);
        error WrongChallengeStatus(bytes32 receiptHash, uint8 status);
        error NotChallengedOperator(address caller);
        error RevealMismatch(string reason);
        error RevealClosed(bytes32 receiptHash, uint64 revealBy);
        error RevealOpen(bytes32 receiptHash, uint64 revealBy);
        error VerdictOpen(bytes32 receiptHash, uint64 verdictBy);
        error VerdictClosed(bytes32 receiptHash, uint64 verdictBy);
        /// Signature `index` is malformed, by no validator of the snapshot, or a repeat.
        error BadVerdictSignature(uint256 index, string reason);
        error TooManyChallenges(uint256 max);

        /// Challenge a posted record within its challenge window, bonding `msg.value`
        /// (at least `attribution.challenge_bond`).
        function challenge(bytes32 receiptHash, bytes32 challengerRecordHash) external payable;
        /// The challenged operator: reveal the record's canonical bytes and the prompt's token ids.
        function reveal(bytes32 receiptHash, bytes calldata record, bytes calldata prompt) external;
        /// Anyone: add validators' signatures of `verdictDigest(receiptHash, recordCorrect)`;
        /// resolves the challenge once one side has more than two thirds of the snapshot's power.
        function submitVerdict(bytes32 receiptHash, bool recordCorrect, bytes32[] calldata consensusKeys, bytes[] calldata signatures) external;
        /// Anyone, after `revealBy` with nothing revealed: the operator loses (slashed).
        function resolveUnrevealed(bytes32 receiptHash) external;
        /// Anyone, after `verdictBy` with no verdict: the bond goes back, the record stands.
        function resolveLapsed(bytes32 receiptHash) external;

        function challengeOf(bytes32 receiptHash) external view returns (AttributionChallenge memory);
        /// The revealed record and prompt of a challenge awaiting its verdict.
        function revealed(bytes32 receiptHash) external view returns (bytes memory record, bytes memory prompt);
        /// Challenges awaiting a verdict, oldest first.
        function awaitingVerdict() external view returns (bytes32[] memory);
        /// What validators sign (ed25519 over these 32 bytes).
        function verdictDigest(bytes32 receiptHash, bool recordCorrect) external view returns (bytes32);
        /// Bonds the module holds; equals its balance.
        function bonds() external view returns (uint128);
        /// The least bond a challenge opened now must send: `attribution.challenge_bond`,
        /// doubled for every 32 challenges already open.
        function challengeBond() external view returns (uint256);
    }
}

/// The digest a validator signs for a verdict on challenge `receipt_hash`
/// opened at `opened_at` on chain `chain_id`:
/// `keccak256("OpenLedger attribution verdict" ‖ chainId u64 BE ‖ receiptHash ‖ openedAt u64 BE ‖ recordCorrect u8)`.
pub fn verdict_digest(
    chain_id: u64,
    receipt_hash: alloy_primitives::B256,
    opened_at: u64,
    record_correct: bool,
) -> alloy_primitives::B256 {
    let mut m = b"OpenLedger attribution verdict".to_vec();
    m.extend_from_slice(&chain_id.to_be_bytes());
    m.extend_from_slice(receipt_hash.as_slice());
    m.extend_from_slice(&opened_at.to_be_bytes());
    m.push(record_correct as u8);
    alloy_primitives::keccak256(m)
}

/// ERC-165 interface ids an ERC-721 collection answers: ERC-165, ERC-721 and
/// ERC-721 Metadata (the agents' and the assets' collections).
pub const ERC721_INTERFACE_IDS: [[u8; 4]; 3] =
    [[0x01, 0xff, 0xc9, 0xa7], [0x80, 0xac, 0x58, 0xcd], [0x5b, 0x5e, 0x13, 0x9f]];

/// The JSON ABI of `module`'s system contract (function, event and error
/// names, argument names and indexed flags).
pub fn interface(module: Module) -> alloy_json_abi::JsonAbi {
    match module {
        Module::Bank => IBank::abi::contract(),
        Module::Params => IParams::abi::contract(),
        Module::Staking => IStaking::abi::contract(),
        Module::Governance => IGovernance::abi::contract(),
        Module::Datanets => IDatanets::abi::contract(),
        Module::Models => IModels::abi::contract(),
        Module::Inference => IInference::abi::contract(),
        Module::Attribution => IAttribution::abi::contract(),
        Module::Agents => IAgents::abi::contract(),
        Module::Assets => IAssets::abi::contract(),
    }
}
