//! `datanet ...`, `contribute` and `curate ...`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, anyhow, bail};
use primitives::abi::{DatanetLimits, IDatanets};
use primitives::rows::{Row, TOMBSTONE_LEAF, VersionEntry, rows_root, version_root};
use primitives::system::Module;
use primitives::{Address, Amount, B256, U256};
use serde_json::{Value, json};

use super::RpcArgs;
use super::httpc::{HttpArgs, error_message, multipart_file};
use super::keys::SignerArgs;
use crate::contract::{Sent, send_call, send_sol, signer_address, view};
use crate::output::Out;

/// Items per page of the chain's list views (their maximum).
const PAGE: u64 = 256;
const DATANETS: Address = Module::Datanets.address();

/// The arguments of `datanet create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// A datanet.json with name, summary, description, tags, licence, policy.
    #[arg(long)]
    pub from_json: Option<PathBuf>,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long, default_value = "")]
    pub summary: String,
    /// Markdown description (or --description-file).
    #[arg(long, default_value = "")]
    pub description: String,
    #[arg(long)]
    pub description_file: Option<PathBuf>,
    /// Comma-separated tags.
    #[arg(long, default_value = "")]
    pub tags: String,
    /// SPDX licence identifier.
    #[arg(long)]
    pub licence: Option<String>,
    /// open or allow-list.
    #[arg(long)]
    pub policy: Option<String>,
    /// Bond each contribution locks.
    #[arg(long, default_value = "0")]
    pub bond: Amount,
    #[arg(long = "curator")]
    pub curators: Vec<Address>,
    /// Trusted ingest attesters (default: the node's own attester).
    #[arg(long = "attester")]
    pub attesters: Vec<Address>,
    /// Files per contributor per day (0: governed default).
    #[arg(long, default_value_t = 0)]
    pub daily_files: u32,
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub rpc: RpcArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum DatanetCmd {
    /// Create a Datanet (from flags, or from a datanet.json like those under data/).
    Create(Box<CreateArgs>),
    /// A Datanet, its versions, curators and attesters.
    Show {
        id: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Every Datanet.
    List {
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// A Datanet's contributions and their status.
    Contributions {
        id: u64,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Write a version's rows as JSON lines, after checking they hash to the on-chain root.
    #[command(disable_version_flag = true)]
    Export {
        id: u64,
        /// Version (default: the latest).
        #[arg(long)]
        version: Option<u64>,
        /// Output file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Sign the request (needed for allow-list Datanets).
        #[arg(long)]
        dev_account: Option<u32>,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
    /// Add or remove members of an allow-list Datanet (the owner only).
    Members {
        id: u64,
        #[arg(long = "add")]
        add: Vec<Address>,
        #[arg(long = "remove")]
        remove: Vec<Address>,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// A contributor's acceptance record.
    Reputation {
        contributor: Address,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Contributors by approved rows.
    Leaderboard {
        id: u64,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct ContributeArgs {
    /// The file: .txt, .md, .jsonl or .csv.
    pub file: PathBuf,
    #[arg(long)]
    pub datanet: u64,
    /// Only show what the ingest service found; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub signer: SignerArgs,
    #[command(flatten)]
    pub rpc: RpcArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum CurateCmd {
    /// Approve a pending contribution: a new version of its Datanet.
    Approve {
        contribution: u64,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Reject a pending contribution (spam and duplicate slash part of the bond).
    Reject {
        contribution: u64,
        /// spam, duplicate, low-quality, off-topic, licence or other.
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Flag an approved contribution found duplicated or adversarial: it stops
    /// earning (no new credits, no fallback share; pending credits go to the treasury).
    Flag {
        contribution: u64,
        /// duplicated, adversarial or unfit.
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "")]
        note: String,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Remove a row from future versions (licence or consent); the owner only.
    Tombstone {
        contribution: u64,
        #[arg(long)]
        row: u32,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
        #[command(flatten)]
        http: HttpArgs,
    },
}

fn reason_code(s: &str) -> anyhow::Result<u8> {
    Ok(match s {
        "other" => 0,
        "spam" => 1,
        "duplicate" => 2,
        "low-quality" => 3,
        "off-topic" => 4,
        "licence" | "license" => 5,
        _ => bail!("unknown reason {s:?}: spam, duplicate, low-quality, off-topic, licence or other"),
    })
}

const STATUS: [&str; 4] = ["pending", "approved", "rejected", "withdrawn"];

fn node_attester(http: &HttpArgs) -> anyhow::Result<Address> {
    let (status, body) = http.request("GET", "/v1/node/attester", &[], b"")?;
    if status != 200 {
        bail!("the node did not say its attester ({status}): {}", error_message(&body));
    }
    let v: Value = serde_json::from_slice(&body)?;
    v["attester"]
        .as_str()
        .ok_or_else(|| anyhow!("this node has no attester key; pass --attester"))?
        .parse()
        .map_err(Into::into)
}

fn sent_json(s: &Sent, extra: Value) -> Value {
    s.json(extra)
}

pub fn run(c: DatanetCmd, out: Out) -> anyhow::Result<()> {
    match c {
        DatanetCmd::Create(a) => create(*a, out)?,
        DatanetCmd::Show { id, rpc } => {
            let mut c = rpc.client();
            let d = view(&mut c, DATANETS, &IDatanets::datanetCall { id })?;
            let cur = view(&mut c, DATANETS, &IDatanets::curatorsCall { id })?;
            let att = view(&mut c, DATANETS, &IDatanets::attestersCall { id })?;
            let mut versions = Vec::new();
            for v in 1..=d.versionCount {
                let r = view(&mut c, DATANETS, &IDatanets::versionCall { id, v })?;
                versions.push(json!({"version": v, "root": r.root, "rows": r.rowCount, "liveRows": r.liveRows, "contributions": r.contributions, "block": r.createdAt, "closed": r.closed}));
            }
            let j = json!({
                "id": id, "owner": d.owner, "name": d.name, "summary": d.summary, "description": d.description, "tags": d.tags,
                "licence": d.licence, "policy": if d.policy == 1 { "allow-list" } else { "open" },
                "contributorBond": d.contributorBond.to_string(), "frozen": d.flags & 1 != 0, "curators": cur, "attesters": att,
                "limits": {"maxSubmissionBytes": d.limits.maxSubmissionBytes, "contributorDailyBytes": d.limits.contributorDailyBytes,
                           "datanetDailyBytes": d.limits.datanetDailyBytes, "contributorDailyFiles": d.limits.contributorDailyFiles},
                "versions": versions,
            });
            out.print(|| serde_json::to_string_pretty(&j).unwrap(), j.clone());
        }
        DatanetCmd::List { rpc } => {
            let mut c = rpc.client();
            let n = view(&mut c, DATANETS, &IDatanets::datanetCountCall {})?;
            let mut all = Vec::new();
            for id in 1..=n {
                let d = view(&mut c, DATANETS, &IDatanets::datanetCall { id })?;
                all.push(json!({"id": id, "name": d.name, "owner": d.owner, "versions": d.versionCount, "licence": d.licence}));
            }
            out.print(
                || {
                    all.iter()
                        .map(|d| {
                            format!(
                                "{:>4}  {:<30} v{}  {}",
                                d["id"],
                                d["name"].as_str().unwrap_or(""),
                                d["versions"],
                                d["licence"].as_str().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
                json!(all),
            );
        }
        DatanetCmd::Contributions { id, rpc } => {
            let mut c = rpc.client();
            // The chain serves the list a page at a time.
            let mut ids = Vec::new();
            loop {
                let page = view(
                    &mut c,
                    DATANETS,
                    &IDatanets::contributionsOfCall { id, offset: ids.len() as u64, limit: PAGE },
                )?;
                let done = (page.len() as u64) < PAGE;
                ids.extend(page);
                if done {
                    break;
                }
            }
            let mut all = Vec::new();
            for cid in ids {
                let r = view(&mut c, DATANETS, &IDatanets::contributionCall { contributionId: cid })?;
                all.push(json!({"id": cid, "contributor": r.contributor, "status": STATUS.get(r.status as usize).copied().unwrap_or("?"),
                    "rows": r.rowCount, "bytes": r.byteSize, "qualityBps": r.qualityBps, "exactDuplicates": r.exactDuplicates,
                    "nearDuplicates": r.nearDuplicates, "version": r.version, "tombstoned": r.tombstoned, "reason": r.reason, "note": r.note}));
            }
            out.print(|| serde_json::to_string_pretty(&all).unwrap(), json!(all));
        }
        DatanetCmd::Export { id, version, out: path, dev_account, rpc, http } => {
            export(id, version, path, dev_account, &rpc, &http, out)?
        }
        DatanetCmd::Members { id, add, remove, signer, rpc } => {
            if add.is_empty() && remove.is_empty() {
                bail!("give --add ADDRESS and/or --remove ADDRESS");
            }
            let call = IDatanets::setMembersCall { id, add: add.clone(), remove: remove.clone() };
            let sent = send_sol(&signer, &rpc, DATANETS, &call, "set members")?;
            out.print(
                || {
                    format!(
                        "{}
Datanet {id}: {} added, {} removed",
                        sent.human("members"),
                        add.len(),
                        remove.len()
                    )
                },
                sent_json(&sent, json!({"added": add, "removed": remove})),
            );
        }
        DatanetCmd::Reputation { contributor, rpc } => {
            let r = view(&mut rpc.client(), DATANETS, &IDatanets::reputationCall { contributor })?;
            let decided = r.approved + r.rejected;
            let j = json!({"submitted": r.submitted, "approved": r.approved, "rejected": r.rejected, "withdrawn": r.withdrawn,
                "rows": r.rows, "bytesApproved": r.bytesApproved, "acceptanceBps": (r.approved * 10_000).checked_div(decided).unwrap_or(0)});
            out.print(|| serde_json::to_string_pretty(&j).unwrap(), j.clone());
        }
        DatanetCmd::Leaderboard { id, limit, rpc } => leaderboard(id, limit, &rpc, out)?,
    }
    Ok(())
}

/// `datanet leaderboard`.
fn leaderboard(id: u64, limit: u32, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    // The chain pages its contributors with their standings; the ranking
    // (approved rows, then acceptance, then address) is made here.
    let mut c = rpc.client();
    let mut all: Vec<(Address, u64, u16)> = Vec::new();
    loop {
        let r =
            view(&mut c, DATANETS, &IDatanets::leaderboardCall { id, offset: all.len() as u64, limit: PAGE as u32 })?;
        let n = r.contributors.len() as u64;
        all.extend(r.contributors.into_iter().zip(r.approvedRows).zip(r.acceptanceBps).map(|((a, n), b)| (a, n, b)));
        if n < PAGE {
            break;
        }
    }
    all.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
    all.truncate(limit as usize);
    let rows: Vec<Value> =
        all.iter().map(|(a, n, b)| json!({"contributor": a, "approvedRows": n, "acceptanceBps": b})).collect();
    out.print(
        || {
            rows.iter()
                .enumerate()
                .map(|(i, r)| {
                    format!(
                        "{:>3}. {}  {} rows  {}% accepted",
                        i + 1,
                        r["contributor"].as_str().unwrap_or(""),
                        r["approvedRows"],
                        r["acceptanceBps"].as_u64().unwrap_or(0) / 100
                    )
                })
                .collect::<Vec<_>>()
                .join("\n")
        },
        json!(rows),
    );
    Ok(())
}

/// `datanet create`.
fn create(a: CreateArgs, out: Out) -> anyhow::Result<()> {
    let spec: Value = match &a.from_json {
        Some(p) => {
            serde_json::from_str(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)
                .with_context(|| format!("{} is not JSON", p.display()))?
        }
        None => json!({}),
    };
    let (sent, ev, attesters) = create_datanet(a, &spec)?;
    out.print(
        || {
            format!(
                "{}\ncreated Datanet {} ({}); trusted attesters: {:?}",
                sent.human("create"),
                ev.id,
                ev.name,
                attesters
            )
        },
        sent_json(&sent, json!({"id": ev.id, "name": ev.name})),
    );
    Ok(())
}

/// Create a Datanet from flags, each unset one taken from `spec` (the fields of a
/// datanet.json); `from_json` is not read. The receipt, its event and the trusted attesters.
pub fn create_datanet(a: CreateArgs, spec: &Value) -> anyhow::Result<(Sent, IDatanets::DatanetCreated, Vec<Address>)> {
    let CreateArgs {
        from_json: _,
        name,
        summary,
        description,
        description_file,
        tags,
        licence,
        policy,
        bond,
        curators,
        attesters,
        daily_files,
        signer,
        rpc,
        http,
    } = a;
    let pick = |flag: Option<String>, key: &str| flag.or_else(|| spec[key].as_str().map(str::to_string));
    let name = pick(name, "name").ok_or_else(|| anyhow!("give --name (or --from-json)"))?;
    let summary = if summary.is_empty() { spec["summary"].as_str().unwrap_or("").to_string() } else { summary };
    let description = match description_file {
        Some(p) => std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?,
        None if description.is_empty() => spec["description"].as_str().unwrap_or("").to_string(),
        None => description,
    };
    let tags: Vec<String> = if tags.is_empty() {
        spec["tags"]
            .as_array()
            .map(|a| a.iter().filter_map(|t| t.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    } else {
        tags.split(',').map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect()
    };
    let licence = pick(licence, "licence").ok_or_else(|| anyhow!("give --licence (an SPDX identifier)"))?;
    let policy = match pick(policy, "policy").as_deref().unwrap_or("open") {
        "open" => 0u8,
        "allow-list" | "allowlist" => 1,
        p => bail!("policy {p:?} is neither open nor allow-list"),
    };
    let attesters = if attesters.is_empty() { vec![node_attester(&http)?] } else { attesters };
    let call = IDatanets::createDatanetCall {
        name,
        summary,
        description,
        tags,
        dataType: 0,
        licence,
        policy,
        contributorBond: bond.to_u256(),
        curators,
        attesters: attesters.clone(),
        limits: DatanetLimits {
            maxSubmissionBytes: 0,
            contributorDailyBytes: 0,
            datanetDailyBytes: 0,
            contributorDailyFiles: daily_files,
        },
    };
    let sent = send_sol(&signer, &rpc, DATANETS, &call, "create Datanet")?;
    let ev = sent.event::<IDatanets::DatanetCreated>(DATANETS).ok_or_else(|| anyhow!("no DatanetCreated log"))?;
    Ok((sent, ev, attesters))
}

/// `datanet export`.
fn export(
    id: u64,
    version: Option<u64>,
    path: Option<PathBuf>,
    dev_account: Option<u32>,
    rpc: &RpcArgs,
    http: &HttpArgs,
    out: Out,
) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let d = view(&mut c, DATANETS, &IDatanets::datanetCall { id })?;
    let v = version.unwrap_or(d.versionCount);
    if v == 0 {
        bail!("Datanet {id} has no version yet (nothing approved)");
    }
    let onchain = view(&mut c, DATANETS, &IDatanets::versionCall { id, v })?;
    let path_q = format!("/v1/datanets/{id}/versions/{v}/rows");
    let mut headers = vec![];
    if let Some(i) = dev_account {
        let k = keys::derive_account(keys::DEV_MNEMONIC, i)?;
        headers.push(http.auth_header(&k, "GET", &path_q, b"")?);
    }
    let (status, body) = http.request("GET", &path_q, &headers, b"")?;
    if status != 200 {
        bail!("export refused ({status}): {}", error_message(&body));
    }
    // Recompute the version root from the exported rows before writing them.
    let text = String::from_utf8(body).context("rows are not UTF-8")?;
    let mut per: BTreeMap<u64, BTreeMap<u32, B256>> = BTreeMap::new();
    for line in text.lines() {
        let l: Value = serde_json::from_str(line)?;
        let row = match (l.get("text"), l.get("prompt"), l.get("completion")) {
            (Some(t), _, _) => Row::Text { text: t.as_str().unwrap_or("").into() },
            (None, Some(p), Some(q)) => Row::PromptCompletion {
                prompt: p.as_str().unwrap_or("").into(),
                completion: q.as_str().unwrap_or("").into(),
            },
            _ => bail!("malformed row line: {line}"),
        };
        per.entry(l["contribution"].as_u64().unwrap_or(0))
            .or_default()
            .insert(l["index"].as_u64().unwrap_or(0) as u32, row.leaf());
    }
    let mut entries = BTreeMap::new();
    for (cid, rows) in &per {
        let r = view(&mut c, DATANETS, &IDatanets::contributionCall { contributionId: *cid })?;
        let leaves: Vec<B256> = (0..r.rowCount).map(|i| rows.get(&i).copied().unwrap_or(TOMBSTONE_LEAF)).collect();
        entries.insert(*cid, VersionEntry { rows_root: rows_root(&leaves), row_count: r.rowCount as u64 });
    }
    let root = version_root(&entries);
    if root != onchain.root {
        bail!(
            "the exported rows hash to {root}, but version {v}'s on-chain root is {}: refusing to write them",
            onchain.root
        );
    }
    let n = text.lines().count();
    match &path {
        Some(p) => std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?,
        None if !out.json => print!("{text}"),
        None => {}
    }
    if path.is_some() || out.json {
        out.print(
            || format!("wrote {n} rows of Datanet {id} version {v}; they hash to its on-chain root {root}"),
            json!({"rows": n, "version": v, "root": root, "verified": true}),
        );
    }
    Ok(())
}

/// The ingest service's answer for a file (its report, the bond and the submit calldata);
/// nothing is sent to the chain.
pub fn ingest(name: &str, content: &[u8], datanet: u64, signer: &SignerArgs, http: &HttpArgs) -> anyhow::Result<Value> {
    let key = signer.key()?;
    let path = format!("/v1/datanets/{datanet}/contributions");
    let (ctype, body) = multipart_file(name, content);
    let auth = http.auth_header(&key, "POST", &path, &body)?;
    let (status, resp) = http.request("POST", &path, &[("Content-Type", ctype), auth], &body)?;
    if status != 200 {
        bail!("the ingest service refused {name} ({status}): {}", error_message(&resp));
    }
    serde_json::from_slice(&resp).context("ingest answer")
}

/// Submit an ingested file ([`ingest`]'s answer) with its bond: the receipt, the
/// contribution's id and the bond.
pub fn submit(ingested: &Value, signer: &SignerArgs, rpc: &RpcArgs) -> anyhow::Result<(Sent, u64, U256)> {
    let value: U256 = ingested["value"].as_str().unwrap_or("0").parse().map_err(|_| anyhow!("bad bond value"))?;
    let calldata = hex::decode(ingested["calldata"].as_str().unwrap_or("").trim_start_matches("0x"))?;
    let sent = send_call(signer, rpc, DATANETS, Amount::from_u256(value)?, calldata, "submit contribution")?;
    let ev = sent
        .event::<IDatanets::ContributionSubmitted>(DATANETS)
        .ok_or_else(|| anyhow!("no ContributionSubmitted log"))?;
    Ok((sent, ev.contributionId, value))
}

pub fn contribute(a: ContributeArgs, out: Out) -> anyhow::Result<()> {
    let content = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let name = a.file.file_name().and_then(|n| n.to_str()).unwrap_or("upload.txt").to_string();
    let r = ingest(&name, &content, a.datanet, &a.signer, &a.http)?;
    let report = &r["report"];
    let findings: Vec<String> = report["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter(|x| x["reasons"].as_array().is_some_and(|v| !v.is_empty()))
                .map(|x| {
                    format!(
                        "  row {:>4}  score {:>5}  {}",
                        x["index"],
                        x["scoreBps"],
                        x["reasons"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter_map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let summary = format!(
        "{}: {} rows, quality {} bps, {} exact and {} near duplicates (scorer v{})",
        name,
        report["rowCount"],
        report["qualityBps"],
        report["exactDuplicates"],
        report["nearDuplicates"],
        report["scorerVersion"]
    );
    if a.dry_run {
        out.print(|| format!("{summary}\n{}", findings.join("\n")), r.clone());
        return Ok(());
    }
    let (sent, contribution, value) = submit(&r, &a.signer, &a.rpc)?;
    out.print(
        || {
            format!(
                "{}\ncontribution {} to Datanet {} is pending review\n{summary}\n{}",
                sent.human("submit"),
                contribution,
                a.datanet,
                findings.join("\n")
            )
        },
        sent_json(&sent, json!({"contribution": contribution, "report": report, "bond": value.to_string()})),
    );
    Ok(())
}

/// `curate approve`: a new version of the contribution's Datanet.
pub fn approve(
    contribution: u64,
    signer: &SignerArgs,
    rpc: &RpcArgs,
) -> anyhow::Result<(Sent, IDatanets::ContributionApproved)> {
    let call = IDatanets::approveCall { contributionId: contribution };
    let sent = send_sol(signer, rpc, DATANETS, &call, "approve")?;
    let ev = sent
        .event::<IDatanets::ContributionApproved>(DATANETS)
        .ok_or_else(|| anyhow!("no ContributionApproved log"))?;
    Ok((sent, ev))
}

/// `curate reject`: spam and duplicate slash part of the bond (the event says how much).
pub fn reject(
    contribution: u64,
    reason: &str,
    note: String,
    signer: &SignerArgs,
    rpc: &RpcArgs,
) -> anyhow::Result<(Sent, IDatanets::ContributionRejected)> {
    let call = IDatanets::rejectCall { contributionId: contribution, reason: reason_code(reason)?, note };
    let sent = send_sol(signer, rpc, DATANETS, &call, "reject")?;
    let ev = sent
        .event::<IDatanets::ContributionRejected>(DATANETS)
        .ok_or_else(|| anyhow!("no ContributionRejected log"))?;
    Ok((sent, ev))
}

pub fn curate(c: CurateCmd, out: Out) -> anyhow::Result<()> {
    match c {
        CurateCmd::Approve { contribution, signer, rpc } => {
            let (sent, ev) = approve(contribution, &signer, &rpc)?;
            out.print(
                || {
                    format!(
                        "{}\ncontribution {contribution} approved: Datanet {} version {} root {}",
                        sent.human("approve"),
                        ev.datanetId,
                        ev.version,
                        ev.versionRoot
                    )
                },
                sent_json(&sent, json!({"datanet": ev.datanetId, "version": ev.version, "root": ev.versionRoot})),
            );
        }
        CurateCmd::Reject { contribution, reason, note, signer, rpc } => {
            let (sent, ev) = reject(contribution, &reason, note, &signer, &rpc)?;
            out.print(
                || {
                    format!(
                        "{}\ncontribution {contribution} rejected ({reason}); {} of the bond slashed",
                        sent.human("reject"),
                        Amount::from_u256(ev.slashed).unwrap_or_default()
                    )
                },
                sent_json(&sent, json!({"slashed": ev.slashed.to_string()})),
            );
        }
        CurateCmd::Flag { contribution, reason, note, signer, rpc } => {
            let code = match reason.as_str() {
                "duplicated" => 1,
                "adversarial" => 2,
                "unfit" => 3,
                r => bail!("--reason {r:?}: one of duplicated, adversarial, unfit"),
            };
            let call = IDatanets::flagCall { contributionId: contribution, reason: code, note };
            let sent = send_sol(&signer, &rpc, DATANETS, &call, "flag")?;
            sent.event::<IDatanets::ContributionFlagged>(DATANETS)
                .ok_or_else(|| anyhow!("no ContributionFlagged log"))?;
            out.print(
                || {
                    format!(
                        "{}\ncontribution {contribution} flagged ({reason}): it earns nothing from now on",
                        sent.human("flag")
                    )
                },
                sent_json(&sent, json!({"flagged": contribution})),
            );
        }
        CurateCmd::Tombstone { contribution, row, reason, signer, rpc, http } => {
            let mut c = rpc.client();
            let rec = view(&mut c, DATANETS, &IDatanets::contributionCall { contributionId: contribution })?;
            // The row's leaf and its path come from the contribution's rows, read through the blob store.
            let fetch = |h: B256| -> anyhow::Result<Vec<u8>> {
                let who = signer_address(&signer).ok();
                let _ = who;
                let p = format!("/v1/blobs/{h}");
                let key = signer.key()?;
                let (status, body) = http.request("GET", &p, &[http.auth_header(&key, "GET", &p, b"")?], b"")?;
                if status != 200 {
                    bail!("blob {h} unavailable ({status}): {}", error_message(&body));
                }
                Ok(body)
            };
            let report: Value = serde_json::from_slice(&fetch(rec.findingsHash)?)?;
            let rows_blob: B256 = report["rowsBlob"].as_str().unwrap_or("").parse()?;
            let rows = datanets::decode_rows(&fetch(rows_blob)?).map_err(|e| anyhow!(e))?;
            if row as usize >= rows.len() {
                bail!("contribution {contribution} has {} rows; row {row} does not exist", rows.len());
            }
            let mut leaves: Vec<B256> = rows.iter().map(Row::leaf).collect();
            for (i, leaf) in leaves.iter_mut().enumerate() {
                if view(
                    &mut c,
                    DATANETS,
                    &IDatanets::isTombstonedCall { contributionId: contribution, rowIndex: i as u32 },
                )? {
                    *leaf = TOMBSTONE_LEAF;
                }
            }
            let proof = primitives::merkle::prove(&leaves, row as usize).ok_or_else(|| anyhow!("no such row"))?;
            let call = IDatanets::tombstoneCall {
                contributionId: contribution,
                rowIndex: row,
                rowLeaf: leaves[row as usize],
                proof: proof.siblings,
                reason,
            };
            let sent = send_sol(&signer, &rpc, DATANETS, &call, "tombstone")?;
            let ev = sent.event::<IDatanets::RowTombstoned>(DATANETS).ok_or_else(|| anyhow!("no RowTombstoned log"))?;
            out.print(
                || {
                    format!(
                        "{}\nrow {row} of contribution {contribution} tombstoned: Datanet {} version {} root {}",
                        sent.human("tombstone"),
                        ev.datanetId,
                        ev.version,
                        ev.versionRoot
                    )
                },
                sent_json(&sent, json!({"version": ev.version, "root": ev.versionRoot})),
            );
        }
    }
    Ok(())
}
