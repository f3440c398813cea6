//! Calls and errors of the system contracts through alloy-dyn-abi, driven by
//! the signatures of the `sol!` interfaces: `MODULE.FUNCTION ARG ...` to
//! calldata ([`encode_call_text`]), calldata back to `module.function(args)`
//! ([`describe_call`]), and revert data to `Error(field: value, ...)`
//! ([`decode_error`]). Any ABI type works, tuples (the interfaces' structs) and
//! arrays included; [`super::args`] says how arguments are written.

use alloy_dyn_abi::{DynSolValue, ErrorExt, JsonAbiExt, Specifier};
use alloy_json_abi::Function;
use alloy_sol_types::SolError;
use anyhow::{anyhow, bail};
use primitives::abi::{self as sol, IBank, IGovernance, IParams, IStaking};
use primitives::system::Module;
use primitives::{Address, keccak256};

use super::args::{parse_arg, split_words};

/// Function signatures of the module's interface, if this CLI knows it.
fn function_signatures(m: Module) -> Option<&'static [&'static str]> {
    Some(match m {
        Module::Bank => IBank::IBankCalls::SIGNATURES,
        Module::Params => IParams::IParamsCalls::SIGNATURES,
        Module::Staking => IStaking::IStakingCalls::SIGNATURES,
        Module::Governance => IGovernance::IGovernanceCalls::SIGNATURES,
        Module::Datanets => sol::IDatanets::IDatanetsCalls::SIGNATURES,
        Module::Models => sol::IModels::IModelsCalls::SIGNATURES,
        Module::Inference => sol::IInference::IInferenceCalls::SIGNATURES,
        Module::Attribution => sol::IAttribution::IAttributionCalls::SIGNATURES,
        Module::Assets => sol::IAssets::IAssetsCalls::SIGNATURES,
        _ => return None,
    })
}

/// The function of a `sol!` signature such as `set(string,uint256)`.
fn function(sig: &str) -> anyhow::Result<Function> {
    Function::parse(sig).map_err(|e| anyhow!("bad signature {sig:?}: {e}"))
}

/// `MODULE.FUNCTION ARG ...` → (target, calldata, signature).
pub fn encode_call_text(text: &str) -> anyhow::Result<(Address, Vec<u8>, &'static str)> {
    let words = split_words(text)?;
    let (head, args) = words.split_first().ok_or_else(|| anyhow!("empty --call"))?;
    let (module, name) =
        head.split_once('.').ok_or_else(|| anyhow!("--call {text:?}: start with MODULE.FUNCTION, e.g. params.set"))?;
    let m = Module::from_name(module).ok_or_else(|| anyhow!("unknown module {module:?}"))?;
    let sigs = function_signatures(m)
        .ok_or_else(|| anyhow!("module {module} has no interface in this CLI; use --raw ADDRESS:0xCALLDATA"))?;
    let named: Vec<&'static str> =
        sigs.iter().copied().filter(|s| s.split_once('(').map(|(n, _)| n) == Some(name)).collect();
    if named.is_empty() {
        let mut all: Vec<&str> = sigs.to_vec();
        all.sort();
        bail!("{module} has no function {name:?}; it has:\n  {}", all.join("\n  "));
    }
    let mut last_err = None;
    for sig in named {
        let f = function(sig)?;
        if f.inputs.len() != args.len() {
            last_err = Some(anyhow!("{module}.{sig} takes {} arguments, got {}", f.inputs.len(), args.len()));
            continue;
        }
        let vals = f
            .inputs
            .iter()
            .zip(args)
            .enumerate()
            .map(|(i, (p, a))| {
                let ty = p.resolve()?;
                parse_arg(&ty, a).map_err(|e| anyhow!("{module}.{sig} argument {}: {e}", i + 1))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let data = f.abi_encode_input(&vals).map_err(|e| anyhow!("{module}.{sig}: {e}"))?;
        return Ok((m.address(), data, sig));
    }
    Err(last_err.unwrap_or_else(|| anyhow!("no matching signature")))
}

/// A call to a system contract as `module.function(args)`, or hex if unknown.
pub fn describe_call(target: &Address, data: &[u8]) -> String {
    let Some(m) = Module::from_address(target) else {
        return format!("{}: 0x{}", target.to_checksum(None), hex::encode(data));
    };
    let known = || -> Option<String> {
        let selector = data.get(..4)?;
        let sig = function_signatures(m)?.iter().find(|s| &keccak256(s.as_bytes())[..4] == selector)?;
        let f = function(sig).ok()?;
        let vals = f.abi_decode_input(&data[4..]).ok()?;
        Some(format!("{}.{}({})", m.name(), f.name, fmt_vals(&vals)))
    };
    known().unwrap_or_else(|| format!("{}: 0x{}", m.name(), hex::encode(data)))
}

/// A value as the CLI shows it: checksummed addresses, decimal integers, 0x
/// hex bytes, quoted strings, `[..]` arrays and `(..)` tuples.
pub fn fmt_val(v: &DynSolValue) -> String {
    match v {
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Uint(x, _) => x.to_string(),
        DynSolValue::Int(x, _) => x.to_string(),
        DynSolValue::FixedBytes(w, n) => format!("0x{}", hex::encode(&w[..*n])),
        DynSolValue::Bytes(b) => format!("0x{}", hex::encode(b)),
        DynSolValue::Function(f) => format!("0x{}", hex::encode(f)),
        DynSolValue::String(s) => format!("{s:?}"),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => format!("[{}]", fmt_vals(items)),
        DynSolValue::Tuple(items) => format!("({})", fmt_vals(items)),
    }
}

fn fmt_vals(vals: &[DynSolValue]) -> String {
    vals.iter().map(fmt_val).collect::<Vec<_>>().join(", ")
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
    sol::IAgents::UnknownAgent { id };
    sol::IAgents::UnknownTask { id };
    sol::IAgents::NotAgentOwner { caller };
    sol::IAgents::NotAgentOperator { caller };
    sol::IAgents::NotClient { caller };
    sol::IAgents::NotResolver { caller };
    sol::IAgents::InvalidAgent { reason };
    sol::IAgents::AgentFrozen { id };
    sol::IAgents::LimitExceeded { id, which, available, required };
    sol::IAgents::WrongTaskStatus { taskId, status };
    sol::IAgents::DeadlinePassed { taskId, deadline };
    sol::IAgents::DeadlineNotPassed { taskId, deadline };
    sol::IAgents::WindowOpen { taskId, until };
    sol::IAgents::WindowClosed { taskId, until };
    sol::IAgents::StakeTooSmall { required, bond };
    sol::IAgents::BadReceipt { index, reason };
    sol::IAgents::FeedbackAlreadyGiven { taskId };
    sol::IAgents::InvalidScore { score };
    sol::IAgents::MemoryUpdateTooLarge { size, max };
    sol::IAssets::ERC721NonexistentToken { tokenId };
    sol::IAssets::ERC721IncorrectOwner { sender, tokenId, owner };
    sol::IAssets::ERC721InsufficientApproval { operator, tokenId };
    sol::IAssets::ERC721InvalidReceiver { receiver };
    sol::IAssets::ERC721InvalidApprover { approver };
    sol::IAssets::ERC721InvalidOperator { operator };
    sol::IAssets::ERC721InvalidOwner { owner };
    sol::IAssets::UnknownAsset { assetId };
    sol::IAssets::NotAssetOwner { assetId, caller, owner };
    sol::IAssets::AlreadySplit { assetId, shareToken };
    sol::IAssets::InvalidShareSupply { supply };
    sol::IAssets::InvalidSymbol { symbol };
    sol::IAssets::TooManyShareTokens { max };
}

fn error_signature(sel: [u8; 4]) -> Option<&'static str> {
    IStaking::IStakingErrors::signature_by_selector(sel)
        .or_else(|| IGovernance::IGovernanceErrors::signature_by_selector(sel))
        .or_else(|| IParams::IParamsErrors::signature_by_selector(sel))
        .or_else(|| sol::IDatanets::IDatanetsErrors::signature_by_selector(sel))
        .or_else(|| sol::IModels::IModelsErrors::signature_by_selector(sel))
        .or_else(|| sol::IInference::IInferenceErrors::signature_by_selector(sel))
        .or_else(|| sol::IAttribution::IAttributionErrors::signature_by_selector(sel))
        .or_else(|| sol::IAgents::IAgentsErrors::signature_by_selector(sel))
        .or_else(|| sol::IAssets::IAssetsErrors::signature_by_selector(sel))
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
    let Ok(error) = alloy_json_abi::Error::parse(sig) else { return raw() };
    let name = error.name.as_str();
    let Ok(decoded) = error.decode_error(data) else {
        return format!("{name}(undecodable: 0x{})", hex::encode(data));
    };
    let vals = decoded.body;
    let names = ERROR_FIELDS.iter().find(|(s, _)| *s == sig).map(|(_, n)| *n).filter(|n| n.len() == vals.len());
    let fields: Vec<String> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let shown = match (name, v) {
                // A proposal's failed call: decode the inner revert too.
                ("ProposalCallFailed", DynSolValue::Bytes(b)) if i == 1 => decode_error(b),
                ("NotQueued", DynSolValue::Uint(s, _)) if i == 1 => {
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

#[cfg(test)]
mod tests {
    use alloy_sol_types::SolCall;
    use primitives::abi::{DatanetLimits, DatanetVersionRef, IDatanets, IModels, ModelRegistration};
    use primitives::system::TREASURY;
    use primitives::{B256, Bytes, ONE_OPEN, U256};

    use super::*;

    fn encode(text: &str) -> Vec<u8> {
        let (to, data, _) = encode_call_text(text).unwrap_or_else(|e| panic!("{text}: {e:#}"));
        assert_eq!(Module::from_address(&to).map(|m| m.name()), text.split('.').next());
        data
    }

    fn refused(text: &str) -> String {
        format!("{:#}", encode_call_text(text).expect_err(text))
    }

    #[test]
    fn calls_of_elementary_types_encode_and_read_back_as_before() {
        let data = encode("params.set governance.deposit 12OPEN");
        let want = IParams::setCall { name: "governance.deposit".into(), value: U256::from(12 * ONE_OPEN) };
        assert_eq!(data, want.abi_encode());
        let to = Module::Params.address();
        assert_eq!(describe_call(&to, &data), "params.set(\"governance.deposit\", 12000000000000000000)");
        let data = encode("bank.transfer treasury 5wei");
        assert_eq!(
            describe_call(&Module::Bank.address(), &data),
            format!("bank.transfer({}, 5)", TREASURY.to_checksum(None))
        );
        let data = encode("models.approve [2,3]");
        assert_eq!(data, IModels::approveCall { ids: vec![2, 3] }.abi_encode());
        assert_eq!(describe_call(&Module::Models.address(), &data), "models.approve([2, 3])");
        let data = encode(r#"staking.slash staking 100000 5 "double sign" 0x0000000000000000000000000000000000000007"#);
        let shown = describe_call(&Module::Staking.address(), &data);
        assert!(shown.starts_with("staking.slash(") && shown.contains("100000, 5, \"double sign\""), "{shown}");
    }

    #[test]
    fn a_struct_argument_is_a_tuple() {
        let text = "models.register '(\"my model\", 0x1111111111111111111111111111111111111111111111111111111111111111, \
                    0x2222222222222222222222222222222222222222222222222222222222222222, [(1, 2), (3, 4)], 0xabcd, 0x, \
                    0x3333333333333333333333333333333333333333333333333333333333333333, [], [], \
                    0x4444444444444444444444444444444444444444444444444444444444444444, 7, 16, 1OPEN, 2000wei)'";
        let data = encode(text);
        let registration = ModelRegistration {
            name: "my model".into(),
            baseModelHash: B256::repeat_byte(0x11),
            adapterHash: B256::repeat_byte(0x22),
            datanets: vec![
                DatanetVersionRef { datanetId: 1, version: 2 },
                DatanetVersionRef { datanetId: 3, version: 4 },
            ],
            hyperparams: Bytes::from(vec![0xab, 0xcd]),
            metrics: Bytes::new(),
            trainingLogHash: B256::repeat_byte(0x33),
            checkpointHashes: vec![],
            checkpointLearningRates: vec![],
            sketchHash: B256::repeat_byte(0x44),
            sketchSeed: 7,
            sketchK: 16,
            priceInPer1k: ONE_OPEN,
            priceOutPer1k: 2000,
        };
        assert_eq!(data, IModels::registerCall { registration }.abi_encode());
        let shown = describe_call(&Module::Models.address(), &data);
        assert!(shown.starts_with("models.register((\"my model\", 0x1111"), "{shown}");
        assert!(shown.contains(", [(1, 2), (3, 4)], 0xabcd, 0x, 0x3333"), "{shown}");
        assert!(shown.ends_with(", [], [], 0x4444444444444444444444444444444444444444444444444444444444444444, 7, 16, 1000000000000000000, 2000))"), "{shown}");
    }

    #[test]
    fn string_arrays_address_arrays_and_a_struct_in_one_call() {
        let text = r#"datanets.createDatanet shell "Unix shell" "Commands and answers" '[nlp, "unix, shell"]' 0 CC-BY-4.0 0 1OPEN [] [treasury] (0,0,0,3)"#;
        let want = IDatanets::createDatanetCall {
            name: "shell".into(),
            summary: "Unix shell".into(),
            description: "Commands and answers".into(),
            tags: vec!["nlp".into(), "unix, shell".into()],
            dataType: 0,
            licence: "CC-BY-4.0".into(),
            policy: 0,
            contributorBond: U256::from(ONE_OPEN),
            curators: vec![],
            attesters: vec![TREASURY],
            limits: DatanetLimits {
                maxSubmissionBytes: 0,
                contributorDailyBytes: 0,
                datanetDailyBytes: 0,
                contributorDailyFiles: 3,
            },
        };
        let data = encode(text);
        assert_eq!(data, want.abi_encode());
        let shown = describe_call(&Module::Datanets.address(), &data);
        assert!(
            shown.ends_with(&format!(
                "[\"nlp\", \"unix, shell\"], 0, \"CC-BY-4.0\", 0, 1000000000000000000, [], [{}], (0, 0, 0, 3))",
                TREASURY.to_checksum(None)
            )),
            "{shown}"
        );
    }

    #[test]
    fn bad_calls_are_refused_with_the_reason() {
        assert!(refused("staking.bogus 1").contains("has no function \"bogus\""));
        assert!(refused("governance.spendTreasury 0x01").contains("takes 2 arguments, got 1"));
        assert!(
            refused("governance.spendTreasury notanaddress 1")
                .contains("argument 1: \"notanaddress\" is not an address")
        );
        assert!(refused("nosuch.f").contains("unknown module \"nosuch\""));
        assert!(refused("setparams").contains("start with MODULE.FUNCTION"));
        assert!(refused("").contains("empty --call"));
        let e = refused("datanets.createDatanet a b c [x] 0 L 0 1 [] [] (0,0,0");
        assert!(e.contains("argument 11: \"(0,0,0\": no closing ')'"), "{e}");
        let e = refused("models.approve [1,-2]");
        assert!(e.contains("argument 1") && e.contains("\"-2\" is not an integer"), "{e}");
    }

    #[test]
    fn unknown_calldata_is_shown_as_hex() {
        assert_eq!(describe_call(&Module::Bank.address(), &[1, 2, 3, 4, 5]), "bank: 0x0102030405");
        let elsewhere = Address::with_last_byte(9);
        assert_eq!(describe_call(&elsewhere, &[0xaa]), format!("{}: 0xaa", elsewhere.to_checksum(None)));
        // A known selector with arguments that do not decode.
        let mut data = IModels::approveCall { ids: vec![1] }.abi_encode();
        data.truncate(40);
        assert_eq!(describe_call(&Module::Models.address(), &data), format!("models: 0x{}", hex::encode(&data)));
    }

    #[test]
    fn reverts_show_the_error_and_its_fields() {
        let caller = Address::with_last_byte(3);
        assert_eq!(
            decode_error(&sol::Unauthorized { caller }.abi_encode()),
            format!("Unauthorized(caller: {})", caller.to_checksum(None))
        );
        let inner = sol::InsufficientBalance { available: U256::ZERO, required: U256::from(5) }.abi_encode();
        let failed = IGovernance::ProposalCallFailed { index: U256::ZERO, reason: inner.into() }.abi_encode();
        assert_eq!(
            decode_error(&failed),
            "ProposalCallFailed(index: 0, reason: InsufficientBalance(available: 0, required: 5))"
        );
        let queued = IGovernance::NotQueued { id: 4, state: 1 }.abi_encode();
        assert_eq!(decode_error(&queued), "NotQueued(id: 4, state: active (1))");
        // Errors of interfaces without field names, and Solidity's own.
        let pending = sol::IDatanets::NotPending { contributionId: 9, status: 1 }.abi_encode();
        assert_eq!(decode_error(&pending), "NotPending(9, 1)");
        assert_eq!(decode_error(&alloy_sol_types::Revert::from("boom").abi_encode()), "Error(\"boom\")");
        assert_eq!(decode_error(&[]), "reverted without data");
        assert_eq!(decode_error(&[1, 2]), "unknown error 0x0102");
        let cut = &sol::Unauthorized { caller }.abi_encode()[..20];
        assert_eq!(decode_error(cut), format!("Unauthorized(undecodable: 0x{})", hex::encode(cut)));
    }
}
