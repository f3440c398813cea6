//! Every file the node or the CLI writes that holds a secret (a private key, an API
//! key) is owner-only (mode 0600) from its creation: `init`, `up` (the dev API key),
//! `keys new`, `keys node new` and `apikey new`, each run for real, then every file
//! they wrote is stat'ed.

#![cfg(unix)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A file holds a secret when it holds an API key we made or an encrypted key.
fn holds_secret(p: &Path, api_keys: &[String]) -> bool {
    let Ok(text) = std::fs::read_to_string(p) else { return false };
    api_keys.iter().any(|k| text.contains(k.as_str())) || text.contains("\"ciphertext\"")
}

#[test]
fn secrets_are_owner_only_from_creation() {
    // Whatever the test runner's umask, a secret must not inherit it.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let home = tmp.path().join("home");
    let keystore = tmp.path().join("keystore");
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "test password\n").unwrap();
    let pw = pw.to_str().unwrap();

    cli_ok(&["init", "--data-dir", data.to_str().unwrap()]);
    // init wrote the genesis and the config; neither holds a secret, and the data
    // directory must not get in the way of `up` below.
    std::fs::remove_file(data.join("openledger.toml")).unwrap();

    cli_ok(&["keys", "new", "--keystore", keystore.to_str().unwrap(), "--password-file", pw, "--kdf", "insecure-test"]);
    for kind in ["attester", "serving", "consensus"] {
        cli_ok(&[
            "keys",
            "node",
            "new",
            kind,
            "--data-dir",
            data.to_str().unwrap(),
            "--password-file",
            pw,
            "--kdf",
            "insecure-test",
        ]);
    }

    // `up` with serving writes the dev API key.
    let node = NodeProc::start_serving(&data, &["--instant"]);
    let key_file = data.join("dev-api-key");
    let deadline = Instant::now() + Duration::from_secs(120);
    let dev_key = loop {
        if let Ok(k) = std::fs::read_to_string(&key_file)
            && !k.trim().is_empty()
        {
            break k.trim().to_string();
        }
        assert!(Instant::now() < deadline, "no dev API key written");
        std::thread::sleep(Duration::from_millis(50));
    };
    // `apikey new` keeps the key it makes under $OPENLEDGER_HOME/api-keys.
    let o = std::process::Command::new(bin())
        .args(["apikey", "new", "--dev-account", "2", "--rpc", &format!("http://{}", node.rpc), "--json"])
        .env("OPENLEDGER_HOME", &home)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(o.status.success(), "apikey new: {}", String::from_utf8_lossy(&o.stderr));
    let made: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let made_key = made["key"].as_str().unwrap().to_string();
    node.stop();

    assert_eq!(mode(&key_file), 0o600, "{}", key_file.display());
    let api_keys = [dev_key, made_key];
    let mut files = Vec::new();
    for d in [&data, &home, &keystore] {
        files_under(d, &mut files);
    }
    let secrets: Vec<&PathBuf> = files.iter().filter(|p| holds_secret(p, &api_keys)).collect();
    // The dev API key, 3 node keys, 1 keystore account, 1 API key file at least.
    assert!(secrets.len() >= 6, "{secrets:?}");
    for p in secrets {
        assert_eq!(mode(p), 0o600, "{} holds a secret but has mode {:o}", p.display(), mode(p));
    }
}
