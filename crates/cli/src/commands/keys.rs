//! `keys new/import/list` (and `keys node ...`), and how commands obtain a signing key.

use std::path::PathBuf;

use anyhow::{Context, bail};
use keys::{KdfParams, Keystore, SecretKey};
use primitives::Address;
use serde_json::json;

use crate::output::Out;

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Kdf {
    /// scrypt n=262144 (geth's default)
    Standard,
    /// scrypt n=4096 (geth's --lightkdf)
    Light,
    /// scrypt n=2: for tests only, offers no protection
    InsecureTest,
}

impl Kdf {
    fn params(self) -> KdfParams {
        match self {
            Kdf::Standard => KdfParams::standard(),
            Kdf::Light => KdfParams::light(),
            Kdf::InsecureTest => KdfParams::insecure_for_tests(),
        }
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct KeystoreArgs {
    /// Keystore directory. Default: ~/.openledger/keystore.
    #[arg(long, env = "OPENLEDGER_KEYSTORE")]
    pub keystore: Option<PathBuf>,
    /// File whose first line is the password (else $OPENLEDGER_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

impl KeystoreArgs {
    pub fn open(&self) -> anyhow::Result<Keystore> {
        let dir = self.keystore.clone().unwrap_or_else(super::default_keystore);
        Keystore::open(&dir).with_context(|| format!("opening keystore {}", dir.display()))
    }

    pub fn password(&self, prompt: &str) -> anyhow::Result<String> {
        read_password(self.password_file.as_deref(), "OPENLEDGER_PASSWORD", prompt)
    }
}

/// A password: the first line of `file`, else the environment variable `env`, else a prompt.
pub fn read_password(file: Option<&std::path::Path>, env: &str, prompt: &str) -> anyhow::Result<String> {
    if let Some(p) = file {
        let s = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        return Ok(s.lines().next().unwrap_or("").to_string());
    }
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    eprint!("{prompt}: ");
    let mut s = String::new();
    std::io::stdin().read_line(&mut s).context("reading the password from standard input")?;
    Ok(s.trim_end_matches(['\r', '\n']).to_string())
}

#[derive(clap::Subcommand, Debug)]
pub enum KeysCmd {
    /// Create a new random account.
    New {
        #[command(flatten)]
        ks: KeystoreArgs,
        #[arg(long, value_enum, default_value = "standard")]
        kdf: Kdf,
    },
    /// Import a private key or a mnemonic account.
    Import {
        #[command(flatten)]
        ks: KeystoreArgs,
        /// Hex private key.
        #[arg(long, conflicts_with = "mnemonic")]
        private_key: Option<String>,
        /// BIP-39 phrase (English word list); its checksum is checked, so a mistyped word is refused.
        #[arg(long)]
        mnemonic: Option<String>,
        /// BIP-39 passphrase of the mnemonic (any Unicode text; default none).
        #[arg(long, env = "OPENLEDGER_MNEMONIC_PASSPHRASE", hide_env_values = true)]
        passphrase: Option<String>,
        /// Account index on m/44'/60'/0'/0/{index}.
        #[arg(long, default_value_t = 0)]
        index: u32,
        #[arg(long, value_enum, default_value = "standard")]
        kdf: Kdf,
    },
    /// List the keystore's accounts.
    List {
        #[command(flatten)]
        ks: KeystoreArgs,
    },
    /// The node's own keys: validator consensus key, serving key, attester key.
    #[command(subcommand)]
    Node(super::node_keys::NodeKeysCmd),
}

pub fn run(c: KeysCmd, out: Out) -> anyhow::Result<()> {
    match c {
        KeysCmd::Node(c) => return super::node_keys::run(c, out),
        KeysCmd::New { ks, kdf } => {
            let store = ks.open()?;
            let pw = ks.password("password for the new key")?;
            let a = store.create(&pw, &kdf.params())?;
            out.print(
                || format!("created {}\nin {}", a.to_checksum(None), store.dir().display()),
                json!({"address": a.to_checksum(None)}),
            );
        }
        KeysCmd::Import { ks, private_key, mnemonic, passphrase, index, kdf } => {
            let key = match (private_key, mnemonic) {
                (Some(k), _) => SecretKey::from_hex(&k)?,
                (None, Some(m)) => {
                    keys::derive_account_with_passphrase(&m, passphrase.as_deref().unwrap_or(""), index)?
                }
                (None, None) => bail!("give --private-key or --mnemonic"),
            };
            let store = ks.open()?;
            let pw = ks.password("password to encrypt the key")?;
            let a = store.import(&key, &pw, &kdf.params())?;
            out.print(|| format!("imported {}", a.to_checksum(None)), json!({"address": a.to_checksum(None)}));
        }
        KeysCmd::List { ks } => {
            let store = ks.open()?;
            let list = store.list()?;
            out.print(
                || {
                    if list.is_empty() {
                        format!("no accounts in {} (create one with `openledger keys new`)", store.dir().display())
                    } else {
                        list.iter().map(|a| a.to_checksum(None)).collect::<Vec<_>>().join("\n")
                    }
                },
                json!(list.iter().map(|a| a.to_checksum(None)).collect::<Vec<_>>()),
            );
        }
    }
    Ok(())
}

/// Who signs: a keystore account or, on a dev chain, a dev account by index.
#[derive(clap::Args, Clone, Debug)]
pub struct SignerArgs {
    /// Sender: an address in the keystore.
    #[arg(long, conflicts_with = "dev_account")]
    pub from: Option<Address>,
    /// Sender: dev account N of the standard test mnemonic (dev chains only).
    #[arg(long)]
    pub dev_account: Option<u32>,
    #[command(flatten)]
    pub ks: KeystoreArgs,
}

impl SignerArgs {
    pub fn key(&self) -> anyhow::Result<SecretKey> {
        match (self.from, self.dev_account) {
            (_, Some(i)) => Ok(keys::derive_account(keys::DEV_MNEMONIC, i)?),
            (Some(a), None) => {
                let store = self.ks.open()?;
                let pw = self.ks.password(&format!("password for {}", a.to_checksum(None)))?;
                Ok(store.load(&a, &pw)?)
            }
            (None, None) => bail!("give --from ADDRESS (keystore) or --dev-account N"),
        }
    }
}

impl SignerArgs {
    /// Dev account `i` of the standard test mnemonic (dev chains only).
    pub fn dev(i: u32) -> SignerArgs {
        SignerArgs { from: None, dev_account: Some(i), ks: KeystoreArgs { keystore: None, password_file: None } }
    }
}
