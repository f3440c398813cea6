//! The meter's journal of billed receipts (`<data-dir>/receipts.journal`):
//! every receipt is appended and synced before the client sees it, so a node
//! killed at any instant restarts with every receipt it handed out and
//! settles them. After a settlement round the journal is rewritten with only
//! what is still queued, so it never holds more than the queue.
//!
//! A record is `len: u32 LE | check: 4 bytes | payload`, where the payload is
//! the receipt's ABI encoding, the 65-byte signature and the cost (u128 LE),
//! and `check` the first four bytes of the payload's keccak-256. A record cut
//! short or failing its check ends the journal: it and anything after it were
//! never acknowledged (the write that made them did not finish its sync).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use alloy_sol_types::SolValue;
use primitives::abi::InferenceReceipt;

use super::Signed;

const SIGNATURE_LEN: usize = 65;
const COST_LEN: usize = 16;
/// No record is anywhere near this long (a version 3 receipt encodes to 416 bytes).
const MAX_RECORD: usize = 4096;

/// An append-only file of billed receipts.
pub(super) struct Journal {
    path: PathBuf,
    file: File,
    /// The length of the journal's good records: an append that fails is cut
    /// back to it, so no half-written record hides the ones appended after.
    len: u64,
}

impl Journal {
    /// Open (or create) the journal at `path` and read its receipts, in the
    /// order they were billed. A torn or corrupt tail is logged and left out;
    /// the caller rewrites the journal (`rewrite`) before appending to it.
    pub(super) fn open(path: &Path) -> io::Result<(Journal, Vec<Signed>)> {
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (records, tail) = decode_all(&bytes);
        if let Some(why) = tail {
            tracing::warn!(
                "receipt journal {}: the tail after {} receipts is dropped ({why}); it was never acknowledged",
                path.display(),
                records.len()
            );
        }
        // `rewrite` comes before any append and sets the true length.
        Ok((Journal { path: path.to_path_buf(), file, len: 0 }, records))
    }

    /// Append one receipt and sync it to disk.
    pub(super) fn append(&mut self, s: &Signed) -> io::Result<()> {
        let record = encode(s);
        let written = self.file.write_all(&record).and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => self.len += record.len() as u64,
            Err(_) => {
                let cut = self.file.set_len(self.len).and_then(|()| self.file.seek(SeekFrom::Start(self.len)));
                if let Err(e) = cut.and_then(|_| self.file.sync_data()) {
                    tracing::error!("receipt journal {}: a failed append not cut back: {e}", self.path.display());
                }
            }
        }
        written
    }

    /// Replace the journal with these receipts: written to a temporary file,
    /// synced, renamed over the journal, and the directory synced, so a crash
    /// leaves either the old journal or the new one.
    pub(super) fn rewrite<'a>(&mut self, receipts: impl Iterator<Item = &'a Signed>) -> io::Result<()> {
        let tmp = self.path.with_extension("journal.tmp");
        let mut file = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        let bytes: Vec<u8> = receipts.flat_map(encode).collect();
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        // The new file's handle now names the journal: later appends go to it
        // (its cursor is at its end).
        self.file = file;
        self.len = bytes.len() as u64;
        let dir = self.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(dir)?.sync_all()
    }
}

fn checksum(payload: &[u8]) -> [u8; 4] {
    let h = primitives::keccak256(payload);
    [h[0], h[1], h[2], h[3]]
}

fn encode(s: &Signed) -> Vec<u8> {
    let mut payload = s.receipt.abi_encode();
    payload.extend_from_slice(&s.signature);
    payload.extend_from_slice(&s.cost.to_le_bytes());
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&checksum(&payload));
    out.extend_from_slice(&payload);
    out
}

/// The records of a journal, and why its tail (if any) was dropped.
fn decode_all(mut bytes: &[u8]) -> (Vec<Signed>, Option<String>) {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        match decode_one(bytes) {
            Ok((s, used)) => {
                out.push(s);
                bytes = &bytes[used..];
            }
            Err(why) => return (out, Some(format!("{why}, {} bytes", bytes.len()))),
        }
    }
    (out, None)
}

/// One record at the start of `bytes`, and its length.
fn decode_one(bytes: &[u8]) -> Result<(Signed, usize), String> {
    let header: [u8; 8] = bytes.get(..8).and_then(|h| h.try_into().ok()).ok_or("a cut record header")?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if !(SIGNATURE_LEN + COST_LEN..=MAX_RECORD).contains(&len) {
        return Err(format!("a record length of {len}"));
    }
    let payload = bytes.get(8..8 + len).ok_or("a cut record")?;
    if checksum(payload) != header[4..] {
        return Err("a record failing its checksum".into());
    }
    let (receipt, rest) = payload.split_at(len - SIGNATURE_LEN - COST_LEN);
    let (signature, cost) = rest.split_at(SIGNATURE_LEN);
    let receipt = InferenceReceipt::abi_decode(receipt).map_err(|e| format!("a receipt that does not decode: {e}"))?;
    let cost = u128::from_le_bytes(cost.try_into().expect("16 bytes"));
    Ok((Signed { receipt, signature: signature.to_vec(), cost, attempts: 0 }, 8 + len))
}
