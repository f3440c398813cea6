// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// A plain ERC-20 for EVM interop tests: the whole initial supply goes to the
/// deployer, who alone may mint more. OpenZeppelin 5 keeps ERC20's state in
/// ordinary slots (balances 0, allowances 1, totalSupply 2), which the
/// `eth_getStorageAt` checks rely on.
contract TestToken is ERC20, Ownable {
    constructor(string memory name_, string memory symbol_, uint256 initialSupply)
        ERC20(name_, symbol_)
        Ownable(msg.sender)
    {
        _mint(msg.sender, initialSupply);
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
