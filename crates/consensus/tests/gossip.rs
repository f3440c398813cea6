//! Transaction gossip attacked from loopback: clients that are not gossip
//! peers, peers of another chain, oversized, truncated and garbage frames, and
//! more connections than [`MAX_INBOUND`]. Each is dropped without stopping the
//! listener: a proper peer's transaction sent afterwards is still admitted.
//! Then two validators' gossip carries a transaction from one pool to the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, TxKind, U256};
use chain::{BlockTime, Chain, ChainConfig, PoolConfig};
use consensus::gossip::{self, HELLO, HELLO_TIMEOUT, MAX_INBOUND};
use keys::{SecretKey, derive_account, encode_2718, sign_eip1559};
use primitives::tx::MAX_TX_BYTES;
use primitives::{Amount, Bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const CHAIN_ID: u64 = 31337;
const GWEI: u128 = 1_000_000_000;

fn user(i: u32) -> SecretKey {
    derive_account(keys::DEV_MNEMONIC, i).unwrap()
}

fn open(dir: &std::path::Path) -> Arc<Chain> {
    Chain::open(ChainConfig {
        data_dir: dir.to_path_buf(),
        genesis: runtime::Genesis {
            chain_id: CHAIN_ID,
            timestamp: 1_700_000_000,
            alloc: (0..4).map(|i| (user(i).address(), Amount::open(10_000))).collect(),
            params: vec![],
            operators: vec![],
            calls: vec![],
            base_model: None,
        },
        block_time: BlockTime::Manual,
        history: 100,
        pool: PoolConfig::default(),
        max_txs_per_block: 1_000,
    })
    .unwrap()
}

fn transfer(key: &SecretKey, nonce: u64) -> Vec<u8> {
    let t = TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(Address::repeat_byte(0x42)),
        value: U256::from(1u64),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    encode_2718(&sign_eip1559(key, t))
}

fn hello(chain_id: u64) -> Vec<u8> {
    let mut out = HELLO.to_vec();
    out.extend_from_slice(&chain_id.to_be_bytes());
    out
}

fn frame(raw: &[u8]) -> Vec<u8> {
    let mut out = (raw.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(raw);
    out
}

/// Serve gossip for `chain` on a loopback port, sending to `peers`.
async fn serve(chain: &Arc<Chain>, peers: Vec<SocketAddr>) -> (SocketAddr, Vec<JoinHandle<()>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (addr, gossip::start(chain.clone(), listener, peers))
}

/// Connect to `addr` and send `bytes`.
async fn send(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    s
}

/// Whether the server closes `s` (end of stream or reset) within a few seconds.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1];
    matches!(tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

/// Wait until `chain`'s pool holds `n` transactions; whether it did `within` that time.
async fn pool_reaches_within(chain: &Chain, n: usize, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if chain.pool_len() == n {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn pool_reaches(chain: &Chain, n: usize) -> bool {
    pool_reaches_within(chain, n, Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_peers_are_dropped_and_the_listener_serves_on() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let (addr, tasks) = serve(&chain, vec![]).await;
    let k = user(0);

    // Not a gossip peer, another chain, a frame over the bound: the connection ends.
    let mut not_gossip = b"GET / HTTP/1.1\r\n\r\n".to_vec();
    not_gossip.extend(frame(&transfer(&k, 0)));
    assert!(closed_by_server(&mut send(addr, &not_gossip).await).await, "wrong hello");
    let mut other_chain = hello(CHAIN_ID + 1);
    other_chain.extend(frame(&transfer(&k, 0)));
    assert!(closed_by_server(&mut send(addr, &other_chain).await).await, "another chain");
    let mut oversized = hello(CHAIN_ID);
    oversized.extend_from_slice(&(MAX_TX_BYTES as u32 + 1).to_be_bytes());
    assert!(closed_by_server(&mut send(addr, &oversized).await).await, "frame over MAX_TX_BYTES");
    let mut huge = hello(CHAIN_ID);
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(closed_by_server(&mut send(addr, &huge).await).await, "frame of 4 GiB");
    // Truncated: a hello cut short, or a frame whose body never comes before the peer hangs up.
    let mut s = send(addr, &HELLO[..5]).await;
    s.shutdown().await.unwrap();
    assert!(closed_by_server(&mut s).await, "truncated hello");
    let mut cut = hello(CHAIN_ID);
    let whole = frame(&transfer(&k, 0));
    cut.extend_from_slice(&whole[..whole.len() - 1]);
    let mut s = send(addr, &cut).await;
    s.shutdown().await.unwrap();
    assert!(closed_by_server(&mut s).await, "truncated frame");
    assert_eq!(chain.pool_len(), 0, "nothing from those connections reached the pool");

    // Garbage transactions are refused one by one; the peer's connection carries on,
    // so its next, valid transaction is admitted.
    let mut garbage = hello(CHAIN_ID);
    for bad in [&b""[..], &[0x02, 0xc0, 0x01], &[0xff; 64], &transfer(&k, 0)[..100]] {
        garbage.extend(frame(bad));
    }
    let mut s = send(addr, &garbage).await;
    s.write_all(&frame(&transfer(&k, 0))).await.unwrap();
    assert!(pool_reaches(&chain, 1).await, "a valid transaction after garbage is admitted");

    // A proper peer that connects after all of that is served.
    let _peer = send(addr, &[hello(CHAIN_ID), frame(&transfer(&k, 1))].concat()).await;
    assert!(pool_reaches(&chain, 2).await, "the listener still serves");
    assert!(!tasks[0].is_finished(), "the accept loop runs on");
    tasks.iter().for_each(JoinHandle::abort);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_connections_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let (addr, tasks) = serve(&chain, vec![]).await;
    let mut idle = Vec::new();
    for _ in 0..MAX_INBOUND {
        idle.push(send(addr, &hello(CHAIN_ID)).await);
    }
    // The one over the cap is closed at once, and what it sends is not read.
    let mut over = send(addr, &[hello(CHAIN_ID), frame(&transfer(&user(1), 0))].concat()).await;
    assert!(closed_by_server(&mut over).await, "connection {} is refused", MAX_INBOUND + 1);
    assert_eq!(chain.pool_len(), 0);
    // The held connections are still served.
    idle[0].write_all(&frame(&transfer(&user(1), 0))).await.unwrap();
    assert!(pool_reaches(&chain, 1).await, "a connection within the cap is served");
    // Once peers leave, their slots serve new ones.
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _peer = send(addr, &[hello(CHAIN_ID), frame(&transfer(&user(2), 0))].concat()).await;
        if pool_reaches_within(&chain, 2, Duration::from_millis(500)).await {
            break;
        }
        assert!(Instant::now() < deadline, "freed slots never served a new peer");
    }
    assert!(!tasks[0].is_finished());
    tasks.iter().for_each(JoinHandle::abort);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_reaches_the_other_validators_pool() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = (open(da.path()), open(db.path()));
    let (la, lb) = (TcpListener::bind("127.0.0.1:0").await.unwrap(), TcpListener::bind("127.0.0.1:0").await.unwrap());
    let (addr_a, addr_b) = (la.local_addr().unwrap(), lb.local_addr().unwrap());
    let mut tasks = gossip::start(a.clone(), la, vec![addr_b]);
    tasks.extend(gossip::start(b.clone(), lb, vec![addr_a]));

    let hash = a.submit(&transfer(&user(0), 0)).await.unwrap();
    assert!(pool_reaches(&b, 1).await, "A's transaction reached B");
    assert!(b.pool_transaction(&hash).is_some());
    let back = b.submit(&transfer(&user(1), 0)).await.unwrap();
    assert!(pool_reaches(&a, 2).await, "B's transaction reached A");
    assert!(a.pool_transaction(&back).is_some());
    // The echo of a known transaction ends there: no duplicates, nothing more.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!((a.pool_len(), b.pool_len()), (2, 2));
    tasks.iter().for_each(JoinHandle::abort);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_says_hello_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let chain = open(dir.path());
    let (addr, tasks) = serve(&chain, vec![]).await;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 1];
    let waited = tokio::time::timeout(HELLO_TIMEOUT + Duration::from_secs(3), silent.read(&mut buf)).await;
    assert!(matches!(waited, Ok(Ok(0) | Err(_))), "a silent connection holds its slot past {HELLO_TIMEOUT:?}");
    // An empty frame is a keepalive, not a transaction: the connection stays and serves.
    let mut peer =
        send(addr, &[hello(CHAIN_ID), 0u32.to_be_bytes().to_vec(), frame(&transfer(&user(1), 0))].concat()).await;
    assert!(pool_reaches(&chain, 1).await, "the transaction after a keepalive is admitted");
    peer.write_all(&0u32.to_be_bytes()).await.unwrap();
    for t in tasks {
        t.abort();
    }
}
