//! A TCP proxy per directed link: node i dials its peer j only through the
//! proxy (i→j), which forwards to j's real port. The harness cuts a link
//! (existing connections closed, new ones closed at once, nothing forwarded),
//! heals it, or delays what it forwards; it counts the bytes it forwarded so a
//! test can check that a cut link carries nothing.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The state of one link, shared by its proxy's threads and the harness.
#[derive(Default)]
pub struct Link {
    cut: AtomicBool,
    delay_ms: AtomicU64,
    bytes: AtomicU64,
    closed: AtomicBool,
    conns: Mutex<Vec<TcpStream>>,
}

impl Link {
    /// Close every connection and refuse new ones until [`Link::heal`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.close_all();
    }

    pub fn heal(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    pub fn is_cut(&self) -> bool {
        self.cut.load(Ordering::SeqCst)
    }

    /// Hold every chunk this long before forwarding it (0: no delay).
    pub fn set_delay(&self, d: Duration) {
        self.delay_ms.store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Bytes forwarded so far, both directions.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    fn close_all(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    fn stopped(&self) -> bool {
        self.cut.load(Ordering::SeqCst) || self.closed.load(Ordering::SeqCst)
    }
}

/// A running proxy: a listener on a loopback port the system picked, forwarding to `target`.
pub struct Proxy {
    pub listen: SocketAddr,
    pub link: Arc<Link>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let listen = listener.local_addr()?;
        let link = Arc::new(Link::default());
        let l = link.clone();
        std::thread::spawn(move || accept_loop(listener, target, l));
        Ok(Proxy { listen, link })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.link.closed.store(true, Ordering::SeqCst);
        self.link.close_all();
        // Wake the accept loop so that its thread ends.
        let _ = TcpStream::connect_timeout(&self.listen, Duration::from_millis(200));
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, link: Arc<Link>) {
    for inbound in listener.incoming() {
        if link.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(inbound) = inbound else { continue };
        if link.is_cut() {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            let _ = inbound.shutdown(Shutdown::Both);
            continue;
        };
        let _ = inbound.set_nodelay(true);
        let _ = outbound.set_nodelay(true);
        let clones = (inbound.try_clone(), outbound.try_clone(), inbound.try_clone(), outbound.try_clone());
        let (Ok(in2), Ok(out2), Ok(in3), Ok(out3)) = clones else { continue };
        {
            let mut conns = link.conns.lock().unwrap();
            // A cut that raced with this accept must not miss the new connection.
            if link.is_cut() {
                continue;
            }
            conns.retain(|c| c.peer_addr().is_ok());
            conns.push(in3);
            conns.push(out3);
        }
        let l = link.clone();
        std::thread::spawn(move || pump(inbound, outbound, &l));
        let l = link.clone();
        std::thread::spawn(move || pump(out2, in2, &l));
    }
}

/// Copy `from` to `to` until either side closes or the link is cut.
fn pump(mut from: TcpStream, mut to: TcpStream, link: &Link) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let delay = link.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        if link.stopped() || to.write_all(&buf[..n]).is_err() {
            break;
        }
        link.bytes.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
