//! A real browser for the web app: headless Chromium driven over WebDriver
//! (Debian's `chromium` and `chromium-driver`; `scripts/browser/setup`
//! installs them and fetches axe-core), a wallet the page reaches through an
//! injected EIP-1193 provider, and axe-core's accessibility check of a page.
//!
//! Without Chromium the browser tests say so and pass, unless
//! `OPENLEDGER_BROWSER_TEST=require` (what `.ci/run` sets): then a missing
//! browser fails them. Screenshots go to `target/browser/screenshots/`.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use keys::SecretKey;
use rpc::client::RpcClient;
use rpc::http::HttpClient;
use serde_json::{Value, json};

/// The W3C WebDriver key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the setup script puts axe-core (`scripts/browser/setup --axe-path`).
fn axe_path() -> PathBuf {
    std::env::var_os("OPENLEDGER_AXE")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target/browser/axe-core-4.14.1/axe.min.js"))
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| PathBuf::from(d).join(name)).find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One headless Chromium session; the browser and its driver end on drop.
pub struct Browser {
    driver: Child,
    http: HttpClient,
    session: String,
    _profile: tempfile::TempDir,
    axe: Option<String>,
}

impl Browser {
    /// A browser, or `None` (with the reason printed) when this machine has
    /// none and the run does not require one.
    pub fn start() -> Option<Browser> {
        let required = std::env::var("OPENLEDGER_BROWSER_TEST").is_ok_and(|v| v == "require");
        let (Some(driver), Some(_)) = (on_path("chromedriver"), on_path("chromium")) else {
            assert!(!required, "OPENLEDGER_BROWSER_TEST=require but chromium or chromedriver is missing");
            eprintln!("browser test skipped: no chromium/chromedriver (run scripts/browser/setup)");
            return None;
        };
        let axe = std::fs::read_to_string(axe_path()).ok();
        assert!(axe.is_some() || !required, "no axe-core at {} (run scripts/browser/setup)", axe_path().display());
        let port = free_port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = HttpClient::new(&format!("127.0.0.1:{port}"))
            .with_timeout(Duration::from_secs(120))
            .with_max_body(256 << 20);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.request("GET", "/status", &[], b"")
                && serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v["value"]["ready"] == true)
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser { driver, http, session: String::new(), _profile: profile, axe };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                format!("--user-data-dir={}", b._profile.path().display()),
            ]},
        }}});
        let v = b.raw("POST", "/session", caps);
        b.session = v["sessionId"].as_str().expect("a WebDriver session").to_string();
        b.raw("POST", &format!("/session/{}/timeouts", b.session), json!({"script": 60_000, "pageLoad": 60_000}));
        Some(b)
    }

    fn raw(&self, method: &str, path: &str, body: Value) -> Value {
        let bytes = if method == "GET" || method == "DELETE" { vec![] } else { body.to_string().into_bytes() };
        let headers = [("content-type", "application/json".to_string())];
        let r = self.http.request(method, path, &headers, &bytes).unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let v: Value = serde_json::from_slice(&r.body).unwrap_or_else(|_| panic!("WebDriver {path}: {}", r.text()));
        assert_eq!(r.status, 200, "WebDriver {method} {path}: {}", v["value"]);
        v["value"].clone()
    }

    fn cmd(&self, method: &str, path: &str, body: Value) -> Value {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Resize the browser's window (CSS pixels).
    pub fn set_window(&self, width: u32, height: u32) {
        self.cmd("POST", "/window/rect", json!({ "width": width, "height": height }));
    }

    /// Open `url` and wait for the page to load.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", json!({ "url": url }));
    }

    pub fn url(&self) -> String {
        self.cmd("GET", "/url", json!({})).as_str().unwrap_or_default().to_string()
    }

    /// Run `script` (a function body; `arguments` holds `args`) in the page.
    pub fn exec(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Run `script`, which calls `arguments[arguments.length - 1]` with its result.
    pub fn exec_async(&self, script: &str, args: Value) -> Value {
        self.cmd("POST", "/execute/async", json!({ "script": script, "args": args }))
    }

    fn element(&self, css: &str) -> Option<String> {
        let path = format!("/session/{}/element", self.session);
        let body = json!({"using": "css selector", "value": css}).to_string();
        let r =
            self.http.request("POST", &path, &[("content-type", "application/json".into())], body.as_bytes()).ok()?;
        let v: Value = serde_json::from_slice(&r.body).ok()?;
        v["value"][ELEMENT].as_str().map(str::to_string)
    }

    /// The first element matching `css`, waited for up to `secs`.
    pub fn wait_for(&self, css: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.element(css) {
                return e;
            }
            assert!(Instant::now() < deadline, "no {css} after {secs} s on {}: {}", self.url(), self.body_text());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until the JavaScript expression `expr` is truthy in the page; its value.
    pub fn wait_until(&self, expr: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.exec(&format!("try {{ return ({expr}); }} catch (e) {{ return null; }}"), json!([]));
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            assert!(Instant::now() < deadline, "not {expr} after {secs} s on {}: {}", self.url(), self.body_text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn click(&self, css: &str) {
        let e = self.wait_for(css, 10);
        self.cmd("POST", &format!("/element/{e}/click"), json!({}));
    }

    /// Type `text` into the field `css` (after clearing it); for a file input, `text` is a path.
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.wait_for(css, 10);
        let is_file = self.exec("return arguments[0].type === 'file';", json!([{ ELEMENT: e }])) == true;
        if !is_file {
            self.cmd("POST", &format!("/element/{e}/clear"), json!({}));
        }
        self.cmd("POST", &format!("/element/{e}/value"), json!({ "text": text }));
    }

    pub fn text(&self, css: &str) -> String {
        let e = self.wait_for(css, 10);
        self.cmd("GET", &format!("/element/{e}/text"), json!({})).as_str().unwrap_or_default().to_string()
    }

    pub fn body_text(&self) -> String {
        let v = self.exec("return document.body ? document.body.innerText : '';", json!([]));
        let s = v.as_str().unwrap_or_default();
        s.chars().take(2000).collect()
    }

    /// Save a PNG of the viewport as `target/browser/screenshots/<name>.png`; its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        self.save_png(name, self.cmd("GET", "/screenshot", json!({})))
    }

    /// A PNG of the first element matching `css` only (scrolled into view), saved as [`Browser::screenshot`] does.
    pub fn screenshot_of(&self, css: &str, name: &str) -> PathBuf {
        let e = self.wait_for(css, 10);
        self.save_png(name, self.cmd("GET", &format!("/element/{e}/screenshot"), json!({})))
    }

    fn save_png(&self, name: &str, b64: Value) -> PathBuf {
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = workspace_root().join("target/browser/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// axe-core's violations on the current page (WCAG 2.x A and AA rules and
    /// axe's best practices), as `"<rule> (<impact>): <n> nodes, e.g. <target>"`;
    /// empty when axe-core is not installed and not required.
    pub fn axe(&self) -> Vec<String> {
        let Some(src) = &self.axe else { return vec![] };
        let injected = self.exec("return typeof window.axe === 'object';", json!([])) == true;
        if !injected {
            self.exec(src, json!([]));
        }
        let v = self.exec_async(
            "var done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']})
               .then(function (r) { done(r.violations.map(function (v) {
                 return {id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,
                         target: v.nodes[0] ? String(v.nodes[0].target) : '',
                         html: v.nodes[0] ? v.nodes[0].html.slice(0, 200) : ''};
               })); })
               .catch(function (e) { done({error: String(e)}); });",
            json!([]),
        );
        assert!(v.get("error").is_none(), "axe failed: {v}");
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                format!(
                    "{} ({}): {} — {} node(s), e.g. {} {}",
                    x["id"].as_str().unwrap_or(""),
                    x["impact"].as_str().unwrap_or("?"),
                    x["help"].as_str().unwrap_or(""),
                    x["nodes"],
                    x["target"].as_str().unwrap_or(""),
                    x["html"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Give the current page `wallet` as its `window.ethereum` (an EIP-1193
    /// provider), announced with the `ethereum#initialized` event as wallet
    /// extensions do. Pages lose it when they navigate: call again after.
    pub fn inject_wallet(&self, wallet: &Wallet) {
        self.exec(
            "var url = arguments[0];
             window.ethereum = {
               isOpenLedgerTestWallet: true,
               request: function (a) {
                 return fetch(url, {method: 'POST', headers: {'content-type': 'text/plain'},
                   body: JSON.stringify({jsonrpc: '2.0', id: 1, method: a.method, params: a.params || []})})
                   .then(function (r) { return r.json(); })
                   .then(function (j) {
                     if (j.error) { var e = new Error(j.error.message); e.code = j.error.code; throw e; }
                     return j.result;
                   });
               },
               on: function () {}, removeListener: function () {}
             };
             window.dispatchEvent(new Event('ethereum#initialized'));",
            json!([wallet.url()]),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.http.request("DELETE", &format!("/session/{}", self.session), &[], b"");
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A browser wallet outside the page, as an extension is: it holds one key,
/// answers the page's EIP-1193 requests over loopback HTTP, signs
/// (`personal_sign`, `eth_sendTransaction`) with its key and passes every
/// other request to the node's JSON-RPC. It logs what it was asked.
pub struct Wallet {
    addr: String,
    pub asked: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Wallet {
    pub fn start(key: SecretKey, node_rpc: &str) -> Wallet {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (rpc, log, key) = (node_rpc.to_string(), asked.clone(), Arc::new(key));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (rpc, log, key) = (rpc.clone(), log.clone(), key.clone());
                std::thread::spawn(move || {
                    let _ = serve_wallet(stream, &rpc, &key, &log);
                });
            }
        });
        Wallet { addr, asked }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn asked(&self, method: &str) -> usize {
        self.asked.lock().unwrap().iter().filter(|m| *m == method).count()
    }
}

fn serve_wallet(
    stream: TcpStream,
    rpc: &str,
    key: &SecretKey,
    log: &std::sync::Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    let mut request_line = String::new();
    r.read_line(&mut request_line)?;
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        r.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let cors = "Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Headers: content-type\r\nAccess-Control-Allow-Methods: POST\r\n";
    if request_line.starts_with("OPTIONS") {
        return write!(w, "HTTP/1.1 204 No Content\r\n{cors}Content-Length: 0\r\nConnection: close\r\n\r\n");
    }
    let mut body = vec![0u8; len.min(1 << 20)];
    r.read_exact(&mut body)?;
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let method = req["method"].as_str().unwrap_or("").to_string();
    log.lock().unwrap().push(method.clone());
    let answer = match wallet_answer(&method, &req["params"], rpc, key) {
        Ok(result) => json!({"jsonrpc": "2.0", "id": req["id"], "result": result}),
        Err(message) => json!({"jsonrpc": "2.0", "id": req["id"], "error": {"code": 4001, "message": message}}),
    };
    let text = answer.to_string();
    write!(
        w,
        "HTTP/1.1 200 OK\r\n{cors}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    )
}

fn wallet_answer(method: &str, params: &Value, rpc: &str, key: &SecretKey) -> Result<Value, String> {
    let me = format!("{:#x}", key.address());
    let mut node = RpcClient::new(rpc);
    match method {
        "eth_accounts" | "eth_requestAccounts" => Ok(json!([me])),
        "personal_sign" => {
            let (data, who) = (params[0].as_str().unwrap_or(""), params[1].as_str().unwrap_or(""));
            if !who.eq_ignore_ascii_case(&me) {
                return Err(format!("this wallet holds {me}, not {who}"));
            }
            let msg = match data.strip_prefix("0x") {
                Some(h) => hex::decode(h).map_err(|e| format!("personal_sign data: {e}"))?,
                None => data.as_bytes().to_vec(),
            };
            Ok(json!(format!("0x{}", hex::encode(key.sign_message(&msg).as_bytes()))))
        }
        "eth_sendTransaction" => {
            let tx = &params[0];
            if !tx["from"].as_str().is_some_and(|f| f.eq_ignore_ascii_case(&me)) {
                return Err(format!("this wallet holds {me}, not {}", tx["from"]));
            }
            let to: primitives::Address = tx["to"].as_str().ok_or("no to")?.parse().map_err(|e| format!("to: {e}"))?;
            let hexnum = |v: &Value| v.as_str().map(|s| u128::from_str_radix(s.trim_start_matches("0x"), 16));
            let value = hexnum(&tx["value"]).transpose().map_err(|e| format!("value: {e}"))?.unwrap_or(0);
            let data = hex::decode(tx["data"].as_str().unwrap_or("0x").trim_start_matches("0x"))
                .map_err(|e| format!("data: {e}"))?;
            let nonce = node.call("eth_getTransactionCount", json!([me, "pending"])).map_err(|e| e.to_string())?;
            let gas = node
                .call(
                    "eth_estimateGas",
                    json!([{"from": me, "to": tx["to"], "data": tx["data"], "value": tx["value"]}]),
                )
                .map_err(|e| e.to_string())?;
            let (nonce, gas) = (crate::common::hex_u(&nonce) as u64, crate::common::hex_u(&gas) as u64);
            let raw = crate::common::signed(key, nonce, to, value, data, gas + gas / 5);
            node.call("eth_sendRawTransaction", json!([format!("0x{}", hex::encode(raw))])).map_err(|e| e.to_string())
        }
        _ => node.call(method, params.clone()).map_err(|e| e.to_string()),
    }
}
