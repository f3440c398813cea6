//! `agent memory set|get|readers`: an agent's memory, a key-value map kept whole
//! in a blob (`{"agent": ID, "entries": {key: value, …}}`, keys sorted) whose
//! Merkle root ([`memory_root`]) the agent puts on chain with `updateMemory`.
//! Only the owner, the operator and the readers the owner names may read the
//! blob (the node asks the agents module's `canReadMemory`).

use std::collections::BTreeMap;

use anyhow::{anyhow, bail};
use primitives::abi::IAgents;
use primitives::{Address, Amount, B256, U256, keccak256};
use rpc::client::RpcClient;
use serde_json::{Value, json};

use super::RpcArgs;
use super::agent::{AGENTS, TxArgs, done, get_blob, put_blob};
use super::httpc::HttpArgs;
use super::keys::SignerArgs;
use crate::contract::{events, view};
use crate::output::Out;

/// Longest key of the memory map, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

#[derive(clap::Subcommand, Debug)]
pub enum MemoryCmd {
    /// The operator or owner: set (or `--delete`) one entry and put the new root on chain.
    Set {
        id: u64,
        key: String,
        #[arg(required_unless_present = "delete")]
        value: Option<String>,
        #[arg(long)]
        delete: bool,
        #[command(flatten)]
        tx: TxArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// The memory map (or one key), checked against the on-chain root. Sign with
    /// --dev-account/--from: only allowed readers may read it.
    Get {
        id: u64,
        key: Option<String>,
        /// Who reads (optional: anonymous otherwise).
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// The owner: who may read the memory besides owner and operator (replaces the list).
    Readers {
        id: u64,
        readers: Vec<Address>,
        #[command(flatten)]
        tx: TxArgs,
    },
}

/// The Merkle root of a memory map: leaves `keccak256(0x00 ‖ u32 BE key length ‖ key ‖ value)`
/// in key order, inner nodes `keccak256(0x01 ‖ left ‖ right)`, an odd last node carried
/// up unchanged; zero for an empty map.
pub fn memory_root(entries: &BTreeMap<String, String>) -> B256 {
    let mut level: Vec<B256> = entries
        .iter()
        .map(|(k, v)| {
            let mut m = vec![0u8];
            m.extend_from_slice(&(k.len() as u32).to_be_bytes());
            m.extend_from_slice(k.as_bytes());
            m.extend_from_slice(v.as_bytes());
            keccak256(m)
        })
        .collect();
    if level.is_empty() {
        return B256::ZERO;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| match p {
                [a, b] => {
                    let mut m = vec![1u8];
                    m.extend_from_slice(a.as_slice());
                    m.extend_from_slice(b.as_slice());
                    keccak256(m)
                }
                [a] => *a,
                _ => unreachable!("chunks of two"),
            })
            .collect();
    }
    level[0]
}

/// The memory blob's bytes: canonical JSON, keys sorted.
pub fn memory_blob(id: u64, entries: &BTreeMap<String, String>) -> Vec<u8> {
    serde_json::to_vec(&json!({"agent": id, "entries": entries})).expect("strings only")
}

/// The agent's latest memory update (`None` before the first).
fn latest_update(c: &mut RpcClient, id: u64) -> anyhow::Result<Option<IAgents::MemoryUpdated>> {
    Ok(events::<IAgents::MemoryUpdated>(c, AGENTS, B256::from(U256::from(id)))?.pop())
}

/// The current memory map, read as `key` and checked against the on-chain root.
fn current(
    c: &mut RpcClient,
    http: &HttpArgs,
    key: Option<&keys::SecretKey>,
    id: u64,
) -> anyhow::Result<(BTreeMap<String, String>, u64)> {
    let info = view(c, AGENTS, &IAgents::agentCall { id })?;
    let Some(up) = latest_update(c, id)? else {
        if info.memoryRoot != B256::ZERO {
            bail!("agent {id} has a memory root but no MemoryUpdated log on this node");
        }
        return Ok((BTreeMap::new(), info.memoryVersion));
    };
    let bytes = get_blob(http, key, &up.blobHash)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| anyhow!("memory blob {}: not JSON: {e}", up.blobHash))?;
    let entries: BTreeMap<String, String> = serde_json::from_value(v["entries"].clone())
        .map_err(|e| anyhow!("memory blob {}: entries are not a string map: {e}", up.blobHash))?;
    let root = memory_root(&entries);
    if root != info.memoryRoot {
        bail!("memory blob {} has root {root}; the chain says {}", up.blobHash, info.memoryRoot);
    }
    Ok((entries, info.memoryVersion))
}

pub fn run(c: MemoryCmd, out: Out) -> anyhow::Result<()> {
    match c {
        MemoryCmd::Set { id, key, value, delete, tx, http } => {
            if key.is_empty() || key.len() > MAX_KEY_BYTES {
                bail!("a memory key has 1 to {MAX_KEY_BYTES} bytes");
            }
            let signer = tx.signer.key()?;
            let mut c = tx.rpc.client();
            let (mut entries, _) = current(&mut c, &http, Some(&signer), id)?;
            match (delete, value) {
                (true, _) => {
                    entries.remove(&key).ok_or_else(|| anyhow!("agent {id}'s memory has no key {key:?}"))?;
                }
                (false, Some(v)) => {
                    entries.insert(key.clone(), v);
                }
                (false, None) => bail!("give a value or --delete"),
            }
            let bytes = memory_blob(id, &entries);
            let size = u32::try_from(bytes.len()).map_err(|_| anyhow!("the memory map is over 4 GiB"))?;
            let blob = put_blob(&http, &signer, &bytes, &format!("memory&agent={id}"))?;
            let root = memory_root(&entries);
            let call = IAgents::updateMemoryCall { id, root, blobHash: blob, size };
            let s = tx.send(Amount::ZERO, call, "agents.updateMemory")?;
            let msg =
                format!("agent {id}'s memory: {} entries, root {root} (blob {blob}, {size} bytes)", entries.len());
            done(
                out,
                &s,
                msg,
                json!({"id": id, "root": root, "blobHash": blob, "size": size, "entries": entries.len()}),
            )
        }
        MemoryCmd::Get { id, key, signer, rpc, http } => {
            let signer = match (signer.from, signer.dev_account) {
                (None, None) => None,
                _ => Some(signer.key()?),
            };
            let mut c = rpc.client();
            let (entries, version) = current(&mut c, &http, signer.as_ref(), id)?;
            let readers = view(&mut c, AGENTS, &IAgents::memoryReadersCall { id })?;
            match key {
                Some(k) => {
                    let v = entries.get(&k).ok_or_else(|| anyhow!("agent {id}'s memory has no key {k:?}"))?;
                    out.print(|| v.clone(), json!({"id": id, "key": k, "value": v, "version": version}));
                }
                None => {
                    let human = || {
                        let mut s = format!("agent {id}'s memory (version {version}, readers {readers:?}):");
                        for (k, v) in &entries {
                            s += &format!("\n  {k} = {v}");
                        }
                        s
                    };
                    let v = json!({"id": id, "version": version, "root": memory_root(&entries),
                                   "entries": entries, "readers": readers});
                    out.print(human, v);
                }
            }
            Ok(())
        }
        MemoryCmd::Readers { id, readers, tx } => {
            let call = IAgents::setMemoryReadersCall { id, readers: readers.clone() };
            let s = tx.send(Amount::ZERO, call, "agents.setMemoryReaders")?;
            done(out, &s, format!("agent {id}'s memory readers: {readers:?}"), json!({"id": id, "readers": readers}))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_over_sorted_entries() {
        let mut m = BTreeMap::new();
        assert_eq!(memory_root(&m), B256::ZERO);
        m.insert("b".to_string(), "2".to_string());
        let one = memory_root(&m);
        assert_ne!(one, B256::ZERO);
        m.insert("a".to_string(), "1".to_string());
        m.insert("c".to_string(), "3".to_string());
        let three = memory_root(&m);
        // Three leaves: (a, b) paired, c carried up.
        let leaf = |k: &str, v: &str| {
            let mut x = vec![0u8];
            x.extend_from_slice(&(k.len() as u32).to_be_bytes());
            x.extend_from_slice(k.as_bytes());
            x.extend_from_slice(v.as_bytes());
            keccak256(x)
        };
        let pair = |a: B256, b: B256| {
            let mut x = vec![1u8];
            x.extend_from_slice(a.as_slice());
            x.extend_from_slice(b.as_slice());
            keccak256(x)
        };
        assert_eq!(three, pair(pair(leaf("a", "1"), leaf("b", "2")), leaf("c", "3")));
        // The key length is framed: ("ab", "c") and ("a", "bc") differ.
        let x: BTreeMap<_, _> = [("ab".to_string(), "c".to_string())].into();
        let y: BTreeMap<_, _> = [("a".to_string(), "bc".to_string())].into();
        assert_ne!(memory_root(&x), memory_root(&y));
        assert_eq!(memory_blob(7, &x), br#"{"agent":7,"entries":{"ab":"c"}}"#.to_vec());
    }
}
