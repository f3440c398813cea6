//! Generated contribution files: honest text whose defects grow as its
//! author's quality falls, spam, and copies of rows already in a Datanet. The
//! simulator never assumes an outcome: these files go through the real ingest,
//! whose scores and duplicate findings decide what curators see.

use crate::rng::Rng;

const SYLLABLES: [&str; 24] = [
    "ka", "lo", "mi", "ren", "tu", "sa", "vel", "dor", "an", "is", "po", "ri", "ne", "ul", "ta", "mo", "gri", "fen",
    "bal", "cho", "ex", "li", "sun", "qua",
];

fn word(r: &mut Rng) -> String {
    let n = r.range(1, 3);
    (0..n).map(|_| SYLLABLES[r.below(SYLLABLES.len() as u64) as usize]).collect()
}

/// One sentence of 6 to 14 words, capitalised, ending with a period.
fn sentence(r: &mut Rng) -> String {
    let n = r.range(6, 14);
    let mut s: Vec<String> = (0..n).map(|_| word(r)).collect();
    if let Some(first) = s.first_mut() {
        let mut c = first.chars();
        if let Some(h) = c.next() {
            *first = h.to_uppercase().chain(c).collect();
        }
    }
    format!("{}.", s.join(" "))
}

/// One clean paragraph of 4 to 7 sentences on one line.
fn paragraph(r: &mut Rng) -> String {
    let n = r.range(4, 7);
    (0..n).map(|_| sentence(r)).collect::<Vec<_>>().join(" ")
}

/// A row by an author of quality `quality_bps`: clean, or (with probability
/// falling with quality) one of the defects the scorer looks for.
pub fn honest_row(r: &mut Rng, quality_bps: u32) -> String {
    let p = paragraph(r);
    if r.chance(quality_bps) {
        return p;
    }
    match r.below(5) {
        0 => p.to_uppercase(),
        1 => {
            let s = sentence(r);
            format!("{s}\n{s}\n{s}\n{p}")
        }
        2 => {
            let junk: Vec<String> = (0..40).map(|_| format!("{}#{}", r.below(1000), r.below(100))).collect();
            format!("{p} {}", junk.join(" "))
        }
        3 => "ok thanks".to_string(),
        _ => format!("{p} {}", "!".repeat(30)),
    }
}

/// A spam row: one of a few advertising templates with a random number, so
/// spam is low-scoring and near-duplicates other spam.
pub fn spam_row(r: &mut Rng) -> String {
    const T: [&str; 3] = [
        "BUY CHEAP OPEN TOKENS NOW buy buy buy click here best price buy now limited offer buy",
        "free airdrop claim free airdrop claim free airdrop claim free airdrop claim now free",
        "visit our site visit our site visit our site for the best deals visit our site today",
    ];
    let t = T[r.below(T.len() as u64) as usize];
    format!("{t} {}", r.below(1_000_000))
}

/// A copy of `row`, exact or with a couple of words changed (a near duplicate).
pub fn copy_row(r: &mut Rng, row: &str) -> String {
    if r.chance(5_000) {
        return row.to_string();
    }
    let mut words: Vec<String> = row.split(' ').map(str::to_string).collect();
    for _ in 0..2 {
        if !words.is_empty() {
            let i = r.below(words.len() as u64) as usize;
            words[i] = word(r);
        }
    }
    words.join(" ")
}

/// A `.txt` file of these rows (paragraphs separated by blank lines).
pub fn text_file(rows: &[String]) -> Vec<u8> {
    rows.join("\n\n").into_bytes()
}
