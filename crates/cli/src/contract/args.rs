//! Command-line text to ABI values: `"MODULE.FUNCTION ARG ..."` split like a
//! shell ([`split_words`]), and each argument read as a value of its ABI type
//! ([`parse_arg`]).
//!
//! The syntax is alloy-dyn-abi's `coerce_str` (`true`, `-5`, `0xabcd`, `[a, b]`,
//! `(a, b)`) with the CLI's own readings on top, also inside arrays and tuples:
//! unsigned integers are base units or amounts with a unit (`1.5OPEN`, `10wei`),
//! addresses may be a module name (`staking`) or `treasury`, and a top-level
//! array may leave out its brackets (`2,3`).

use alloy_dyn_abi::{DynSolType, DynSolValue};
use anyhow::{anyhow, bail};
use primitives::system::{Module, TREASURY};
use primitives::{Address, Amount, U256};

/// Read `text` as a value of type `ty`.
pub fn parse_arg(ty: &DynSolType, text: &str) -> anyhow::Result<DynSolValue> {
    parse_value(ty, text, false)
}

/// `nested`: an item of an array or tuple, where strings may be quoted and
/// arrays need their brackets.
fn parse_value(ty: &DynSolType, text: &str, nested: bool) -> anyhow::Result<DynSolValue> {
    let s = text.trim();
    let items = |open, close| -> anyhow::Result<Vec<&str>> { list_items(s, open, close, nested) };
    Ok(match ty {
        DynSolType::Address => DynSolValue::Address(parse_address(s)?),
        DynSolType::Uint(bits) => {
            let v = parse_uint(s)?;
            if *bits < 256 && v >= (U256::from(1) << *bits) {
                bail!("{s} does not fit uint{bits}");
            }
            DynSolValue::Uint(v, *bits)
        }
        DynSolType::String if nested => DynSolValue::String(unquote(s).to_string()),
        // A top-level string arrives unquoted by `split_words`: take it as it is.
        DynSolType::String => DynSolValue::String(text.to_string()),
        DynSolType::Array(inner) => DynSolValue::Array(parse_items(inner, &items('[', ']')?)?),
        DynSolType::FixedArray(inner, n) => {
            let items = items('[', ']')?;
            if items.len() != *n {
                bail!("{s:?} has {} items, {} needs {n}", items.len(), ty.sol_type_name());
            }
            DynSolValue::FixedArray(parse_items(inner, &items)?)
        }
        DynSolType::Tuple(types) => {
            let items = list_items(s, '(', ')', true)?;
            if items.len() != types.len() {
                bail!("{s:?} has {} fields, {} needs {}", items.len(), ty.sol_type_name(), types.len());
            }
            let fields = types.iter().zip(&items).map(|(t, x)| parse_value(t, x, true));
            DynSolValue::Tuple(fields.collect::<anyhow::Result<_>>()?)
        }
        _ => ty.coerce_str(s).map_err(|e| anyhow!("{s:?} is not a {}: {e}", ty.sol_type_name()))?,
    })
}

fn parse_items(ty: &DynSolType, items: &[&str]) -> anyhow::Result<Vec<DynSolValue>> {
    items.iter().map(|x| parse_value(ty, x, true)).collect()
}

/// A module name ("staking"), "treasury", or a hex address.
pub fn parse_address(s: &str) -> anyhow::Result<Address> {
    if s == "treasury" {
        return Ok(TREASURY);
    }
    if let Some(m) = Module::from_name(s) {
        return Ok(m.address());
    }
    s.parse().map_err(|_| anyhow!("{s:?} is not an address"))
}

/// Decimal or 0x hex base units, or an amount with a unit: "1.5OPEN", "10wei".
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

/// `"text"` or `'text'` without its quotes; anything else as it is.
fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return &s[1..s.len() - 1];
        }
    }
    s
}

/// The items of `[a, b]` or `(a, b)`, split at the commas outside brackets,
/// parentheses and quotes. Outside an array or tuple (`nested` false) the
/// brackets may be left out.
fn list_items(s: &str, open: char, close: char, nested: bool) -> anyhow::Result<Vec<&str>> {
    let body = match s.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
        Some(body) => body,
        None if !nested && !s.starts_with(open) => s,
        None if s.starts_with(open) => bail!("{s:?}: no closing {close:?}"),
        None => bail!("{s:?}: write {open}item, item, ...{close}"),
    };
    if body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut items = Vec::new();
    let (mut depth, mut quote, mut start) = (0usize, None, 0);
    for (i, c) in body.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(') => depth += 1,
            (None, ']' | ')') => {
                depth = depth.checked_sub(1).ok_or_else(|| anyhow!("{s:?}: unbalanced {c:?}"))?;
            }
            (None, ',') if depth == 0 => {
                items.push(body[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        bail!("{s:?}: unclosed {q}");
    }
    if depth != 0 {
        bail!("{s:?}: unclosed bracket or parenthesis");
    }
    items.push(body[start..].trim());
    if items.iter().any(|x| x.is_empty()) {
        bail!("{s:?} has an empty item");
    }
    Ok(items)
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

#[cfg(test)]
mod tests {
    use super::*;
    use primitives::ONE_OPEN;

    fn ty(s: &str) -> DynSolType {
        s.parse().unwrap()
    }

    fn uint(v: u128, bits: usize) -> DynSolValue {
        DynSolValue::Uint(U256::from(v), bits)
    }

    fn err(t: &str, text: &str) -> String {
        format!("{:#}", parse_arg(&ty(t), text).expect_err(text))
    }

    #[test]
    fn integers_are_base_units_or_amounts() {
        assert_eq!(parse_arg(&ty("uint256"), "1.5OPEN").unwrap(), uint(ONE_OPEN * 3 / 2, 256));
        assert_eq!(parse_arg(&ty("uint256"), "10wei").unwrap(), uint(10, 256));
        assert_eq!(parse_arg(&ty("uint64"), "0x10").unwrap(), uint(16, 64));
        assert_eq!(parse_arg(&ty("uint8"), "255").unwrap(), uint(255, 8));
        assert!(err("uint8", "256").contains("does not fit uint8"));
        assert!(err("uint256", "ten").contains("is not an integer"));
        // Signed integers (refused by the codec before alloy-dyn-abi) are read by coerce_str.
        let min = alloy_primitives::I256::try_from(-128).unwrap();
        assert_eq!(parse_arg(&ty("int8"), "-128").unwrap(), DynSolValue::Int(min, 8));
        assert!(err("int8", "-129").contains("is not a int8"));
    }

    #[test]
    fn addresses_may_name_a_module_or_the_treasury() {
        assert_eq!(parse_arg(&ty("address"), "treasury").unwrap(), DynSolValue::Address(TREASURY));
        assert_eq!(parse_arg(&ty("address"), "staking").unwrap(), DynSolValue::Address(Module::Staking.address()));
        assert!(err("address", "notanaddress").contains("\"notanaddress\" is not an address"));
        let in_array = parse_arg(&ty("address[]"), "[treasury, bank]").unwrap();
        assert_eq!(
            in_array,
            DynSolValue::Array(vec![DynSolValue::Address(TREASURY), DynSolValue::Address(Module::Bank.address())])
        );
    }

    #[test]
    fn arrays_with_or_without_brackets_at_the_top() {
        let want = DynSolValue::Array(vec![uint(2, 64), uint(3, 64)]);
        assert_eq!(parse_arg(&ty("uint64[]"), "[2,3]").unwrap(), want);
        assert_eq!(parse_arg(&ty("uint64[]"), " [ 2 , 3 ] ").unwrap(), want);
        assert_eq!(parse_arg(&ty("uint64[]"), "2,3").unwrap(), want);
        assert_eq!(parse_arg(&ty("uint64[]"), "[]").unwrap(), DynSolValue::Array(vec![]));
        let strings = parse_arg(&ty("string[]"), r#"[nlp, "unix, shell", 'a "b"']"#).unwrap();
        assert_eq!(
            strings,
            DynSolValue::Array(vec![
                DynSolValue::String("nlp".into()),
                DynSolValue::String("unix, shell".into()),
                DynSolValue::String("a \"b\"".into()),
            ])
        );
        assert_eq!(
            parse_arg(&ty("uint64[2]"), "[1,2]").unwrap(),
            DynSolValue::FixedArray(vec![uint(1, 64), uint(2, 64)])
        );
        assert!(err("uint64[2]", "[1,2,3]").contains("has 3 items, uint64[2] needs 2"));
        // Nested arrays keep their brackets.
        assert_eq!(
            parse_arg(&ty("uint8[][]"), "[[1], [], [2, 3]]").unwrap(),
            DynSolValue::Array(vec![
                DynSolValue::Array(vec![uint(1, 8)]),
                DynSolValue::Array(vec![]),
                DynSolValue::Array(vec![uint(2, 8), uint(3, 8)]),
            ])
        );
        assert!(err("uint8[][]", "[1, 2]").contains("write [item, item, ...]"));
    }

    #[test]
    fn tuples_nest_strings_arrays_and_tuples() {
        let t = ty("(uint64,string,bytes[],(address,bool)[])");
        let v = parse_arg(&t, r#"(1OPEN, "a, (b)", [0x01, 0x0203], [(treasury, true), (0x0000000000000000000000000000000000000001, false)])"#)
            .unwrap();
        assert_eq!(
            v,
            DynSolValue::Tuple(vec![
                uint(ONE_OPEN, 64),
                DynSolValue::String("a, (b)".into()),
                DynSolValue::Array(vec![DynSolValue::Bytes(vec![1]), DynSolValue::Bytes(vec![2, 3])]),
                DynSolValue::Array(vec![
                    DynSolValue::Tuple(vec![DynSolValue::Address(TREASURY), DynSolValue::Bool(true)]),
                    DynSolValue::Tuple(vec![
                        DynSolValue::Address(Address::with_last_byte(1)),
                        DynSolValue::Bool(false)
                    ]),
                ]),
            ])
        );
        assert!(v.matches(&t));
    }

    #[test]
    fn malformed_arguments_are_errors_that_say_what_is_wrong() {
        let cases = [
            ("(uint8,uint8)", "(1,2", "no closing ')'"),
            ("(uint8,uint8)", "1,2", "write (item, item, ...)"),
            ("(uint8,uint8)", "(1)", "has 1 fields, (uint8,uint8) needs 2"),
            ("(uint8,uint8)", "(1,(2)", "unclosed bracket or parenthesis"),
            ("(uint8,string)", "(1,\"x)", "unclosed \""),
            ("uint8[]", "[1,,2]", "has an empty item"),
            ("uint8[]", "[1,2]]", "unbalanced ']'"),
            ("uint8[]", "[1,2", "no closing ']'"),
            ("uint8[]", "[1,x]", "\"x\" is not an integer"),
            ("bool", "maybe", "\"maybe\" is not a bool"),
            ("bytes32", "0x1234", "\"0x1234\" is not a bytes32"),
            ("bytes", "0xzz", "\"0xzz\" is not a bytes"),
        ];
        for (t, text, want) in cases {
            let e = err(t, text);
            assert!(e.contains(want), "{t} {text:?}: {e}");
        }
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words(r#"staking.slash 0xAb 5 "double sign" 'it''s' a\ b"#).unwrap(),
            vec!["staking.slash", "0xAb", "5", "double sign", "its", "a b"]
        );
        assert_eq!(split_words(r#"x '[a, "b c"]'"#).unwrap(), vec!["x", r#"[a, "b c"]"#]);
        assert!(split_words("x \"open").unwrap_err().to_string().contains("unclosed double quote"));
        assert!(split_words("x 'open").unwrap_err().to_string().contains("unclosed single quote"));
    }

    proptest::proptest! {
        /// Whatever the text, reading it is a value or an error, never a panic.
        #[test]
        fn any_text_is_read_or_refused(text in "[\\[\\]() ,\"'0-9a-fx.OPENwei-]{0,40}") {
            for t in ["(uint64,string,bytes[],(address,bool)[])", "uint8[2][]", "int16", "bytes4", "string[]"] {
                let _ = parse_arg(&ty(t), &text);
            }
        }
    }
}
