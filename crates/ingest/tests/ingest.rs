//! Parsers, normalisation, duplicates, scores, the index format and determinism.

use std::sync::LazyLock;

use ingest::*;

// ---------------------------------------------------------------------------------------------
// A small deterministic text generator (splitmix64 PRNG over a fixed vocabulary and templates).

struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

static NOUNS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "river lantern harbor orchard engine letter garden mountain teacher merchant bridge library window \
     storm village soldier painter market forest kitchen doctor wagon island tower child farmer sailor \
     mill church road valley castle clock candle horse field ship song story mirror meadow widow baker \
     judge poet hunter shepherd fisherman lighthouse factory cellar chapel compass journal telegraph \
     quarry vineyard workshop printer glacier canal monastery granary caravan observatory"
        .split_whitespace()
        .collect()
});
static VERBS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "carried watched repaired followed painted crossed remembered opened described built burned measured \
     questioned visited abandoned guarded sold counted studied climbed borrowed delivered ignored praised \
     mended surveyed traded explored weighed copied hid found lost planted harvested sketched announced \
     recorded wrapped defended"
        .split_whitespace()
        .collect()
});
static ADJS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "old quiet narrow golden broken distant crowded bitter gentle hollow ancient muddy bright forgotten \
     heavy careful restless crooked silver frozen patient empty humble stubborn faded wealthy weary \
     curious solemn rusty fragrant northern southern modest tangled swift pale clever dusty lonely"
        .split_whitespace()
        .collect()
});
static ADVS: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "slowly quietly suddenly carefully rarely gladly twice often barely eagerly wisely loudly gravely \
     nearly freely warmly secretly openly briefly steadily"
        .split_whitespace()
        .collect()
});
static NAMES: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "Anna Tomas Mirela Jonah Elif Pavel Ines Kofi Lucia Haruki Nadia Oskar Priya Rafael Sigrid Tariq \
     Ursula Viktor Wen Yusuf Zofia Bram Carmen Dmitri Esther"
        .split_whitespace()
        .collect()
});
static PLACES: LazyLock<Vec<&str>> = LazyLock::new(|| {
    "Lisbon Kraków Valparaíso Tromsø Marrakesh Galway Trieste Odessa Hobart Quebec Bergen Cusco Zanzibar \
     Riga Porto Tbilisi Kyoto Dakar Antwerp Nantes"
        .split_whitespace()
        .collect()
});
static PREPS: LazyLock<Vec<&str>> =
    LazyLock::new(|| "near behind beyond under beside across above toward past within".split_whitespace().collect());

fn sentence(g: &mut Gen) -> String {
    match g.next() % 6 {
        0 => format!(
            "{} {} the {} {} {} the {}.",
            g.pick(&NAMES),
            g.pick(&VERBS),
            g.pick(&ADJS),
            g.pick(&NOUNS),
            g.pick(&PREPS),
            g.pick(&NOUNS)
        ),
        1 => format!(
            "In {}, the {} was {} and {} {}.",
            g.pick(&PLACES),
            g.pick(&NOUNS),
            g.pick(&ADJS),
            g.pick(&ADVS),
            g.pick(&ADJS)
        ),
        2 => format!(
            "Every {} that {} {} the {} {} {} a {} {}.",
            g.pick(&NOUNS),
            g.pick(&VERBS),
            g.pick(&PREPS),
            g.pick(&ADJS),
            g.pick(&NOUNS),
            g.pick(&VERBS),
            g.pick(&ADJS),
            g.pick(&NOUNS)
        ),
        3 => format!(
            "The {} {} of {} {} {}, while {} {} the {}.",
            g.pick(&ADJS),
            g.pick(&NOUNS),
            g.pick(&PLACES),
            g.pick(&VERBS),
            g.pick(&ADVS),
            g.pick(&NAMES),
            g.pick(&VERBS),
            g.pick(&NOUNS)
        ),
        4 => format!(
            "{} {} {} a {} {} {} the {} {}.",
            g.pick(&NAMES),
            g.pick(&ADVS),
            g.pick(&VERBS),
            g.pick(&ADJS),
            g.pick(&NOUNS),
            g.pick(&PREPS),
            g.pick(&NOUNS),
            g.pick(&ADVS)
        ),
        _ => format!(
            "Nobody in {} {} why the {} {} had {} the {} {}.",
            g.pick(&PLACES),
            g.pick(&["knew", "asked", "understood", "explained", "guessed"]),
            g.pick(&ADJS),
            g.pick(&NOUNS),
            g.pick(&VERBS),
            g.pick(&NOUNS),
            g.pick(&ADVS)
        ),
    }
}

fn paragraph(g: &mut Gen, min_words: usize) -> String {
    let mut p = String::new();
    while p.split_whitespace().count() < min_words {
        if !p.is_empty() {
            p.push(' ');
        }
        p.push_str(&sentence(g));
    }
    p
}

fn paragraphs(seed: u64, n: usize, min_words: usize) -> Vec<String> {
    let mut g = Gen(seed);
    (0..n).map(|_| paragraph(&mut g, min_words)).collect()
}

fn text(s: &str) -> Row {
    Row::Text { text: s.into() }
}

fn cfg() -> IngestConfig {
    IngestConfig::default()
}

const GOOD: &str = "The lighthouse keeper kept a careful log of every ship that passed the point, noting the \
weather, the hour and the direction of the wind. In winter the entries grew shorter, because the lamp needed \
tending through the long nights and the stairs were slick with ice. His daughter later copied the logs into a \
single ledger, which the harbor office still lends to historians who study the old shipping routes along the \
northern coast and the storms that closed them for weeks at a time.";

// A light edit of GOOD: three words changed.
const GOOD_EDITED: &str = "The lighthouse keeper kept a careful record of every ship that passed the point, noting the \
weather, the hour and the direction of the wind. In winter the entries grew shorter, because the lamp needed \
tending through the long evenings and the stairs were slick with ice. His daughter later copied the logs into a \
single ledger, which the port office still lends to historians who study the old shipping routes along the \
northern coast and the storms that closed them for weeks at a time.";

// ---------------------------------------------------------------------------------------------
// Kinds and parsers.

#[test]
fn detect_kind_from_extension() {
    assert_eq!(detect_kind("notes.txt").unwrap(), FileKind::Txt);
    assert_eq!(detect_kind("README.MD").unwrap(), FileKind::Md);
    assert_eq!(detect_kind("dir/data.markdown").unwrap(), FileKind::Md);
    assert_eq!(detect_kind("train.jsonl").unwrap(), FileKind::Jsonl);
    assert_eq!(detect_kind("train.NDJSON").unwrap(), FileKind::Jsonl);
    assert_eq!(detect_kind("table.csv").unwrap(), FileKind::Csv);
    for bad in ["photo.png", "archive.tar.gz", "noext", ".txt", "dir.txt/file"] {
        assert!(matches!(detect_kind(bad), Err(IngestError::UnsupportedKind { .. })), "{bad}");
    }
}

#[test]
fn txt_paragraphs_are_rows() {
    let file = "\u{feff}First paragraph, line one.  \r\nline two.\r\n\r\n\r\n\r\n\r\nSecond paragraph.\n";
    let rows = parse(file.as_bytes(), FileKind::Txt, &cfg()).unwrap();
    assert_eq!(rows, [text("First paragraph, line one.\nline two."), text("Second paragraph.")]);
    // Every parsed row is already normal.
    for r in &rows {
        let Row::Text { text } = r else { panic!() };
        assert_eq!(&normalize(text), text);
    }
}

#[test]
fn empty_and_blank_files_are_refused() {
    for kind in [FileKind::Txt, FileKind::Md, FileKind::Jsonl, FileKind::Csv] {
        assert_eq!(parse(b"", kind, &cfg()), Err(IngestError::Empty), "{kind:?}");
        assert_eq!(parse(b"\xef\xbb\xbf \n\r\n\t\n", kind, &cfg()), Err(IngestError::Empty), "{kind:?}");
    }
    assert_eq!(parse(b"text\n", FileKind::Csv, &cfg()), Err(IngestError::Empty));
    assert_eq!(parse(b"{\"text\": \"  \"}\n", FileKind::Jsonl, &cfg()), Err(IngestError::Empty));
}

#[test]
fn invalid_utf8_names_the_byte_offset() {
    let mut b = b"good line\nsecond ".to_vec();
    b.push(0xff);
    b.extend_from_slice(b" rest");
    for kind in [FileKind::Txt, FileKind::Md, FileKind::Jsonl, FileKind::Csv] {
        let e = parse(&b, kind, &cfg()).unwrap_err();
        assert_eq!(e, IngestError::InvalidUtf8 { offset: 17, line: 2 });
        assert_eq!(e.to_string(), "invalid UTF-8 at byte offset 17 (line 2)");
    }
    // A truncated multi-byte sequence at the end.
    assert_eq!(parse(b"caf\xc3", FileKind::Txt, &cfg()), Err(IngestError::InvalidUtf8 { offset: 3, line: 1 }));
}

#[test]
fn control_characters_are_refused_with_their_place() {
    let e = parse("ok\nbad \u{0}here".as_bytes(), FileKind::Txt, &cfg()).unwrap_err();
    assert_eq!(e, IngestError::ControlChar { line: 2, column: 5, code: 0 });
    assert_eq!(e.to_string(), "line 2, column 5: control character U+0000 is not allowed (only tab and line breaks)");
    assert!(matches!(parse(b"a,b\n\x1b,c\n", FileKind::Csv, &cfg()), Err(IngestError::ControlChar { line: 2, .. })));
    // Through a JSON escape.
    let e = parse(b"{\"text\":\"fine\"}\n{\"text\":\"nul \\u0000 inside\"}\n", FileKind::Jsonl, &cfg()).unwrap_err();
    assert_eq!(
        e,
        IngestError::Jsonl { line: 2, msg: "field \"text\": control character U+0000 is not allowed".into() }
    );
    // Tabs are fine.
    assert_eq!(parse(b"a\tb", FileKind::Txt, &cfg()).unwrap(), [text("a\tb")]);
}

#[test]
fn oversize_file_is_refused_before_parsing() {
    let mut c = cfg();
    c.max_file_bytes = 10;
    // Invalid UTF-8 too, but size is checked first.
    let e = parse(b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", FileKind::Txt, &c).unwrap_err();
    assert_eq!(e, IngestError::TooLarge { size: 11, max: 10 });
    assert!(parse(b"0123456789", FileKind::Txt, &c).is_ok());
    assert_eq!(IngestConfig::default().max_file_bytes, 5 * 1024 * 1024);
}

#[test]
fn too_many_rows_are_refused() {
    let mut c = cfg();
    c.max_rows = 2;
    assert_eq!(parse(b"a\n\nb\n\nc", FileKind::Txt, &c), Err(IngestError::TooManyRows { max: 2 }));
    assert_eq!(parse(b"a\n\nb", FileKind::Txt, &c).unwrap().len(), 2);
}

#[test]
fn markdown_sections_are_rows() {
    let md = "\
Intro text before any heading.

# Title
## Subtitle

First section body.

Second paragraph of it.

```rust
# not a heading inside a fence

fn main() {}
```

### Next
Body of next.
";
    let rows = parse(md.as_bytes(), FileKind::Md, &cfg()).unwrap();
    assert_eq!(
        rows,
        [
            text("Intro text before any heading."),
            text(
                "# Title\n\n## Subtitle\n\nFirst section body.\n\nSecond paragraph of it.\n\n\
                 ```rust\n# not a heading inside a fence\n\nfn main() {}\n```"
            ),
            text("### Next\n\nBody of next."),
        ]
    );
    // A long section is cut between blocks.
    let mut c = cfg();
    c.max_row_chars = 40;
    let md = "# H\n\naaaa aaaa aaaa aaaa aaaa\n\nbbbb bbbb bbbb bbbb bbbb\n\ncccc";
    let rows = parse(md.as_bytes(), FileKind::Md, &c).unwrap();
    assert_eq!(rows, [text("# H\n\naaaa aaaa aaaa aaaa aaaa"), text("bbbb bbbb bbbb bbbb bbbb\n\ncccc")]);
}

#[test]
fn jsonl_text_and_pairs() {
    let file = "{\"text\": \"  A text row.  \\r\\n\"}\n\n{\"prompt\": \"Q?\", \"completion\": \"A.\", \"id\": 3}\r\n";
    let rows = parse(file.as_bytes(), FileKind::Jsonl, &cfg()).unwrap();
    assert_eq!(rows, [text("  A text row."), Row::PromptCompletion { prompt: "Q?".into(), completion: "A.".into() }]);

    // Aliases only when configured.
    let alpaca = "{\"instruction\": \"Translate\", \"input\": \"bonjour\", \"output\": \"hello\"}\n\
                  {\"instruction\": \"Say hi\", \"input\": null, \"output\": \"hi\"}\n\
                  {\"question\": \"2+2?\", \"answer\": \"4\"}\n";
    let e = parse(alpaca.as_bytes(), FileKind::Jsonl, &cfg()).unwrap_err();
    assert_eq!(
        e,
        IngestError::Jsonl { line: 1, msg: "no field \"text\" or \"prompt\" + \"completion\" in the object".into() }
    );
    let mut c = cfg();
    c.jsonl = JsonlFields::default().with_common_aliases();
    let rows = parse(alpaca.as_bytes(), FileKind::Jsonl, &c).unwrap();
    assert_eq!(
        rows,
        [
            Row::PromptCompletion { prompt: "Translate\n\nbonjour".into(), completion: "hello".into() },
            Row::PromptCompletion { prompt: "Say hi".into(), completion: "hi".into() },
            Row::PromptCompletion { prompt: "2+2?".into(), completion: "4".into() },
        ]
    );
}

#[test]
fn jsonl_errors_name_the_line() {
    let parse_err = |s: &str| parse(s.as_bytes(), FileKind::Jsonl, &cfg()).unwrap_err();
    assert_eq!(
        parse_err("{\"text\": \"ok\"}\n\n{\"prompt\": \"no answer\"}\n"),
        IngestError::Jsonl { line: 3, msg: "field \"completion\" is missing (the object has \"prompt\")".into() }
    );
    let e = parse_err("{\"text\": \"ok\"}\n{\"text\": \"unterminated}\n");
    assert!(matches!(&e, IngestError::Jsonl { line: 2, msg } if msg.starts_with("invalid JSON")), "{e}");
    assert!(e.to_string().starts_with("line 2: invalid JSON"));
    assert_eq!(parse_err("[1, 2]"), IngestError::Jsonl { line: 1, msg: "not a JSON object".into() });
    assert_eq!(
        parse_err("{\"text\": 5}"),
        IngestError::Jsonl { line: 1, msg: "field \"text\" is not a string".into() }
    );
}

#[test]
fn csv_with_header_and_quoted_fields() {
    let file = "id,Text,extra\n\
                1,\"Hello, world\",x\n\
                2,\"She said \"\"hi\"\"\nthen left.\",y\n\
                3,plain,z\n\
                4,,w\n";
    let rows = parse(file.as_bytes(), FileKind::Csv, &cfg()).unwrap();
    assert_eq!(rows, [text("Hello, world"), text("She said \"hi\"\nthen left."), text("plain")]);

    let pairs = "prompt;completion\n\"What is 2+2?\";4\n";
    let mut c = cfg();
    c.csv.delimiter = b';';
    assert_eq!(
        parse(pairs.as_bytes(), FileKind::Csv, &c).unwrap(),
        [Row::PromptCompletion { prompt: "What is 2+2?".into(), completion: "4".into() }]
    );
}

#[test]
fn csv_errors_name_the_record() {
    let e = parse(b"a,b\n1,2\n", FileKind::Csv, &cfg()).unwrap_err();
    assert_eq!(
        e,
        IngestError::CsvHeader { msg: "no column \"text\" or \"prompt\" + \"completion\" (columns: a, b)".into() }
    );
    let e = parse(b"text,b\nfine,1\nshort\n", FileKind::Csv, &cfg()).unwrap_err();
    assert_eq!(e, IngestError::Csv { record: 2, line: 3, msg: "1 fields where the header has 2".into() });
    assert_eq!(e.to_string(), "CSV record 2 (line 3): 1 fields where the header has 2");
}

// ---------------------------------------------------------------------------------------------
// Duplicates.

fn index_of(rows: &[(u64, u32, &Row)]) -> DedupIndex {
    let mut idx = DedupIndex::new(&NearDupConfig::default());
    for (c, i, r) in rows {
        idx.insert(RowRef { contribution: *c, index: *i }, r);
    }
    idx
}

#[test]
fn exact_duplicates_against_the_index_and_within_the_file() {
    let held = text(GOOD);
    let idx = index_of(&[(7, 3, &held)]);
    let other = paragraphs(1, 2, 60);
    let rows = vec![text(&other[0]), text(GOOD), text(&other[1]), text(&other[0])];
    let a = analyze(&rows, &idx, &cfg());
    assert_eq!(a.exact_duplicates, 2);
    assert_eq!(a.near_duplicates, 0);
    assert_eq!(a.rows[1].duplicate_of, Some((RowRef { contribution: 7, index: 3 }, DupKind::Exact)));
    assert_eq!(a.rows[1].reasons, ["exact duplicate of row 7:3"]);
    assert_eq!(a.rows[3].duplicate_of, Some((RowRef { contribution: PENDING_CONTRIBUTION, index: 0 }, DupKind::Exact)));
    assert_eq!(a.rows[3].reasons, ["exact duplicate of row 0 of this file"]);
    assert!(a.rows[0].kept() && a.rows[2].kept() && !a.rows[1].kept());
    assert_eq!(a.kept_rows, 2);
    // Same content after normalisation is the same leaf.
    let parsed = parse(format!("{GOOD}   \r\n").as_bytes(), FileKind::Txt, &cfg()).unwrap();
    assert_eq!(analyze(&parsed, &idx, &cfg()).exact_duplicates, 1);
}

#[test]
fn lightly_edited_paragraph_is_a_near_duplicate() {
    let idx = index_of(&[(2, 0, &text(GOOD))]);
    let a = analyze(&[text(GOOD_EDITED)], &idx, &cfg());
    assert_eq!(a.near_duplicates, 1, "{:?}", a.rows[0]);
    let (r, kind) = a.rows[0].duplicate_of.unwrap();
    assert_eq!(r, RowRef { contribution: 2, index: 0 });
    let DupKind::Near { equal, of } = kind else { panic!() };
    assert_eq!(of, 128);
    assert!(equal >= 90);
    let reason = a.rows[0].reasons.last().unwrap();
    assert!(reason.starts_with("near duplicate of row 2:0 (Jaccard ≈ 0."), "{reason}");
    assert!(reason.ends_with(&format!("{equal} of 128 MinHash values equal)")), "{reason}");
    assert_eq!(a.quality_bps, 0);

    // Within the file too, and case/punctuation changes are caught as well.
    let shouted = GOOD.replace(',', "").replace("The ", "the ");
    let empty = DedupIndex::new(&NearDupConfig::default());
    let a = analyze(&[text(GOOD), text(GOOD_EDITED), text(&shouted)], &empty, &cfg());
    assert_eq!(a.near_duplicates, 2);
    assert_eq!(a.rows[1].duplicate_of.unwrap().0, RowRef { contribution: PENDING_CONTRIBUTION, index: 0 });
    assert_eq!(
        a.rows[2].duplicate_of,
        Some((RowRef { contribution: PENDING_CONTRIBUTION, index: 0 }, DupKind::Near { equal: 128, of: 128 }))
    );
    assert_eq!(a.quality_bps, 10_000);
}

/// Replace `n` distinct words of `p` (spread over the paragraph) with words not in the vocabulary.
fn edit_words(p: &str, n: usize, g: &mut Gen) -> String {
    let mut words: Vec<String> = p.split(' ').map(str::to_string).collect();
    let span = words.len() / n;
    for k in 0..n {
        let i = k * span + (g.next() % span as u64) as usize;
        words[i] = format!("zebra{k}");
    }
    words.join(" ")
}

#[test]
fn edited_generated_paragraphs_are_found() {
    let originals = paragraphs(11, 50, 90);
    let mut idx = DedupIndex::new(&NearDupConfig::default());
    for (i, p) in originals.iter().enumerate() {
        idx.insert(RowRef { contribution: 100, index: i as u32 }, &text(p));
    }
    let mut g = Gen(12);
    let edited: Vec<Row> = originals.iter().map(|p| text(&edit_words(p, 3, &mut g))).collect();
    let a = analyze(&edited, &idx, &cfg());
    let mut equal: Vec<u32> = a
        .rows
        .iter()
        .map(|f| match f.duplicate_of {
            Some((_, DupKind::Near { equal, .. })) => equal,
            _ => 0,
        })
        .collect();
    for (i, f) in a.rows.iter().enumerate() {
        if let Some((r, _)) = f.duplicate_of {
            assert_eq!(r, RowRef { contribution: 100, index: i as u32 }, "matched the wrong row");
        }
    }
    equal.sort_unstable();
    eprintln!("equal values of 3-word edits of 90-word paragraphs: {equal:?}");
    assert_eq!(a.near_duplicates, 50, "{equal:?}");
}

#[test]
fn unrelated_paragraphs_are_not_near_duplicates() {
    let held = paragraphs(1000, 200, 60);
    let mut idx = DedupIndex::new(&NearDupConfig::default());
    for (i, p) in held.iter().enumerate() {
        idx.insert(RowRef { contribution: 1, index: i as u32 }, &text(p));
    }
    let new: Vec<Row> = paragraphs(2000, 200, 60).iter().map(|p| text(p)).collect();
    let a = analyze(&new, &idx, &cfg());
    assert_eq!(a.near_duplicates + a.exact_duplicates, 0);
    // Within one file.
    let empty = DedupIndex::new(&NearDupConfig::default());
    let a = analyze(&new, &empty, &cfg());
    assert_eq!(a.near_duplicates + a.exact_duplicates, 0);
    // Hand-written prose against the generated paragraphs.
    let a = analyze(&[text(GOOD)], &idx, &cfg());
    assert_eq!(a.near_duplicates, 0);
    // Short rows (character shingles) that share a template are not near duplicates either.
    let qa: Vec<Row> = ["France", "Spain", "Peru", "Japan", "Kenya", "Chile"]
        .iter()
        .map(|c| Row::PromptCompletion {
            prompt: format!("What is the capital of {c}?"),
            completion: format!("The capital of {c}."),
        })
        .collect();
    let a = analyze(&qa, &empty, &cfg());
    assert_eq!(a.near_duplicates, 0);
}

// ---------------------------------------------------------------------------------------------
// Scores.

#[test]
fn scores_are_ordered_sensibly() {
    let empty = DedupIndex::new(&NearDupConfig::default());
    let rows = [
        text(GOOD),
        text(&"buy now ".repeat(30)),
        text("%%% ### @@@ !!! 123 456 $$$ ^^^ &&& *** ((( ))) <<< >>> ??? ///"),
        text("Too short."),
        text("THE LIGHTHOUSE KEEPER KEPT A CAREFUL LOG OF EVERY SHIP THAT PASSED THE POINT."),
    ];
    let a = analyze(&rows, &empty, &cfg());
    let s: Vec<u16> = a.rows.iter().map(|f| f.score_bps).collect();
    assert_eq!(s[0], 10_000, "{:?}", a.rows[0].reasons);
    assert!(s[0] > s[1] && s[0] > s[2] && s[0] > s[3] && s[0] > s[4], "{s:?}");
    assert!(s[4] > s[1] && s[4] > s[2] && s[4] > s[3], "all caps is milder than spam: {s:?}");
    assert_eq!(a.rows[3].reasons, ["too short (10 chars < 20)"]);
    assert!(a.rows[1].reasons.iter().any(|r| r.starts_with("repetition:")), "{:?}", a.rows[1].reasons);
    assert!(a.rows[2].reasons[0].starts_with("mostly symbols/digits"), "{:?}", a.rows[2].reasons);
    assert_eq!(a.quality_bps as u32, s.iter().map(|&x| x as u32).sum::<u32>() / 5);
    assert_eq!(a.scorer_version, SCORER_VERSION);
}

// ---------------------------------------------------------------------------------------------
// Index format, roots, determinism.

#[test]
fn index_round_trips_through_bytes() {
    let ps = paragraphs(5, 30, 40);
    let mut idx = DedupIndex::new(&NearDupConfig::default());
    for (i, p) in ps.iter().enumerate() {
        idx.insert(RowRef { contribution: 9, index: i as u32 }, &text(p));
    }
    idx.insert(RowRef { contribution: 10, index: 0 }, &text(&ps[0])); // an exact duplicate
    idx.insert(RowRef { contribution: 10, index: 1 }, &text("?!")); // no signature
    idx.insert(
        RowRef { contribution: 10, index: 2 },
        &Row::PromptCompletion { prompt: "Q".into(), completion: "A".into() },
    );
    let bytes = idx.to_bytes();
    let back = DedupIndex::from_bytes(&bytes).unwrap();
    assert_eq!(back.len(), 33);
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!(back.config(), idx.config());
    let probe: Vec<Row> = vec![text(&ps[3]), text(&edit_words(&ps[4], 1, &mut Gen(3))), text(GOOD)];
    assert_eq!(analyze(&probe, &back, &cfg()), analyze(&probe, &idx, &cfg()));
    assert_eq!(back.find_exact(&text(&ps[0]).leaf()), Some(RowRef { contribution: 9, index: 0 }));

    // Corruption, truncation and a wrong magic are refused.
    let mut bad = bytes.clone();
    bad[60] ^= 1;
    assert_eq!(DedupIndex::from_bytes(&bad).unwrap_err(), IngestError::Index("checksum mismatch".into()));
    assert!(DedupIndex::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(DedupIndex::from_bytes(&[]).is_err());
    assert_eq!(&bytes[..4], b"OLDI");
    // The empty index too.
    let e = DedupIndex::new(&NearDupConfig::default());
    assert_eq!(DedupIndex::from_bytes(&e.to_bytes()).unwrap().len(), 0);
}

#[test]
fn analysis_is_deterministic_and_commits_to_the_rows() {
    let ps = paragraphs(77, 40, 30);
    let mut rows: Vec<Row> = ps.iter().map(|p| text(p)).collect();
    rows.push(rows[3].clone());
    rows.push(Row::PromptCompletion { prompt: "What is the capital of France?".into(), completion: "Paris".into() });
    let idx = index_of(&[(1, 0, &rows[5]), (1, 1, &text(GOOD))]);
    let a = analyze(&rows, &idx, &cfg());
    let b = analyze(&rows, &idx.clone(), &cfg());
    assert_eq!(a, b);
    let leaves: Vec<_> = rows.iter().map(Row::leaf).collect();
    assert_eq!(a.rows_root, primitives::rows::rows_root(&leaves));
    assert_eq!(a.rows.iter().map(|f| f.leaf).collect::<Vec<_>>(), leaves);
    assert_eq!(a.config_digest, config_digest(&cfg(), &NearDupConfig::default()));
    let mut c = cfg();
    c.scorer.caps_pct = 80;
    assert_ne!(analyze(&rows, &idx, &c).config_digest, a.config_digest);
}

#[test]
fn ingest_file_sets_the_content_hash() {
    let file = format!("{GOOD}\n\n{GOOD_EDITED}\n");
    let idx = DedupIndex::new(&NearDupConfig::default());
    let (rows, a) = ingest_file(file.as_bytes(), FileKind::Txt, &idx, &cfg()).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(a.content_hash, content_hash(file.as_bytes()));
    assert_eq!(a.content_hash, primitives::content_hash(file.as_bytes()));
    assert_eq!(a.near_duplicates, 1);
}

// ---------------------------------------------------------------------------------------------
// Throughput (release): `cargo test -p ingest --release -- --ignored --nocapture throughput`.

#[test]
#[ignore]
fn throughput() {
    use std::time::Instant;
    let rss_mb = || {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096 / 1_000_000
    };
    let held = paragraphs(1, 100_000, 80);
    let rss_start = rss_mb();
    let t = Instant::now();
    let mut idx = DedupIndex::new(&NearDupConfig::default());
    for (i, p) in held.iter().enumerate() {
        idx.insert(RowRef { contribution: (i / 1000) as u64, index: (i % 1000) as u32 }, &text(p));
    }
    let build = t.elapsed();
    let rss_index = rss_mb() - rss_start;
    let bytes = idx.to_bytes();
    let t = Instant::now();
    let back = DedupIndex::from_bytes(&bytes).unwrap();
    let load = t.elapsed();
    assert_eq!(back.len(), 100_000);

    let mut g = Gen(99);
    let mut rows: Vec<Row> = paragraphs(2, 10_000, 80).iter().map(|p| text(p)).collect();
    for i in (0..10_000).step_by(10) {
        rows[i] = text(&edit_words(&held[i * 7], 3, &mut g)); // 10 % near duplicates
    }
    for i in (5..10_000).step_by(50) {
        rows[i] = text(&held[i]); // 2 % exact duplicates
    }
    let mb = rows
        .iter()
        .map(|r| match r {
            Row::Text { text } => text.len(),
            _ => 0,
        })
        .sum::<usize>() as f64
        / 1e6;
    let t = Instant::now();
    let a = analyze(&rows, &back, &cfg());
    let dt = t.elapsed().as_secs_f64();
    eprintln!(
        "index: 100000 rows built in {build:?} (RSS +{rss_index} MB), {} MB serialised, loaded in {load:?}; \
         analyze: 10000 rows, {mb:.1} MB in {dt:.2} s = {:.1} MB/s, {:.0} rows/s; exact {} near {}",
        bytes.len() / 1_000_000,
        mb / dt,
        10_000.0 / dt,
        a.exact_duplicates,
        a.near_duplicates
    );
    assert_eq!(a.exact_duplicates, 200);
    assert!(a.near_duplicates >= 990, "{}", a.near_duplicates);
}

#[test]
fn unrelated_paragraphs_are_far_below_the_threshold() {
    // Every signature value its own band and a 1 % threshold: the best match of each row is reported,
    // showing how far unrelated text is from the default 90 of 128.
    let probe = NearDupConfig { bands: 128, rows_per_band: 1, threshold_pct: 1, ..NearDupConfig::default() };
    let mut idx = DedupIndex::new(&probe);
    for (i, p) in paragraphs(1000, 200, 60).iter().enumerate() {
        idx.insert(RowRef { contribution: 1, index: i as u32 }, &text(p));
    }
    let new: Vec<Row> = paragraphs(2000, 200, 60).iter().map(|p| text(p)).collect();
    let a = analyze(&new, &idx, &cfg());
    let max = a
        .rows
        .iter()
        .filter_map(|f| match f.duplicate_of {
            Some((_, DupKind::Near { equal, .. })) => Some(equal),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    eprintln!("largest equal count between unrelated paragraphs: {max} of 128");
    assert!(max < 40, "{max}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Any bytes: every parser answers rows or an error, never panics, and every row it gives is
    /// normal and analysable.
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
                           mixed in "[a-z \\n\\r\\t,\"{}:#`~é\\u{301}\\u{feff}]{0,200}") {
        let idx = DedupIndex::new(&NearDupConfig::default());
        for input in [bytes.as_slice(), mixed.as_bytes()] {
            for kind in [FileKind::Txt, FileKind::Md, FileKind::Jsonl, FileKind::Csv] {
                if let Ok(rows) = parse(input, kind, &cfg()) {
                    for r in &rows {
                        let fields = match r {
                            Row::Text { text } => vec![text],
                            Row::PromptCompletion { prompt, completion } => vec![prompt, completion],
                        };
                        for f in fields {
                            proptest::prop_assert_eq!(&normalize(f), f);
                        }
                    }
                    let a = analyze(&rows, &idx, &cfg());
                    proptest::prop_assert_eq!(a.rows.len(), rows.len());
                }
            }
        }
    }
}
