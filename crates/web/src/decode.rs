//! Calls, events and errors of the system contracts, decoded for people.
//!
//! The source is each module's Solidity interface in `primitives::abi`, as
//! the JSON ABI `sol!` generates for it (`#[sol(abi)]`): function, argument,
//! event and field names and the indexed flags come from the one definition
//! the runtime dispatches on, so a new function or event shows up here without
//! a change. Values are decoded with alloy-dyn-abi into a [`Field`] tree that
//! keeps the names of struct members.

use std::sync::LazyLock;

use alloy_dyn_abi::{DynSolValue, EventExt, JsonAbiExt};
use alloy_json_abi::{Error as AbiError, Event, Function, JsonAbi, Param};
use alloy_sol_types::JsonAbiExt as _;
use primitives::abi as sol;
use primitives::system::{Module, SYSTEM_MODULES};
use primitives::{Address, Log};

/// A named value: an argument, a return value, an event field or a struct member.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    /// The Solidity type as declared (`uint256`, `address[]`, `struct`).
    pub ty: String,
    /// For events: whether the field is a topic (indexed dynamic values are only their hash).
    pub indexed: bool,
    pub value: Value,
}

/// A decoded value, with struct members named.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Leaf(DynSolValue),
    Struct(Vec<Field>),
    List(Vec<Value>),
}

/// A call to a system contract, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedCall {
    pub module: Module,
    pub function: String,
    /// The canonical signature, e.g. `transfer(address,uint256)`.
    pub signature: String,
    pub args: Vec<Field>,
}

/// What a transaction's input is.
#[derive(Clone, Debug, PartialEq)]
pub enum CallKind {
    /// Not a system contract: a plain transfer of OPEN (any input is opaque).
    Plain,
    Decoded(DecodedCall),
    /// To a system contract, but not a call its interface knows (the runtime refuses it).
    Undecodable {
        module: Module,
        reason: String,
    },
}

/// A log, decoded with the event of its emitter's interface.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedEvent {
    /// The module whose interface declares the event.
    pub module: Module,
    pub name: String,
    pub fields: Vec<Field>,
}

/// A revert's custom error, decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedError {
    pub name: String,
    pub fields: Vec<Field>,
}

/// Every module's JSON ABI, built once.
static INTERFACES: LazyLock<Vec<(Module, JsonAbi)>> =
    LazyLock::new(|| SYSTEM_MODULES.into_iter().map(|m| (m, sol::interface(m))).collect());

/// The errors every module may revert with, declared outside the interfaces.
static SHARED_ERRORS: LazyLock<Vec<AbiError>> = LazyLock::new(|| {
    vec![
        sol::Unauthorized::abi(),
        sol::UnknownFunction::abi(),
        sol::InvalidArguments::abi(),
        sol::NonPayable::abi(),
        sol::OutOfGas::abi(),
        sol::InsufficientBalance::abi(),
        sol::Overflow::abi(),
    ]
});

/// The JSON ABI of module `m`.
pub fn interface(m: Module) -> &'static JsonAbi {
    &INTERFACES.iter().find(|(x, _)| *x == m).expect("every module has an interface").1
}

/// The function of module `m` whose selector starts `data`.
pub fn function(m: Module, data: &[u8]) -> Option<&'static Function> {
    let selector = data.get(..4)?;
    interface(m).functions().find(|f| f.selector().as_slice() == selector)
}

/// The type of a parameter as declared: the struct's name for a struct when
/// the ABI names it (`sol!` does not yet), else `struct` (`struct[]` ...).
fn declared_type(ty: &str, internal: Option<&alloy_json_abi::InternalType>) -> String {
    match (ty.strip_prefix("tuple"), internal) {
        (Some(_), Some(it)) => it.to_string(),
        (Some(dims), None) => format!("struct{dims}"),
        (None, _) => ty.to_string(),
    }
}

fn value(components: &[Param], v: DynSolValue) -> Value {
    match v {
        DynSolValue::Tuple(items) if !components.is_empty() => Value::Struct(fields(components, items)),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            Value::List(items.into_iter().map(|i| value(components, i)).collect())
        }
        other => Value::Leaf(other),
    }
}

/// Name decoded values after their parameters (unnamed ones by position).
pub fn fields(params: &[Param], values: Vec<DynSolValue>) -> Vec<Field> {
    params
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (p, v))| Field {
            name: if p.name.is_empty() { format!("#{}", i + 1) } else { p.name.clone() },
            ty: declared_type(&p.ty, p.internal_type.as_ref()),
            indexed: false,
            value: value(&p.components, v),
        })
        .collect()
}

/// A transaction's input, decoded against the interface of the system
/// contract it calls.
pub fn decode_call(to: Option<Address>, input: &[u8]) -> CallKind {
    let Some(module) = to.as_ref().and_then(Module::from_address) else {
        return CallKind::Plain;
    };
    let Some(f) = function(module, input) else {
        let reason = match input.get(..4) {
            None => "no function selector in the input".to_string(),
            Some(s) => format!("{} has no function with selector 0x{}", module.name(), hex::encode(s)),
        };
        return CallKind::Undecodable { module, reason };
    };
    match f.abi_decode_input(&input[4..]) {
        Ok(vals) => CallKind::Decoded(DecodedCall {
            module,
            function: f.name.clone(),
            signature: f.signature(),
            args: fields(&f.inputs, vals),
        }),
        Err(e) => CallKind::Undecodable { module, reason: format!("{}: arguments do not decode: {e}", f.signature()) },
    }
}

fn decode_event(module: Module, e: &Event, log: &Log) -> Option<DecodedEvent> {
    let decoded = e.decode_log(&log.data).ok()?;
    let (mut indexed, mut body) = (decoded.indexed.into_iter(), decoded.body.into_iter());
    let mut out = Vec::with_capacity(e.inputs.len());
    for (i, p) in e.inputs.iter().enumerate() {
        let v = if p.indexed { indexed.next()? } else { body.next()? };
        out.push(Field {
            name: if p.name.is_empty() { format!("#{}", i + 1) } else { p.name.clone() },
            ty: declared_type(&p.ty, p.internal_type.as_ref()),
            indexed: p.indexed,
            // An indexed struct or array is only its hash: no members to name.
            value: if p.indexed { Value::Leaf(v) } else { value(&p.components, v) },
        });
    }
    Some(DecodedEvent { module, name: e.name.clone(), fields: out })
}

/// A log, decoded when its first topic is an event of a system contract's
/// interface (its emitter's first, then any other's).
pub fn decode_log(log: &Log) -> Option<DecodedEvent> {
    let topic0 = *log.data.topics().first()?;
    let emitter = Module::from_address(&log.address);
    let order = emitter.into_iter().chain(SYSTEM_MODULES.into_iter().filter(|m| Some(*m) != emitter));
    for m in order {
        for e in interface(m).events().filter(|e| e.selector() == topic0) {
            if let Some(d) = decode_event(m, e, log) {
                return Some(d);
            }
        }
    }
    None
}

/// Revert data as the custom error of module `m` (or a shared one).
pub fn decode_error(m: Option<Module>, data: &[u8]) -> Option<DecodedError> {
    let selector = data.get(..4)?;
    let own = m.into_iter().flat_map(|m| interface(m).errors());
    let e = own.chain(SHARED_ERRORS.iter()).find(|e| e.selector().as_slice() == selector)?;
    let vals = e.abi_decode_input(&data[4..]).ok()?;
    Some(DecodedError { name: e.name.clone(), fields: fields(&e.inputs, vals) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_sol_types::{SolCall, SolError, SolEvent};
    use primitives::{B256, U256};

    #[test]
    fn a_bank_transfer_decodes_with_names() {
        let to = Address::repeat_byte(7);
        let data = sol::IBank::transferCall { to, amount: U256::from(5) }.abi_encode();
        let CallKind::Decoded(c) = decode_call(Some(Module::Bank.address()), &data) else { panic!("not decoded") };
        assert_eq!(
            (c.module, c.function.as_str(), c.signature.as_str()),
            (Module::Bank, "transfer", "transfer(address,uint256)")
        );
        assert_eq!(c.args[0].name, "to");
        assert_eq!(c.args[0].value, Value::Leaf(DynSolValue::Address(to)));
        assert_eq!(c.args[1].name, "amount");
    }

    #[test]
    fn struct_arguments_keep_their_member_names() {
        let limits = sol::DatanetLimits::default();
        let call = sol::IDatanets::createDatanetCall {
            name: "Nursing notes".into(),
            summary: String::new(),
            description: String::new(),
            tags: vec!["health".into()],
            dataType: 0,
            licence: "CC-BY-4.0".into(),
            policy: 0,
            contributorBond: U256::ZERO,
            curators: vec![],
            attesters: vec![],
            limits,
        };
        let CallKind::Decoded(c) = decode_call(Some(Module::Datanets.address()), &call.abi_encode()) else {
            panic!("not decoded")
        };
        assert_eq!(c.function, "createDatanet");
        let last = c.args.last().unwrap();
        assert_eq!(last.name, "limits");
        assert!(last.ty.starts_with("struct"), "{}", last.ty);
        let Value::Struct(members) = &last.value else { panic!("limits is not a struct: {:?}", last.value) };
        assert!(!members.is_empty() && members.iter().all(|m| !m.name.starts_with('#')));
    }

    #[test]
    fn what_is_not_a_known_call_says_why() {
        assert_eq!(decode_call(Some(Address::repeat_byte(1)), b"anything"), CallKind::Plain);
        assert_eq!(decode_call(None, b""), CallKind::Plain);
        assert!(matches!(decode_call(Some(Module::Bank.address()), &[1, 2]), CallKind::Undecodable { .. }));
        assert!(matches!(
            decode_call(Some(Module::Bank.address()), &[0xde, 0xad, 0xbe, 0xef, 0]),
            CallKind::Undecodable { .. }
        ));
        // A known selector with arguments cut short.
        let data = sol::IBank::transferCall { to: Address::ZERO, amount: U256::from(1) }.abi_encode();
        assert!(matches!(decode_call(Some(Module::Bank.address()), &data[..20]), CallKind::Undecodable { .. }));
    }

    #[test]
    fn events_put_indexed_and_data_fields_back_in_order() {
        let ev =
            sol::IBank::Transfer { from: Address::repeat_byte(1), to: Address::repeat_byte(2), value: U256::from(9) };
        let log = Log { address: Module::Bank.address(), data: ev.encode_log_data() };
        let d = decode_log(&log).unwrap();
        assert_eq!((d.module, d.name.as_str()), (Module::Bank, "Transfer"));
        let names: Vec<_> = d.fields.iter().map(|f| (f.name.as_str(), f.indexed)).collect();
        assert_eq!(names, [("from", true), ("to", true), ("value", false)]);
        let junk = Log::new_unchecked(Module::Bank.address(), vec![B256::repeat_byte(3)], Default::default());
        assert_eq!(decode_log(&junk), None);
    }

    #[test]
    fn reverts_decode_as_module_or_shared_errors() {
        let data = sol::IModels::UnknownModel { id: 42 }.abi_encode();
        let e = decode_error(Some(Module::Models), &data).unwrap();
        assert_eq!(e.name, "UnknownModel");
        assert_eq!(e.fields[0].name, "id");
        let shared = sol::NonPayable {}.abi_encode();
        assert_eq!(decode_error(None, &shared).unwrap().name, "NonPayable");
        assert_eq!(decode_error(None, &[1, 2, 3]), None);
    }
}
