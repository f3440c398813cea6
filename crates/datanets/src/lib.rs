//! The node's Datanet services, beside the `datanets` runtime module:
//!
//! - **ingest** ([`routes`]): `POST /v1/datanets/{id}/contributions` takes a file
//!   (multipart field `file`), refuses what the Datanet would refuse before storing
//!   anything, parses it into rows, deduplicates them against every approved row of
//!   the Datanet and within the file, scores them (the `ingest` crate, whose rules
//!   are documented there), stores the file, the rows and the per-row findings in the
//!   blob store, and returns an EIP-712 attestation signed by this node's attester
//!   key with the unsigned calldata of `submitContribution` for the caller's wallet.
//!   The node never holds the contributor's key. Before it reads an upload's
//!   body it takes it from the contributor's daily quota on this node
//!   ([`IngestQuota`]: bytes and files per UTC day across all Datanets), the
//!   node's own defence against unpaid work (429 past it).
//! - **versions** ([`DatanetReader`]): the rows of a Datanet version with their ids
//!   and contributors, read from chain state and the blob store and checked against
//!   the on-chain roots: what ModelFactory and attribution use, never file scanning.
//!   `GET /v1/datanets/{id}/versions/{v}/rows` serves them as JSON lines.
//! - **access** ([`DatanetService::reader_role`], [`DatanetBlobPolicy`],
//!   [`DatanetService::may_train`]): a public Datanet's data is readable by anyone;
//!   an allow-list Datanet's by its owner, curators and members, the serving
//!   operators whose endpoint lists a live model naming it, and the validators
//!   while a challenge of such a model's record is open; every such read is logged.
//!   Only members, owner and curators may train on it. Blobs it cannot place are
//!   refused (the node decides the rest, deny by default).
//!
//! Blob layout: the file as uploaded; the rows blob ([`encode_rows`]: u32 BE
//! count, then per row u32 BE length and the canonical row bytes); the findings
//! report (JSON, [`FindingsReport`]) whose blake3 is the attestation's
//! `findingsHash` and which names the rows blob, so a contribution's rows are
//! found from chain state alone.

pub mod quota;
mod reader;
mod service;

pub use quota::{IngestLedger, IngestQuota, QuotaRefusal};

pub use primitives::rows::VersionRow;
pub use reader::{DatanetReader, ReaderError};
pub use service::{
    DatanetBlobPolicy, DatanetService, FindingsReport, IngestResponse, ReportRow, StateSource, attestation_json, routes,
};

use primitives::rows::Row;

/// Canonical bytes of a list of rows (the rows blob).
pub fn encode_rows(rows: &[Row]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(rows.len() as u32).to_be_bytes());
    for r in rows {
        let b = r.canonical_bytes();
        out.extend_from_slice(&(b.len() as u32).to_be_bytes());
        out.extend_from_slice(&b);
    }
    out
}

/// Decode a rows blob.
pub fn decode_rows(b: &[u8]) -> Result<Vec<Row>, String> {
    let take = |b: &mut &[u8], n: usize| -> Result<Vec<u8>, String> {
        if b.len() < n {
            return Err("truncated rows blob".into());
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h.to_vec())
    };
    let mut cur = b;
    let n = u32::from_be_bytes(take(&mut cur, 4)?.try_into().unwrap()) as usize;
    let mut rows = Vec::with_capacity(n.min(1 << 20));
    for _ in 0..n {
        let len = u32::from_be_bytes(take(&mut cur, 4)?.try_into().unwrap()) as usize;
        let bytes = take(&mut cur, len)?;
        rows.push(Row::from_canonical_bytes(&bytes).map_err(|e| e.to_string())?);
    }
    if !cur.is_empty() {
        return Err("trailing bytes in rows blob".into());
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_blob_round_trip() {
        let rows =
            vec![Row::Text { text: "a".into() }, Row::PromptCompletion { prompt: "q".into(), completion: "r".into() }];
        assert_eq!(decode_rows(&encode_rows(&rows)).unwrap(), rows);
        assert!(decode_rows(&encode_rows(&rows)[..7]).is_err());
    }
}
