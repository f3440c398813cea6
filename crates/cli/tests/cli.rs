//! The CLI as a user drives it: keys, transfers, queries, init/start, replay.

mod common;
/// `openledger sim` (`parts/sim.rs`): in this binary rather than one of its own.
#[path = "parts/sim.rs"]
mod sim;

use common::*;
use serde_json::{Value, json};

#[test]
fn keys_transfer_query_and_proof() {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("keystore");
    let ks = ks.to_str().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let pw = pw.to_str().unwrap();

    let v: Value = serde_json::from_str(&cli_ok(&[
        "--json",
        "keys",
        "new",
        "--keystore",
        ks,
        "--password-file",
        pw,
        "--kdf",
        "insecure-test",
    ]))
    .unwrap();
    let mine = v["address"].as_str().unwrap().to_string();
    let dev1 = dev(1);
    let v: Value = serde_json::from_str(&cli_ok(&[
        "--json",
        "keys",
        "import",
        "--keystore",
        ks,
        "--password-file",
        pw,
        "--kdf",
        "insecure-test",
        "--private-key",
        &dev1.to_hex(),
    ]))
    .unwrap();
    assert_eq!(v["address"].as_str().unwrap(), dev1.address().to_checksum(None));
    let list: Value = serde_json::from_str(&cli_ok(&["--json", "keys", "list", "--keystore", ks])).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // Importing the same key again is refused.
    assert!(
        !cli(&[
            "keys",
            "import",
            "--keystore",
            ks,
            "--password-file",
            pw,
            "--kdf",
            "insecure-test",
            "--private-key",
            &dev1.to_hex()
        ])
        .status
        .success()
    );

    let data = dir.path().join("chain");
    let node = NodeProc::start(&data, &["--instant"]);
    let rpc = node.rpc.clone();
    // From a dev account, then from the keystore account.
    cli_ok(&["tx", "transfer", "--dev-account", "0", "--to", &mine, "--amount", "2.5", "--rpc", &rpc]);
    let out = cli_ok(&[
        "--json",
        "tx",
        "transfer",
        "--from",
        &mine,
        "--keystore",
        ks,
        "--password-file",
        pw,
        "--to",
        &dev(3).address().to_string(),
        "--amount",
        "1",
        "--rpc",
        &rpc,
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["receipt"]["status"], json!("0x1"));
    // A wrong password is refused and sends nothing.
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "nope\n").unwrap();
    let o = cli(&[
        "tx",
        "transfer",
        "--from",
        &mine,
        "--keystore",
        ks,
        "--password-file",
        bad.to_str().unwrap(),
        "--to",
        &mine,
        "--amount",
        "1",
        "--rpc",
        &rpc,
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).to_lowercase().contains("password"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let v: Value = serde_json::from_str(&cli_ok(&["--json", "query", "balance", &mine, "--rpc", &rpc])).unwrap();
    let bal: u128 = v["balance"].as_str().unwrap().parse().unwrap();
    let fee = 21_000u128 * 2 * GWEI; // at most
    assert!(bal < 3 * primitives::ONE_OPEN / 2 && bal >= 3 * primitives::ONE_OPEN / 2 - fee, "{bal}");
    assert_eq!(v["nonce"], json!(1));
    let v: Value = serde_json::from_str(&cli_ok(&["--json", "query", "proof", &mine, "--rpc", &rpc])).unwrap();
    assert_eq!(v["verified"], json!(true));
    assert_eq!(v["balance"].as_str().unwrap().parse::<u128>().unwrap(), bal);
    let v: Value = serde_json::from_str(&cli_ok(&["--json", "query", "params", "--rpc", &rpc])).unwrap();
    assert_eq!(v["fee.treasury_bps"], json!("2000"));
    let v: Value = serde_json::from_str(&cli_ok(&["--json", "query", "supply", "--rpc", &rpc])).unwrap();
    // Ten dev accounts of 10,000 OPEN, the dev serving operator's 2,000 and the verifier relayer's 100.
    let genesis_total: u128 = node::dev_genesis().alloc.iter().map(|(_, a)| a.0).sum();
    let open = 10u128 * 10_000 + 2 * node::DEV_SERVING_BOND_OPEN as u128 + node::DEV_RELAYER_OPEN as u128;
    assert_eq!(genesis_total, open * primitives::ONE_OPEN);
    assert_eq!(v["total"], json!(genesis_total.to_string()));
    let human = cli_ok(&["query", "block", "--rpc", &rpc]);
    assert!(human.contains("state root"), "{human}");
    // Insufficient funds are explained.
    let o = cli(&[
        "tx",
        "transfer",
        "--from",
        &mine,
        "--keystore",
        ks,
        "--password-file",
        pw,
        "--to",
        &mine,
        "--amount",
        "5000",
        "--rpc",
        &rpc,
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("insufficient funds"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    node.stop();
    // Unreachable node: a clear message.
    let o = cli(&["query", "balance", &mine, "--rpc", &rpc]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot reach"), "{}", String::from_utf8_lossy(&o.stderr));
    let out = cli_ok(&["debug", "replay", "--data-dir", data.to_str().unwrap()]);
    assert!(out.contains("match"), "{out}");
}

/// `keys import --mnemonic` into a fresh keystore: the address, or the failed output.
fn import_mnemonic(phrase: &str, extra: &[&str]) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let ks = dir.path().join("keystore");
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "pw\n").unwrap();
    let mut args = vec!["--json", "keys", "import", "--keystore", ks.to_str().unwrap()];
    args.extend(["--password-file", pw.to_str().unwrap(), "--kdf", "insecure-test", "--mnemonic", phrase]);
    args.extend_from_slice(extra);
    let o = cli(&args);
    if !o.status.success() {
        return Err(format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)));
    }
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    Ok(v["address"].as_str().unwrap().to_string())
}

#[test]
fn keys_import_mnemonic_checks_the_checksum() {
    // The standard test vector still derives.
    assert_eq!(import_mnemonic(keys::DEV_MNEMONIC, &[]).unwrap(), "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
    assert_eq!(
        import_mnemonic(keys::DEV_MNEMONIC, &["--index", "1"]).unwrap(),
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
    );
    // One word changed to another word of the list: the checksum no longer holds.
    let typo = keys::DEV_MNEMONIC.replace("junk", "test");
    let err = import_mnemonic(&typo, &[]).unwrap_err();
    assert!(err.contains("invalid mnemonic") && err.contains("checksum"), "{err}");
    let err = import_mnemonic(&keys::DEV_MNEMONIC.replace("junk", "junc"), &[]).unwrap_err();
    assert!(err.contains("word 12 is not in the BIP-39 English word list"), "{err}");
}

#[test]
fn keys_import_mnemonic_with_a_unicode_passphrase() {
    // Composed and decomposed spellings are one passphrase after NFKD.
    let composed = import_mnemonic(keys::DEV_MNEMONIC, &["--passphrase", "p\u{e4}ssw\u{f6}rd \u{1f511}"]).unwrap();
    let decomposed =
        import_mnemonic(keys::DEV_MNEMONIC, &["--passphrase", "pa\u{308}sswo\u{308}rd \u{1f511}"]).unwrap();
    assert_eq!(composed, decomposed);
    let expected = keys::derive_account_with_passphrase(keys::DEV_MNEMONIC, "p\u{e4}ssw\u{f6}rd \u{1f511}", 0).unwrap();
    assert_eq!(composed, expected.address().to_checksum(None));
    assert_ne!(composed, "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
}

#[test]
fn init_then_start_from_config() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("g.json");
    let who = dev(5).address();
    std::fs::write(
        &genesis,
        format!(
            r#"{{"chainId": 4242, "timestamp": 1, "alloc": {{"{who}": "7"}}, "params": {{"fee.treasury_bps": "500"}}}}"#
        ),
    )
    .unwrap();
    let data = dir.path().join("node");
    cli_ok(&[
        "init",
        "--data-dir",
        data.to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
        "--http-addr",
        "127.0.0.1:0",
        "--rpc-addr",
        "127.0.0.1:0",
        "--block-time",
        "0",
    ]);
    assert!(!cli(&["init", "--data-dir", data.to_str().unwrap()]).status.success(), "init must not overwrite");
    let child = std::process::Command::new(bin())
        .args(["start", "--data-dir", data.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let node = NodeProc::attach(child, &data);
    let mut c = node.client();
    assert_eq!(c.chain_id().unwrap(), 4242);
    assert_eq!(c.balance(&who).unwrap(), primitives::U256::from(7u128 * primitives::ONE_OPEN));
    let v: Value = serde_json::from_str(&cli_ok(&["--json", "query", "params", "--rpc", &node.rpc])).unwrap();
    assert_eq!(v["fee.treasury_bps"], json!("500"));
    node.kill9();
    // A broken genesis file is refused with its path.
    std::fs::write(&genesis, r#"{"chainId": 1, "alloc": {"nope": "1"}}"#).unwrap();
    let o = cli(&[
        "init",
        "--data-dir",
        dir.path().join("other").to_str().unwrap(),
        "--genesis",
        genesis.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an address"));
}

/// A one-shot loopback server that answers each request with `events` as a
/// chunked `text/event-stream` cut into `piece`-byte chunks (so events and
/// lines are split across chunks, as proxies and slow writers do).
fn chunked_sse_server(
    events: &'static str,
    piece: usize,
    requests: usize,
) -> (String, std::thread::JoinHandle<Vec<String>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = std::thread::spawn(move || {
        let mut heads = Vec::new();
        for conn in listener.incoming().take(requests) {
            let mut r = BufReader::new(conn.unwrap());
            let (mut head, mut len) = (String::new(), 0usize);
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            r.read_exact(&mut vec![0; len]).unwrap();
            heads.push(head);
            let mut s = r.into_inner();
            // The client may hang up as soon as it has read `data: [DONE]`, before
            // the last chunk's end and the terminal chunk: a write failing then is
            // its right, and a failure earlier fails the client, so the test.
            let _ = (|| -> std::io::Result<()> {
                s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
                )?;
                for chunk in events.as_bytes().chunks(piece) {
                    s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                    s.write_all(chunk)?;
                    s.write_all(b"\r\n")?;
                    s.flush()?;
                }
                s.write_all(b"0\r\n\r\n")
            })();
        }
        heads
    });
    (addr, server)
}

#[test]
fn infer_stream_reads_events_split_across_chunks() {
    const EVENTS: &str = concat!(
        ": keep-alive\r\n\r\n",
        "data: {\"choices\":[{\"text\":\"Hel\"}]}\r\n\r\n",
        "data: {\"choices\":[{\"text\":\"lo, chunks\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"completion_tokens\":2},\"receipt\":{\"hash\":\"0xabc\"}}\r\n\r\n",
        "data: [DONE]\r\n\r\n",
    );
    let (addr, server) = chunked_sse_server(EVENTS, 7, 2);
    let args = ["infer", "m1", "hi", "--completion", "--stream", "--api-key", "ol-test", "--http", &addr];
    let json: Value = serde_json::from_str(&cli_ok(&[&["--json"][..], &args[..]].concat())).unwrap();
    assert_eq!(json["usage"]["completion_tokens"], 2);
    assert_eq!(json["receipt"]["hash"], "0xabc");
    let text = cli_ok(&args);
    assert!(text.starts_with("Hello, chunks\n"), "{text}");
    assert!(text.contains("[2 tokens out; receipt 0xabc]"), "{text}");
    let heads = server.join().unwrap();
    assert!(heads[0].starts_with("POST /v1/completions HTTP/1.1\r\n"), "{}", heads[0]);
    assert!(heads[0].to_ascii_lowercase().contains("authorization: bearer ol-test"), "{}", heads[0]);
}
