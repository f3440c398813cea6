//! The quality scorer (see the crate docs, "Quality score"). Integer arithmetic only.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use primitives::rows::Row;

use crate::index::FixedState;
use crate::text::{mix64, push_lower, tokens};

/// Version of the scoring rules. Bumped whenever a rule, a penalty or a default threshold changes.
pub const SCORER_VERSION: u32 = 1;

/// The full score, in basis points.
pub const FULL_SCORE: u16 = 10_000;

/// The penalty factor of the "halving" rules (encoding, control characters, character runs, all caps).
pub const HALF: u32 = 5_000;

/// Characters whose long runs are normal formatting (rules, underlines, leaders), ignored by the
/// character-run rule.
pub const RUN_EXEMPT: &str = "-=_*#~.·";

/// Thresholds of the quality rules (the rules themselves are fixed by [`SCORER_VERSION`]).
/// Percentages are integers and every share is computed rounded down.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScorerConfig {
    /// Below this share of letters among visible characters a row scores 0 (default 25).
    pub min_letter_pct: u32,
    /// From this share of letters up, no penalty; in between the factor is `letter_pct * 10000 / ok_letter_pct` (default 60).
    pub ok_letter_pct: u32,
    /// Replacement or control characters at or above this share of visible characters score 0;
    /// below it, any of them halve the score (default 2).
    pub max_bad_char_pct: u32,
    /// Repeated-line rule: applies to rows with at least this many content lines (default 3)...
    pub min_lines: u32,
    /// ...and fires when at least this share of content lines repeat an earlier one (default 20).
    pub repeated_line_pct: u32,
    /// Word rules (repeated 3-grams, dominant word) apply to rows with at least this many words (default 16).
    pub min_words: u32,
    /// Fires when at least this share of word 3-grams repeat an earlier one (default 30).
    pub repeated_ngram_pct: u32,
    /// Fires when the most frequent word is at least this share of all words (default 30).
    pub top_word_pct: u32,
    /// A run of one character this long or longer halves the score (default 20).
    pub char_run: u32,
    /// All-caps rule: applies to rows with at least this many cased letters (default 20)...
    pub caps_min_letters: u32,
    /// ...and halves the score when at least this share of them are upper-case (default 70).
    pub caps_pct: u32,
}

impl Default for ScorerConfig {
    fn default() -> Self {
        ScorerConfig {
            min_letter_pct: 25,
            ok_letter_pct: 60,
            max_bad_char_pct: 2,
            min_lines: 3,
            repeated_line_pct: 20,
            min_words: 16,
            repeated_ngram_pct: 30,
            top_word_pct: 30,
            char_run: 20,
            caps_min_letters: 20,
            caps_pct: 70,
        }
    }
}

impl ScorerConfig {
    pub(crate) fn fields(&self) -> [u32; 11] {
        [
            self.min_letter_pct,
            self.ok_letter_pct,
            self.max_bad_char_pct,
            self.min_lines,
            self.repeated_line_pct,
            self.min_words,
            self.repeated_ngram_pct,
            self.top_word_pct,
            self.char_run,
            self.caps_min_letters,
            self.caps_pct,
        ]
    }
}

/// `part * 100 / whole`, rounded down (0 for an empty whole).
fn pct(part: usize, whole: usize) -> u32 {
    if whole == 0 { 0 } else { (part as u64 * 100 / whole as u64) as u32 }
}

struct Scored {
    score: u32,
    reasons: Vec<String>,
}

impl Scored {
    fn apply(&mut self, factor: u32, reason: String) {
        self.score = self.score * factor.min(10_000) / 10_000;
        self.reasons.push(reason);
    }
}

/// Score one row: `(score_bps, reasons)`, the reasons in rule order, one per rule that lowered the score.
pub(crate) fn score_row(row: &Row, min_chars: usize, max_chars: usize, cfg: &ScorerConfig) -> (u16, Vec<String>) {
    let mut s = Scored { score: u32::from(FULL_SCORE), reasons: Vec::new() };
    let (text, chars) = s.rule_empty(row);
    let text = text.as_ref();
    // Rule 2: length.
    if chars < min_chars {
        s.apply(0, format!("too short ({chars} chars < {min_chars})"));
    } else if chars > max_chars {
        s.apply(0, format!("too long ({chars} chars > {max_chars})"));
    }
    let c = CharStats::of(text);
    s.rules_characters(&c, text.is_empty(), cfg);
    s.rule_repeated_lines(text, cfg);
    s.rules_words(text, cfg);
    // Rule 9: a long run of one character.
    if c.best_run.1 >= cfg.char_run as usize {
        s.apply(HALF, format!("repetition: {:?} repeated {} times in a row", c.best_run.0, c.best_run.1));
    }
    // Rule 10: all caps.
    let cased = c.upper + c.lower;
    if cased >= cfg.caps_min_letters as usize {
        let p = pct(c.upper, cased);
        if p >= cfg.caps_pct {
            s.apply(HALF, format!("all caps: {p}% of letters upper-case"));
        }
    }
    (s.score as u16, s.reasons)
}

/// What the rules count in one pass over a row's characters.
struct CharStats {
    /// Non-whitespace characters.
    visible: usize,
    letters: usize,
    upper: usize,
    lower: usize,
    /// U+FFFD replacement characters.
    fffd: usize,
    controls: usize,
    first_control: Option<char>,
    /// "Ã" or "Â" followed by U+0080..U+00BF: UTF-8 decoded as Latin-1.
    mojibake: usize,
    /// The longest run of one character that is neither whitespace nor [`RUN_EXEMPT`].
    best_run: (char, usize),
}

impl CharStats {
    fn of(text: &str) -> CharStats {
        let (mut visible, mut letters, mut upper, mut lower) = (0usize, 0usize, 0usize, 0usize);
        let (mut fffd, mut controls, mut mojibake) = (0usize, 0usize, 0usize);
        let mut first_control: Option<char> = None;
        let (mut run_char, mut run_len, mut best_run) = ('\0', 0usize, (' ', 0usize));
        let mut prev = '\0';
        for c in text.chars() {
            if c == run_char {
                run_len += 1;
            } else {
                run_char = c;
                run_len = 1;
            }
            if run_len > best_run.1 && !c.is_whitespace() && !RUN_EXEMPT.contains(c) {
                best_run = (c, run_len);
            }
            if (prev == 'Ã' || prev == 'Â') && ('\u{80}'..='\u{bf}').contains(&c) {
                mojibake += 1;
            }
            prev = c;
            if c.is_whitespace() {
                continue;
            }
            visible += 1;
            if c.is_alphabetic() {
                letters += 1;
                if c.is_uppercase() {
                    upper += 1;
                } else if c.is_lowercase() {
                    lower += 1;
                }
            } else if c == '\u{fffd}' {
                fffd += 1;
            } else if c.is_control() {
                controls += 1;
                first_control.get_or_insert(c);
            }
        }
        CharStats { visible, letters, upper, lower, fffd, controls, first_control, mojibake, best_run }
    }
}

impl Scored {
    /// Rule 1: empty rows and pairs. Returns the text the other rules read (a
    /// pair's prompt and completion on two lines) and its length in characters.
    fn rule_empty<'r>(&mut self, row: &'r Row) -> (Cow<'r, str>, usize) {
        match row {
            Row::Text { text } => {
                if text.is_empty() {
                    self.apply(0, "empty".into());
                }
                (Cow::Borrowed(text.as_str()), text.chars().count())
            }
            Row::PromptCompletion { prompt, completion } => {
                if prompt.trim().is_empty() {
                    self.apply(0, "empty prompt".into());
                }
                if completion.trim().is_empty() {
                    self.apply(0, "empty completion".into());
                } else if prompt.trim().to_lowercase() == completion.trim().to_lowercase() {
                    self.apply(0, "prompt and completion are identical".into());
                }
                (Cow::Owned(format!("{prompt}\n{completion}")), prompt.chars().count() + completion.chars().count())
            }
        }
    }

    /// Rules 3–5: encoding, control characters, letters among visible characters.
    fn rules_characters(&mut self, c: &CharStats, empty: bool, cfg: &ScorerConfig) {
        // Rule 3: encoding.
        if c.fffd > 0 {
            let p = pct(c.fffd, c.visible);
            let f = if p >= cfg.max_bad_char_pct { 0 } else { HALF };
            self.apply(f, format!("encoding: {} replacement characters (U+FFFD), {p}% of visible characters", c.fffd));
        }
        if c.mojibake > 0 {
            self.apply(
                HALF,
                format!("encoding: {} mojibake sequences (UTF-8 decoded as Latin-1, like \"Ã©\")", c.mojibake),
            );
        }
        // Rule 4: control characters (C0 is refused by parse; this catches C1, DEL and rows built elsewhere).
        if c.controls > 0 {
            let p = pct(c.controls, c.visible);
            let f = if p >= cfg.max_bad_char_pct { 0 } else { HALF };
            let first = c.first_control.unwrap_or('\0') as u32;
            self.apply(
                f,
                format!("control characters: {} (first U+{first:04X}), {p}% of visible characters", c.controls),
            );
        }
        // Rule 5: letters among visible characters.
        if c.visible == 0 {
            if !empty {
                self.apply(0, "no visible characters".into());
            }
        } else {
            let lp = pct(c.letters, c.visible);
            if lp < cfg.min_letter_pct {
                self.apply(0, format!("mostly symbols/digits: {lp}% letters (< {}%)", cfg.min_letter_pct));
            } else if lp < cfg.ok_letter_pct {
                self.apply(
                    lp * 10_000 / cfg.ok_letter_pct,
                    format!("symbols/digits: {lp}% letters (< {}%)", cfg.ok_letter_pct),
                );
            }
        }
    }

    /// Rule 6: repeated lines (content lines: at least 3 letters or digits).
    fn rule_repeated_lines(&mut self, text: &str, cfg: &ScorerConfig) {
        let mut seen: HashSet<&str, FixedState> = HashSet::default();
        let (mut lines, mut repeated) = (0usize, 0usize);
        for line in text.lines() {
            let l = line.trim();
            if l.chars().filter(|c| c.is_alphanumeric()).take(3).count() < 3 {
                continue;
            }
            lines += 1;
            if !seen.insert(l) {
                repeated += 1;
            }
        }
        if lines >= cfg.min_lines as usize {
            let p = pct(repeated, lines);
            if p >= cfg.repeated_line_pct {
                self.apply((100 - p) * 100, format!("repetition: {p}% of lines repeated"));
            }
        }
    }

    /// Rules 7–8: repeated word 3-grams and a dominant word.
    fn rules_words(&mut self, text: &str, cfg: &ScorerConfig) {
        let toks = tokens(text);
        if toks.len() < cfg.min_words as usize || toks.len() < 3 {
            return;
        }
        let mut grams: HashSet<u64, FixedState> = HashSet::default();
        let mut rep = 0usize;
        for w in toks.windows(3) {
            if !grams.insert(mix64(mix64(w[0].hash ^ 3) ^ w[1].hash) ^ w[2].hash) {
                rep += 1;
            }
        }
        let p = pct(rep, toks.len() - 2);
        if p >= cfg.repeated_ngram_pct {
            self.apply((100 - p) * 100, format!("repetition: {p}% of word 3-grams repeated"));
        }
        // (count, first position) per word; the winner is the highest count, then the earliest word.
        let mut counts: HashMap<u64, (u32, u32), FixedState> = HashMap::default();
        for (i, t) in toks.iter().enumerate() {
            counts.entry(t.hash).or_insert((0, i as u32)).0 += 1;
        }
        let (count, first) = counts.values().fold((0u32, u32::MAX), |best, &(c, f)| {
            if c > best.0 || (c == best.0 && f < best.1) { (c, f) } else { best }
        });
        let p = pct(count as usize, toks.len());
        if p >= cfg.top_word_pct {
            let t = toks[first as usize];
            let mut w = String::new();
            for c in text[t.start as usize..t.end as usize].chars() {
                push_lower(&mut w, c);
            }
            self.apply((100 - p) * 100, format!("repetition: {w:?} is {p}% of words"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(text: &str) -> (u16, Vec<String>) {
        score_row(&Row::Text { text: text.into() }, 20, 20_000, &ScorerConfig::default())
    }

    #[test]
    fn clean_prose_scores_full() {
        let (s, r) = score(
            "The river rose slowly through the night, and by morning the lower fields were under water. \
             Farmers moved their animals to the ridge and waited for the rain to stop.",
        );
        assert_eq!((s, r), (10_000, vec![]));
    }

    #[test]
    fn each_rule_reports_itself() {
        assert_eq!(score("Too short.").1, ["too short (10 chars < 20)"]);
        let (s, r) = score("buy buy buy buy buy buy buy buy buy buy buy buy buy buy buy buy buy buy buy buy");
        assert_eq!(s, 0);
        assert!(r.iter().any(|x| x.starts_with("repetition: 94% of word 3-grams")), "{r:?}");
        assert!(r.iter().any(|x| x == "repetition: \"buy\" is 100% of words"), "{r:?}");
        let (s, r) = score("#$%^&*()!@ 1234567890 {}[]<>?/|\\ ~~~ +++ === 42 42 42");
        assert_eq!(s, 0);
        assert!(r[0].starts_with("mostly symbols/digits: 0% letters"), "{r:?}");
        let (s, r) = score("THIS IS A MESSAGE WRITTEN ENTIRELY IN CAPITAL LETTERS FOR EMPHASIS");
        assert_eq!((s, r), (5_000, vec!["all caps: 100% of letters upper-case".to_string()]));
        let (s, r) =
            score("A perfectly fine sentence except for \u{fffd} one bad character in it, which is rare enough.");
        assert_eq!(s, 5_000);
        assert!(r[0].starts_with("encoding: 1 replacement characters"), "{r:?}");
        let (_, r) = score("Caf\u{c3}\u{a9} au lait is served here every morning at eight o'clock sharp.");
        assert!(r[0].starts_with("encoding: 1 mojibake"), "{r:?}");
        let (s, r) = score("Wait for it aaaaaaaaaaaaaaaaaaaaaaaaa and then some more normal words follow.");
        assert_eq!((s, r), (5_000, vec!["repetition: 'a' repeated 25 times in a row".to_string()]));
        // Markdown rules are exempt.
        let ruled =
            "A heading worth keeping, then a long paragraph of ordinary text that goes on.\n-------------------------";
        assert_eq!(score(ruled).0, 10_000);
        let (s, r) = score("first line of text\nsecond line here\nfirst line of text\nfirst line of text");
        assert_eq!(r, ["repetition: 50% of lines repeated"]);
        assert_eq!(s, 5_000);
    }

    #[test]
    fn pairs() {
        let pc = |p: &str, c: &str| {
            score_row(
                &Row::PromptCompletion { prompt: p.into(), completion: c.into() },
                20,
                20_000,
                &ScorerConfig::default(),
            )
        };
        assert_eq!(pc("What is the capital of France?", "Paris").0, 10_000);
        assert_eq!(pc("", "A completion with no question at all").1, ["empty prompt"]);
        assert_eq!(pc("A question with no answer given?", " ").1, ["empty completion"]);
        assert_eq!(pc("Same text on both sides", "same text on both sides").1, ["prompt and completion are identical"]);
    }
}
