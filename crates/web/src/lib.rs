//! The web app the node serves on its HTTP address (`http://127.0.0.1:8080/`
//! on a dev node): server-rendered HTML pages, written as Rust templates with
//! `maud`, over the chain the node already runs. No JavaScript toolchain
//! builds it. Reading needs no script; small hand-written scripts, served
//! from this crate like the stylesheet, do what a server cannot: the
//! Playground's chat (`playground.js`), the browser wallet
//! `window.OpenLedgerWallet` (`wallet.js`: the chosen EIP-1193 provider,
//! transactions, signed requests) and the job actions (`jobs.js`: starting a
//! fine-tune, following it live, proposing its model, voting), which send
//! only what the page encoded on the server.
//!
//! What is here:
//! - [`page`]: the page shell every page shares (navigation for the roles,
//!   skip link, stylesheet), [`page::Page`] and the error pages
//!   ([`page::WebError`]: 400, 404, 503, never a panic);
//! - [`view`]: read-only access to the chain for one request (one storage
//!   snapshot, views of the system contracts run as `eth_call`s at the head);
//! - [`decode`]: calls, events and errors of the system contracts decoded
//!   from their Solidity interfaces (`primitives::abi`);
//! - [`format`] and [`query`]: exact OPEN amounts and times, bounded query
//!   strings and path parameters;
//! - [`explorer`]: blocks, transactions, accounts, models, Datanets, search.
//! - [`datanets`]: Datanets, their versions and contributions;
//! - [`governance`]: proposals (voting, then executing once queued), the
//!   validator set and its decentralisation (Nakamoto coefficient, largest
//!   share and Gini of rewards, over time), validators' uptime
//!   (commit-certificate signatures) and slashes, operators and their stakers
//!   (with the staking form: delegate, undelegate, claim);
//! - [`models`]: the node's ModelFactory jobs, their progress and loss
//!   curves (updated in place while a job runs), the model each registered
//!   and proposing it; the form that starts a fine-tune (`/models/new`);
//! - [`actions`]: buttons carrying transactions encoded on the server
//!   (proposing a model, a governance proposal, votes, executing a queued
//!   proposal, delegating, undelegating and claiming staking rewards,
//!   challenging an attribution record) for the browser's wallet, and their
//!   script;
//! - [`earnings`]: what an address earned as a contributor (credited,
//!   claimable, claimed, over time), a model owner and a serving operator;
//! - [`playground`]: chat with a live model (streaming through the node's
//!   OpenAI-compatible API), and each answer's credits: highlighted spans,
//!   shares, fee split, receipt, verification by the node, and a challenge
//!   button when the node's recomputation disagrees within the window;
//! - [`chart`]: line charts as inline SVG, with their data as a hidden table;
//! - [`wallet`]: writes from the browser. The server encodes each call and
//!   renders it on a `<button>`; `wallet.js` (`/assets/wallet.js`,
//!   `window.OpenLedgerWallet`: `provider()`, `account()`, `send({to, data,
//!   value})`, `signedFetch(method, path, bytes, headers)`, `blake3(bytes)`)
//!   has the chosen EIP-1193 provider sign and send it: `window.ethereum`, or
//!   on a dev chain the node's dev wallet (`POST /web/dev-wallet`, the dev
//!   accounts). The write pages are in [`datanets::write`] (create, upload
//!   with the per-row findings, curation queue), [`earnings`] (claims),
//!   [`governance`] (vote, execute, stake) and [`playground`] (challenge).
//!
//! Adding a page: write a function `fn(&ChainView, args) -> Result<Page,
//! WebError>` in a module of its section, route it in that section's
//! `routes()` through [`page::render`] (which runs it on a blocking thread with
//! a fresh snapshot), and add the section's link to [`page::Section`].

use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use chain::Chain;

pub mod actions;
pub mod assets;
pub mod chart;
pub mod datanets;
pub mod decode;
pub mod earnings;
pub mod explorer;
pub mod format;
pub mod governance;
pub mod models;
pub mod page;
pub mod playground;
pub mod query;
pub mod view;
pub mod wallet;

/// The path of the app's one stylesheet.
pub const STYLESHEET_PATH: &str = "/assets/style.css";

const STYLESHEET: &str = include_str!("style.css");

/// What every page handler shares: the chain it reads, and the node's
/// ModelFactory job queue when it has one (jobs are local to a node; the
/// chain knows only the models they registered).
#[derive(Clone)]
pub struct Web {
    pub chain: Arc<Chain>,
    pub jobs: Option<Arc<factory::JobQueue>>,
    /// The node's attribution records for the Playground (none on a node that does not serve).
    pub playground: playground::Playground,
    /// What the write pages need from the node (the dev wallet on a dev chain, the node's attester).
    pub writes: wallet::Writes,
}

/// The app's routes, for the node's HTTP server: `GET /` (the Explorer's
/// home), the Explorer under `/explorer/...`, the Datanets (`/datanets/...`)
/// Governance (`/governance/...`, `/validators/...`), Models (`/models/jobs...`,
/// `/models/new`, over `jobs`), Playground (`/playground...`, over `playground`) and Earnings
/// (`/earnings...`) sections, the stylesheet and the scripts (`playground.js`,
/// `jobs.js`, `wallet.js`). It
/// sets no fallback, so the node's other routes and its JSON 404 stay as they are.
/// The wallet script is always served; the dev wallet (`POST /web/dev-wallet`)
/// only when `writes` has one (a dev chain).
pub fn routes(
    chain: Arc<Chain>,
    jobs: Option<Arc<factory::JobQueue>>,
    playground: playground::Playground,
    writes: wallet::Writes,
) -> Router {
    Router::new()
        .route("/", get(explorer::home::handler))
        .route(STYLESHEET_PATH, get(stylesheet))
        .merge(explorer::routes())
        .merge(datanets::routes())
        .merge(governance::routes())
        .merge(models::routes())
        .merge(earnings::routes())
        .merge(assets::routes())
        .merge(playground::routes())
        .merge(actions::routes())
        .merge(wallet::routes(writes.dev_wallet.is_some()))
        .with_state(Web { chain, jobs, playground, writes })
}

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
}
