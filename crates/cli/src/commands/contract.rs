//! `contract deploy|call|send|trace`: any EVM contract, from its compiled
//! artifact (`{"abi", "bytecode"}`, as `contracts/out/*.json`) or a function
//! signature written as Foundry's `cast` writes it (`balanceOf(address)(uint256)`).
//!
//! Arguments are read by [`crate::contract::args::parse_arg`] (alloy-dyn-abi's
//! `coerce_str`, plus amounts like `1.5OPEN`); transactions go through the
//! same preflight, signing and receipt check as every other command
//! ([`crate::contract::send_decoding`]); reverts are decoded by the artifact's
//! custom errors when one is given, else as `Error(string)`, `Panic(uint256)`
//! or a system contract's error.

use std::path::{Path, PathBuf};

use alloy_dyn_abi::{DynSolValue, ErrorExt, FunctionExt, JsonAbiExt, Specifier};
use alloy_json_abi::{Function, JsonAbi, Param, StateMutability};
use alloy_primitives::TxKind;
use anyhow::{Context, anyhow, bail};
use primitives::system::Module;
use primitives::{Address, Amount, B256, Bytes, U256};
use serde_json::{Value, json};

use super::RpcArgs;
use super::keys::SignerArgs;
use crate::contract::abi::{decode_error, describe_call, fmt_val};
use crate::contract::args::{parse_address, parse_arg};
use crate::contract::{Sent, revert_data, send_decoding};
use crate::output::{self, Out};

#[derive(clap::Subcommand, Debug)]
pub enum ContractCmd {
    /// Deploy a contract from its artifact (`{"abi", "bytecode"}`) with its constructor's arguments.
    Deploy(DeployArgs),
    /// Read: `eth_call` a function and print its decoded outputs, one per line.
    Call {
        #[command(flatten)]
        function: FunctionArgs,
        /// Call as this address (msg.sender); the zero address if not given.
        #[arg(long)]
        from: Option<Address>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// Write: send a transaction calling a function, wait for it, print status, gas and logs.
    Send {
        #[command(flatten)]
        function: FunctionArgs,
        /// Print only the transaction's hash, for `TX=$(openledger contract send … --quiet)`.
        #[arg(long, short)]
        quiet: bool,
        #[command(flatten)]
        signer: SignerArgs,
        #[command(flatten)]
        rpc: RpcArgs,
    },
    /// The calls a transaction made (debug_traceTransaction's callTracer), one line per frame.
    Trace {
        /// Transaction hash.
        hash: B256,
        /// An artifact or ABI file: calls to it are shown as `function(args)`, its errors by name.
        #[arg(long)]
        abi: Option<PathBuf>,
        #[command(flatten)]
        rpc: RpcArgs,
    },
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// The compiled contract: JSON with "bytecode" (hex, or Foundry's {"object": hex}) and "abi".
    artifact: PathBuf,
    /// The constructor's arguments, one per input: `Test`, `1000`, `1.5OPEN`, `0xf39F…`, `[1,2]`, `(a,b)`.
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
    /// OPEN sent to a payable constructor: "1.5" or "1000wei".
    #[arg(long, default_value = "0")]
    value: Amount,
    /// Print only the new contract's address, for `ADDR=$(openledger contract deploy … --quiet)`.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    signer: SignerArgs,
    #[command(flatten)]
    rpc: RpcArgs,
}

/// A function of a contract and the arguments of one call to it.
#[derive(clap::Args, Debug)]
pub struct FunctionArgs {
    /// The contract's address.
    address: String,
    /// `name(inputs)(outputs)`, e.g. `balanceOf(address)(uint256)`; with --abi also a bare name.
    function: String,
    /// The function's arguments, one per input.
    #[arg(allow_negative_numbers = true)]
    args: Vec<String>,
    /// The contract's artifact or ABI file: functions by name, outputs and custom errors decoded.
    #[arg(long)]
    abi: Option<PathBuf>,
    /// OPEN sent with the call (payable functions): "1.5" or "1000wei".
    #[arg(long, default_value = "0")]
    value: Amount,
}

pub fn run(c: ContractCmd, out: Out) -> anyhow::Result<()> {
    match c {
        ContractCmd::Deploy(a) => deploy(a, out),
        ContractCmd::Call { function, from, rpc } => call(&function, from, &rpc, out),
        ContractCmd::Send { function, quiet, signer, rpc } => send(&function, quiet, &signer, &rpc, out),
        ContractCmd::Trace { hash, abi, rpc } => {
            let abi = abi.as_deref().map(load_artifact).transpose()?.map(|a| a.abi);
            trace(hash, abi.as_ref(), &rpc, out)
        }
    }
}

/// A compiled contract: its name, ABI and creation bytecode (none for an
/// interface, an abstract contract, or a bare ABI file).
struct Artifact {
    name: String,
    abi: JsonAbi,
    bytecode: Option<Vec<u8>>,
}

/// An artifact (`{"abi", "bytecode", "contractName"}`) or a bare ABI (a JSON array).
fn load_artifact(path: &Path) -> anyhow::Result<Artifact> {
    let shown = path.display();
    let text = std::fs::read(path).with_context(|| format!("cannot read {shown}"))?;
    let v: Value = serde_json::from_slice(&text).with_context(|| format!("{shown} is not JSON"))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let abi_json = if v.is_array() { &v } else { &v["abi"] };
    if abi_json.is_null() {
        bail!("{shown} has no \"abi\" (expected a compiled artifact like contracts/out/TestToken.json)");
    }
    let abi: JsonAbi = serde_json::from_value(abi_json.clone()).with_context(|| format!("the ABI of {shown}"))?;
    let name = v["contractName"].as_str().map_or(stem, str::to_string);
    let code = match &v["bytecode"] {
        Value::Object(o) => o.get("object").and_then(Value::as_str),
        b => b.as_str(),
    };
    let bytecode = match code.map(|s| s.trim_start_matches("0x")) {
        None | Some("") => None,
        Some(h) => Some(hex::decode(h).map_err(|e| {
            anyhow!("the bytecode of {shown} is not hex ({e}); a contract using libraries must be linked first")
        })?),
    };
    Ok(Artifact { name, abi, bytecode })
}

/// `type name, …` of a parameter list.
fn describe_params(params: &[Param]) -> String {
    let each = params.iter().map(|p| match p.name.as_str() {
        "" => p.selector_type().into_owned(),
        n => format!("{} {n}", p.selector_type()),
    });
    each.collect::<Vec<_>>().join(", ")
}

/// Each argument as a value of its parameter's type; `what` names the
/// function in errors, with its parameters when the count is wrong.
fn encode_args(what: &str, params: &[Param], args: &[String]) -> anyhow::Result<Vec<DynSolValue>> {
    if params.len() != args.len() {
        let n = params.len();
        bail!(
            "{what}({}) takes {n} argument{}, got {}",
            describe_params(params),
            if n == 1 { "" } else { "s" },
            args.len()
        );
    }
    let read = |(i, (p, a)): (usize, (&Param, &String))| -> anyhow::Result<DynSolValue> {
        let ty = p.resolve().map_err(|e| anyhow!("{what}: parameter {} has an unknown type: {e}", i + 1))?;
        let named = if p.name.is_empty() { String::new() } else { format!(" {}", p.name) };
        parse_arg(&ty, a).map_err(|e| anyhow!("{what}: argument {} ({}{named}): {e}", i + 1, ty.sol_type_name()))
    };
    params.iter().zip(args).enumerate().map(read).collect()
}

/// The function `spec` names: a signature (outputs and names taken from
/// `abi` when it has the same function), or with `abi` a bare name whose
/// overload is chosen by the number of arguments.
fn resolve_function(spec: &str, abi: Option<&JsonAbi>, nargs: usize) -> anyhow::Result<Function> {
    if spec.contains('(') {
        let f = Function::parse(spec)
            .map_err(|e| anyhow!("bad signature {spec:?}: {e}; write it like balanceOf(address)(uint256)"))?;
        // The parser takes any word as a (struct or contract) type name: only ABI types make a selector.
        if let Some(p) = f.inputs.iter().chain(&f.outputs).find(|p| p.resolve().is_err()) {
            bail!("bad signature {spec:?}: {:?} is not an ABI type", p.ty);
        }
        let known = abi.and_then(|a| a.function_by_selector(f.selector()));
        return Ok(match known {
            Some(k) if f.outputs.is_empty() => k.clone(),
            _ => f,
        });
    }
    let Some(abi) = abi else {
        bail!("{spec:?} is not a signature like balanceOf(address)(uint256); give --abi ARTIFACT.json to call by name");
    };
    let Some(named) = abi.function(spec) else {
        let mut all: Vec<String> = abi.functions().map(|f| f.signature_with_outputs()).collect();
        all.sort();
        bail!("the ABI has no function {spec:?}; it has:\n  {}", all.join("\n  "));
    };
    let fits: Vec<&Function> = named.iter().filter(|f| f.inputs.len() == nargs).collect();
    let sigs = || named.iter().map(|f| f.signature()).collect::<Vec<_>>().join(", ");
    match fits.as_slice() {
        [f] => Ok((*f).clone()),
        [] if named.len() == 1 => Ok(named[0].clone()), // encode_args says what it takes
        [] => bail!("no {spec} takes {nargs} arguments: {}", sigs()),
        _ => bail!("{spec} is overloaded ({}): write the signature instead of the name", sigs()),
    }
}

/// Revert data as `Name(field: value, …)` by the custom errors of `abi`,
/// else by [`decode_error`], then the raw data.
fn decode_revert_with(abi: Option<&JsonAbi>, data: &[u8]) -> String {
    let by_abi = || -> Option<String> {
        let sel = data.get(..4)?;
        let e = abi?.errors().find(|e| e.selector().as_slice() == sel)?;
        let body = e.decode_error(data).ok()?.body;
        let fields = e.inputs.iter().zip(&body).map(|(p, v)| match p.name.as_str() {
            "" => fmt_val(v),
            n => format!("{n}: {}", fmt_val(v)),
        });
        Some(format!("{}({})", e.name, fields.collect::<Vec<_>>().join(", ")))
    };
    let decoded = by_abi().unwrap_or_else(|| {
        let d = decode_error(data);
        if abi.is_none() && d.starts_with("unknown error") {
            format!("{d} (give --abi ARTIFACT.json to name it)")
        } else {
            d
        }
    });
    if data.is_empty() { decoded } else { format!("{decoded}\nrevert data: 0x{}", hex::encode(data)) }
}

/// A value for `--json`: strings and booleans as themselves, numbers as
/// decimal strings (they may exceed JSON's), arrays and tuples as arrays.
fn json_val(v: &DynSolValue) -> Value {
    match v {
        DynSolValue::Bool(b) => json!(b),
        DynSolValue::String(s) => json!(s),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            Value::Array(items.iter().map(json_val).collect())
        }
        other => json!(fmt_val(other)),
    }
}

fn deploy(a: DeployArgs, out: Out) -> anyhow::Result<()> {
    let art = load_artifact(&a.artifact)?;
    let Some(mut code) = art.bytecode else {
        bail!("{} has no bytecode: an interface or abstract contract cannot be deployed", a.artifact.display());
    };
    let what = format!("{}'s constructor", art.name);
    let params = art.abi.constructor().map(|c| c.inputs.as_slice()).unwrap_or_default();
    let vals = encode_args(&what, params, &a.args)?;
    if let Some(ctor) = art.abi.constructor() {
        code.extend(ctor.abi_encode_input(&vals).map_err(|e| anyhow!("{what}: {e}"))?);
    }
    let payable = art.abi.constructor().is_some_and(|c| c.state_mutability == StateMutability::Payable);
    if a.value > Amount::ZERO && !payable {
        bail!("{what} is not payable: leave out --value");
    }
    let decode = |d: &[u8]| decode_revert_with(Some(&art.abi), d);
    let sent =
        send_decoding(&a.signer, &a.rpc, TxKind::Create, a.value, code, &format!("deploy {}", art.name), &decode)?;
    let at = sent.receipt.contract_address.ok_or_else(|| anyhow!("the receipt of {} names no contract", sent.hash))?;
    if a.quiet && !out.json {
        println!("{}", at.to_checksum(None));
        return Ok(());
    }
    out.print(
        || format!("{} deployed at {}\n{}", art.name, at.to_checksum(None), sent.human("transaction")),
        sent.json(json!({"contract": art.name, "contractAddress": at})),
    );
    Ok(())
}

/// A resolved call: target, function, calldata, and the ABI that decodes its errors.
struct Prepared {
    to: Address,
    f: Function,
    data: Vec<u8>,
    abi: Option<JsonAbi>,
}

impl Prepared {
    fn new(a: &FunctionArgs) -> anyhow::Result<Prepared> {
        let to = parse_address(&a.address).context("the contract's address")?;
        let abi = a.abi.as_deref().map(load_artifact).transpose()?.map(|art| art.abi);
        let f = resolve_function(&a.function, abi.as_ref(), a.args.len())?;
        let vals = encode_args(&f.name, &f.inputs, &a.args)?;
        let data = f.abi_encode_input(&vals).map_err(|e| anyhow!("{}: {e}", f.signature()))?;
        Ok(Prepared { to, f, data, abi })
    }

    fn decode_revert(&self, data: &[u8]) -> String {
        decode_revert_with(self.abi.as_ref(), data)
    }
}

fn call(a: &FunctionArgs, from: Option<Address>, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let p = Prepared::new(a)?;
    let sig = p.f.signature();
    let mut c = rpc.client();
    let req = super::tx::call_request(from.unwrap_or(Address::ZERO), TxKind::Call(p.to), a.value, &p.data);
    let answer = match c.call("eth_call", json!([req, "latest"])) {
        Ok(v) => v,
        Err(e) => match revert_data(&e) {
            Some(d) => bail!("{sig} reverted: {}", p.decode_revert(&d)),
            None => return Err(anyhow!("eth_call {sig}: {e}")),
        },
    };
    let ret: Bytes = serde_json::from_value(answer.clone()).map_err(|_| anyhow!("eth_call returned {answer}"))?;
    if ret.is_empty() && !p.f.outputs.is_empty() && c.call("eth_getCode", json!([p.to, "latest"]))? == json!("0x") {
        bail!("there is no contract at {}", p.to.to_checksum(None));
    }
    let vals = if p.f.outputs.is_empty() {
        Vec::new()
    } else {
        p.f.abi_decode_output(&ret)
            .map_err(|e| anyhow!("cannot decode {ret} as ({}): {e}", describe_params(&p.f.outputs)))?
    };
    out.print(
        || match vals.is_empty() {
            true => ret.to_string(),
            false => vals.iter().map(fmt_val).collect::<Vec<_>>().join("\n"),
        },
        json!({"outputs": vals.iter().map(json_val).collect::<Vec<_>>(), "data": ret}),
    );
    Ok(())
}

fn send(a: &FunctionArgs, quiet: bool, signer: &SignerArgs, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let p = Prepared::new(a)?;
    let sig = p.f.signature();
    let decode = |d: &[u8]| p.decode_revert(d);
    let sent: Sent = send_decoding(signer, rpc, TxKind::Call(p.to), a.value, p.data.clone(), &sig, &decode)?;
    if quiet && !out.json {
        println!("{}", sent.hash);
        return Ok(());
    }
    let logs = sent.receipt.inner.logs().len();
    out.print(
        || format!("{}\nstatus 1 (success), {logs} log{}", sent.human(&sig), if logs == 1 { "" } else { "s" }),
        sent.json(json!({"to": p.to, "logs": logs})),
    );
    Ok(())
}

fn trace(hash: B256, abi: Option<&JsonAbi>, rpc: &RpcArgs, out: Out) -> anyhow::Result<()> {
    let mut c = rpc.client();
    let tree = c
        .call("debug_traceTransaction", json!([hash, {"tracer": "callTracer"}]))
        .with_context(|| format!("tracing {hash}"))?;
    let mut lines = Vec::new();
    trace_lines(&tree, 0, abi, &mut lines)?;
    out.print(|| lines.join("\n"), tree.clone());
    Ok(())
}

/// A hex quantity of the trace (`"0x1a"`).
fn quantity(v: &Value) -> anyhow::Result<U256> {
    let s = v.as_str().ok_or_else(|| anyhow!("expected a hex quantity, got {v}"))?;
    U256::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|_| anyhow!("bad quantity {s}"))
}

/// What a frame called: `module.function(args)` for a system contract,
/// `function(args)` by `abi`, else the selector.
fn describe_input(to: Option<Address>, input: &[u8], abi: Option<&JsonAbi>) -> Option<String> {
    let sel = input.get(..4)?;
    if let Some(to) = to.filter(|t| Module::from_address(t).is_some()) {
        return Some(describe_call(&to, input));
    }
    let by_abi = || -> Option<String> {
        let f = abi?.functions().find(|f| f.selector().as_slice() == sel)?;
        let vals = f.abi_decode_input(&input[4..]).ok()?;
        Some(format!("{}({})", f.name, vals.iter().map(fmt_val).collect::<Vec<_>>().join(", ")))
    };
    Some(by_abi().unwrap_or_else(|| format!("0x{}", hex::encode(sel))))
}

/// One line per frame, children indented under their caller:
/// `CALL from → to value 1 OPEN transfer(…) gas used 2900 error: …`.
fn trace_lines(f: &Value, depth: usize, abi: Option<&JsonAbi>, lines: &mut Vec<String>) -> anyhow::Result<()> {
    let addr = |k: &str| f[k].as_str().and_then(|s| s.parse::<Address>().ok());
    let (from, to) = (addr("from"), addr("to"));
    let show = |a: Option<Address>| a.map_or_else(|| "(none)".to_string(), |a| a.to_checksum(None));
    let mut line = format!("{}{} {} → {}", "  ".repeat(depth), f["type"].as_str().unwrap_or("?"), show(from), show(to));
    if let Some(v) = f.get("value").map(quantity).transpose()?.filter(|v| !v.is_zero()) {
        line += &format!(" value {}", output::open(v));
    }
    let input: Bytes = f.get("input").and_then(|i| serde_json::from_value(i.clone()).ok()).unwrap_or_default();
    if let Some(called) = describe_input(to, &input, abi) {
        line += &format!(" {called}");
    }
    line += &format!(" gas used {}", quantity(&f["gasUsed"])?);
    if let Some(e) = f["error"].as_str() {
        line += &format!(" error: {e}");
        let output: Bytes = f.get("output").and_then(|o| serde_json::from_value(o.clone()).ok()).unwrap_or_default();
        match f["revertReason"].as_str() {
            Some(r) => line += &format!(" ({r:?})"),
            None if !output.is_empty() => {
                line += &format!(" ({})", decode_revert_with(abi, &output).replace('\n', "; "))
            }
            None => {}
        }
    }
    lines.push(line);
    for child in f["calls"].as_array().into_iter().flatten() {
        trace_lines(child, depth + 1, abi, lines)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_abi() -> JsonAbi {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/out/TestToken.json");
        load_artifact(&path).unwrap().abi
    }

    #[test]
    fn signatures_carry_their_outputs_and_names_take_the_abi() {
        let f = resolve_function("balanceOf(address)(uint256)", None, 1).unwrap();
        assert_eq!(f.signature_with_outputs(), "balanceOf(address)(uint256)");
        let abi = token_abi();
        // Without outputs, the ABI's function of the same selector supplies them.
        let f = resolve_function("totalSupply()", Some(&abi), 0).unwrap();
        assert_eq!(f.outputs.len(), 1);
        assert_eq!(resolve_function("transfer", Some(&abi), 2).unwrap().signature(), "transfer(address,uint256)");
        let e = resolve_function("transfer", None, 2).unwrap_err().to_string();
        assert!(e.contains("give --abi"), "{e}");
        let e = resolve_function("nosuch", Some(&abi), 0).unwrap_err().to_string();
        assert!(e.contains("no function \"nosuch\"") && e.contains("balanceOf(address)(uint256)"), "{e}");
        let e = resolve_function("balanceOf(addres)", None, 1).unwrap_err().to_string();
        assert!(e.contains("bad signature"), "{e}");
    }

    #[test]
    fn arguments_are_counted_and_typed() {
        let f = resolve_function("transfer(address to,uint256 amount)", None, 1).unwrap();
        let e = encode_args(&f.name, &f.inputs, &["0x01".into()]).unwrap_err().to_string();
        assert_eq!(e, "transfer(address to, uint256 amount) takes 2 arguments, got 1");
        let e = encode_args(&f.name, &f.inputs, &["0x01".into(), "5".into()]).unwrap_err().to_string();
        assert!(e.contains("argument 1 (address to)") && e.contains("is not an address"), "{e}");
        let vals = encode_args(&f.name, &f.inputs, &["treasury".into(), "1.5OPEN".into()]).unwrap();
        assert_eq!(vals[1], DynSolValue::Uint(U256::from(15u128 * 10u128.pow(17)), 256));
    }

    #[test]
    fn reverts_are_named_by_the_abi_then_by_the_known_errors() {
        let abi = token_abi();
        let e = abi.error("ERC20InsufficientBalance").unwrap()[0].clone();
        let vals = [
            DynSolValue::Address(Address::ZERO),
            DynSolValue::Uint(U256::ZERO, 256),
            DynSolValue::Uint(U256::from(5), 256),
        ];
        let data = e.abi_encode_input(&vals).unwrap();
        let shown = decode_revert_with(Some(&abi), &data);
        assert!(
            shown.starts_with(&format!("ERC20InsufficientBalance(sender: {}, balance: 0, needed: 5)", Address::ZERO)),
            "{shown}"
        );
        assert!(shown.contains(&format!("revert data: 0x{}", hex::encode(&data))), "{shown}");
        assert!(decode_revert_with(None, &data).contains("give --abi"));
        let reason = alloy_sol_types::SolError::abi_encode(&alloy_sol_types::Revert::from("boom"));
        assert!(decode_revert_with(None, &reason).starts_with("Error(\"boom\")"));
        assert_eq!(decode_revert_with(Some(&abi), &[]), "reverted without data");
    }

    #[test]
    fn artifacts_without_bytecode_or_abi_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let iface = dir.path().join("IFace.json");
        std::fs::write(&iface, r#"{"abi": [], "bytecode": "0x"}"#).unwrap();
        assert!(load_artifact(&iface).unwrap().bytecode.is_none());
        let bare = dir.path().join("abi.json");
        std::fs::write(&bare, "[]").unwrap();
        assert_eq!(load_artifact(&bare).unwrap().name, "abi");
        let foundry = dir.path().join("F.json");
        std::fs::write(&foundry, r#"{"abi": [], "bytecode": {"object": "0x6001"}}"#).unwrap();
        assert_eq!(load_artifact(&foundry).unwrap().bytecode, Some(vec![0x60, 0x01]));
        let none = dir.path().join("none.json");
        std::fs::write(&none, "{}").unwrap();
        assert!(load_artifact(&none).err().unwrap().to_string().contains("has no \"abi\""));
        let linked = dir.path().join("L.json");
        std::fs::write(&linked, r#"{"abi": [], "bytecode": "0x60__$abc$__"}"#).unwrap();
        assert!(load_artifact(&linked).err().unwrap().to_string().contains("must be linked"));
    }
}
