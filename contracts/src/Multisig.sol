// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// An M-of-N multisig wallet: an owner submits a call (target, value, data),
/// owners confirm it, and once `threshold` owners have confirmed any owner
/// executes it. The call is made as this contract, so the wallet can hold OPEN
/// and act on the native modules (bond at staking, propose and vote at
/// governance) with calldata built off-chain. A failed call reverts
/// `execute` with the callee's own revert data, unchanged.
contract Multisig {
    struct Transaction {
        address target;
        uint256 value;
        bytes data;
        bool executed;
        uint256 confirmations;
    }

    event Deposit(address indexed sender, uint256 value);
    event Submitted(uint256 indexed id, address indexed owner, address indexed target, uint256 value, bytes data);
    event Confirmed(uint256 indexed id, address indexed owner);
    event Revoked(uint256 indexed id, address indexed owner);
    event Executed(uint256 indexed id, address indexed owner, bytes result);

    error NotOwner(address caller);
    error InvalidOwners();
    error InvalidThreshold(uint256 threshold, uint256 owners);
    error UnknownTransaction(uint256 id);
    error AlreadyExecuted(uint256 id);
    error AlreadyConfirmed(uint256 id, address owner);
    error NotConfirmed(uint256 id, address owner);
    error NotEnoughConfirmations(uint256 id, uint256 confirmations, uint256 threshold);

    address[] private _owners;
    mapping(address => bool) public isOwner;
    uint256 public immutable threshold;
    Transaction[] private _transactions;
    mapping(uint256 => mapping(address => bool)) public confirmedBy;

    modifier onlyOwner() {
        if (!isOwner[msg.sender]) revert NotOwner(msg.sender);
        _;
    }

    modifier pending(uint256 id) {
        if (id >= _transactions.length) revert UnknownTransaction(id);
        if (_transactions[id].executed) revert AlreadyExecuted(id);
        _;
    }

    /// `owners_` distinct and non-zero; 1 <= `threshold_` <= owners.
    constructor(address[] memory owners_, uint256 threshold_) {
        if (owners_.length == 0) revert InvalidOwners();
        if (threshold_ == 0 || threshold_ > owners_.length) revert InvalidThreshold(threshold_, owners_.length);
        for (uint256 i = 0; i < owners_.length; i++) {
            address o = owners_[i];
            if (o == address(0) || isOwner[o]) revert InvalidOwners();
            isOwner[o] = true;
            _owners.push(o);
        }
        threshold = threshold_;
    }

    receive() external payable {
        emit Deposit(msg.sender, msg.value);
    }

    /// Record a call; the submitter's confirmation counts at once.
    function submit(address target, uint256 value, bytes calldata data) external onlyOwner returns (uint256 id) {
        id = _transactions.length;
        _transactions.push(Transaction({target: target, value: value, data: data, executed: false, confirmations: 0}));
        emit Submitted(id, msg.sender, target, value, data);
        _confirm(id);
    }

    function confirm(uint256 id) external onlyOwner pending(id) {
        _confirm(id);
    }

    function revoke(uint256 id) external onlyOwner pending(id) {
        if (!confirmedBy[id][msg.sender]) revert NotConfirmed(id, msg.sender);
        confirmedBy[id][msg.sender] = false;
        _transactions[id].confirmations -= 1;
        emit Revoked(id, msg.sender);
    }

    /// Make the call once `threshold` owners have confirmed; bubbles the callee's revert data.
    function execute(uint256 id) external onlyOwner pending(id) returns (bytes memory result) {
        Transaction storage t = _transactions[id];
        if (t.confirmations < threshold) revert NotEnoughConfirmations(id, t.confirmations, threshold);
        t.executed = true;
        bool ok;
        (ok, result) = t.target.call{value: t.value}(t.data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
        emit Executed(id, msg.sender, result);
    }

    function owners() external view returns (address[] memory) {
        return _owners;
    }

    function transactionCount() external view returns (uint256) {
        return _transactions.length;
    }

    function transaction(uint256 id)
        external
        view
        returns (address target, uint256 value, bytes memory data, bool executed, uint256 confirmations)
    {
        if (id >= _transactions.length) revert UnknownTransaction(id);
        Transaction storage t = _transactions[id];
        return (t.target, t.value, t.data, t.executed, t.confirmations);
    }

    function _confirm(uint256 id) private {
        if (confirmedBy[id][msg.sender]) revert AlreadyConfirmed(id, msg.sender);
        confirmedBy[id][msg.sender] = true;
        _transactions[id].confirmations += 1;
        emit Confirmed(id, msg.sender);
    }
}
