//! File kinds and parsers (see the crate docs, "Parsing").

use primitives::rows::Row;

use crate::normalize::{is_refused_control, normalize};
use crate::{FieldNames, IngestConfig, IngestError};

/// The kinds of file a contribution can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// Plain text: one row per paragraph.
    Txt,
    /// Markdown: one row per section.
    Md,
    /// JSON Lines: one row per object.
    Jsonl,
    /// Comma-separated values with a header: one row per record.
    Csv,
}

/// The kind of a file from its name's extension (case-insensitive): `.txt`/`.text`, `.md`/`.markdown`,
/// `.jsonl`/`.ndjson`, `.csv`.
pub fn detect_kind(file_name: &str) -> Result<FileKind, IngestError> {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let ext = match base.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => ext.to_ascii_lowercase(),
        _ => return Err(IngestError::UnsupportedKind { name: file_name.to_string() }),
    };
    match ext.as_str() {
        "txt" | "text" => Ok(FileKind::Txt),
        "md" | "markdown" => Ok(FileKind::Md),
        "jsonl" | "ndjson" => Ok(FileKind::Jsonl),
        "csv" => Ok(FileKind::Csv),
        _ => Err(IngestError::UnsupportedKind { name: file_name.to_string() }),
    }
}

/// Parse a file's bytes into normalised rows, or refuse the whole file with an error naming the
/// byte offset, line or record at fault. Checks, in order: size (before reading anything), UTF-8,
/// C0 control characters, then the format; a file that yields no row is refused as empty.
pub fn parse(bytes: &[u8], kind: FileKind, cfg: &IngestConfig) -> Result<Vec<Row>, IngestError> {
    if bytes.len() as u64 > cfg.max_file_bytes {
        return Err(IngestError::TooLarge { size: bytes.len() as u64, max: cfg.max_file_bytes });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = 1 + bytes[..offset].iter().filter(|&&b| b == b'\n').count();
        IngestError::InvalidUtf8 { offset, line }
    })?;
    check_controls(text)?;
    let text = text.trim_start_matches('\u{feff}');
    let mut rows = Rows { rows: Vec::new(), max: cfg.max_rows };
    match kind {
        FileKind::Txt => parse_txt(text, &mut rows)?,
        FileKind::Md => parse_md(text, cfg.max_row_chars, &mut rows)?,
        FileKind::Jsonl => parse_jsonl(text, &cfg.jsonl, &mut rows)?,
        FileKind::Csv => parse_csv(text, &cfg.csv.names, cfg.csv.delimiter, &mut rows)?,
    }
    if rows.rows.is_empty() {
        return Err(IngestError::Empty);
    }
    Ok(rows.rows)
}

struct Rows {
    rows: Vec<Row>,
    max: usize,
}

impl Rows {
    fn push(&mut self, row: Row) -> Result<(), IngestError> {
        if self.rows.len() >= self.max {
            return Err(IngestError::TooManyRows { max: self.max });
        }
        self.rows.push(row);
        Ok(())
    }
}

/// Refuse C0 control characters other than tab, LF and CR, naming line and column (1-based, in characters).
fn check_controls(text: &str) -> Result<(), IngestError> {
    if !text.bytes().any(|b| b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') {
        return Ok(());
    }
    for (i, line) in text.split('\n').enumerate() {
        if let Some((col, c)) = line.chars().enumerate().find(|(_, c)| is_refused_control(*c)) {
            return Err(IngestError::ControlChar { line: i + 1, column: col + 1, code: c as u32 });
        }
    }
    Ok(())
}

/// Plain text: the normalised file split into blocks of non-blank lines; each block is a row.
fn parse_txt(text: &str, rows: &mut Rows) -> Result<(), IngestError> {
    let norm = normalize(text);
    let mut cur: Vec<&str> = Vec::new();
    for line in norm.split('\n').chain(std::iter::once("")) {
        if line.is_empty() {
            if !cur.is_empty() {
                rows.push(Row::Text { text: cur.join("\n") })?;
                cur.clear();
            }
        } else {
            cur.push(line);
        }
    }
    Ok(())
}

/// A markdown fence opener or closer: up to 3 spaces, then 3 or more backticks or tildes.
fn fence(line: &str) -> Option<(char, usize)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let c = rest.chars().next()?;
    if c != '`' && c != '~' {
        return None;
    }
    let n = rest.chars().take_while(|&x| x == c).count();
    (n >= 3).then_some((c, n))
}

/// An ATX heading: up to 3 spaces, 1 to 6 `#`, then a space, a tab or the end of the line.
fn is_heading(line: &str) -> bool {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return false;
    }
    let rest = &line[indent..];
    let n = rest.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&n) && matches!(rest.as_bytes().get(n), None | Some(b' ') | Some(b'\t'))
}

/// Markdown: blocks are runs of non-blank lines, a fenced code block (blank lines included) staying
/// inside one block. A section starts at an ATX heading outside a fence; headings with nothing
/// under them join the next section. Each section is a row, its blocks separated by one blank line;
/// a section longer than `max_chars` is cut between blocks into rows of at most `max_chars`
/// characters (a single block longer than that stays whole).
fn parse_md(text: &str, max_chars: usize, rows: &mut Rows) -> Result<(), IngestError> {
    let norm = normalize(text);
    // (block text, is heading)
    let mut blocks: Vec<(String, bool)> = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut open_fence: Option<(char, usize)> = None;
    for line in norm.split('\n') {
        if let Some((c, n)) = open_fence {
            cur.push(line);
            if let Some((c2, n2)) = fence(line)
                && c2 == c
                && n2 >= n
                && line.trim_start().trim_start_matches(c).trim().is_empty()
            {
                open_fence = None;
            }
            continue;
        }
        if line.is_empty() {
            if !cur.is_empty() {
                blocks.push((cur.join("\n"), false));
                cur.clear();
            }
            continue;
        }
        if is_heading(line) {
            if !cur.is_empty() {
                blocks.push((cur.join("\n"), false));
                cur.clear();
            }
            blocks.push((line.to_string(), true));
            continue;
        }
        if let Some(f) = fence(line) {
            open_fence = Some(f);
        }
        cur.push(line);
    }
    if !cur.is_empty() {
        blocks.push((cur.join("\n"), false));
    }

    // Group into sections: a heading starts a new section unless the current one has only headings.
    let mut sections: Vec<Vec<String>> = Vec::new();
    let mut only_headings = true;
    for (block, heading) in blocks {
        if heading && !only_headings {
            sections.push(Vec::new());
            only_headings = true;
        }
        if sections.is_empty() {
            sections.push(Vec::new());
        }
        if !heading {
            only_headings = false;
        }
        sections.last_mut().unwrap().push(block);
    }

    for section in sections {
        let mut row = String::new();
        let mut row_chars = 0usize;
        for block in section {
            let n = block.chars().count();
            if !row.is_empty() && row_chars + 2 + n > max_chars {
                rows.push(Row::Text { text: normalize(&row) })?;
                row.clear();
                row_chars = 0;
            }
            if !row.is_empty() {
                row.push_str("\n\n");
                row_chars += 2;
            }
            row.push_str(&block);
            row_chars += n;
        }
        if !row.is_empty() {
            rows.push(Row::Text { text: normalize(&row) })?;
        }
    }
    Ok(())
}

/// Normalise one field, refusing C0 control characters that JSON escapes let through.
fn field_text(s: &str, name: &str, line: usize) -> Result<String, IngestError> {
    if let Some(c) = s.chars().find(|&c| is_refused_control(c)) {
        return Err(IngestError::Jsonl {
            line,
            msg: format!("field {name:?}: control character U+{:04X} is not allowed", c as u32),
        });
    }
    Ok(normalize(s))
}

/// Prompt and optional extra input joined as `prompt + "\n\n" + input` when the input is non-empty.
fn join_input(prompt: String, input: Option<String>) -> String {
    match input {
        Some(i) if !i.is_empty() => {
            if prompt.is_empty() {
                i
            } else {
                format!("{prompt}\n\n{i}")
            }
        }
        _ => prompt,
    }
}

fn expected_fields(names: &FieldNames) -> String {
    let mut s = format!("{:?}", names.text);
    for p in &names.pairs {
        s.push_str(&format!(" or {:?} + {:?}", p.prompt, p.completion));
    }
    s
}

/// JSON Lines: every non-blank line is one JSON object; the row's fields are chosen by [`FieldNames`].
fn parse_jsonl(text: &str, names: &FieldNames, rows: &mut Rows) -> Result<(), IngestError> {
    use serde_json::Value;
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(raw).map_err(|e| IngestError::Jsonl { line, msg: format!("invalid JSON: {e}") })?;
        let Value::Object(obj) = value else {
            return Err(IngestError::Jsonl { line, msg: "not a JSON object".into() });
        };
        let get = |name: &str, optional: bool| -> Result<Option<String>, IngestError> {
            match obj.get(name) {
                None => Ok(None),
                Some(Value::Null) if optional => Ok(None),
                Some(Value::String(s)) => field_text(s, name, line).map(Some),
                Some(_) => Err(IngestError::Jsonl { line, msg: format!("field {name:?} is not a string") }),
            }
        };
        let mut row = None;
        for pair in &names.pairs {
            if !obj.contains_key(&pair.prompt) {
                continue;
            }
            let prompt = get(&pair.prompt, false)?.unwrap_or_default();
            let Some(completion) = get(&pair.completion, false)? else {
                return Err(IngestError::Jsonl {
                    line,
                    msg: format!("field {:?} is missing (the object has {:?})", pair.completion, pair.prompt),
                });
            };
            let input = match &pair.input {
                Some(n) => get(n, true)?,
                None => None,
            };
            row = Some(Row::PromptCompletion { prompt: join_input(prompt, input), completion });
            break;
        }
        let row = match row {
            Some(r) => r,
            None => match get(&names.text, false)? {
                Some(text) => Row::Text { text },
                None => {
                    return Err(IngestError::Jsonl {
                        line,
                        msg: format!("no field {} in the object", expected_fields(names)),
                    });
                }
            },
        };
        if !row_is_empty(&row) {
            rows.push(row)?;
        }
    }
    Ok(())
}

fn row_is_empty(row: &Row) -> bool {
    match row {
        Row::Text { text } => text.is_empty(),
        Row::PromptCompletion { prompt, completion } => prompt.is_empty() && completion.is_empty(),
    }
}

enum CsvShape {
    Text(usize),
    Pair { prompt: usize, completion: usize, input: Option<usize> },
}

/// CSV (RFC 4180 through the `csv` crate): a header row is required; columns are found by name
/// (trimmed, ASCII case-insensitive); every record must have as many fields as the header.
fn parse_csv(text: &str, names: &FieldNames, delimiter: u8, rows: &mut Rows) -> Result<(), IngestError> {
    let mut rdr =
        csv::ReaderBuilder::new().has_headers(true).flexible(false).delimiter(delimiter).from_reader(text.as_bytes());
    let header = rdr.headers().map_err(|e| IngestError::CsvHeader { msg: e.to_string() })?.clone();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(IngestError::Empty);
    }
    let col = |name: &str| header.iter().position(|h| h.trim().eq_ignore_ascii_case(name.trim()));
    let mut shape = None;
    for pair in &names.pairs {
        if let (Some(p), Some(c)) = (col(&pair.prompt), col(&pair.completion)) {
            shape = Some(CsvShape::Pair { prompt: p, completion: c, input: pair.input.as_deref().and_then(col) });
            break;
        }
    }
    let shape = match shape.or_else(|| col(&names.text).map(CsvShape::Text)) {
        Some(s) => s,
        None => {
            let cols: Vec<&str> = header.iter().collect();
            return Err(IngestError::CsvHeader {
                msg: format!("no column {} (columns: {})", expected_fields(names), cols.join(", ")),
            });
        }
    };
    let mut record = csv::StringRecord::new();
    let mut n = 0u64;
    loop {
        n += 1;
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                        format!("{len} fields where the header has {expected_len}")
                    }
                    _ => e.to_string(),
                };
                return Err(IngestError::Csv { record: n, line, msg });
            }
        }
        // Control characters were refused for the whole file already (CSV has no escapes).
        let get = |i: usize| normalize(record.get(i).unwrap_or(""));
        let row = match shape {
            CsvShape::Text(i) => Row::Text { text: get(i) },
            CsvShape::Pair { prompt, completion, input } => {
                Row::PromptCompletion { prompt: join_input(get(prompt), input.map(get)), completion: get(completion) }
            }
        };
        if !row_is_empty(&row) {
            rows.push(row)?;
        }
    }
    Ok(())
}
