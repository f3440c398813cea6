//! `asset info|transfer|split|claim|holders|history|quote|swap|add-liquidity`: models and
//! Datanets as ERC-721 tokens of the `assets` contract (`0x…100a`), a model's
//! revenue shares (its ERC-20 share token), and trading those shares against
//! OPEN in a Uniswap v2 pool through its router.
//!
//! The router's WETH is OPEN wrapped, so a pool is `share / WETH` and the
//! router's `…ETH…` functions take and pay OPEN. Swaps quote first
//! (`getAmountsOut`) and refuse to fill below the quote less the slippage.

use alloy_sol_types::{SolCall, sol};
use anyhow::{Context, anyhow, bail};
use primitives::abi::{IAssets, IShareToken};
use primitives::system::Module;
use primitives::{Address, Amount, U256};
use rpc::client::RpcClient;
use rpc::types::BlockNumberOrTag;
use serde_json::{Value, json};

use super::RpcArgs;
use super::agent::parse_model;
use super::keys::SignerArgs;
use crate::contract::{Sent, decode_revert, send_call, send_sol, signer_address, try_view, view};
use crate::output::{Out, open, units};

const ASSETS: Address = Module::Assets.address();
const BPS: u64 = 10_000;

sol! {
    /// The parts of Uniswap v2's router, factory and pair these commands use.
    interface IUniswapV2Router02 {
        function factory() external pure returns (address);
        function WETH() external pure returns (address);
        function getAmountsOut(uint256 amountIn, address[] calldata path) external view returns (uint256[] memory amounts);
        function swapExactETHForTokens(uint256 amountOutMin, address[] calldata path, address to, uint256 deadline) external payable returns (uint256[] memory amounts);
        function swapExactTokensForETH(uint256 amountIn, uint256 amountOutMin, address[] calldata path, address to, uint256 deadline) external returns (uint256[] memory amounts);
        function addLiquidityETH(address token, uint256 amountTokenDesired, uint256 amountTokenMin, uint256 amountETHMin, address to, uint256 deadline) external payable returns (uint256 amountToken, uint256 amountETH, uint256 liquidity);
    }
    interface IUniswapV2Factory {
        function getPair(address tokenA, address tokenB) external view returns (address pair);
    }
    interface IUniswapV2Pair {
        function balanceOf(address owner) external view returns (uint256);
        function token0() external view returns (address);
        function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
    }
}

/// Which asset: a model or a Datanet, by id.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct AssetRef {
    /// A model, `m2` or `2` (token id = model id).
    #[arg(long, value_parser = parse_model)]
    model: Option<u64>,
    /// A Datanet (token id = 2^64 + Datanet id).
    #[arg(long)]
    datanet: Option<u64>,
}

impl AssetRef {
    /// (token id, "model 3" / "Datanet 1").
    fn token(&self) -> (U256, String) {
        match (self.model, self.datanet) {
            (Some(m), _) => (runtime::assets::model_asset(m), format!("model {m}")),
            (None, Some(d)) => (runtime::assets::datanet_asset(d), format!("Datanet {d}")),
            // clap's group requires one of them.
            (None, None) => (U256::ZERO, "no asset".into()),
        }
    }
}

/// What goes into a trade: OPEN (buying shares) or shares (selling them).
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct TradeIn {
    /// Pay this much OPEN for shares: "1.5" or "1000wei".
    #[arg(long)]
    open: Option<Amount>,
    /// Sell this many shares for OPEN: whole shares ("2.5", 18 decimals) or base units ("1000wei").
    #[arg(long)]
    shares: Option<Amount>,
}

/// A model's share pool: the model and the Uniswap v2 router that trades it.
#[derive(clap::Args, Debug)]
pub struct PoolArgs {
    /// The model whose shares are traded: `m2` or `2`.
    #[arg(long, value_parser = parse_model)]
    model: u64,
    /// The UniswapV2Router02's address (default: the dev chain's, deployed at genesis).
    #[arg(long, default_value_t = primitives::system::dev_market().router)]
    router: Address,
}

/// How far a fill may fall below the quote, and how long the transaction stays valid.
#[derive(clap::Args, Debug)]
pub struct Limits {
    /// Least acceptable fill, in basis points below the quote (50 = 0.5%).
    #[arg(long, default_value_t = 50)]
    slippage_bps: u64,
    /// The router refuses the transaction after the latest block's time plus this many seconds.
    #[arg(long, default_value_t = 600)]
    deadline_secs: u64,
}

#[derive(clap::Subcommand, Debug)]
pub enum AssetCmd {
    /// Owner of a model or a Datanet; a model's share token, supplies and, with --holder, a holder's shares and earnings.
    Info {
        #[command(flatten)]
        asset: AssetRef,
        /// Show this holder's shares and the OPEN it can claim.
        #[arg(long)]
        holder: Option<Address>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Give a model or a Datanet (its ownership token) to another address.
    Transfer {
        #[command(flatten)]
        asset: AssetRef,
        /// The new owner.
        #[arg(long)]
        to: Address,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Split a model's future earnings into shares (an ERC-20, all minted to you). Irreversible.
    Split {
        /// The model (you must own it): `m2` or `2`.
        #[arg(long, value_parser = parse_model)]
        model: u64,
        /// Number of shares: whole shares ("1000", 18 decimals) or base units ("1000wei").
        #[arg(long)]
        supply: Amount,
        /// The share token's symbol: 1 to 11 letters or digits.
        #[arg(long)]
        symbol: String,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Claim the OPEN your shares of a model have earned.
    Claim {
        /// The model: `m2` or `2`.
        #[arg(long, value_parser = parse_model)]
        model: u64,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// The holders of a model's shares, the largest first, with what they have earned.
    Holders {
        /// The model: `m2` or `2`.
        #[arg(long, value_parser = parse_model)]
        model: u64,
        /// Holders shown, at most.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Transfers read, at most (newest first).
        #[arg(long, default_value_t = 5_000)]
        scan: usize,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// The price per share in the model's Uniswap v2 pool after each trade.
    History {
        #[command(flatten)]
        pool: PoolArgs,
        /// Trades read, at most (newest first).
        #[arg(long, default_value_t = 1_000)]
        scan: usize,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// What a trade in the model's Uniswap v2 pool would pay now, and the price per share.
    Quote {
        #[command(flatten)]
        pool: PoolArgs,
        #[command(flatten)]
        trade: TradeIn,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Buy shares with OPEN or sell them for OPEN in the model's Uniswap v2 pool.
    Swap {
        #[command(flatten)]
        pool: PoolArgs,
        #[command(flatten)]
        trade: TradeIn,
        #[command(flatten)]
        limits: Limits,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Add shares and OPEN to the model's Uniswap v2 pool (creating it if needed).
    AddLiquidity {
        #[command(flatten)]
        pool: PoolArgs,
        /// Shares to deposit: whole shares ("400") or base units ("1000wei").
        #[arg(long)]
        shares: Amount,
        /// OPEN to deposit: "40" or "1000wei".
        #[arg(long)]
        open: Amount,
        #[command(flatten)]
        limits: Limits,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

pub fn run(c: AssetCmd, out: Out) -> anyhow::Result<()> {
    match c {
        AssetCmd::Info { asset, holder, rpc } => info(&asset, holder, &rpc, out),
        AssetCmd::Transfer { asset, to, signer, rpc } => transfer(&asset, to, &signer, &rpc, out),
        AssetCmd::Split { model, supply, symbol, signer, rpc } => split(model, supply, symbol, &signer, &rpc, out),
        AssetCmd::Claim { model, signer, rpc } => claim(model, &signer, &rpc, out),
        AssetCmd::Holders { model, limit, scan, rpc } => {
            let mut c = rpc.client();
            let (share, symbol) = share_token(&mut c, model)?;
            super::asset_history::holders(&mut c, model, share, &symbol, scan, limit, out)
        }
        AssetCmd::History { pool, scan, rpc } => {
            let mut p = Pool::open(&pool, &rpc)?;
            let pair = p.pair()?;
            if pair == Address::ZERO {
                bail!("model {} has no {}/WETH pool at this router's factory", p.model, p.symbol);
            }
            super::asset_history::history(&mut p.c, p.model, p.share, pair, &p.symbol.clone(), scan, out)
        }
        AssetCmd::Quote { pool, trade, rpc } => {
            let q = Pool::open(&pool, &rpc)?.quote(&trade)?;
            out.print(|| q.human(), q.json());
            Ok(())
        }
        AssetCmd::Swap { pool, trade, limits, signer, rpc } => swap(&pool, &trade, &limits, &signer, &rpc, out),
        AssetCmd::AddLiquidity { pool, shares, open, limits, signer, rpc } => {
            add_liquidity(&pool, shares, open, &limits, &signer, &rpc, out)
        }
    }
}

/// The owner of an asset, or an error saying there is no such asset.
fn owner_of(c: &mut RpcClient, token: U256, what: &str) -> anyhow::Result<Address> {
    match try_view(c, ASSETS, &IAssets::ownerOfCall { tokenId: token })? {
        Ok(owner) => Ok(owner),
        Err(d) => bail!("there is no {what} ({})", decode_revert(&d)),
    }
}

/// A model's share token and symbol; an error if the model does not exist or is not split.
fn share_token(c: &mut RpcClient, model: u64) -> anyhow::Result<(Address, String)> {
    let asset = runtime::assets::model_asset(model);
    owner_of(c, asset, &format!("model {model}"))?;
    let token = view(c, ASSETS, &IAssets::shareTokenCall { assetId: asset })?;
    if token == Address::ZERO {
        bail!("model {model} is not split into shares (its owner can run `openledger asset split --model {model}`)");
    }
    let symbol = view(c, token, &IShareToken::symbolCall {})?;
    Ok((token, symbol))
}

fn info(asset: &AssetRef, holder: Option<Address>, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let (token, what) = asset.token();
    let owner = owner_of(&mut c, token, &what)?;
    let mut v = json!({"asset": what, "tokenId": token.to_string(), "owner": owner});
    let mut lines = vec![format!("{what} (token id {token})"), format!("owner          {owner}")];
    let share = match asset.model {
        Some(_) => view(&mut c, ASSETS, &IAssets::shareTokenCall { assetId: token })?,
        None => Address::ZERO,
    };
    if asset.model.is_some() && share == Address::ZERO {
        lines.push("not split into shares".into());
        v["shareToken"] = Value::Null;
    }
    if share != Address::ZERO {
        let symbol = view(&mut c, share, &IShareToken::symbolCall {})?;
        let total = view(&mut c, share, &IShareToken::totalSupplyCall {})?;
        let earning = view(&mut c, share, &IShareToken::earningSupplyCall {})?;
        lines.push(format!("share token    {share} ({symbol})"));
        lines.push(format!("total supply   {}", units(total, &symbol)));
        lines.push(format!("earning supply {}", units(earning, &symbol)));
        v["shareToken"] = json!({"address": share, "symbol": symbol, "totalSupply": total.to_string(), "earningSupply": earning.to_string()});
        if let Some(h) = holder {
            let balance = view(&mut c, share, &IShareToken::balanceOfCall { account: h })?;
            let earned = view(&mut c, share, &IShareToken::earnedCall { holder: h })?;
            lines.push(format!("holder {h}: {}, {} earned", units(balance, &symbol), open(earned)));
            v["holder"] = json!({"address": h, "balance": balance.to_string(), "earned": earned.to_string()});
        }
    } else if holder.is_some() {
        lines.push("(--holder: no shares to hold)".into());
    }
    out.print(|| lines.join("\n"), v);
    Ok(())
}

fn transfer(asset: &AssetRef, to: Address, signer: &SignerArgs, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let (token, what) = asset.token();
    let from = signer_address(signer)?;
    owner_of(&mut rpc.client(), token, &what)?;
    let sent =
        send_sol(signer, rpc, ASSETS, &IAssets::transferFromCall { from, to, tokenId: token }, "assets.transferFrom")?;
    out.print(
        || format!("{what} now owned by {to}\n{}", sent.human("assets.transferFrom")),
        sent.json(json!({"owner": to})),
    );
    Ok(())
}

fn split(
    model: u64,
    supply: Amount,
    symbol: String,
    signer: &SignerArgs,
    rpc: &RpcArgs,
    out: Out,
) -> anyhow::Result<()> {
    if supply.0 == 0 {
        bail!("--supply must be more than zero shares");
    }
    let call = IAssets::splitCall { assetId: runtime::assets::model_asset(model), supply: supply.to_u256(), symbol };
    let sent = send_sol(signer, rpc, ASSETS, &call, "assets.split")?;
    let ev = sent.event::<IAssets::Split>(ASSETS).ok_or_else(|| anyhow!("assets.split emitted no Split event"))?;
    let (token, sym) = (ev.shareToken, call.symbol);
    out.print(
        || format!("model {model} split into {supply} {sym}: share token {token}\n{}", sent.human("assets.split")),
        sent.json(json!({"model": model, "shareToken": token, "symbol": sym, "supply": ev.supply.to_string()})),
    );
    Ok(())
}

fn claim(model: u64, signer: &SignerArgs, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let (token, _) = share_token(&mut rpc.client(), model)?;
    let sent = send_sol(signer, rpc, token, &IShareToken::claimCall {}, "shareToken.claim")?;
    let paid = sent.event::<IShareToken::Claimed>(token).map_or(U256::ZERO, |e| e.amount);
    out.print(
        || format!("claimed {} from model {model}'s shares\n{}", open(paid), sent.human("shareToken.claim")),
        sent.json(json!({"model": model, "claimed": paid.to_string()})),
    );
    Ok(())
}

/// A model's share token and its pool's router, read from the chain.
struct Pool {
    c: RpcClient,
    model: u64,
    router: Address,
    weth: Address,
    share: Address,
    symbol: String,
}

/// A quoted trade: `amount_in` of one side for `amount_out` of the other.
struct Quote {
    buying: bool,
    symbol: String,
    amount_in: U256,
    amount_out: U256,
    path: Vec<Address>,
}

impl Quote {
    /// OPEN per share, in base units (18 decimals).
    fn price(&self) -> U256 {
        let e18 = U256::from(10u64).pow(U256::from(18u64));
        let (open, shares) =
            if self.buying { (self.amount_in, self.amount_out) } else { (self.amount_out, self.amount_in) };
        if shares.is_zero() { U256::ZERO } else { open.saturating_mul(e18) / shares }
    }
    fn shown(&self, v: U256, share_side: bool) -> String {
        if share_side { units(v, &self.symbol) } else { open(v) }
    }
    fn human(&self) -> String {
        format!(
            "{} → {}\nprice {} per {}",
            self.shown(self.amount_in, !self.buying),
            self.shown(self.amount_out, self.buying),
            open(self.price()),
            self.symbol
        )
    }
    fn json(&self) -> Value {
        json!({
            "side": if self.buying { "buy" } else { "sell" },
            "amountIn": self.amount_in.to_string(),
            "amountOut": self.amount_out.to_string(),
            "pricePerShare": self.price().to_string(),
            "path": self.path,
        })
    }
}

impl Pool {
    fn open(a: &PoolArgs, rpc: &RpcArgs) -> anyhow::Result<Pool> {
        let mut c = rpc.client();
        let (share, symbol) = share_token(&mut c, a.model)?;
        if c.call("eth_getCode", json!([a.router, "latest"]))? == json!("0x") {
            bail!("there is no contract at --router {} (give a UniswapV2Router02's address)", a.router);
        }
        let weth = view(&mut c, a.router, &IUniswapV2Router02::WETHCall {})
            .with_context(|| format!("--router {} does not answer as a UniswapV2Router02", a.router))?;
        Ok(Pool { c, model: a.model, router: a.router, weth, share, symbol })
    }

    /// The pool of the shares and WETH at the router's factory (zero if none).
    fn pair(&mut self) -> anyhow::Result<Address> {
        let factory = view(&mut self.c, self.router, &IUniswapV2Router02::factoryCall {})?;
        view(&mut self.c, factory, &IUniswapV2Factory::getPairCall { tokenA: self.share, tokenB: self.weth })
    }

    fn quote(&mut self, t: &TradeIn) -> anyhow::Result<Quote> {
        let (buying, amount_in) = match (t.open, t.shares) {
            (Some(o), _) => (true, o.to_u256()),
            (None, Some(s)) => (false, s.to_u256()),
            (None, None) => bail!("give --open AMOUNT (buy shares) or --shares AMOUNT (sell them)"),
        };
        if amount_in.is_zero() {
            bail!("the amount to trade must be more than zero");
        }
        if self.pair()? == Address::ZERO {
            bail!(
                "model {} has no {}/WETH pool at this router's factory (create one with `openledger asset add-liquidity`)",
                self.model,
                self.symbol
            );
        }
        let path = if buying { vec![self.weth, self.share] } else { vec![self.share, self.weth] };
        let amounts = view(
            &mut self.c,
            self.router,
            &IUniswapV2Router02::getAmountsOutCall { amountIn: amount_in, path: path.clone() },
        )?;
        let amount_out = *amounts.last().ok_or_else(|| anyhow!("getAmountsOut returned no amounts"))?;
        Ok(Quote { buying, symbol: self.symbol.clone(), amount_in, amount_out, path })
    }

    /// The latest block's time plus `secs`.
    fn deadline(&mut self, secs: u64) -> anyhow::Result<U256> {
        let head =
            self.c.block(BlockNumberOrTag::Latest, false)?.ok_or_else(|| anyhow!("the node has no latest block"))?;
        Ok(U256::from(head.header.timestamp.saturating_add(secs)))
    }

    fn shares_of(&mut self, who: Address) -> anyhow::Result<U256> {
        view(&mut self.c, self.share, &IShareToken::balanceOfCall { account: who })
    }

    /// The router deposits into an existing pool at its price, the less of
    /// one side; refuse here, with the amounts that fit, when that side would
    /// fall below its minimum (the router would say only `INSUFFICIENT_A_AMOUNT`).
    fn check_ratio(
        &mut self,
        pair: Address,
        shares: U256,
        open_in: U256,
        min_shares: U256,
        min_open: U256,
    ) -> anyhow::Result<()> {
        let r = view(&mut self.c, pair, &IUniswapV2Pair::getReservesCall {})?;
        let (r0, r1) = (U256::from(r.reserve0), U256::from(r.reserve1));
        let shares_first = view(&mut self.c, pair, &IUniswapV2Pair::token0Call {})? == self.share;
        let (rs, ro) = if shares_first { (r0, r1) } else { (r1, r0) };
        if rs.is_zero() || ro.is_zero() {
            return Ok(());
        }
        let open_for_shares = shares * ro / rs;
        let shares_for_open = open_in * rs / ro;
        let fits = if open_for_shares <= open_in { open_for_shares >= min_open } else { shares_for_open >= min_shares };
        if !fits {
            bail!(
                "the pool trades at {} per {sym}: {} goes with {}, and {} with {}; give amounts at that price or raise --slippage-bps",
                open(ro * U256::from(10u64).pow(U256::from(18u64)) / rs),
                units(shares, &self.symbol),
                open(open_for_shares),
                open(open_in),
                units(shares_for_open, &self.symbol),
                sym = self.symbol,
            );
        }
        Ok(())
    }

    /// Let the router move `amount` of `who`'s shares, unless it already may.
    fn approve_router(&mut self, who: Address, amount: U256, signer: &SignerArgs, rpc: &RpcArgs) -> anyhow::Result<()> {
        let allowed = view(&mut self.c, self.share, &IShareToken::allowanceCall { owner: who, spender: self.router })?;
        if allowed < amount {
            send_sol(
                signer,
                rpc,
                self.share,
                &IShareToken::approveCall { spender: self.router, value: amount },
                "shareToken.approve",
            )?;
        }
        Ok(())
    }
}

/// `amount` less `bps` basis points.
fn less_slippage(amount: U256, bps: u64) -> anyhow::Result<U256> {
    if bps > BPS {
        bail!("--slippage-bps must be at most {BPS} (100%), got {bps}");
    }
    Ok(amount * U256::from(BPS - bps) / U256::from(BPS))
}

/// OPEN a mined transaction paid in fees.
fn fee(sent: &Sent) -> U256 {
    U256::from(sent.gas_used()) * U256::from(sent.receipt.effective_gas_price)
}

fn swap(a: &PoolArgs, t: &TradeIn, l: &Limits, signer: &SignerArgs, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let me = signer_address(signer)?;
    let mut p = Pool::open(a, rpc)?;
    let q = p.quote(t)?;
    let min = less_slippage(q.amount_out, l.slippage_bps)?;
    let deadline = p.deadline(l.deadline_secs)?;
    let (sent, received) = if q.buying {
        let before = p.shares_of(me)?;
        let call =
            IUniswapV2Router02::swapExactETHForTokensCall { amountOutMin: min, path: q.path.clone(), to: me, deadline };
        let value = Amount::from_u256(q.amount_in)?;
        let sent = send_call(signer, rpc, p.router, value, call.abi_encode(), "router.swapExactETHForTokens")?;
        let received = p.shares_of(me)?.saturating_sub(before);
        (sent, received)
    } else {
        let held = p.shares_of(me)?;
        if held < q.amount_in {
            bail!("{me} holds {}, less than the {} to sell", units(held, &p.symbol), units(q.amount_in, &p.symbol));
        }
        p.approve_router(me, q.amount_in, signer, rpc)?;
        let before = p.c.balance(&me)?;
        let call = IUniswapV2Router02::swapExactTokensForETHCall {
            amountIn: q.amount_in,
            amountOutMin: min,
            path: q.path.clone(),
            to: me,
            deadline,
        };
        let sent = send_sol(signer, rpc, p.router, &call, "router.swapExactTokensForETH")?;
        let received = (p.c.balance(&me)? + fee(&sent)).saturating_sub(before);
        (sent, received)
    };
    let mut v = sent.json(q.json());
    v["received"] = json!(received.to_string());
    v["amountOutMin"] = json!(min.to_string());
    out.print(
        || {
            format!(
                "paid {}, received {} (quoted {}, least accepted {})\n{}",
                q.shown(q.amount_in, !q.buying),
                q.shown(received, q.buying),
                q.shown(q.amount_out, q.buying),
                q.shown(min, q.buying),
                sent.human("swap")
            )
        },
        v,
    );
    Ok(())
}

fn add_liquidity(
    a: &PoolArgs,
    shares: Amount,
    open_in: Amount,
    l: &Limits,
    signer: &SignerArgs,
    rpc: &RpcArgs,
    out: Out,
) -> anyhow::Result<()> {
    if shares.0 == 0 || open_in.0 == 0 {
        bail!("--shares and --open must both be more than zero");
    }
    let me = signer_address(signer)?;
    let mut p = Pool::open(a, rpc)?;
    let (min_shares, min_open) =
        (less_slippage(shares.to_u256(), l.slippage_bps)?, less_slippage(open_in.to_u256(), l.slippage_bps)?);
    let deadline = p.deadline(l.deadline_secs)?;
    let lp_before = match p.pair()? {
        pair if pair == Address::ZERO => U256::ZERO,
        pair => {
            p.check_ratio(pair, shares.to_u256(), open_in.to_u256(), min_shares, min_open)?;
            view(&mut p.c, pair, &IUniswapV2Pair::balanceOfCall { owner: me })?
        }
    };
    p.approve_router(me, shares.to_u256(), signer, rpc)?;
    let call = IUniswapV2Router02::addLiquidityETHCall {
        token: p.share,
        amountTokenDesired: shares.to_u256(),
        amountTokenMin: min_shares,
        amountETHMin: min_open,
        to: me,
        deadline,
    };
    let sent = send_call(signer, rpc, p.router, open_in, call.abi_encode(), "router.addLiquidityETH")?;
    let pair = p.pair()?;
    let lp = view(&mut p.c, pair, &IUniswapV2Pair::balanceOfCall { owner: me })?.saturating_sub(lp_before);
    out.print(
        || {
            format!(
                "added up to {} and {} to the pool {pair}: received {} (its LP token)\n{}",
                units(shares.to_u256(), &p.symbol),
                open(open_in.to_u256()),
                units(lp, "UNI-V2"),
                sent.human("router.addLiquidityETH")
            )
        },
        sent.json(json!({"pair": pair, "liquidity": lp.to_string()})),
    );
    Ok(())
}
