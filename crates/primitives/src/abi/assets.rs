//! The ABI of the `assets` system contract (`0x…100a`) and of the revenue-share
//! tokens it answers for (ERC-20s at `share_token_address(n)`).

use alloy_sol_types::sol;

sol! {
    #![sol(all_derives)]

    /// Intelligence assets owned as tokens and in shares. An asset is named by
    /// a token id, `kind << 64 | id`: kind 0 a model, 1 a Datanet (agents are
    /// tokens of the agents contract). Only models' earnings (the owner part
    /// of every settled receipt) are paid to shares so far.
    #[sol(abi)]
    interface IAssets {
        // ---- ownership: an ERC-721 over models (id) and Datanets (2^64 + id) ----
        event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
        event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
        event ApprovalForAll(address indexed owner, address indexed operator, bool approved);
        error ERC721NonexistentToken(uint256 tokenId);
        error ERC721IncorrectOwner(address sender, uint256 tokenId, address owner);
        error ERC721InsufficientApproval(address operator, uint256 tokenId);
        error ERC721InvalidReceiver(address receiver);
        error ERC721InvalidApprover(address approver);
        error ERC721InvalidOperator(address operator);
        error ERC721InvalidOwner(address owner);

        function name() external view returns (string memory);
        function symbol() external view returns (string memory);
        /// `openledger:model/<id>` or `openledger:datanet/<id>`.
        function tokenURI(uint256 tokenId) external view returns (string memory);
        function balanceOf(address owner) external view returns (uint256);
        function ownerOf(uint256 tokenId) external view returns (address);
        /// Moves the asset's ownership: a model's pricing and proposals, a
        /// Datanet's curation and settings, and the earnings of an asset not split.
        function transferFrom(address from, address to, uint256 tokenId) external;
        /// As `transferFrom`, refused to an address with code: the runtime
        /// cannot ask a contract whether it accepts the token
        /// (`onERC721Received`), so only `transferFrom` reaches contracts.
        function safeTransferFrom(address from, address to, uint256 tokenId) external;
        function safeTransferFrom(address from, address to, uint256 tokenId, bytes calldata data) external;
        function approve(address to, uint256 tokenId) external;
        function getApproved(uint256 tokenId) external view returns (address);
        function setApprovalForAll(address operator, bool approved) external;
        function isApprovedForAll(address owner, address operator) external view returns (bool);
        function supportsInterface(bytes4 interfaceId) external view returns (bool);

        // ---- revenue shares ----
        event Split(uint256 indexed assetId, address shareToken, uint256 supply, address to);
        event EarningsDeposited(uint256 indexed assetId, uint256 amount, uint256 toHolders);
        event EarningSet(address indexed account, bool earning);

        error UnknownAsset(uint256 assetId);
        /// A Datanet has no earnings of its own to share (the data part of a
        /// receipt goes to its contributors; its owner curates): only models split.
        error NothingToShare(uint256 assetId);
        error NotAssetOwner(uint256 assetId, address caller, address owner);
        error AlreadySplit(uint256 assetId, address shareToken);
        error InvalidShareSupply(uint256 supply);
        error InvalidSymbol(string symbol);
        error TooManyShareTokens(uint256 max);

        /// The owner of `assetId` splits its future earnings into `supply`
        /// shares (18 decimals), all minted to the owner; returns the share
        /// token. Irreversible: from then on the asset's earnings go to its
        /// shareholders.
        function split(uint256 assetId, uint256 supply, string calldata symbol) external returns (address shareToken);
        /// The share token of `assetId` (zero: not split).
        function shareToken(uint256 assetId) external view returns (address);
        /// Whether `account`'s shares earn. Accounts without code earn; a
        /// contract earns only once it has called `setEarning(true)` (a pool
        /// or a router that cannot claim does not earn, and the earnings its
        /// shares would have had go to the shares that earn).
        function earning(address account) external view returns (bool);
        /// The caller's shares earn (true) or not (false) from now on, in
        /// every share token.
        function setEarning(bool on) external;
        function shareTokenCount() external view returns (uint32);
    }

    /// A revenue-share token: an ERC-20 (18 decimals) whose holders earn the
    /// asset's earnings pro rata through a reward-per-share index.
    #[sol(abi)]
    interface IShareToken {
        event Transfer(address indexed from, address indexed to, uint256 value);
        event Approval(address indexed owner, address indexed spender, uint256 value);
        event Claimed(address indexed holder, uint256 amount);

        error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
        error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
        error ERC20InvalidReceiver(address receiver);
        error ERC20InvalidApprover(address approver);
        error ERC20InvalidSpender(address spender);

        function name() external view returns (string memory);
        function symbol() external view returns (string memory);
        function decimals() external view returns (uint8);
        function totalSupply() external view returns (uint256);
        function balanceOf(address account) external view returns (uint256);
        function transfer(address to, uint256 value) external returns (bool);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
        function transferFrom(address from, address to, uint256 value) external returns (bool);

        /// The asset this token shares.
        function asset() external view returns (uint256 assetId);
        /// OPEN `holder` can claim now.
        function earned(address holder) external view returns (uint256);
        /// Pay the caller what it has earned; returns the amount.
        function claim() external returns (uint256);
        /// Shares that earn (the total minus shares held by non-earning contracts).
        function earningSupply() external view returns (uint256);
    }
}
