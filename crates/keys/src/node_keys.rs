//! A node's own keys, encrypted at rest like user keys, in one directory
//! (by default `<data-dir>/node-keys`):
//!
//! * `consensus.json`: the validator's ed25519 consensus key (its 32-byte seed);
//! * `serving.json`: the serving operator's secp256k1 key (signs receipts);
//! * `attester.json`: the ingest attester's secp256k1 key.
//!
//! Every file is a Web3 Secret Storage (version 3) file: scrypt, AES-128-CTR
//! and the keccak MAC of [`encrypt_keystore`](crate::encrypt_keystore). The
//! secp256k1 ones are ordinary keystore files (with their `address`), readable
//! by geth and ethers; the ed25519 one encrypts the seed the same way and names
//! `"kind": "ed25519"` and its `"publicKey"`. Each file also says its `"role"`.
//!
//! Rotation writes a fresh key and keeps the previous file as
//! `<name>.<unix-time>.old.json`, so a rotation the chain refused can be undone
//! ([`NodeKeys::restore_previous`]) and old keys stay available for evidence.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_primitives::{Address, B256, hex};
use zeroize::Zeroizing;

use crate::keystore::{KeyFile, encrypt_secret, write_atomic};
use crate::{ConsensusKey, KdfParams, KeyError, SecretKey, decrypt_keystore};

/// Which of the node's keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NodeKeyKind {
    /// The validator's ed25519 consensus key.
    Consensus,
    /// The serving operator's secp256k1 key.
    Serving,
    /// The ingest attester's secp256k1 key.
    Attester,
}

impl NodeKeyKind {
    /// Every kind, in listing order.
    pub const ALL: [NodeKeyKind; 3] = [NodeKeyKind::Consensus, NodeKeyKind::Serving, NodeKeyKind::Attester];

    /// "consensus", "serving" or "attester".
    pub const fn name(self) -> &'static str {
        match self {
            NodeKeyKind::Consensus => "consensus",
            NodeKeyKind::Serving => "serving",
            NodeKeyKind::Attester => "attester",
        }
    }

    /// The file holding the current key: `<name>.json`.
    pub fn file_name(self) -> String {
        format!("{}.json", self.name())
    }

    /// Whether the key is ed25519 (else secp256k1).
    pub const fn is_ed25519(self) -> bool {
        matches!(self, NodeKeyKind::Consensus)
    }

    /// The curve, as the files' `"kind"` field spells it.
    pub const fn curve(self) -> &'static str {
        if self.is_ed25519() { "ed25519" } else { "secp256k1" }
    }
}

impl fmt::Display for NodeKeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NodeKeyKind {
    type Err = NodeKeyError;
    fn from_str(s: &str) -> Result<Self, NodeKeyError> {
        NodeKeyKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| NodeKeyError::UnknownKind(s.to_string()))
    }
}

/// The public identity of a node key: what the chain registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NodeKeyId {
    /// An ed25519 public key (staking's `consensusKey`).
    Ed25519(B256),
    /// A secp256k1 key's address (staking's `servingKey`, an attester's address).
    Secp256k1(Address),
}

impl NodeKeyId {
    /// The ed25519 public key, if this is one.
    pub fn public_key(&self) -> Option<B256> {
        match self {
            NodeKeyId::Ed25519(k) => Some(*k),
            NodeKeyId::Secp256k1(_) => None,
        }
    }
    /// The secp256k1 address, if this is one.
    pub fn address(&self) -> Option<Address> {
        match self {
            NodeKeyId::Ed25519(_) => None,
            NodeKeyId::Secp256k1(a) => Some(*a),
        }
    }
}

/// `0x`-prefixed hex: the public key, or the checksummed address.
impl fmt::Display for NodeKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeKeyId::Ed25519(k) => write!(f, "{k}"),
            NodeKeyId::Secp256k1(a) => write!(f, "{}", a.to_checksum(None)),
        }
    }
}

/// Why a node-key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeKeyError {
    #[error("unknown node key kind {0:?} (expected consensus, serving or attester)")]
    UnknownKind(String),
    #[error("a {kind} key already exists at {}; rotate it instead", path.display())]
    AlreadyExists { kind: NodeKeyKind, path: PathBuf },
    #[error("no {kind} key at {}; create one first", path.display())]
    Missing { kind: NodeKeyKind, path: PathBuf },
    #[error("{} holds no previous {kind} key to restore", dir.display())]
    NoPrevious { kind: NodeKeyKind, dir: PathBuf },
    #[error("the {kind} key is {curve}, not what was asked for")]
    WrongCurve { kind: NodeKeyKind, curve: &'static str },
    #[error("{}: {err}", path.display())]
    File { path: PathBuf, err: KeyError },
    #[error(transparent)]
    Key(#[from] KeyError),
}

impl NodeKeyError {
    /// Whether the password failed the file's MAC check.
    pub fn is_wrong_password(&self) -> bool {
        matches!(
            self,
            NodeKeyError::Key(KeyError::WrongPassword) | NodeKeyError::File { err: KeyError::WrongPassword, .. }
        )
    }
}

fn io(e: std::io::Error) -> NodeKeyError {
    NodeKeyError::Key(KeyError::Io(e))
}

/// A fresh key of `kind`: the JSON text of its file and its identity.
fn new_key_file(kind: NodeKeyKind, password: &str, kdf: &KdfParams) -> (String, NodeKeyId) {
    let (mut file, id) = if kind.is_ed25519() {
        let key = ConsensusKey::random();
        let seed = Zeroizing::new(key.seed());
        let mut file = encrypt_secret(&seed, password, kdf);
        file.public_key = Some(hex::encode(key.public()));
        (file, NodeKeyId::Ed25519(key.public()))
    } else {
        let key = SecretKey::random();
        let secret = Zeroizing::new(key.to_bytes());
        let mut file = encrypt_secret(&secret, password, kdf);
        file.address = Some(hex::encode(key.address()));
        (file, NodeKeyId::Secp256k1(key.address()))
    };
    file.kind = Some(kind.curve().into());
    file.role = Some(kind.name().into());
    (file.to_json(), id)
}

/// The identity a key file states (not checked against the secret: loading does that).
fn stated_identity(kind: NodeKeyKind, text: &str) -> Result<NodeKeyId, KeyError> {
    let file = KeyFile::parse(text)?;
    file.sealed()?;
    let (field, stated) = if kind.is_ed25519() { ("publicKey", &file.public_key) } else { ("address", &file.address) };
    let s = stated.as_deref().ok_or_else(|| KeyError::Malformed(format!("missing field \"{field}\"")))?;
    let bytes = hex::decode(s.strip_prefix("0x").unwrap_or(s))
        .map_err(|_| KeyError::Malformed(format!("\"{field}\" is not valid hex")))?;
    match (kind.is_ed25519(), bytes.len()) {
        (true, 32) => Ok(NodeKeyId::Ed25519(B256::from_slice(&bytes))),
        (false, 20) => Ok(NodeKeyId::Secp256k1(Address::from_slice(&bytes))),
        (_, n) => Err(KeyError::Malformed(format!("\"{field}\" has {n} bytes"))),
    }
}

fn check_curve(kind: NodeKeyKind, text: &str) -> Result<(), NodeKeyError> {
    match KeyFile::parse(text)?.kind.as_deref() {
        None => Ok(()),
        Some(c) if c == kind.curve() => Ok(()),
        Some(_) => {
            Err(NodeKeyError::WrongCurve { kind, curve: if kind.is_ed25519() { "secp256k1" } else { "ed25519" } })
        }
    }
}

/// Decrypt an ed25519 seed file and check its stated public key.
fn decrypt_consensus(text: &str, password: &str) -> Result<ConsensusKey, KeyError> {
    let stated = stated_identity(NodeKeyKind::Consensus, text)?;
    let seed = KeyFile::parse(text)?.sealed()?.open(password)?;
    let key = ConsensusKey::from_seed(&seed);
    if stated != NodeKeyId::Ed25519(key.public()) {
        return Err(KeyError::Malformed(format!(
            "the file says public key {stated} but holds the key of {}",
            key.public()
        )));
    }
    Ok(key)
}

/// The node keys directory.
#[derive(Debug, Clone)]
pub struct NodeKeys {
    dir: PathBuf,
}

impl NodeKeys {
    /// Open the directory, creating it (mode 0700 on unix) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, NodeKeyError> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir).map_err(io)?;
        Ok(NodeKeys { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of the current key of `kind` (which may not exist).
    pub fn path(&self, kind: NodeKeyKind) -> PathBuf {
        self.dir.join(kind.file_name())
    }

    fn read(&self, kind: NodeKeyKind) -> Result<Zeroizing<String>, NodeKeyError> {
        let path = self.path(kind);
        match fs::read_to_string(&path) {
            Ok(t) => Ok(Zeroizing::new(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NodeKeyError::Missing { kind, path }),
            Err(e) => Err(io(e)),
        }
    }

    /// Create a new random key of `kind`, encrypted with `password`; refuses
    /// if one exists. Returns its public identity.
    pub fn create(&self, kind: NodeKeyKind, password: &str, kdf: &KdfParams) -> Result<NodeKeyId, NodeKeyError> {
        let path = self.path(kind);
        if path.exists() {
            return Err(NodeKeyError::AlreadyExists { kind, path });
        }
        let (text, id) = new_key_file(kind, password, kdf);
        write_atomic(&self.dir, &kind.file_name(), text.as_bytes()).map_err(io)?;
        Ok(id)
    }

    /// Replace the key of `kind` by a new random one, encrypted with the same
    /// `password` (which must open the current key), keeping the current file
    /// as `<name>.<unix-time>.old.json`. Returns the new public identity.
    pub fn rotate(&self, kind: NodeKeyKind, password: &str, kdf: &KdfParams) -> Result<NodeKeyId, NodeKeyError> {
        // The password must open the current key: a mistyped one would lock the new key away.
        self.check_password(kind, password)?;
        let (text, id) = new_key_file(kind, password, kdf);
        let staged = format!(".{}.new", kind.file_name());
        write_atomic(&self.dir, &staged, text.as_bytes()).map_err(io)?;
        let old = self.free_name(kind, "old");
        if let Err(e) = fs::rename(self.path(kind), &old) {
            let _ = fs::remove_file(self.dir.join(&staged));
            return Err(io(e));
        }
        if let Err(e) = fs::rename(self.dir.join(&staged), self.path(kind)) {
            let _ = fs::rename(&old, self.path(kind));
            return Err(io(e));
        }
        self.sync_dir()?;
        Ok(id)
    }

    /// Undo the last rotation of `kind`: the newest `<name>.<time>.old.json`
    /// becomes the current key again, and the current file is kept as
    /// `<name>.<unix-time>.rejected.json`. Returns the restored identity.
    pub fn restore_previous(&self, kind: NodeKeyKind) -> Result<NodeKeyId, NodeKeyError> {
        let prev =
            self.previous(kind)?.pop().ok_or_else(|| NodeKeyError::NoPrevious { kind, dir: self.dir.clone() })?;
        let id = stated_identity(kind, &fs::read_to_string(&prev).map_err(io)?)
            .map_err(|err| NodeKeyError::File { path: prev.clone(), err })?;
        if self.path(kind).exists() {
            fs::rename(self.path(kind), self.free_name(kind, "rejected")).map_err(io)?;
        }
        fs::rename(&prev, self.path(kind)).map_err(io)?;
        self.sync_dir()?;
        Ok(id)
    }

    /// Files of previous keys of `kind`, oldest first.
    pub fn previous(&self, kind: NodeKeyKind) -> Result<Vec<PathBuf>, NodeKeyError> {
        let prefix = format!("{}.", kind.name());
        let mut found: Vec<(u64, PathBuf)> = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(t) = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".old.json")) else { continue };
            if let Ok(t) = t.parse::<u64>() {
                found.push((t, entry.path()));
            }
        }
        found.sort();
        Ok(found.into_iter().map(|(_, p)| p).collect())
    }

    /// `<name>.<unix-time>.<what>.json`, with the time bumped past any existing file.
    fn free_name(&self, kind: NodeKeyKind, what: &str) -> PathBuf {
        let mut t = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        loop {
            let p = self.dir.join(format!("{}.{t}.{what}.json", kind.name()));
            if !p.exists() {
                return p;
            }
            t += 1;
        }
    }

    fn sync_dir(&self) -> Result<(), NodeKeyError> {
        #[cfg(unix)]
        fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io)?;
        Ok(())
    }

    fn check_password(&self, kind: NodeKeyKind, password: &str) -> Result<(), NodeKeyError> {
        if kind.is_ed25519() {
            self.load_consensus(password).map(|_| ())
        } else {
            self.load_secp(kind, password).map(|_| ())
        }
    }

    /// The public identity of the current key of `kind`, if there is one.
    pub fn identity(&self, kind: NodeKeyKind) -> Result<Option<NodeKeyId>, NodeKeyError> {
        let text = match self.read(kind) {
            Ok(t) => t,
            Err(NodeKeyError::Missing { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        stated_identity(kind, &text).map(Some).map_err(|err| NodeKeyError::File { path: self.path(kind), err })
    }

    /// The current keys' public identities (never their secrets), in kind order.
    pub fn list(&self) -> Result<Vec<(NodeKeyKind, NodeKeyId)>, NodeKeyError> {
        let mut out = Vec::new();
        for kind in NodeKeyKind::ALL {
            if let Some(id) = self.identity(kind)? {
                out.push((kind, id));
            }
        }
        Ok(out)
    }

    /// Decrypt the consensus key.
    pub fn load_consensus(&self, password: &str) -> Result<ConsensusKey, NodeKeyError> {
        let kind = NodeKeyKind::Consensus;
        let text = self.read(kind)?;
        check_curve(kind, &text)?;
        decrypt_consensus(&text, password).map_err(|err| NodeKeyError::File { path: self.path(kind), err })
    }

    /// Decrypt the serving or attester key.
    pub fn load_secp(&self, kind: NodeKeyKind, password: &str) -> Result<SecretKey, NodeKeyError> {
        if kind.is_ed25519() {
            return Err(NodeKeyError::WrongCurve { kind, curve: kind.curve() });
        }
        let text = self.read(kind)?;
        check_curve(kind, &text)?;
        decrypt_keystore(&text, password).map_err(|err| NodeKeyError::File { path: self.path(kind), err })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn fast() -> KdfParams {
        KdfParams::insecure_for_tests()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        v.sort();
        v
    }

    #[test]
    fn kinds_parse_and_name_files() {
        for k in NodeKeyKind::ALL {
            assert_eq!(k.name().parse::<NodeKeyKind>().unwrap(), k);
        }
        assert_eq!(NodeKeyKind::Consensus.file_name(), "consensus.json");
        assert!(matches!("validator".parse::<NodeKeyKind>(), Err(NodeKeyError::UnknownKind(_))));
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let tmp = tempfile::tempdir().unwrap();
        let nk = NodeKeys::open(tmp.path().join("node-keys")).unwrap();
        assert!(nk.list().unwrap().is_empty());
        let c = nk.create(NodeKeyKind::Consensus, "pw", &fast()).unwrap();
        let s = nk.create(NodeKeyKind::Serving, "pw", &fast()).unwrap();
        let a = nk.create(NodeKeyKind::Attester, "pw2", &fast()).unwrap();
        assert_eq!(names(nk.dir()), ["attester.json", "consensus.json", "serving.json"]);

        let ck = nk.load_consensus("pw").unwrap();
        assert_eq!(c, NodeKeyId::Ed25519(ck.public()));
        // The decrypted key signs verifiably.
        crate::verify_consensus(&ck.public(), b"vote", &ck.sign(b"vote")).unwrap();
        assert_eq!(s, NodeKeyId::Secp256k1(nk.load_secp(NodeKeyKind::Serving, "pw").unwrap().address()));
        assert_eq!(a, NodeKeyId::Secp256k1(nk.load_secp(NodeKeyKind::Attester, "pw2").unwrap().address()));

        assert!(nk.load_consensus("wrong").unwrap_err().is_wrong_password());
        assert!(nk.load_secp(NodeKeyKind::Serving, "wrong").unwrap_err().is_wrong_password());
        assert!(nk.load_secp(NodeKeyKind::Attester, "pw").unwrap_err().is_wrong_password());
        assert!(matches!(nk.load_secp(NodeKeyKind::Consensus, "pw"), Err(NodeKeyError::WrongCurve { .. })));

        // Creating again is refused and leaves the key alone.
        assert!(matches!(
            nk.create(NodeKeyKind::Consensus, "pw", &fast()),
            Err(NodeKeyError::AlreadyExists { kind: NodeKeyKind::Consensus, .. })
        ));
        assert_eq!(nk.load_consensus("pw").unwrap().public(), ck.public());

        // The secp256k1 files are ordinary keystore files; the ed25519 one says what it is.
        let v: Value = serde_json::from_str(&fs::read_to_string(nk.path(NodeKeyKind::Serving)).unwrap()).unwrap();
        assert_eq!(v["version"], 3);
        assert_eq!(v["kind"], "secp256k1");
        assert_eq!(v["role"], "serving");
        let text = fs::read_to_string(nk.path(NodeKeyKind::Consensus)).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["kind"], "ed25519");
        assert_eq!(v["publicKey"], hex::encode(ck.public()));
        assert_eq!(v["crypto"]["kdf"], "scrypt");
        assert_eq!(v["crypto"]["cipher"], "aes-128-ctr");

        // Reopening sees the same keys.
        let again = NodeKeys::open(nk.dir()).unwrap();
        assert_eq!(again.list().unwrap(), nk.list().unwrap());
    }

    #[test]
    fn missing_keys() {
        let tmp = tempfile::tempdir().unwrap();
        let nk = NodeKeys::open(tmp.path()).unwrap();
        assert!(matches!(nk.load_consensus("pw"), Err(NodeKeyError::Missing { .. })));
        assert!(matches!(nk.load_secp(NodeKeyKind::Attester, "pw"), Err(NodeKeyError::Missing { .. })));
        assert!(matches!(nk.rotate(NodeKeyKind::Serving, "pw", &fast()), Err(NodeKeyError::Missing { .. })));
        assert_eq!(nk.identity(NodeKeyKind::Serving).unwrap(), None);
        assert!(matches!(nk.restore_previous(NodeKeyKind::Serving), Err(NodeKeyError::NoPrevious { .. })));
    }

    #[test]
    fn rotation_keeps_the_old_file() {
        let tmp = tempfile::tempdir().unwrap();
        let nk = NodeKeys::open(tmp.path()).unwrap();
        let c0 = nk.create(NodeKeyKind::Consensus, "pw", &fast()).unwrap();
        let s0 = nk.create(NodeKeyKind::Serving, "pw", &fast()).unwrap();

        // A wrong password rotates nothing.
        assert!(nk.rotate(NodeKeyKind::Consensus, "nope", &fast()).unwrap_err().is_wrong_password());
        assert_eq!(names(nk.dir()), ["consensus.json", "serving.json"]);

        let c1 = nk.rotate(NodeKeyKind::Consensus, "pw", &fast()).unwrap();
        let c2 = nk.rotate(NodeKeyKind::Consensus, "pw", &fast()).unwrap();
        let s1 = nk.rotate(NodeKeyKind::Serving, "pw", &fast()).unwrap();
        assert!(c0 != c1 && c1 != c2 && c0 != c2 && s0 != s1);
        assert_eq!(nk.identity(NodeKeyKind::Consensus).unwrap(), Some(c2));
        assert_eq!(NodeKeyId::Ed25519(nk.load_consensus("pw").unwrap().public()), c2);
        assert_eq!(nk.list().unwrap(), vec![(NodeKeyKind::Consensus, c2), (NodeKeyKind::Serving, s1)]);

        // Both old consensus keys are kept, oldest first, named <name>.<unix-time>.old.json, still decryptable.
        let old = nk.previous(NodeKeyKind::Consensus).unwrap();
        assert_eq!(old.len(), 2);
        for p in &old {
            let n = p.file_name().unwrap().to_str().unwrap();
            let t = n.strip_prefix("consensus.").and_then(|r| r.strip_suffix(".old.json")).unwrap();
            assert!(t.parse::<u64>().unwrap() > 1_700_000_000, "{n}");
        }
        let ids: Vec<NodeKeyId> = old
            .iter()
            .map(|p| NodeKeyId::Ed25519(decrypt_consensus(&fs::read_to_string(p).unwrap(), "pw").unwrap().public()))
            .collect();
        assert_eq!(ids, [c0, c1]);
        let old_s = nk.previous(NodeKeyKind::Serving).unwrap();
        assert_eq!(old_s.len(), 1);
        assert_eq!(
            NodeKeyId::Secp256k1(decrypt_keystore(&fs::read_to_string(&old_s[0]).unwrap(), "pw").unwrap().address()),
            s0
        );
        // No staging files left behind.
        assert!(names(nk.dir()).iter().all(|n| !n.starts_with('.')), "{:?}", names(nk.dir()));

        // Undoing the last rotation brings c1 back; c2 is kept aside.
        assert_eq!(nk.restore_previous(NodeKeyKind::Consensus).unwrap(), c1);
        assert_eq!(NodeKeyId::Ed25519(nk.load_consensus("pw").unwrap().public()), c1);
        assert_eq!(nk.previous(NodeKeyKind::Consensus).unwrap().len(), 1);
        assert!(names(nk.dir()).iter().any(|n| n.starts_with("consensus.") && n.ends_with(".rejected.json")));
    }

    #[test]
    fn list_never_shows_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let nk = NodeKeys::open(tmp.path()).unwrap();
        for k in NodeKeyKind::ALL {
            nk.create(k, "pw", &fast()).unwrap();
        }
        let seed = hex::encode(nk.load_consensus("pw").unwrap().seed());
        let serving = hex::encode(nk.load_secp(NodeKeyKind::Serving, "pw").unwrap().to_bytes());
        let attester = hex::encode(nk.load_secp(NodeKeyKind::Attester, "pw").unwrap().to_bytes());
        let list = nk.list().unwrap();
        assert_eq!(list.len(), 3);
        let shown =
            format!("{list:?} {}", list.iter().map(|(k, id)| format!("{k} {id} {id:?}")).collect::<Vec<_>>().join(" "))
                .to_lowercase();
        for secret in [&seed, &serving, &attester] {
            assert!(!shown.contains(secret.as_str()), "{shown}");
            // Nor are the secrets in clear in any file.
            for n in names(nk.dir()) {
                assert!(!fs::read_to_string(nk.dir().join(n)).unwrap().contains(secret.as_str()));
            }
        }
        assert!(matches!(list[0].1, NodeKeyId::Ed25519(_)));
        assert!(list[1].1.address().is_some() && list[2].1.address().is_some());
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let nk = NodeKeys::open(tmp.path().join("nk")).unwrap();
        nk.create(NodeKeyKind::Consensus, "pw", &fast()).unwrap();
        nk.rotate(NodeKeyKind::Consensus, "pw", &fast()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(nk.dir()), 0o700);
        for n in names(nk.dir()) {
            assert_eq!(mode(&nk.dir().join(&n)), 0o600, "{n}");
        }
    }

    #[test]
    fn tampered_public_key_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let nk = NodeKeys::open(tmp.path()).unwrap();
        nk.create(NodeKeyKind::Consensus, "pw", &fast()).unwrap();
        let p = nk.path(NodeKeyKind::Consensus);
        let mut v: Value = serde_json::from_str(&fs::read_to_string(&p).unwrap()).unwrap();
        v["publicKey"] = json!(hex::encode([7u8; 32]));
        fs::write(&p, v.to_string()).unwrap();
        assert!(matches!(nk.load_consensus("pw"), Err(NodeKeyError::File { err: KeyError::Malformed(_), .. })));
    }
}
