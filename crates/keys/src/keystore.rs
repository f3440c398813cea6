//! Web3 Secret Storage (keystore v3) files and directories of them.
//!
//! The format is the one geth, ethers, web3.py and MetaMask write:
//!
//! ```json
//! {
//!   "address": "f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
//!   "crypto": {
//!     "cipher": "aes-128-ctr",
//!     "cipherparams": { "iv": "…" },
//!     "ciphertext": "…",
//!     "kdf": "scrypt",
//!     "kdfparams": { "dklen": 32, "n": 262144, "p": 1, "r": 8, "salt": "…" },
//!     "mac": "…"
//!   },
//!   "id": "…",
//!   "version": 3
//! }
//! ```
//!
//! The MAC is `keccak256(derived_key[16..32] ++ ciphertext)` and the cipher
//! key is `derived_key[..16]`.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aes::Aes128;
use alloy_primitives::{Address, hex, keccak256};
use ctr::cipher::{KeyIvInit, StreamCipher};
use k256::elliptic_curve::subtle::ConstantTimeEq;
use rand::{RngCore, rngs::OsRng};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{KeyError, SecretKey};

type Aes128Ctr = ctr::Ctr128BE<Aes128>;

/// Length of the derived key this crate uses: 16 bytes of AES key, 16 of MAC key.
const DKLEN: usize = 32;

/// Largest scrypt memory (`128 * r * n` bytes, and `128 * r * p`) accepted
/// when reading a keystore: 1 GiB. geth's standard parameters use 256 MiB.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;

/// Largest scrypt work (`n * r * p`) accepted when reading a keystore:
/// 16 times geth's standard parameters.
const MAX_SCRYPT_WORK: u64 = 1 << 25;

/// Largest PBKDF2 iteration count accepted when reading a keystore.
const MAX_PBKDF2_ROUNDS: u64 = 10_000_000;

/// Keystore files larger than this are not keystores (real ones are < 1 KiB).
const MAX_FILE_SIZE: u64 = 64 * 1024;

/// scrypt parameters for new keystore files (`dklen` is always 32).
///
/// Use [`KdfParams::standard`] for keys that matter. When reading a file,
/// any parameters within the limits of [`KdfParams::new`] are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    log_n: u8,
    r: u32,
    p: u32,
}

impl KdfParams {
    /// geth's standard parameters: n = 262144, r = 8, p = 1 (256 MiB, about
    /// a second per encryption or decryption).
    pub fn standard() -> Self {
        Self { log_n: 18, r: 8, p: 1 }
    }

    /// geth's light parameters: n = 4096, r = 8, p = 6 (4 MiB, fast).
    pub fn light() -> Self {
        Self { log_n: 12, r: 8, p: 6 }
    }

    /// n = 2, r = 8, p = 1: next to no protection against password
    /// guessing. **For tests only**: it keeps test suites fast.
    pub fn insecure_for_tests() -> Self {
        Self { log_n: 1, r: 8, p: 1 }
    }

    /// Custom parameters. `n` must be a power of two of at least 2, and the
    /// cost must stay within what [`decrypt_keystore`] accepts: memory
    /// `128 * r * n` and `128 * r * p` at most 1 GiB, work `n * r * p` at
    /// most 2^25.
    pub fn new(n: u64, r: u32, p: u32) -> Result<Self, KeyError> {
        let params = scrypt_params(n, u64::from(r), u64::from(p))?;
        Ok(Self { log_n: params.log_n(), r: params.r(), p: params.p() })
    }

    /// The CPU/memory cost `n`.
    pub fn n(&self) -> u64 {
        1u64 << self.log_n
    }

    /// The block size `r`.
    pub fn r(&self) -> u32 {
        self.r
    }

    /// The parallelisation `p`.
    pub fn p(&self) -> u32 {
        self.p
    }

    /// The derived key length: always 32.
    pub fn dklen(&self) -> usize {
        DKLEN
    }
}

impl Default for KdfParams {
    /// [`KdfParams::standard`].
    fn default() -> Self {
        Self::standard()
    }
}

/// Checked scrypt parameters (see [`KdfParams::new`] for the limits).
fn scrypt_params(n: u64, r: u64, p: u64) -> Result<scrypt::Params, KeyError> {
    let unsupported = |why: &str| KeyError::Unsupported(format!("scrypt parameters n={n}, r={r}, p={p}: {why}"));
    if n < 2 || !n.is_power_of_two() {
        return Err(unsupported("n must be a power of two, at least 2"));
    }
    if r == 0 || p == 0 {
        return Err(unsupported("r and p must be at least 1"));
    }
    let too_big = |x: Option<u64>, max: u64| x.is_none_or(|v| v > max);
    if too_big(r.checked_mul(128).and_then(|m| m.checked_mul(n)), MAX_SCRYPT_MEMORY)
        || too_big(r.checked_mul(128).and_then(|m| m.checked_mul(p)), MAX_SCRYPT_MEMORY)
    {
        return Err(unsupported("would need more than 1 GiB of memory"));
    }
    if too_big(n.checked_mul(r).and_then(|w| w.checked_mul(p)), MAX_SCRYPT_WORK) {
        return Err(unsupported("n * r * p above 2^25 would take too long"));
    }
    let (r, p) = (r as u32, p as u32); // both <= 2^23 after the memory check
    scrypt::Params::new(n.trailing_zeros() as u8, r, p, DKLEN)
        .map_err(|_| unsupported("n must be below 2^(16 * r) (RFC 7914)"))
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    OsRng.fill_bytes(&mut out);
    out
}

/// A random (version 4) UUID in its usual text form.
fn uuid_v4() -> String {
    let mut b: [u8; 16] = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

fn mac(derived: &[u8; DKLEN], ciphertext: &[u8]) -> [u8; 32] {
    let mut data = Zeroizing::new(Vec::with_capacity(16 + ciphertext.len()));
    data.extend_from_slice(&derived[16..32]);
    data.extend_from_slice(ciphertext);
    keccak256(&data[..]).0
}

fn aes_128_ctr(derived: &[u8; DKLEN], iv: &[u8; 16], data: &mut [u8]) {
    let key: [u8; 16] = derived[..16].try_into().expect("16 bytes");
    let mut cipher = Aes128Ctr::new(&key.into(), &(*iv).into());
    cipher.apply_keystream(data);
}

/// Encrypt a key into the JSON text of a Web3 Secret Storage (version 3)
/// file: AES-128-CTR with a scrypt-derived key, fresh random salt, IV and id.
pub fn encrypt_keystore(key: &SecretKey, password: &str, kdf: &KdfParams) -> String {
    let secret = Zeroizing::new(key.to_bytes());
    let mut file = encrypt_secret(&secret, password, kdf);
    file.address = Some(hex::encode(key.address()));
    file.to_json()
}

/// A version 3 file (`crypto`, `id`, `version`) holding `secret` encrypted
/// with `password`, for callers to fill in their public fields. Shared by
/// [`encrypt_keystore`] and the node keys (ed25519 seeds).
pub(crate) fn encrypt_secret(secret: &[u8; 32], password: &str, kdf: &KdfParams) -> KeyFile {
    let salt: [u8; 32] = random_bytes();
    let iv: [u8; 16] = random_bytes();
    let params = scrypt::Params::new(kdf.log_n, kdf.r, kdf.p, DKLEN).expect("KdfParams are validated on construction");
    let mut derived = Zeroizing::new([0u8; DKLEN]);
    scrypt::scrypt(password.as_bytes(), &salt, &params, &mut derived[..]).expect("32 is a valid scrypt output length");

    let mut ciphertext = *secret;
    aes_128_ctr(&derived, &iv, &mut ciphertext);
    let mac = mac(&derived, &ciphertext);
    let kdfparams = KdfJson {
        dklen: DKLEN as u64,
        salt: salt.to_vec(),
        n: Some(kdf.n()),
        r: Some(kdf.r.into()),
        p: Some(kdf.p.into()),
        c: None,
        prf: None,
    };
    KeyFile {
        address: None,
        crypto: CryptoJson {
            cipher: "aes-128-ctr".into(),
            cipherparams: CipherParams { iv },
            ciphertext,
            kdf: "scrypt".into(),
            kdfparams,
            mac,
        },
        id: Some(uuid_v4()),
        kind: None,
        public_key: None,
        role: None,
        version: Value::from(3),
    }
}

/// The JSON of a keystore file: Web3 Secret Storage version 3 as geth, ethers
/// and MetaMask write it, plus the node keys' own fields (`kind`, `publicKey`,
/// `role`). Fields other tools add are ignored.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct KeyFile {
    /// The key's address, lowercase hex without `0x` (geth) or with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// geth's older files spell it "Crypto".
    #[serde(alias = "Crypto")]
    pub crypto: CryptoJson,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A node key's curve: "ed25519" or "secp256k1".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// An ed25519 node key's public key, hex.
    #[serde(default, rename = "publicKey", skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// A node key's role: "consensus", "serving" or "attester".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Must be the number 3; kept as JSON to tell a missing version (malformed)
    /// from another one (unsupported).
    #[serde(default)]
    pub version: Value,
}

/// The "crypto" section.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct CryptoJson {
    cipher: String,
    cipherparams: CipherParams,
    #[serde(with = "hex_array")]
    ciphertext: [u8; 32],
    kdf: String,
    kdfparams: KdfJson,
    #[serde(with = "hex_array")]
    mac: [u8; 32],
}

#[derive(Debug, Serialize, Deserialize)]
struct CipherParams {
    #[serde(with = "hex_array")]
    iv: [u8; 16],
}

/// "kdfparams": scrypt's `n`, `r`, `p` or PBKDF2's `c` and `prf`, checked when
/// the key is derived.
#[derive(Debug, Serialize, Deserialize)]
struct KdfJson {
    dklen: u64,
    #[serde(with = "hex_vec")]
    salt: Vec<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prf: Option<String>,
}

/// Hex strings (lowercase on output; `0x` optional on input) for byte fields.
mod hex_vec {
    use alloy_primitives::hex;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        hex::decode(text.strip_prefix("0x").unwrap_or(&text)).map_err(|_| D::Error::custom("not valid hex"))
    }
}

mod hex_array {
    use serde::{Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        super::hex_vec::serialize(bytes, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
        let bytes = super::hex_vec::deserialize(d)?;
        let len = bytes.len();
        bytes.try_into().map_err(|_| D::Error::custom(format!("{len} bytes, expected {N}")))
    }
}

impl KeyFile {
    /// Parse a file's text; anything that does not fit the format is [`KeyError::Malformed`].
    pub(crate) fn parse(json: &str) -> Result<Self, KeyError> {
        serde_json::from_str(json).map_err(|e| KeyError::Malformed(e.to_string()))
    }

    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a keystore file serialises")
    }

    /// The stated address, if any.
    fn address(&self) -> Result<Option<Address>, KeyError> {
        self.address.as_deref().map(parse_address).transpose()
    }

    /// Check the version and cipher: the file can be opened with a password.
    pub(crate) fn sealed(&self) -> Result<&CryptoJson, KeyError> {
        match &self.version {
            Value::Null => return Err(KeyError::Malformed("missing field \"version\" in the keystore".into())),
            v if v.as_u64() == Some(3) => {}
            v => return Err(KeyError::Unsupported(format!("version {v} (only version 3 is supported)"))),
        }
        let cipher = &self.crypto.cipher;
        if cipher != "aes-128-ctr" {
            return Err(KeyError::Unsupported(format!("cipher {cipher:?} (only \"aes-128-ctr\" is supported)")));
        }
        Ok(&self.crypto)
    }
}

impl CryptoJson {
    /// Derive the key from `password` as the file's "kdf" says, check the MAC
    /// and decrypt.
    pub(crate) fn open(&self, password: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let derived = Zeroizing::new(self.kdfparams.derive(&self.kdf, password)?);
        let actual_mac = mac(&derived, &self.ciphertext);
        if !bool::from(actual_mac.ct_eq(&self.mac)) {
            return Err(KeyError::WrongPassword);
        }
        let mut plain = Zeroizing::new(self.ciphertext);
        aes_128_ctr(&derived, &self.cipherparams.iv, &mut plain[..]);
        Ok(plain)
    }
}

impl KdfJson {
    /// The 32-byte key from the password.
    fn derive(&self, kdf: &str, password: &str) -> Result<[u8; DKLEN], KeyError> {
        if self.dklen < DKLEN as u64 {
            return Err(KeyError::Malformed(format!("kdfparams dklen is {}, must be at least {DKLEN}", self.dklen)));
        }
        let need = |v: Option<u64>, name: &str| {
            v.ok_or_else(|| KeyError::Malformed(format!("missing field \"{name}\" in \"kdfparams\"")))
        };
        // Only the first 32 bytes of the derived key are used, and both scrypt and
        // PBKDF2 give the same first 32 bytes whatever the requested length.
        let mut derived = [0u8; DKLEN];
        match kdf {
            "scrypt" => {
                let params = scrypt_params(need(self.n, "n")?, need(self.r, "r")?, need(self.p, "p")?)?;
                scrypt::scrypt(password.as_bytes(), &self.salt, &params, &mut derived)
                    .expect("32 is a valid scrypt output length");
            }
            "pbkdf2" => {
                let prf = self.prf.as_deref().ok_or_else(|| KeyError::Malformed("missing field \"prf\"".into()))?;
                if prf != "hmac-sha256" {
                    return Err(KeyError::Unsupported(format!(
                        "pbkdf2 prf {prf:?} (only \"hmac-sha256\" is supported)"
                    )));
                }
                let c = need(self.c, "c")?;
                if c == 0 || c > MAX_PBKDF2_ROUNDS {
                    return Err(KeyError::Unsupported(format!(
                        "pbkdf2 iteration count {c} (must be between 1 and {MAX_PBKDF2_ROUNDS})"
                    )));
                }
                pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), &self.salt, c as u32, &mut derived);
            }
            other => {
                return Err(KeyError::Unsupported(format!(
                    "kdf {other:?} (only \"scrypt\" and \"pbkdf2\" are supported)"
                )));
            }
        }
        Ok(derived)
    }
}

/// Decrypt the JSON text of a Web3 Secret Storage (version 3) file.
///
/// Accepts the kdfs `scrypt` and `pbkdf2` (prf `hmac-sha256`) with the
/// cipher `aes-128-ctr`. A wrong password gives [`KeyError::WrongPassword`];
/// anything else wrong with the text gives [`KeyError::Malformed`] or
/// [`KeyError::Unsupported`]. If the file names an address, it must be the
/// decrypted key's.
pub fn decrypt_keystore(json: &str, password: &str) -> Result<SecretKey, KeyError> {
    let file = KeyFile::parse(json)?;
    let crypto = file.sealed()?;
    let address = file.address()?;
    let plain = crypto.open(password)?;
    let key = SecretKey::from_bytes(&plain)
        .map_err(|_| KeyError::Malformed("the decrypted data is not a valid secp256k1 private key".into()))?;
    if let Some(address) = address
        && address != key.address()
    {
        return Err(KeyError::Malformed(format!(
            "the file says address {address} but holds the key of {}",
            key.address()
        )));
    }
    Ok(key)
}

fn parse_address(text: &str) -> Result<Address, KeyError> {
    let bytes = hex::decode(text.strip_prefix("0x").unwrap_or(text))
        .map_err(|_| KeyError::Malformed("\"address\" is not valid hex".into()))?;
    if bytes.len() != 20 {
        return Err(KeyError::Malformed(format!("\"address\" has {} bytes, expected 20", bytes.len())));
    }
    Ok(Address::from_slice(&bytes))
}

/// The address a file in a keystore directory holds, if it looks like a
/// keystore file at all.
fn keystore_file_address(path: &Path) -> Option<Address> {
    let meta = fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_SIZE {
        return None;
    }
    KeyFile::parse(&fs::read_to_string(path).ok()?).ok()?.address().ok()?
}

/// geth's key file name: `UTC--2006-01-02T15-04-05.999999999Z--<address>`
/// (RFC 3339 with nanoseconds, colons made dashes for file systems that
/// refuse them). Times outside 1970..=9999 are clamped into it.
fn key_file_name(time: SystemTime, address: &Address) -> String {
    const LAST: Duration = Duration::from_secs(253_402_300_799); // 9999-12-31T23:59:59Z
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default().min(LAST);
    let stamp = humantime::format_rfc3339_nanos(UNIX_EPOCH + since).to_string().replace(':', "-");
    format!("UTC--{stamp}--{}", hex::encode(address))
}

/// Write a file atomically: a temporary file (mode 0600 on unix) in the same
/// directory, fsync, rename over the final name, fsync of the directory.
pub(crate) fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(random_bytes::<8>())));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, dir.join(name))?;
        #[cfg(unix)]
        fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Write a file that holds a secret (a private key, an API key) atomically, with
/// mode 0600 from its creation on unix: the bytes never sit in a file others may
/// read, not even between a write and a `chmod`. The parent directory must exist.
/// Replaces an existing file of that name.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "a secret file needs a UTF-8 file name")
    })?;
    write_atomic(dir, name, contents)
}

/// A directory of keystore files, one per key, named like geth's:
/// `UTC--<ISO 8601 time>--<address in lowercase hex>`.
///
/// geth, Clef and other tools can use the same directory. Files whose names
/// start with `.` or end with `~`, and files that are not keystores, are
/// ignored.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    /// Open a keystore directory, creating it (and its parents, mode 0700 on
    /// unix) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, KeyError> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&dir)?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Create a new random key, store it encrypted with `password`, and
    /// return its address.
    pub fn create(&self, password: &str, kdf: &KdfParams) -> Result<Address, KeyError> {
        self.import(&SecretKey::random(), password, kdf)
    }

    /// Store an existing key encrypted with `password`. Fails with
    /// [`KeyError::AlreadyExists`] if the directory already holds its address.
    pub fn import(&self, key: &SecretKey, password: &str, kdf: &KdfParams) -> Result<Address, KeyError> {
        let address = key.address();
        if self.entries()?.iter().any(|(_, a)| *a == address) {
            return Err(KeyError::AlreadyExists(address));
        }
        let json = encrypt_keystore(key, password, kdf);
        let name = key_file_name(SystemTime::now(), &address);
        write_atomic(&self.dir, &name, json.as_bytes())?;
        Ok(address)
    }

    /// The addresses of the keys in the directory, sorted, without duplicates.
    pub fn list(&self) -> Result<Vec<Address>, KeyError> {
        let mut addresses: Vec<Address> = self.entries()?.into_iter().map(|(_, a)| a).collect();
        addresses.sort();
        addresses.dedup();
        Ok(addresses)
    }

    /// Decrypt the key of `address`. Fails with [`KeyError::NotFound`] if
    /// no file holds it, and [`KeyError::WrongPassword`] if the password
    /// opens none of the files that do.
    pub fn load(&self, address: &Address, password: &str) -> Result<SecretKey, KeyError> {
        let mut last_error = KeyError::NotFound(*address);
        for (path, _) in self.entries()?.into_iter().filter(|(_, a)| a == address) {
            let text = Zeroizing::new(fs::read_to_string(&path)?);
            match decrypt_keystore(&text, password) {
                Ok(key) => return Ok(key),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    /// Keystore files of the directory with their addresses, by file name.
    fn entries(&self) -> Result<Vec<(PathBuf, Address)>, KeyError> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') || name.ends_with('~') {
                continue;
            }
            let path = entry.path();
            if let Some(address) = keystore_file_address(&path) {
                entries.push((path, address));
            }
        }
        entries.sort();
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::address;
    use serde_json::{Value, json};

    const HARDHAT_1_KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

    fn fast() -> KdfParams {
        KdfParams::insecure_for_tests()
    }

    fn parse(json: &str) -> Value {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn kdf_presets() {
        let s = KdfParams::standard();
        assert_eq!((s.n(), s.r(), s.p(), s.dklen()), (262_144, 8, 1, 32));
        let l = KdfParams::light();
        assert_eq!((l.n(), l.r(), l.p(), l.dklen()), (4096, 8, 6, 32));
        let t = KdfParams::insecure_for_tests();
        assert_eq!((t.n(), t.r(), t.p(), t.dklen()), (2, 8, 1, 32));
        assert_eq!(KdfParams::default(), s);
        assert_eq!(KdfParams::new(4096, 8, 6).unwrap(), l);
        for (n, r, p) in [
            (0, 8, 1),
            (1, 8, 1),
            (3, 8, 1),
            (1000, 8, 1),
            (1 << 20, 0, 1),
            (1 << 20, 8, 0),
            (1 << 21, 8, 1),       // 2 GiB
            (1 << 16, 8, 1 << 20), // too much work
            (1 << 16, 1, 1),       // n >= 2^(16 r)
        ] {
            assert!(matches!(KdfParams::new(n, r, p), Err(KeyError::Unsupported(_))), "n={n} r={r} p={p} accepted");
        }
    }

    #[test]
    fn round_trip_and_wrong_password() {
        let key = SecretKey::random();
        let json = encrypt_keystore(&key, "hunter2", &fast());
        assert_eq!(decrypt_keystore(&json, "hunter2").unwrap(), key);
        assert!(matches!(decrypt_keystore(&json, "hunter3"), Err(KeyError::WrongPassword)));
        assert!(matches!(decrypt_keystore(&json, ""), Err(KeyError::WrongPassword)));
        // Empty and non-ASCII passwords work too.
        let json = encrypt_keystore(&key, "", &fast());
        assert_eq!(decrypt_keystore(&json, "").unwrap(), key);
        let json = encrypt_keystore(&key, "pässwörd 🔑", &fast());
        assert_eq!(decrypt_keystore(&json, "pässwörd 🔑").unwrap(), key);
        assert!(decrypt_keystore(&json, "passwort 🔑").is_err());
    }

    #[test]
    fn light_params_round_trip() {
        let key = SecretKey::from_hex(HARDHAT_1_KEY).unwrap();
        let json = encrypt_keystore(&key, "pw", &KdfParams::light());
        let v = parse(&json);
        assert_eq!(v["crypto"]["kdfparams"]["n"], 4096);
        assert_eq!(v["crypto"]["kdfparams"]["p"], 6);
        assert_eq!(decrypt_keystore(&json, "pw").unwrap(), key);
    }

    #[test]
    fn file_format() {
        let key = SecretKey::from_hex(HARDHAT_1_KEY).unwrap();
        let json = encrypt_keystore(&key, "pw", &fast());
        let v = parse(&json);
        assert_eq!(v["version"], 3);
        assert_eq!(v["address"], "70997970c51812dc3a010c7d01b50e0d17dc79c8");
        let c = &v["crypto"];
        assert_eq!(c["cipher"], "aes-128-ctr");
        assert_eq!(c["kdf"], "scrypt");
        assert_eq!(c["kdfparams"]["dklen"], 32);
        assert_eq!(c["kdfparams"]["n"], 2);
        assert_eq!(c["kdfparams"]["r"], 8);
        assert_eq!(c["kdfparams"]["p"], 1);
        let hex_len = |v: &Value| {
            let s = v.as_str().unwrap();
            assert!(s.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
            s.len()
        };
        assert_eq!(hex_len(&c["kdfparams"]["salt"]), 64);
        assert_eq!(hex_len(&c["cipherparams"]["iv"]), 32);
        assert_eq!(hex_len(&c["ciphertext"]), 64);
        assert_eq!(hex_len(&c["mac"]), 64);
        // The ciphertext is not the key in clear.
        assert!(!json.contains(HARDHAT_1_KEY));

        let id = v["id"].as_str().unwrap();
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(groups.iter().map(|g| g.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{id}");
        assert!(groups[2].starts_with('4'), "UUID version 4: {id}");
        assert!(matches!(groups[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "RFC 4122 variant: {id}");

        // Fresh salt, IV and id every time.
        let w = parse(&encrypt_keystore(&key, "pw", &fast()));
        assert_ne!(w["id"], v["id"]);
        assert_ne!(w["crypto"]["kdfparams"]["salt"], c["kdfparams"]["salt"]);
        assert_ne!(w["crypto"]["cipherparams"]["iv"], c["cipherparams"]["iv"]);
    }

    /// The PBKDF2 test vector of the Web3 Secret Storage definition.
    #[test]
    fn spec_vector_pbkdf2() {
        let json = r#"{
            "crypto" : {
                "cipher" : "aes-128-ctr",
                "cipherparams" : { "iv" : "6087dab2f9fdbbfaddc31a909735c1e6" },
                "ciphertext" : "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
                "kdf" : "pbkdf2",
                "kdfparams" : {
                    "c" : 262144,
                    "dklen" : 32,
                    "prf" : "hmac-sha256",
                    "salt" : "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd"
                },
                "mac" : "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2"
            },
            "id" : "3198bc9c-6672-5ab3-d995-4942343ae5b6",
            "version" : 3
        }"#;
        let key = decrypt_keystore(json, "testpassword").unwrap();
        assert_eq!(hex::encode(key.to_bytes()), "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d");
        assert_eq!(key.address(), address!("008aeeda4d805471df9b2a5b0f38a0c3bcba786b"));
        assert!(matches!(decrypt_keystore(json, "testpassworD"), Err(KeyError::WrongPassword)));
    }

    /// A scrypt vector made independently of this crate (Python's
    /// `hashlib.scrypt`, OpenSSL AES-128-CTR and a separate Keccak-256):
    /// key of Hardhat account #1, n = 1024, r = 8, p = 2, with a `0x`-less
    /// address as geth writes it.
    #[test]
    fn independent_scrypt_vector() {
        let json = r#"{
            "address": "70997970c51812dc3a010c7d01b50e0d17dc79c8",
            "crypto": {
                "cipher": "aes-128-ctr",
                "cipherparams": { "iv": "6465666768696a6b6c6d6e6f70717273" },
                "ciphertext": "c6d315b8dcc2864c7aa40ad17d0cdd2bfd4d7e306ac9c074768481f459d07e78",
                "kdf": "scrypt",
                "kdfparams": {
                    "dklen": 32, "n": 1024, "p": 2, "r": 8,
                    "salt": "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                },
                "mac": "c3834ab45c89c03caca8dab4c88030a40f8fa22ef4fa179a69132e29377a8700"
            },
            "id": "0f0e0d0c-0b0a-4908-8706-050403020100",
            "version": 3
        }"#;
        let key = decrypt_keystore(json, "correct horse battery staple").unwrap();
        assert_eq!(hex::encode(key.to_bytes()), HARDHAT_1_KEY);
        assert!(matches!(decrypt_keystore(json, "correct horse battery stapler"), Err(KeyError::WrongPassword)));
        // geth's older files spell the section "Crypto".
        let capital = json.replace("\"crypto\"", "\"Crypto\"");
        assert_eq!(decrypt_keystore(&capital, "correct horse battery staple").unwrap(), key);
        // A file naming another address is refused even with the right password.
        let other =
            json.replace("70997970c51812dc3a010c7d01b50e0d17dc79c8", "f39fd6e51aad88f6f4ce6ab8827279cfffb92266");
        assert!(matches!(decrypt_keystore(&other, "correct horse battery staple"), Err(KeyError::Malformed(_))));
    }

    /// The spec's scrypt vector uses r = 1 with n = 2^18, which RFC 7914
    /// (and the `scrypt` crate) forbid: n must be below 2^(16 r). It is
    /// refused with a clear error rather than decrypted.
    #[test]
    fn spec_vector_scrypt_is_unsupported() {
        let json = r#"{
            "crypto" : {
                "cipher" : "aes-128-ctr",
                "cipherparams" : { "iv" : "83dbcc02d8ccb40e466191a123791e0e" },
                "ciphertext" : "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
                "kdf" : "scrypt",
                "kdfparams" : {
                    "dklen" : 32, "n" : 262144, "r" : 1, "p" : 8,
                    "salt" : "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19"
                },
                "mac" : "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097"
            },
            "id" : "3198bc9c-6672-5ab3-d995-4942343ae5b6",
            "version" : 3
        }"#;
        match decrypt_keystore(json, "testpassword") {
            Err(KeyError::Unsupported(msg)) => assert!(msg.contains("RFC 7914"), "{msg}"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    fn valid_json() -> String {
        let key = SecretKey::from_hex(HARDHAT_1_KEY).unwrap();
        encrypt_keystore(&key, "pw", &fast())
    }

    type Edit = Box<dyn FnOnce(&mut Value)>;

    /// Apply `edit` to a valid keystore's JSON value and decrypt the result.
    fn decrypt_edited(edit: impl FnOnce(&mut Value)) -> Result<SecretKey, KeyError> {
        let mut v = parse(&valid_json());
        edit(&mut v);
        decrypt_keystore(&v.to_string(), "pw")
    }

    #[test]
    fn malformed_inputs_give_errors() {
        for text in ["", "   ", "null", "3", "\"x\"", "[]", "{", "{}", "{\"version\":3}"] {
            assert!(matches!(decrypt_keystore(text, "pw"), Err(KeyError::Malformed(_))), "{text:?}");
        }
        let malformed: Vec<(&str, Edit)> = vec![
            ("no crypto", Box::new(|v| v["crypto"] = Value::Null)),
            ("crypto string", Box::new(|v| v["crypto"] = json!("x"))),
            ("no iv", Box::new(|v| v["crypto"]["cipherparams"] = json!({}))),
            ("short iv", Box::new(|v| v["crypto"]["cipherparams"]["iv"] = json!("00ff"))),
            ("iv not hex", Box::new(|v| v["crypto"]["cipherparams"]["iv"] = json!("zz".repeat(16)))),
            ("short ciphertext", Box::new(|v| v["crypto"]["ciphertext"] = json!("00"))),
            ("ciphertext number", Box::new(|v| v["crypto"]["ciphertext"] = json!(5))),
            ("short mac", Box::new(|v| v["crypto"]["mac"] = json!("abcd"))),
            ("no kdfparams", Box::new(|v| v["crypto"]["kdfparams"] = Value::Null)),
            ("n string", Box::new(|v| v["crypto"]["kdfparams"]["n"] = json!("2"))),
            ("n negative", Box::new(|v| v["crypto"]["kdfparams"]["n"] = json!(-2))),
            ("n float", Box::new(|v| v["crypto"]["kdfparams"]["n"] = json!(2.5))),
            ("no salt", Box::new(|v| v["crypto"]["kdfparams"]["salt"] = Value::Null)),
            ("dklen 16", Box::new(|v| v["crypto"]["kdfparams"]["dklen"] = json!(16))),
            ("bad address", Box::new(|v| v["address"] = json!("0x1234"))),
            ("address number", Box::new(|v| v["address"] = json!(1))),
            ("no version", Box::new(|v| v["version"] = Value::Null)),
        ];
        for (what, edit) in malformed {
            match decrypt_edited(edit) {
                Err(KeyError::Malformed(msg)) => assert!(!msg.is_empty()),
                other => panic!("{what}: expected Malformed, got {other:?}"),
            }
        }
        let unsupported: Vec<(&str, Edit)> = vec![
            ("version 1", Box::new(|v| v["version"] = json!(1))),
            ("version \"3\"", Box::new(|v| v["version"] = json!("3"))),
            ("cbc", Box::new(|v| v["crypto"]["cipher"] = json!("aes-128-cbc"))),
            ("argon2", Box::new(|v| v["crypto"]["kdf"] = json!("argon2id"))),
            ("n = 3", Box::new(|v| v["crypto"]["kdfparams"]["n"] = json!(3))),
            ("n = 1", Box::new(|v| v["crypto"]["kdfparams"]["n"] = json!(1))),
            ("n huge", Box::new(|v| v["crypto"]["kdfparams"]["n"] = json!(1u64 << 40))),
            ("r = 0", Box::new(|v| v["crypto"]["kdfparams"]["r"] = json!(0))),
            ("p huge", Box::new(|v| v["crypto"]["kdfparams"]["p"] = json!(u64::MAX))),
            (
                "pbkdf2 sha512",
                Box::new(|v| {
                    v["crypto"]["kdf"] = json!("pbkdf2");
                    v["crypto"]["kdfparams"]["prf"] = json!("hmac-sha512");
                    v["crypto"]["kdfparams"]["c"] = json!(1);
                }),
            ),
            (
                "pbkdf2 c huge",
                Box::new(|v| {
                    v["crypto"]["kdf"] = json!("pbkdf2");
                    v["crypto"]["kdfparams"]["prf"] = json!("hmac-sha256");
                    v["crypto"]["kdfparams"]["c"] = json!(1u64 << 40);
                }),
            ),
        ];
        for (what, edit) in unsupported {
            match decrypt_edited(edit) {
                Err(KeyError::Unsupported(msg)) => assert!(!msg.is_empty()),
                other => panic!("{what}: expected Unsupported, got {other:?}"),
            }
        }
        // A tampered ciphertext fails the MAC check.
        let tampered = decrypt_edited(|v| {
            let ct = v["crypto"]["ciphertext"].as_str().unwrap();
            let flipped = if ct.starts_with('0') { "1" } else { "0" };
            v["crypto"]["ciphertext"] = json!(format!("{flipped}{}", &ct[1..]));
        });
        assert!(matches!(tampered, Err(KeyError::WrongPassword)));
        // Fields this crate does not need are tolerated, and so is a missing address.
        let key = decrypt_edited(|v| {
            v["x-ethers"] = json!({"gethFilename": "whatever"});
            v.as_object_mut().unwrap().remove("address");
            v.as_object_mut().unwrap().remove("id");
        })
        .unwrap();
        assert_eq!(hex::encode(key.to_bytes()), HARDHAT_1_KEY);
    }

    /// Truncations and one-character corruptions of a valid file must give
    /// an error (or, rarely, still decrypt), never a panic.
    #[test]
    fn corrupted_files_never_panic() {
        let json = valid_json();
        let expected = SecretKey::from_hex(HARDHAT_1_KEY).unwrap();
        for cut in 0..json.len() {
            assert!(decrypt_keystore(&json[..cut], "pw").is_err());
        }
        for pos in 0..json.len() {
            for c in ['0', '9', 'f', 'x', '"', '{', ']', ',', ' ', '\u{e9}'] {
                let mut corrupted = json.clone();
                corrupted.replace_range(pos..pos + 1, c.encode_utf8(&mut [0; 4]));
                if let Ok(key) = decrypt_keystore(&corrupted, "pw") {
                    assert_eq!(key, expected, "{corrupted}");
                }
            }
        }
    }

    #[test]
    fn file_names_like_geth() {
        let addr = address!("70997970C51812dc3A010C7d01b50e0d17dc79C8");
        let t = UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 123_456_789);
        assert_eq!(
            key_file_name(t, &addr),
            "UTC--2023-11-14T22-13-20.123456789Z--70997970c51812dc3a010c7d01b50e0d17dc79c8"
        );
        let leap = UNIX_EPOCH + std::time::Duration::from_secs(951_782_400); // 2000-02-29
        assert!(key_file_name(leap, &addr).starts_with("UTC--2000-02-29T00-00-00.000000000Z--"));
        assert!(key_file_name(UNIX_EPOCH, &addr).starts_with("UTC--1970-01-01T00-00-00."));
    }

    #[test]
    fn keystore_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a").join("keystore");
        let ks = Keystore::open(&dir).unwrap();
        assert_eq!(ks.dir(), dir);
        assert!(ks.list().unwrap().is_empty());

        let a = ks.create("pw-a", &fast()).unwrap();
        let key_b = SecretKey::from_hex(HARDHAT_1_KEY).unwrap();
        let b = ks.import(&key_b, "pw-b", &fast()).unwrap();
        assert_eq!(b, key_b.address());
        let mut expected = vec![a, b];
        expected.sort();
        assert_eq!(ks.list().unwrap(), expected);

        // Duplicates are refused, whatever the password.
        assert!(matches!(
            ks.import(&key_b, "other", &fast()),
            Err(KeyError::AlreadyExists(x)) if x == b
        ));
        assert_eq!(ks.list().unwrap().len(), 2);

        assert_eq!(ks.load(&b, "pw-b").unwrap(), key_b);
        assert_eq!(ks.load(&a, "pw-a").unwrap().address(), a);
        assert!(matches!(ks.load(&b, "pw-a"), Err(KeyError::WrongPassword)));
        let missing = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
        assert!(matches!(
            ks.load(&missing, "pw"),
            Err(KeyError::NotFound(x)) if x == missing
        ));

        // One file per key, geth-style names, no temporary files left over.
        let mut names: Vec<String> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.iter().all(|n| n.starts_with("UTC--")));
        assert!(names.iter().any(|n| n.ends_with("--70997970c51812dc3a010c7d01b50e0d17dc79c8")));

        // Reopening sees the same keys.
        let again = Keystore::open(&dir).unwrap();
        assert_eq!(again.list().unwrap(), expected);
    }

    #[test]
    fn keystore_ignores_other_files() {
        let tmp = tempfile::tempdir().unwrap();
        let ks = Keystore::open(tmp.path()).unwrap();
        let key = SecretKey::from_hex(HARDHAT_1_KEY).unwrap();
        let json = encrypt_keystore(&key, "pw", &fast());
        fs::write(tmp.path().join("README.md"), "not a key").unwrap();
        fs::write(tmp.path().join("broken.json"), "{\"address\":").unwrap();
        fs::write(tmp.path().join("array.json"), "[1,2,3]").unwrap();
        fs::write(tmp.path().join("no-crypto.json"), r#"{"address":"70997970c51812dc3a010c7d01b50e0d17dc79c8"}"#)
            .unwrap();
        fs::write(tmp.path().join(".hidden"), &json).unwrap();
        fs::write(tmp.path().join("backup~"), &json).unwrap();
        fs::write(tmp.path().join("big"), vec![b' '; 100_000]).unwrap();
        fs::create_dir(tmp.path().join("subdir")).unwrap();
        assert!(ks.list().unwrap().is_empty());
        assert!(matches!(ks.load(&key.address(), "pw"), Err(KeyError::NotFound(_))));

        // A file written by another tool, with any name, is picked up.
        fs::write(tmp.path().join("my-key.json"), &json).unwrap();
        assert_eq!(ks.list().unwrap(), vec![key.address()]);
        assert_eq!(ks.load(&key.address(), "pw").unwrap(), key);
        assert!(matches!(ks.import(&key, "pw", &fast()), Err(KeyError::AlreadyExists(_))));
    }

    #[cfg(unix)]
    #[test]
    fn keystore_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keystore");
        let ks = Keystore::open(&dir).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        ks.create("pw", &fast()).unwrap();
        for entry in fs::read_dir(&dir).unwrap() {
            assert_eq!(mode(&entry.unwrap().path()), 0o600);
        }
    }

    #[test]
    fn open_fails_on_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        assert!(matches!(Keystore::open(&file), Err(KeyError::Io(_))));
    }
}
