//! Every storage key of datanets. Prefix `datanets/`.

use primitives::Address;

fn k(parts: &[&[u8]]) -> Vec<u8> {
    let mut v = b"datanets/".to_vec();
    for p in parts {
        v.extend_from_slice(p);
    }
    v
}

/// `datanets/count` → u64: Datanets ever created.
pub fn count() -> Vec<u8> {
    k(&[b"count"])
}
/// `datanets/d/<id>` → `DatanetRecord`.
pub fn datanet(id: u64) -> Vec<u8> {
    k(&[b"d/", &id.to_be_bytes()])
}
/// `datanets/of/<owner>` → `uint64[]`: the owner's Datanets (ownership moves
/// with the `assets` token).
pub fn datanets_of(owner: &Address) -> Vec<u8> {
    k(&[b"of/", owner.as_slice()])
}
/// `datanets/cur/<id>` → `address[]`.
pub fn curators(id: u64) -> Vec<u8> {
    k(&[b"cur/", &id.to_be_bytes()])
}
/// `datanets/att/<id>` → `address[]`: trusted ingest attesters.
pub fn attesters(id: u64) -> Vec<u8> {
    k(&[b"att/", &id.to_be_bytes()])
}
/// `datanets/mem/<id><account>` → present for allow-list members.
pub fn member(id: u64, a: &Address) -> Vec<u8> {
    k(&[b"mem/", &id.to_be_bytes(), a.as_slice()])
}
/// `datanets/ccount` → u64: contributions ever submitted (ids are global).
pub fn contribution_count() -> Vec<u8> {
    k(&[b"ccount"])
}
/// `datanets/c/<contribution id>` → `ContributionRecord`.
pub fn contribution(id: u64) -> Vec<u8> {
    k(&[b"c/", &id.to_be_bytes()])
}
/// `datanets/of/<datanet>/` → indexed list of contribution ids.
pub fn contributions_of(id: u64) -> Vec<u8> {
    k(&[b"of/", &id.to_be_bytes(), b"/"])
}
/// `datanets/by/<contributor>/` → indexed list of contribution ids.
pub fn contributions_by(a: &Address) -> Vec<u8> {
    k(&[b"by/", a.as_slice(), b"/"])
}
/// `datanets/cs/<datanet>/` → indexed list of contributors, in order of first contribution.
pub fn contributors(id: u64) -> Vec<u8> {
    k(&[b"cs/", &id.to_be_bytes(), b"/"])
}
/// `datanets/st/<datanet><contributor>` → `StandingRecord` (present once listed in `contributors`).
pub fn standing(id: u64, a: &Address) -> Vec<u8> {
    k(&[b"st/", &id.to_be_bytes(), a.as_slice()])
}
/// `datanets/fr/<datanet><index u64>` → Fenwick node: rows of flagged
/// contributions by the version they were approved at (a version's live rows
/// are its recorded ones minus the prefix sum up to it).
pub fn flagged_rows_node(id: u64, i: u64) -> Vec<u8> {
    k(&[b"fr/", &id.to_be_bytes(), &i.to_be_bytes()])
}
/// `datanets/fc/<datanet><index u64>` → Fenwick node of the closure counts:
/// each tombstone or flag adds 1 at the first version it closes and −1 after
/// the last (the prefix sum at a version is how many closures cover it).
pub fn closures_node(id: u64, i: u64) -> Vec<u8> {
    k(&[b"fc/", &id.to_be_bytes(), &i.to_be_bytes()])
}
/// `datanets/ver/<datanet><n>` → `VersionRecord`.
pub fn version(id: u64, n: u64) -> Vec<u8> {
    k(&[b"ver/", &id.to_be_bytes(), &n.to_be_bytes()])
}
/// `datanets/smt/<datanet><level u8><index u64>` → node hash of the version map (absent = empty).
pub fn smt_node(id: u64, level: u8, index: u64) -> Vec<u8> {
    k(&[b"smt/", &id.to_be_bytes(), &[level], &index.to_be_bytes()])
}
/// `datanets/used/<attestation signing hash>` → present once an attestation was used.
pub fn attestation_used(h: &primitives::B256) -> Vec<u8> {
    k(&[b"used/", h.as_slice()])
}
/// `datanets/uc/<datanet><contributor><day>` → (bytes, files) submitted that day.
pub fn contributor_usage(id: u64, a: &Address, day: u64) -> Vec<u8> {
    k(&[b"uc/", &id.to_be_bytes(), a.as_slice(), &day.to_be_bytes()])
}
/// `datanets/ud/<datanet><day>` → bytes submitted that day.
pub fn datanet_usage(id: u64, day: u64) -> Vec<u8> {
    k(&[b"ud/", &id.to_be_bytes(), &day.to_be_bytes()])
}
/// `datanets/tomb/<contribution><row>` → `TombstoneRecord`.
pub fn tombstone(cid: u64, row: u32) -> Vec<u8> {
    k(&[b"tomb/", &cid.to_be_bytes(), &row.to_be_bytes()])
}
/// `datanets/rep/<contributor>` → `ReputationRecord`.
pub fn reputation(a: &Address) -> Vec<u8> {
    k(&[b"rep/", a.as_slice()])
}
/// `datanets/flagged/<id BE>/` → indexed list of contributions flagged, in flagging order.
pub fn flagged(id: u64) -> Vec<u8> {
    k(&[b"flagged/", &id.to_be_bytes(), b"/"])
}
