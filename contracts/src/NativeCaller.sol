// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

// The native modules' functions this contract calls, copied signature for
// signature from crates/primitives/src/abi.rs (the source of truth), and the
// errors they revert with that the interop script decodes.

/// The caller may not do this (abi.rs, shared by every module). NativeCaller
/// reverts with it too (a caller that is not its owner), which puts it in
/// NativeCaller's ABI, so a library decodes the module's bubbled revert with
/// that ABI alone.
error Unauthorized(address caller);

/// OPEN's ERC-20 face at the bank's address.
interface IBank {
    function balanceOf(address account) external view returns (uint256);
}

interface IParams {
    function get(string calldata name) external view returns (uint256);
    function set(string calldata name, uint256 value) external;
}

interface IStaking {
    function bond(address operator) external payable;
    function unbond(address operator, uint256 amount) external;
    function stakeOf(address operator, address account) external view returns (uint256 amount, uint256 pendingRewards);
}

interface IGovernance {
    function propose(string calldata description, address[] calldata targets, bytes[] calldata calldatas) external payable returns (uint64);
    function castVote(uint64 id, uint8 support) external;
    function hasVoted(uint64 id, address voter) external view returns (bool);
    function proposalDeposit() external view returns (uint256);
}

/// Calls OpenLedger's native modules from Solidity through their interfaces,
/// as any contract would: proves that a call from the EVM to a system-contract
/// address reaches the module with this contract as the sender, that value
/// travels with it, that return data decodes, and that a module's custom error
/// comes back to the caller unchanged.
///
/// Solidity checks `extcodesize(target) > 0` before a call whose function
/// returns nothing (bond, unbond, set, castVote), so each module address must
/// have non-empty code for those calls to be made at all.
contract NativeCaller {
    IBank public constant BANK = IBank(0x0000000000000000000000000000000000001001);
    IParams public constant PARAMS = IParams(0x0000000000000000000000000000000000001002);
    IStaking public constant STAKING = IStaking(0x0000000000000000000000000000000000001003);
    IGovernance public constant GOVERNANCE = IGovernance(0x0000000000000000000000000000000000001004);

    /// Who may unbond, propose, vote and set through this contract (bonding is open to anyone).
    address public immutable owner;

    event Bonded(address indexed operator, uint256 amount);
    event Proposed(uint64 indexed id, uint256 deposit);
    event Voted(uint64 indexed id, uint8 support);

    modifier onlyOwner() {
        if (msg.sender != owner) revert Unauthorized(msg.sender);
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    receive() external payable {}

    /// The bank's balance of `account`, read through the ERC-20 face.
    function bankBalanceOf(address account) external view returns (uint256) {
        return BANK.balanceOf(account);
    }

    function param(string calldata name) external view returns (uint256) {
        return PARAMS.get(name);
    }

    /// Bond `msg.value` at `operator` as this contract (a delegation unless the
    /// contract is the operator).
    function bond(address operator) external payable {
        STAKING.bond{value: msg.value}(operator);
        emit Bonded(operator, msg.value);
    }

    function unbond(address operator, uint256 amount) external onlyOwner {
        STAKING.unbond(operator, amount);
    }

    /// This contract's stake at `operator`.
    function stakeAt(address operator) external view returns (uint256 amount, uint256 pendingRewards) {
        return STAKING.stakeOf(operator, address(this));
    }

    /// Propose as this contract; `msg.value` is the deposit.
    function propose(string calldata description, address[] calldata targets, bytes[] calldata calldatas)
        external
        payable
        onlyOwner
        returns (uint64 id)
    {
        id = GOVERNANCE.propose{value: msg.value}(description, targets, calldatas);
        emit Proposed(id, msg.value);
    }

    /// Vote as this contract (its voting power is its stake).
    function castVote(uint64 id, uint8 support) external onlyOwner {
        GOVERNANCE.castVote(id, support);
        emit Voted(id, support);
    }

    function hasVoted(uint64 id) external view returns (bool) {
        return GOVERNANCE.hasVoted(id, address(this));
    }

    /// Set a parameter as this contract, which is not governance: the module
    /// reverts with `Unauthorized(address(this))` and the revert data bubbles
    /// up unchanged.
    function setParam(string calldata name, uint256 value) external onlyOwner {
        PARAMS.set(name, value);
    }

    /// The same call, caught: whether it succeeded and the raw revert data the
    /// EVM handed back (the encoded `Unauthorized(address(this))`).
    function trySetParam(string calldata name, uint256 value) external onlyOwner returns (bool ok, bytes memory reason) {
        try PARAMS.set(name, value) {
            return (true, "");
        } catch (bytes memory data) {
            return (false, data);
        }
    }
}
