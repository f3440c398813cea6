//! `IAgents` (`0x…1009`): agents as ERC-721 tokens with a wallet, budgets,
//! a bond and reputation, paid tasks with escrow, a memory root, and the trail
//! from a task to the receipts its agent paid for.

use alloy_primitives::{Address, keccak256};
use alloy_sol_types::sol;

sol! {
    #![sol(all_derives)]

    /// An agent: an ERC-721 token (`id`) with a wallet no key holds.
    struct AgentInfo {
        uint64 id;
        /// The token's owner: funds, limits, freezes, bonds, transfers.
        address owner;
        /// Acts for the agent (accepts and delivers tasks, tops up allowances,
        /// binds API keys, updates memory); reset to the new owner on transfer.
        address operator;
        /// The agent's payer address ([`agent_wallet`]): its inference escrow,
        /// allowances and API keys live under it; nobody holds its key.
        address wallet;
        string name;
        string description;
        /// blake3 of the agent's registration file (capabilities, endpoints, the
        /// models it uses, the public key it signs outputs with) in the blob store.
        bytes32 metadataHash;
        uint64 createdAt;
        /// Frozen at this height (0: not frozen): receipts issued from then on do not settle.
        uint64 frozenAt;
        /// OPEN bonded by the owner; a lost dispute costs `agents.dispute_slash_bps` of it.
        uint128 bond;
        /// Part of the bond asked back, returned at `unbondAt`.
        uint128 unbonding;
        uint64 unbondAt;
        /// The Merkle root of the agent's memory map and its update counter.
        bytes32 memoryRoot;
        uint64 memoryVersion;
    }

    /// Spending limits the owner sets (`type(uint128).max`: no limit).
    struct AgentLimits {
        /// Most OPEN moved into allowances per period, over all serving operators.
        uint128 perPeriod;
        /// Most OPEN moved into one serving operator's allowance per period.
        uint128 perOperator;
        /// Length of a period in blocks (periods start at multiples of it).
        uint64 periodBlocks;
        /// The models the agent may pay for (empty: any). A receipt of another
        /// model issued at or after `modelsSince` does not settle.
        uint64[] models;
        uint64 modelsSince;
    }

    /// Public reputation from completed tasks.
    struct AgentReputation {
        uint64 tasksCompleted;
        uint64 feedbackCount;
        /// Sum of feedback scores (each 0..=100).
        uint64 scoreSum;
        uint32 disputesLost;
        uint32 disputesWon;
    }

    /// A paid task.
    struct AgentTask {
        uint64 id;
        address client;
        /// The agent it is for (0 while an open offer is not accepted).
        uint64 agentId;
        bytes32 specHash;
        /// OPEN escrowed by the client.
        uint128 payment;
        /// Deliver by this height, else the client is refunded.
        uint64 deadline;
        /// Least bond an agent needs to accept it.
        uint128 requiredStake;
        /// Rules on a dispute (a multisig, governance, any address).
        address resolver;
        /// 1 open, 2 accepted, 3 delivered, 4 disputed, 5 paid (accepted or released),
        /// 6 refunded (deadline, cancel, or dispute lost by the agent).
        uint8 status;
        uint64 postedAt;
        uint64 deliveredAt;
        bytes32 resultHash;
        /// The receipts of the inferences the agent paid for this task.
        bytes32[] receipts;
        /// Feedback given (score 0..=100, 255: none yet).
        uint8 score;
        bytes32 commentHash;
    }

    #[sol(abi)]
    interface IAgents {
        // ERC-721
        event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
        event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
        event ApprovalForAll(address indexed owner, address indexed operator, bool approved);

        event AgentRegistered(uint64 indexed id, address indexed owner, address wallet, bytes32 metadataHash);
        event AgentUpdated(uint64 indexed id);
        event OperatorSet(uint64 indexed id, address operator);
        event AgentFunded(uint64 indexed id, address indexed from, uint128 amount);
        event AgentDefunded(uint64 indexed id, address indexed to, uint128 amount);
        event LimitsSet(uint64 indexed id, uint128 perPeriod, uint128 perOperator, uint64 periodBlocks, uint64[] models);
        event Frozen(uint64 indexed id, uint64 height);
        event Unfrozen(uint64 indexed id);
        event AgentAllowance(uint64 indexed id, address indexed servingOperator, uint128 amount);
        event AgentBonded(uint64 indexed id, uint128 amount);
        event AgentUnbondStarted(uint64 indexed id, uint128 amount, uint64 releaseAt);
        event AgentUnbonded(uint64 indexed id, uint128 amount);
        event MemoryUpdated(uint64 indexed id, bytes32 root, uint64 version, bytes32 blobHash, uint32 size);
        event MemoryReadersSet(uint64 indexed id, address[] readers);

        event TaskPosted(uint64 indexed taskId, address indexed client, uint64 indexed agentId, uint128 payment, uint64 deadline, bytes32 specHash);
        event TaskAccepted(uint64 indexed taskId, uint64 indexed agentId);
        event TaskDelivered(uint64 indexed taskId, bytes32 resultHash, bytes32[] receipts);
        event TaskDisputed(uint64 indexed taskId, bytes32 reasonHash);
        /// Paid to the agent's owner (`toAgent`) and the treasury (`protocolShare`).
        event TaskPaid(uint64 indexed taskId, address indexed agentOwner, uint128 toAgent, uint128 protocolShare);
        event TaskRefunded(uint64 indexed taskId, address indexed client, uint128 amount, uint128 bondSlashed);
        event FeedbackGiven(uint64 indexed taskId, uint64 indexed agentId, uint8 score, bytes32 commentHash);

        error UnknownAgent(uint64 id);
        error UnknownTask(uint64 id);
        error NotAgentOwner(address caller);
        /// Neither the agent's operator nor its owner.
        error NotAgentOperator(address caller);
        error NotClient(address caller);
        error NotResolver(address caller);
        error InvalidAgent(string reason);
        error AgentFrozen(uint64 id);
        /// The allowance would pass a limit (`which`: "period" or "operator").
        error LimitExceeded(uint64 id, string which, uint128 available, uint128 required);
        error WrongTaskStatus(uint64 taskId, uint8 status);
        error DeadlinePassed(uint64 taskId, uint64 deadline);
        error DeadlineNotPassed(uint64 taskId, uint64 deadline);
        error WindowOpen(uint64 taskId, uint64 until);
        error WindowClosed(uint64 taskId, uint64 until);
        error StakeTooSmall(uint128 required, uint128 bond);
        /// Delivered receipt `index` is not settled, not paid by the agent's
        /// wallet, or linked to a task already.
        error BadReceipt(uint256 index, string reason);
        error FeedbackAlreadyGiven(uint64 taskId);
        error InvalidScore(uint8 score);
        error MemoryUpdateTooLarge(uint32 size, uint32 max);
        /// A task's arguments are out of bounds (payment, resolver, receipts, the agent it is for).
        error InvalidTask(string reason);
        // ERC-721
        error ERC721InvalidReceiver(address receiver);
        error ERC721IncorrectOwner(address sender, uint256 tokenId, address owner);
        error ERC721InsufficientApproval(address operator, uint256 tokenId);
        error ERC721NonexistentToken(uint256 tokenId);
        error ERC721InvalidApprover(address approver);
        error ERC721InvalidOperator(address operator);

        // ---- ERC-721 (and ERC-165) ----
        function name() external view returns (string memory);
        function symbol() external view returns (string memory);
        /// `openledger://agents/<id>`: the agent card is `GET /v1/agents/<id>`.
        function tokenURI(uint256 tokenId) external view returns (string memory);
        function balanceOf(address owner) external view returns (uint256);
        function ownerOf(uint256 tokenId) external view returns (address);
        function transferFrom(address from, address to, uint256 tokenId) external;
        function safeTransferFrom(address from, address to, uint256 tokenId) external;
        function safeTransferFrom(address from, address to, uint256 tokenId, bytes calldata data) external;
        function approve(address to, uint256 tokenId) external;
        function getApproved(uint256 tokenId) external view returns (address);
        function setApprovalForAll(address operator, bool approved) external;
        function isApprovedForAll(address owner, address operator) external view returns (bool);
        function supportsInterface(bytes4 interfaceId) external view returns (bool);
        function totalSupply() external view returns (uint256);

        // ---- identity ----
        /// Mint an agent owned by the caller; its operator is `operator` (zero: the caller).
        function register(string calldata name, string calldata description, bytes32 metadataHash, address operator) external returns (uint64 id);
        /// The owner: new description and metadata.
        function update(uint64 id, string calldata description, bytes32 metadataHash) external;
        function setOperator(uint64 id, address operator) external;
        function agent(uint64 id) external view returns (AgentInfo memory);
        /// The agent card's on-chain part (same as `agent`).
        function resolve(uint64 id) external view returns (AgentInfo memory);
        function agentCount() external view returns (uint64);
        /// The agent whose wallet this is (0: none).
        function agentOfWallet(address wallet) external view returns (uint64);
        function agentsOf(address owner, uint64 offset, uint64 limit) external view returns (uint64[] memory);

        // ---- budgets (through the inference module's escrow, allowances and API keys) ----
        /// Anyone: add `msg.value` to the agent wallet's free inference escrow.
        function fund(uint64 id) external payable;
        /// The owner: move `amount` of the wallet's free escrow to the owner.
        function defund(uint64 id, uint128 amount) external;
        function setLimits(uint64 id, uint128 perPeriod, uint128 perOperator, uint64 periodBlocks, uint64[] calldata models) external;
        /// The operator or owner: move `amount` of free escrow into the wallet's
        /// allowance for serving operator `servingOperator`, within the limits.
        function allow(uint64 id, address servingOperator, uint128 amount) external;
        /// The operator or owner: ask unspent allowance back (the inference module's release delay applies).
        function release(uint64 id, address servingOperator, uint128 amount) external;
        function completeRelease(uint64 id, address servingOperator) external;
        /// The operator or owner: bind an API key hash to the wallet (serving nodes bill it to the agent).
        function bindApiKey(uint64 id, bytes32 keyHash) external;
        function revokeApiKey(uint64 id, bytes32 keyHash) external;
        /// The owner: stop all spending at once (allowances no longer grow, API
        /// keys bill nothing, receipts issued from now on do not settle).
        function freeze(uint64 id) external;
        function unfreeze(uint64 id) external;
        function limits(uint64 id) external view returns (AgentLimits memory);
        /// What the current period has used of the limits.
        function periodUsage(uint64 id, address servingOperator) external view returns (uint64 periodStart, uint128 total, uint128 toOperator);
        /// Whether a serving node may serve this wallet a model now (and why not).
        function canServe(address wallet, uint64 modelId) external view returns (bool ok, string memory reason);

        // ---- bond ----
        function bond(uint64 id) external payable;
        function unbond(uint64 id, uint128 amount) external;
        function withdrawBond(uint64 id) external;

        // ---- memory ----
        /// The operator or owner: a new root of the memory map; `blobHash` is the
        /// update's blob (at most `agents.max_memory_update` bytes, `size`).
        function updateMemory(uint64 id, bytes32 root, bytes32 blobHash, uint32 size) external;
        /// The owner: who may read the memory blobs besides owner and operator.
        function setMemoryReaders(uint64 id, address[] calldata readers) external;
        function memoryReaders(uint64 id) external view returns (address[] memory);
        function canReadMemory(uint64 id, address reader) external view returns (bool);

        // ---- tasks ----
        /// Escrow `msg.value` for a task for agent `agentId` (0: an open offer any
        /// agent with `requiredStake` bonded may accept), delivered by `deadline`.
        function postTask(uint64 agentId, bytes32 specHash, uint64 deadline, uint128 requiredStake, address resolver) external payable returns (uint64 taskId);
        /// The client, before acceptance: refund.
        function cancelTask(uint64 taskId) external;
        /// The agent's operator or owner.
        function acceptTask(uint64 taskId, uint64 agentId) external;
        /// The agent's operator or owner, before the deadline: the result and the
        /// hashes of the settled receipts of the inferences it paid for (each
        /// paid by the agent's wallet, at most `MAX_TASK_RECEIPTS`, each linked to one task only).
        function deliver(uint64 taskId, bytes32 resultHash, bytes32[] calldata receipts) external;
        /// The client: pay the agent's owner (minus `agents.protocol_share_bps`).
        function acceptResult(uint64 taskId) external;
        /// The client, within `agents.dispute_window_blocks` of delivery.
        function dispute(uint64 taskId, bytes32 reasonHash) external;
        /// The task's resolver: the agent wins (paid) or loses (client refunded, bond slashed to the client).
        function resolveDispute(uint64 taskId, bool agentWins) external;
        /// Anyone: pay an undisputed delivery after the window; refund an undelivered
        /// task after its deadline, or a dispute unresolved after `agents.resolve_timeout_blocks`.
        function settleTask(uint64 taskId) external;
        /// The client, once per paid task: score 0..=100 and a comment's hash.
        function feedback(uint64 taskId, uint8 score, bytes32 commentHash) external;
        function task(uint64 taskId) external view returns (AgentTask memory);
        function taskCount() external view returns (uint64);
        /// Open offers not yet accepted, oldest first.
        function openTasks(uint64 offset, uint64 limit) external view returns (uint64[] memory);
        function tasksOf(uint64 agentId, uint64 offset, uint64 limit) external view returns (uint64[] memory);
        /// The task a receipt was delivered with (0: none).
        function taskOfReceipt(bytes32 receiptHash) external view returns (uint64);
        function reputation(uint64 id) external view returns (AgentReputation memory);
        /// OPEN the module holds: tasks' escrow plus bonds (equals its balance).
        function holdings() external view returns (uint128 taskEscrow, uint128 bonds);
    }
}

/// Most receipts one delivery links.
pub const MAX_TASK_RECEIPTS: usize = 64;

/// The wallet of agent `id`: `keccak256("OpenLedger agent wallet" ‖ id u64 BE)[12..]`.
/// No key is known for it; the agents module moves its escrow and allowances.
pub fn agent_wallet(id: u64) -> Address {
    let mut m = b"OpenLedger agent wallet".to_vec();
    m.extend_from_slice(&id.to_be_bytes());
    Address::from_slice(&keccak256(m)[12..])
}
