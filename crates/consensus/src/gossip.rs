//! Transaction gossip between validators, over TCP of our own.
//!
//! Malachite's app-channel API carries no application messages (the
//! application can only publish proposal parts), so a transaction accepted by
//! one validator reaches the others here: every transaction the chain admits
//! ([`chain::Chain::subscribe_admitted`]) is sent to every peer, and every
//! transaction received is submitted to the chain with the same admission rules
//! as `eth_sendRawTransaction`. A transaction already known is refused there,
//! which ends the flood.
//!
//! Wire: the dialer sends [`HELLO`] and the chain id; then frames of a
//! big-endian `u32` length and a raw signed transaction, at most
//! [`primitives::tx::MAX_TX_BYTES`] (an empty frame keeps an idle connection
//! alive). A connection for another chain, a frame over the bound, no hello
//! within [`HELLO_TIMEOUT`], silence past [`IDLE_TIMEOUT`] or a closed socket
//! ends the connection (logged); inbound connections are capped at [`MAX_INBOUND`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chain::Chain;
use primitives::tx::MAX_TX_BYTES;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, broadcast};
use tokio::task::JoinHandle;

/// What a dialer says first.
pub const HELLO: &[u8; 10] = b"olgossip/1";

/// Inbound gossip connections served at once.
pub const MAX_INBOUND: usize = 64;

/// The longest wait between two attempts to reach a peer.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long a connection may take to say [`HELLO`].
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// A sender with nothing to send writes an empty frame this often...
pub const KEEPALIVE: Duration = Duration::from_secs(30);

/// ...and a connection silent this long is closed, so idle clients cannot
/// hold the [`MAX_INBOUND`] slots.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Serve gossip on `listener` and send what `chain` admits to `peers`, until the tasks are aborted.
pub fn start(chain: Arc<Chain>, listener: TcpListener, peers: Vec<SocketAddr>) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(accept(chain.clone(), listener))];
    for peer in peers {
        tasks.push(tokio::spawn(send_to(peer, chain.chain_id(), chain.subscribe_admitted())));
    }
    tasks
}

async fn accept(chain: Arc<Chain>, listener: TcpListener) {
    let slots = Arc::new(Semaphore::new(MAX_INBOUND));
    loop {
        let (socket, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("gossip accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%from, "gossip: refusing a connection, {MAX_INBOUND} already open");
            continue;
        };
        let chain = chain.clone();
        tokio::spawn(async move {
            if let Err(e) = receive(&chain, socket).await {
                tracing::debug!(%from, "gossip connection closed: {e}");
            }
            drop(slot);
        });
    }
}

/// Read one peer's transactions and submit them.
async fn receive(chain: &Chain, mut socket: TcpStream) -> std::io::Result<()> {
    let timed_out = |what: &str| std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no {what} in time"));
    let mut hello = [0u8; HELLO.len() + 8];
    tokio::time::timeout(HELLO_TIMEOUT, socket.read_exact(&mut hello)).await.map_err(|_| timed_out("hello"))??;
    if &hello[..HELLO.len()] != HELLO {
        return Err(std::io::Error::other("not a gossip peer"));
    }
    let chain_id = u64::from_be_bytes(hello[HELLO.len()..].try_into().expect("8 bytes"));
    if chain_id != chain.chain_id() {
        return Err(std::io::Error::other(format!("peer is on chain {chain_id}")));
    }
    let mut buf = Vec::new();
    loop {
        let len =
            tokio::time::timeout(IDLE_TIMEOUT, socket.read_u32()).await.map_err(|_| timed_out("frame"))?? as usize;
        if len == 0 {
            continue;
        }
        if len > MAX_TX_BYTES {
            return Err(std::io::Error::other(format!("frame of {len} bytes exceeds {MAX_TX_BYTES}")));
        }
        buf.resize(len, 0);
        socket.read_exact(&mut buf).await?;
        if let Err(e) = chain.submit(&buf).await {
            tracing::trace!("gossiped transaction not admitted: {e}");
        }
    }
}

/// Keep a connection to `peer` and write every admitted transaction to it.
async fn send_to(peer: SocketAddr, chain_id: u64, mut admitted: broadcast::Receiver<primitives::Bytes>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut socket = match connect(peer, chain_id).await {
            Ok(s) => {
                backoff = Duration::from_millis(100);
                s
            }
            Err(_) => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                // What was admitted meanwhile stays in our pool; it is proposed from there.
                admitted = admitted.resubscribe();
                continue;
            }
        };
        loop {
            let next = tokio::time::timeout(KEEPALIVE, admitted.recv()).await;
            let raw = match next {
                Err(_) => primitives::Bytes::new(),
                Ok(Ok(raw)) => raw,
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    tracing::warn!(%peer, "gossip fell {n} transactions behind; they stay in this node's pool");
                    continue;
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
            };
            let mut frame = Vec::with_capacity(4 + raw.len());
            frame.extend_from_slice(&(raw.len() as u32).to_be_bytes());
            frame.extend_from_slice(&raw);
            if let Err(e) = socket.write_all(&frame).await {
                tracing::debug!(%peer, "gossip send failed: {e}");
                break;
            }
        }
    }
}

async fn connect(peer: SocketAddr, chain_id: u64) -> std::io::Result<TcpStream> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(peer))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    s.set_nodelay(true)?;
    let mut hello = HELLO.to_vec();
    hello.extend_from_slice(&chain_id.to_be_bytes());
    s.write_all(&hello).await?;
    Ok(s)
}
