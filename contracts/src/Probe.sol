// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// The child Probe.deploy2 creates with CREATE2: a constant to call.
contract ProbeChild {
    address public immutable parent;

    constructor() {
        parent = msg.sender;
    }

    function answer() external pure returns (uint256) {
        return 42;
    }
}

/// A target for tracer, revert, CREATE2 and block-context tests.
contract Probe {
    uint256 public count;

    event Incremented(address indexed by, uint256 count);
    event Deployed(address indexed child, bytes32 salt);

    error Failed(uint256 code, address caller);

    receive() external payable {}

    function inc() external returns (uint256) {
        count += 1;
        emit Incremented(msg.sender, count);
        return count;
    }

    /// Always reverts with the custom error `Failed(code, msg.sender)`.
    function fail(uint256 code) external view {
        revert Failed(code, msg.sender);
    }

    /// Always reverts with `Error("Probe: failString")`.
    function failString() external view {
        require(msg.sender == address(0), "Probe: failString");
    }

    /// Create a ProbeChild at keccak256(0xff ++ this ++ salt ++ keccak256(childInitCode))[12:].
    function deploy2(bytes32 salt) external returns (address child) {
        child = address(new ProbeChild{salt: salt}());
        emit Deployed(child, salt);
    }

    function childInitCodeHash() external pure returns (bytes32) {
        return keccak256(type(ProbeChild).creationCode);
    }

    function selfBalance() external view returns (uint256) {
        return address(this).balance;
    }

    /// A nested call: `other.inc()` (for call traces two frames deep).
    function incOther(Probe other) external returns (uint256) {
        return other.inc();
    }

    /// Call `target` with `data` and `msg.value`; return its output or bubble its revert data.
    function forward(address target, bytes calldata data) external payable returns (bytes memory result) {
        bool ok;
        (ok, result) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(result, 32), mload(result))
            }
        }
    }

    function blockInfo()
        external
        view
        returns (
            uint256 number,
            uint256 timestamp,
            uint256 chainid,
            uint256 basefee,
            address coinbase,
            uint256 prevrandao
        )
    {
        return (block.number, block.timestamp, block.chainid, block.basefee, block.coinbase, block.prevrandao);
    }
}
