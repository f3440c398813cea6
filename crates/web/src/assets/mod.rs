//! The Assets section (`/assets`): every revenue-share token with its model,
//! supply, the part that earns, and its price in the dev chain's Uniswap v2
//! pool against OPEN (`primitives::system::dev_market`), when there is one.
//! A bounded number of tokens a page, read through the `assets` contract and
//! the pool's own views. Each token has its page ([`token`]): holders, price
//! history and the model's licence offers.

mod token;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use primitives::abi::IAssets;
use primitives::system::{Module, dev_market, share_token_address};
use primitives::{Address, U256};
use runtime::assets::{AssetsRead, ShareRecord, asset_parts};

use crate::Web;
use crate::explorer::{account_link, amount, model_href, summary};
use crate::page::{Page, Section, WebError, render, table};
use crate::query;
use crate::view::ChainView;

/// Share tokens one page lists, at most.
pub const MAX_TOKENS: u32 = 200;

alloy_sol_types::sol! {
    function getPair(address tokenA, address tokenB) external view returns (address pair);
    function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 blockTimestampLast);
    function token0() external view returns (address);
}

pub fn routes() -> Router<Web> {
    Router::new().route("/assets", get(handler)).route("/assets/{n}", get(token_handler))
}

async fn token_handler(
    State(web): State<Web>,
    n: Result<axum::extract::Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(q): RawQuery,
) -> Response {
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        let s = crate::explorer::path_param(n)?;
        let n = query::number(&s, "share token number")?;
        let n = u32::try_from(n).map_err(|_| WebError::not_found(format!("there is no share token {n}")))?;
        token::page(v, n)
    })
    .await
}

async fn handler(State(web): State<Web>, RawQuery(q): RawQuery) -> Response {
    render(web, move |v| {
        query::params(q.as_deref(), &[])?;
        list(v)
    })
    .await
}

/// The pool of `share` against WOPEN in the dev market, and its reserves
/// (shares, OPEN), if the market and the pool exist.
fn pool(v: &ChainView, share: Address) -> Result<Option<(Address, U256, U256)>, WebError> {
    let m = dev_market();
    let Ok(pair) = v.call_at(m.factory, &getPairCall { tokenA: share, tokenB: m.wopen })? else { return Ok(None) };
    if pair == Address::ZERO {
        return Ok(None);
    }
    let (Ok(r), Ok(t0)) = (v.call_at(pair, &getReservesCall {})?, v.call_at(pair, &token0Call {})?) else {
        return Ok(None);
    };
    let (r0, r1) = (U256::from(r.reserve0), U256::from(r.reserve1));
    Ok(Some(if t0 == share { (pair, r0, r1) } else { (pair, r1, r0) }))
}

/// OPEN per share at the pool's reserves, as an amount (base units per 10^18 base units of shares).
fn price(shares: U256, open: U256) -> Option<U256> {
    (!shares.is_zero()).then(|| open * U256::from(10u64).pow(U256::from(18u64)) / shares)
}

fn asset_cell(t: &ShareRecord) -> Markup {
    match asset_parts(t.assetId) {
        Some((runtime::assets::KIND_MODEL, id)) => html! { a href=(model_href(id)) { "model " (id) } },
        _ => html! { (t.assetId) },
    }
}

fn list(v: &ChainView) -> Result<Page, WebError> {
    let state = v.state();
    let count = state.share_token_count().map_err(WebError::unavailable)?;
    let m = dev_market();
    let mut rows = Vec::new();
    for n in 1..=count.min(MAX_TOKENS) {
        let t = state
            .share_token(n)
            .map_err(WebError::unavailable)?
            .ok_or_else(|| WebError::unavailable(format!("share token {n} is missing")))?;
        let owner = v.call(Module::Assets, &IAssets::ownerOfCall { tokenId: t.assetId })?.ok();
        let token = share_token_address(n);
        rows.push((t, token, owner, pool(v, token)?));
    }
    let body = html! {
        p {
            "Models whose owners split their earnings into shares: an ERC-20 per model (18 decimals) that pays its holders the owner part of every receipt the model is paid, pro rata. "
            "Shares held by a contract earn only once it opts in, so a pool's shares leave their earnings to the holders that earn."
        }
        (summary(&[
            ("Share tokens", html! { (count) @if count > MAX_TOKENS { " (the first " (MAX_TOKENS) " listed)" } }),
            ("Market (Uniswap v2)", html! { "router " (account_link(&m.router)) ", WOPEN " (account_link(&m.wopen)) }),
        ]))
        @if rows.is_empty() { p.muted { "No model has been split yet (IAssets.split, or openledger asset split)." } }
        @else {
            (table("Share tokens", &["Token", "Asset", "Owner", "Supply", "Earning", "Pool", "Price (OPEN per share)"], html! {
                @for (t, token, owner, pool) in &rows {
                    tr {
                        td { a href=(format!("/assets/{}", primitives::system::share_token_index(token).unwrap_or(0))) { (t.symbol) } br; (account_link(token)) }
                        td { (asset_cell(t)) }
                        td { @match owner { Some(o) => (account_link(o)), None => span.muted { "—" } } }
                        td.num { (amount(t.totalSupply)) }
                        td.num { (amount(t.earningSupply)) }
                        td { @match pool { Some((p, s, o)) => { (account_link(p)) br; span.muted { (amount(*s)) " shares, " (amount(*o)) " OPEN" } }, None => span.muted { "no pool" } } }
                        td.num { @match pool.and_then(|(_, s, o)| price(s, o)) { Some(p) => (amount(p)), None => span.muted { "—" } } }
                    }
                }
            }))
        }
    };
    Ok(Page { title: "Assets".into(), section: Section::Assets, body, refresh: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_price_is_open_per_whole_share() {
        let e18 = U256::from(10u64).pow(U256::from(18u64));
        assert_eq!(price(U256::from(400u64) * e18, U256::from(40u64) * e18), Some(e18 / U256::from(10u64)));
        assert_eq!(price(U256::ZERO, e18), None);
    }
}
