//! A small ABI codec for the system contracts' functions and errors, driven by
//! the `SIGNATURE`s of the `sol!` types: elementary types, `bytes`, `string`
//! and dynamic arrays of them (what the interfaces use; no tuples).

use alloy_sol_types::{SolError, SolInterface};
use anyhow::{anyhow, bail};
use primitives::abi::{self as sol, IBank, IGovernance, IParams, IStaking};
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, U256, keccak256};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ty {
    Address,
    Bool,
    Uint(usize),
    Int(usize),
    FixedBytes(usize),
    Bytes,
    String,
    Array(Box<Ty>),
}

impl Ty {
    pub fn parse(s: &str) -> anyhow::Result<Ty> {
        let s = s.trim();
        if let Some(inner) = s.strip_suffix("[]") {
            return Ok(Ty::Array(Box::new(Ty::parse(inner)?)));
        }
        let bits = |rest: &str| -> anyhow::Result<usize> {
            if rest.is_empty() {
                return Ok(256);
            }
            let n: usize = rest.parse().map_err(|_| anyhow!("bad ABI type {s:?}"))?;
            if n == 0 || n > 256 || n % 8 != 0 {
                bail!("bad ABI type {s:?}");
            }
            Ok(n)
        };
        Ok(match s {
            "address" => Ty::Address,
            "bool" => Ty::Bool,
            "bytes" => Ty::Bytes,
            "string" => Ty::String,
            _ if s.starts_with("uint") => Ty::Uint(bits(&s[4..])?),
            _ if s.starts_with("int") => Ty::Int(bits(&s[3..])?),
            _ if s.starts_with("bytes") => {
                let n: usize = s[5..].parse().map_err(|_| anyhow!("bad ABI type {s:?}"))?;
                if !(1..=32).contains(&n) {
                    bail!("bad ABI type {s:?}");
                }
                Ty::FixedBytes(n)
            }
            _ => bail!("ABI type {s:?} is not supported here"),
        })
    }

    fn dynamic(&self) -> bool {
        matches!(self, Ty::Bytes | Ty::String | Ty::Array(_))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Val {
    Address(Address),
    Bool(bool),
    Uint(U256),
    /// Two's complement, as on the wire.
    Int(U256),
    FixedBytes(Vec<u8>),
    Bytes(Vec<u8>),
    String(String),
    Array(Vec<Val>),
}

/// `name(t1,t2)` → ("name", [t1, t2]).
pub fn split_signature(sig: &str) -> anyhow::Result<(&str, Vec<Ty>)> {
    let (name, rest) = sig.split_once('(').ok_or_else(|| anyhow!("bad signature {sig:?}"))?;
    let inner = rest.strip_suffix(')').ok_or_else(|| anyhow!("bad signature {sig:?}"))?;
    if inner.contains('(') {
        bail!("tuple arguments are not supported ({sig})");
    }
    let types =
        if inner.is_empty() { vec![] } else { inner.split(',').map(Ty::parse).collect::<Result<_, _>>()? };
    Ok((name, types))
}

fn word(data: &[u8], at: usize) -> anyhow::Result<&[u8]> {
    data.get(at..at + 32).ok_or_else(|| anyhow!("ABI data too short"))
}

fn usize_at(data: &[u8], at: usize) -> anyhow::Result<usize> {
    let v = U256::from_be_slice(word(data, at)?);
    usize::try_from(v).ok().filter(|n| *n <= data.len()).ok_or_else(|| anyhow!("bad ABI offset or length"))
}

/// Decode a tuple of `types` encoded in `data`.
pub fn decode(types: &[Ty], data: &[u8]) -> anyhow::Result<Vec<Val>> {
    let mut out = Vec::with_capacity(types.len());
    for (i, t) in types.iter().enumerate() {
        let head = i * 32;
        out.push(if t.dynamic() {
            let off = usize_at(data, head)?;
            decode_dynamic(t, &data[off..])?
        } else {
            decode_static(t, word(data, head)?)?
        });
    }
    Ok(out)
}

fn decode_static(t: &Ty, w: &[u8]) -> anyhow::Result<Val> {
    Ok(match t {
        Ty::Address => Val::Address(Address::from_slice(&w[12..])),
        Ty::Bool => Val::Bool(w[31] != 0),
        Ty::Uint(_) => Val::Uint(U256::from_be_slice(w)),
        Ty::Int(_) => Val::Int(U256::from_be_slice(w)),
        Ty::FixedBytes(n) => Val::FixedBytes(w[..*n].to_vec()),
        _ => unreachable!("dynamic type"),
    })
}

fn decode_dynamic(t: &Ty, data: &[u8]) -> anyhow::Result<Val> {
    let len = usize_at(data, 0)?;
    Ok(match t {
        Ty::Bytes | Ty::String => {
            let b = data.get(32..32 + len).ok_or_else(|| anyhow!("ABI data too short"))?.to_vec();
            if *t == Ty::String { Val::String(String::from_utf8_lossy(&b).into_owned()) } else { Val::Bytes(b) }
        }
        Ty::Array(inner) => Val::Array(decode(&vec![(**inner).clone(); len], &data[32..])?),
        _ => unreachable!("static type"),
    })
}

fn pad(b: &[u8]) -> Vec<u8> {
    let mut v = b.to_vec();
    v.resize(b.len().div_ceil(32) * 32, 0);
    v
}

/// Encode a tuple of values.
pub fn encode(vals: &[Val]) -> Vec<u8> {
    let mut head = Vec::new();
    let mut tail = Vec::new();
    let head_len = vals.len() * 32;
    for v in vals {
        match v {
            Val::Address(a) => head.extend_from_slice(&a.into_word().0),
            Val::Bool(b) => head.extend_from_slice(&U256::from(*b as u8).to_be_bytes::<32>()),
            Val::Uint(x) | Val::Int(x) => head.extend_from_slice(&x.to_be_bytes::<32>()),
            Val::FixedBytes(b) => head.extend_from_slice(&pad(b)),
            Val::Bytes(_) | Val::String(_) | Val::Array(_) => {
                head.extend_from_slice(&U256::from(head_len + tail.len()).to_be_bytes::<32>());
                match v {
                    Val::Bytes(b) => {
                        tail.extend_from_slice(&U256::from(b.len()).to_be_bytes::<32>());
                        tail.extend_from_slice(&pad(b));
                    }
                    Val::String(s) => {
                        tail.extend_from_slice(&U256::from(s.len()).to_be_bytes::<32>());
                        tail.extend_from_slice(&pad(s.as_bytes()));
                    }
                    Val::Array(items) => {
                        tail.extend_from_slice(&U256::from(items.len()).to_be_bytes::<32>());
                        tail.extend_from_slice(&encode(items));
                    }
                    _ => unreachable!(),
                }
            }
        }
    }
    head.extend_from_slice(&tail);
    head
}

pub fn fmt_val(v: &Val) -> String {
    match v {
        Val::Address(a) => a.to_checksum(None),
        Val::Bool(b) => b.to_string(),
        Val::Uint(x) => x.to_string(),
        Val::Int(x) => {
            if x.bit(255) {
                format!("-{}", (!*x).wrapping_add(U256::from(1)))
            } else {
                x.to_string()
            }
        }
        Val::FixedBytes(b) | Val::Bytes(b) => format!("0x{}", hex::encode(b)),
        Val::String(s) => format!("{s:?}"),
        Val::Array(items) => format!("[{}]", items.iter().map(fmt_val).collect::<Vec<_>>().join(", ")),
    }
}

/// Parse a command-line argument as a value of type `t`. Integers are
/// decimal or 0x hex base units, or amounts with a unit: "1.5OPEN", "10wei".
/// Addresses may also be a module name ("staking") or "treasury".
pub fn parse_arg(t: &Ty, s: &str) -> anyhow::Result<Val> {
    let bad = |what: &str| anyhow!("{s:?} is not {what}");
    Ok(match t {
        Ty::Address => {
            if s == "treasury" {
                Val::Address(TREASURY)
            } else if let Some(m) = Module::from_name(s) {
                Val::Address(m.address())
            } else {
                Val::Address(s.parse().map_err(|_| bad("an address"))?)
            }
        }
        Ty::Bool => match s {
            "true" => Val::Bool(true),
            "false" => Val::Bool(false),
            _ => return Err(bad("true or false")),
        },
        Ty::Uint(bits) => {
            let v = parse_uint(s)?;
            if *bits < 256 && v >= (U256::from(1) << *bits) {
                bail!("{s} does not fit uint{bits}");
            }
            Val::Uint(v)
        }
        Ty::FixedBytes(n) => {
            let b = hex::decode(s.strip_prefix("0x").ok_or_else(|| bad("0x hex"))?).map_err(|_| bad("0x hex"))?;
            if b.len() != *n {
                bail!("{s:?} has {} bytes, bytes{n} needs {n}", b.len());
            }
            Val::FixedBytes(b)
        }
        Ty::Bytes => Val::Bytes(hex::decode(s.strip_prefix("0x").unwrap_or(s)).map_err(|_| bad("hex bytes"))?),
        Ty::String => Val::String(s.to_string()),
        // `[1,2,3]` or `1,2,3` (e.g. models.approve [2,3]); items of a simple type.
        Ty::Array(inner) => {
            let body = s.trim().trim_start_matches('[').trim_end_matches(']');
            let items: Vec<&str> = body.split(',').map(str::trim).filter(|x| !x.is_empty()).collect();
            Val::Array(items.into_iter().map(|x| parse_arg(inner, x)).collect::<anyhow::Result<_>>()?)
        }
        Ty::Int(_) => bail!("arguments of type {t:?} are not supported by --call; use --raw"),
    })
}

pub fn parse_uint(s: &str) -> anyhow::Result<U256> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x") {
        return U256::from_str_radix(h, 16).map_err(|_| anyhow!("{s:?} is not a hex integer"));
    }
    if t.ends_with("OPEN") || t.ends_with("wei") {
        return Ok(t.parse::<Amount>().map_err(|e| anyhow!("{e}"))?.to_u256());
    }
    U256::from_str_radix(t, 10)
        .map_err(|_| anyhow!("{s:?} is not an integer (base units; or write an amount like 1.5OPEN)"))
}

/// Split a command line like a shell: whitespace separates, quotes group,
/// backslash escapes inside double quotes and outside quotes.
pub fn split_words(s: &str) -> anyhow::Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => cur.push(chars.next().ok_or_else(|| anyhow!("unfinished escape in {s:?}"))?),
                        Some(c) => cur.push(c),
                        None => bail!("unclosed double quote in {s:?}"),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => bail!("unclosed single quote in {s:?}"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next().ok_or_else(|| anyhow!("unfinished escape in {s:?}"))?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Function signatures of the module's interface, if this CLI knows it.
pub fn function_signatures(m: Module) -> Option<&'static [&'static str]> {
    Some(match m {
        Module::Bank => IBank::IBankCalls::SIGNATURES,
        Module::Params => IParams::IParamsCalls::SIGNATURES,
        Module::Staking => IStaking::IStakingCalls::SIGNATURES,
        Module::Governance => IGovernance::IGovernanceCalls::SIGNATURES,
        Module::Datanets => sol::IDatanets::IDatanetsCalls::SIGNATURES,
        Module::Models => sol::IModels::IModelsCalls::SIGNATURES,
        Module::Inference => sol::IInference::IInferenceCalls::SIGNATURES,
        Module::Attribution => sol::IAttribution::IAttributionCalls::SIGNATURES,
        _ => return None,
    })
}

/// Check that `data` decodes as a call of the module's interface.
fn typecheck(m: Module, data: &[u8]) -> anyhow::Result<()> {
    let r = match m {
        Module::Bank => IBank::IBankCalls::abi_decode(data).map(|_| ()),
        Module::Params => IParams::IParamsCalls::abi_decode(data).map(|_| ()),
        Module::Staking => IStaking::IStakingCalls::abi_decode(data).map(|_| ()),
        Module::Governance => IGovernance::IGovernanceCalls::abi_decode(data).map(|_| ()),
        Module::Datanets => sol::IDatanets::IDatanetsCalls::abi_decode(data).map(|_| ()),
        Module::Models => sol::IModels::IModelsCalls::abi_decode(data).map(|_| ()),
        Module::Inference => sol::IInference::IInferenceCalls::abi_decode(data).map(|_| ()),
        Module::Attribution => sol::IAttribution::IAttributionCalls::abi_decode(data).map(|_| ()),
        _ => Ok(()),
    };
    r.map_err(|e| anyhow!("encoded call does not decode: {e}"))
}

/// `MODULE.FUNCTION ARG ...` → (target, calldata, signature).
pub fn encode_call_text(text: &str) -> anyhow::Result<(Address, Vec<u8>, &'static str)> {
    let words = split_words(text)?;
    let (head, args) = words.split_first().ok_or_else(|| anyhow!("empty --call"))?;
    let (module, function) = head
        .split_once('.')
        .ok_or_else(|| anyhow!("--call {text:?}: start with MODULE.FUNCTION, e.g. params.set"))?;
    let m = Module::from_name(module).ok_or_else(|| anyhow!("unknown module {module:?}"))?;
    let sigs = function_signatures(m)
        .ok_or_else(|| anyhow!("module {module} has no interface in this CLI; use --raw ADDRESS:0xCALLDATA"))?;
    let named: Vec<&'static str> =
        sigs.iter().copied().filter(|s| s.split_once('(').map(|(n, _)| n) == Some(function)).collect();
    if named.is_empty() {
        let mut all: Vec<&str> = sigs.to_vec();
        all.sort();
        bail!("{module} has no function {function:?}; it has:\n  {}", all.join("\n  "));
    }
    let mut last_err = None;
    for sig in &named {
        let (_, types) = split_signature(sig)?;
        if types.len() != args.len() {
            last_err = Some(anyhow!("{module}.{sig} takes {} arguments, got {}", types.len(), args.len()));
            continue;
        }
        let vals = types
            .iter()
            .zip(args)
            .enumerate()
            .map(|(i, (t, a))| parse_arg(t, a).map_err(|e| anyhow!("{module}.{sig} argument {}: {e}", i + 1)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut data = keccak256(sig.as_bytes())[..4].to_vec();
        data.extend(encode(&vals));
        typecheck(m, &data)?;
        return Ok((m.address(), data, sig));
    }
    Err(last_err.unwrap_or_else(|| anyhow!("no matching signature")))
}

/// A call to a system contract as `module.function(args)`, or hex if unknown.
pub fn describe_call(target: &Address, data: &[u8]) -> String {
    let Some(m) = Module::from_address(target) else {
        return format!("{}: 0x{}", target.to_checksum(None), hex::encode(data));
    };
    let known = data.get(..4).and_then(|sel| {
        let sel: [u8; 4] = sel.try_into().ok()?;
        let sig = match m {
            Module::Bank => IBank::IBankCalls::signature_by_selector(sel),
            Module::Params => IParams::IParamsCalls::signature_by_selector(sel),
            Module::Staking => IStaking::IStakingCalls::signature_by_selector(sel),
            Module::Governance => IGovernance::IGovernanceCalls::signature_by_selector(sel),
            Module::Datanets => sol::IDatanets::IDatanetsCalls::signature_by_selector(sel),
            Module::Models => sol::IModels::IModelsCalls::signature_by_selector(sel),
            Module::Inference => sol::IInference::IInferenceCalls::signature_by_selector(sel),
            Module::Attribution => sol::IAttribution::IAttributionCalls::signature_by_selector(sel),
            _ => None,
        }?;
        let (name, types) = split_signature(sig).ok()?;
        let vals = decode(&types, &data[4..]).ok()?;
        Some(format!("{}.{name}({})", m.name(), vals.iter().map(fmt_val).collect::<Vec<_>>().join(", ")))
    });
    known.unwrap_or_else(|| format!("{}: 0x{}", m.name(), hex::encode(data)))
}

/// Declares the field names of every custom error, checked against the
/// `sol!` structs at compile time (a renamed or missing field fails to build).
macro_rules! error_fields {
    ($($($p:ident)::+ { $($f:ident),* });* $(;)?) => {
        const ERROR_FIELDS: &[(&str, &[&str])] = &[
            $( (<$($p)::+ as SolError>::SIGNATURE, &[$(stringify!($f)),*]) ),*
        ];
        #[allow(dead_code, unused_variables, clippy::redundant_pattern)]
        fn _error_fields_are_the_structs_fields() {
            $( let _ = |e: $($p)::+| { let $($p)::+ { $($f),* } = e; }; )*
        }
        /// The shared errors (declared outside any interface).
        const SHARED_ERRORS: &[([u8; 4], &str)] = &[
            (<sol::Unauthorized as SolError>::SELECTOR, <sol::Unauthorized as SolError>::SIGNATURE),
            (<sol::UnknownFunction as SolError>::SELECTOR, <sol::UnknownFunction as SolError>::SIGNATURE),
            (<sol::InvalidArguments as SolError>::SELECTOR, <sol::InvalidArguments as SolError>::SIGNATURE),
            (<sol::NonPayable as SolError>::SELECTOR, <sol::NonPayable as SolError>::SIGNATURE),
            (<sol::OutOfGas as SolError>::SELECTOR, <sol::OutOfGas as SolError>::SIGNATURE),
            (<sol::InsufficientBalance as SolError>::SELECTOR, <sol::InsufficientBalance as SolError>::SIGNATURE),
            (<sol::Overflow as SolError>::SELECTOR, <sol::Overflow as SolError>::SIGNATURE),
        ];
    };
}

error_fields! {
    sol::Unauthorized { caller };
    sol::UnknownFunction { selector };
    sol::InvalidArguments {};
    sol::NonPayable {};
    sol::OutOfGas { required, available };
    sol::InsufficientBalance { available, required };
    sol::Overflow {};
    IParams::UnknownParam { name };
    IParams::ParamOutOfRange { name, value, min, max };
    IStaking::NotOperator { account };
    IStaking::AlreadyRegistered { operator };
    IStaking::BelowMinimumBond { amount, minimum };
    IStaking::InsufficientStake { available, requested };
    IStaking::OperatorJailed { operator, until };
    IStaking::NotJailed { operator };
    IStaking::UnknownRole { role };
    IStaking::UnknownPool { pool };
    IStaking::InvalidKey {};
    IStaking::InvalidFraction { fractionPpm };
    IStaking::TooManyUnbondings { max };
    IStaking::ValueMismatch { expected, sent };
    IGovernance::BelowProposalThreshold { power, threshold };
    IGovernance::DepositMismatch { required, sent };
    IGovernance::EmptyProposal {};
    IGovernance::TooManyCalls { max };
    IGovernance::TargetNotSystem { target };
    IGovernance::UnknownProposal { id };
    IGovernance::VotingClosed { id, voteStart, voteEnd, height };
    IGovernance::AlreadyVoted { id, voter };
    IGovernance::NoVotingPower { voter };
    IGovernance::InvalidSupport { support };
    IGovernance::NotQueued { id, state };
    IGovernance::TimelockNotExpired { id, eta, height };
    IGovernance::NotProposer { caller };
    IGovernance::VotingStarted { id };
    IGovernance::ProposalCallFailed { index, reason };
    IGovernance::TooManyOpenProposals { max };
    sol::IModels::UnknownModel { id };
    sol::IModels::NotOwner { caller };
    sol::IModels::InvalidTransition { id, from, to };
    sol::IModels::InvalidModel { reason };
    sol::IModels::UnknownDatanetVersion { datanetId, version };
    sol::IModels::VersionClosed { datanetId, version };
    sol::IModels::NonCommercialLicence { datanetId, licence };
    sol::IModels::AlreadyRetired { id };
}

fn error_signature(sel: [u8; 4]) -> Option<&'static str> {
    IStaking::IStakingErrors::signature_by_selector(sel)
        .or_else(|| IGovernance::IGovernanceErrors::signature_by_selector(sel))
        .or_else(|| IParams::IParamsErrors::signature_by_selector(sel))
        .or_else(|| sol::IDatanets::IDatanetsErrors::signature_by_selector(sel))
        .or_else(|| sol::IModels::IModelsErrors::signature_by_selector(sel))
        .or_else(|| sol::IInference::IInferenceErrors::signature_by_selector(sel))
        .or_else(|| sol::IAttribution::IAttributionErrors::signature_by_selector(sel))
        .or_else(|| SHARED_ERRORS.iter().find(|(s, _)| *s == sel).map(|(_, sig)| *sig))
        .or(match sel {
            [0x08, 0xc3, 0x79, 0xa0] => Some("Error(string)"),
            [0x4e, 0x48, 0x7b, 0x71] => Some("Panic(uint256)"),
            _ => None,
        })
}

/// Revert data as `Name(field: value, ...)`.
pub fn decode_error(data: &[u8]) -> String {
    if data.is_empty() {
        return "reverted without data".into();
    }
    let raw = || format!("unknown error 0x{}", hex::encode(data));
    let Some(sel) = data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok()) else { return raw() };
    let Some(sig) = error_signature(sel) else { return raw() };
    let Ok((name, types)) = split_signature(sig) else { return raw() };
    let Ok(vals) = decode(&types, &data[4..]) else {
        return format!("{name}(undecodable: 0x{})", hex::encode(data));
    };
    let names = ERROR_FIELDS.iter().find(|(s, _)| *s == sig).map(|(_, n)| *n).filter(|n| n.len() == vals.len());
    let fields: Vec<String> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let shown = match (name, v) {
                // A proposal's failed call: decode the inner revert too.
                ("ProposalCallFailed", Val::Bytes(b)) if i == 1 => decode_error(b),
                ("NotQueued", Val::Uint(s)) if i == 1 => {
                    format!("{} ({s})", runtime::governance::state_name(s.saturating_to::<u8>()))
                }
                _ => fmt_val(v),
            };
            match names {
                Some(n) => format!("{}: {shown}", n[i]),
                None => shown,
            }
        })
        .collect();
    format!("{name}({})", fields.join(", "))
}
