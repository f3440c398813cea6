//! Solidity interfaces of the system contracts, through alloy's `sol!`.
//!
//! Each module at its fixed address ([`crate::system::Module::address`]) speaks
//! exactly this ABI; wallets and libraries call it like any contract. Errors
//! shared by every module are declared once at the top.

use alloy_sol_types::sol;

sol! {
    /// The caller may not do this (not the owner, not governance, ...).
    error Unauthorized(address caller);
    /// The calldata names no function of this contract.
    error UnknownFunction(bytes4 selector);
    /// The calldata does not decode as the function's arguments.
    error InvalidArguments();
    /// Value was sent to a function that does not take any.
    error NonPayable();
    /// The transaction's gas limit does not cover the call.
    error OutOfGas(uint64 required, uint64 available);
    /// A balance or held amount is too small.
    error InsufficientBalance(uint256 available, uint256 required);
    /// An arithmetic overflow would occur.
    error Overflow();

    /// OPEN, the native token, with an ERC-20 face at the bank's address.
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
    interface IParams {
        event ParamChanged(string name, uint256 oldValue, uint256 newValue);
        error UnknownParam(string name);
        error ParamOutOfRange(string name, uint256 value, uint256 min, uint256 max);

        function get(string calldata name) external view returns (uint256);
        function set(string calldata name, uint256 value) external;
        function names() external view returns (string[] memory);
    }
}
