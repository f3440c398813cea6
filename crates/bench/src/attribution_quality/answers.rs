//! `bench attribution-quality --answers`: the fine-tuned model answers each
//! fact's two questions, and each answer is attributed as a node attributes it.
//!
//! The prompt is the question tokenized exactly as the fine-tune tokenized the
//! fact's `{prompt, completion}` rows ([`factory::data::tokenize_row`]: the
//! model's chat template with the generation prompt when it has one, else the
//! question and a newline). The answer is greedy ([`ml::generate`] with the
//! fine-tuned adapter, up to `--max-new-tokens`, ending at an end-of-sequence
//! token); its tokens are the record's response tokens and its decoding the
//! record's text, one record per answer at the governed defaults.
//!
//! **Contains the fact**: the answer names, as whole words (case-insensitive),
//! at least two of the fact's slot values that neither question gives (its
//! colour, object, material or number: every frame has two or more). Both
//! questions name the person and the place, so an answer that only echoes the
//! question does not count; a wrong value drawn at random matches one of these
//! pools of 10–12 words about one time in ten, two of them about one in a hundred.
//! **Verbatim** answers share a run of at least `attribution.min_span_tokens`
//! tokens with the fact's text (the rows that carry it); the others that contain
//! the fact are **paraphrased**. Precision@1 and the shares are over answers
//! that contain the fact, per class; recall is over the questions asked, per
//! kind of question.

use std::collections::HashSet;
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use primitives::rows::Row;
use serde_json::{Value, json};

use super::{Attributor, Fact, Tally, Workload, longest_common_run, ppm_pairs, top_credit};
use crate::stats::{median, percentile};

/// The two questions of every fact: the one trained on, and its rewording.
const QUESTION_KINDS: [&str; 2] = ["verbatim", "paraphrased"];

/// The parts of a record the table shows: key and label.
const PARTS: [(&str, &str); 3] = [
    ("final", "final credits (governed span weight)"),
    ("span", "span part alone"),
    ("gradient", "gradient part alone"),
];

/// One generated answer and its record.
pub(super) struct Answer {
    fact: usize,
    question_kind: &'static str,
    text: String,
    tokens: Vec<u32>,
    /// Longest run of tokens shared with the fact's text.
    fact_run: usize,
    contains_fact: bool,
    /// `verbatim` or `paraphrased`: answers that contain the fact only.
    class: Option<&'static str>,
    /// Credits of each of [`PARTS`].
    parts: [Vec<(u64, u32)>; 3],
    /// Wall time of the whole record and of the span part alone; `None` for an empty answer.
    record_s: Option<f64>,
    span_s: Option<f64>,
}

/// The words of `text`, lowercased.
fn words(text: &str) -> HashSet<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Whether `answer` states `fact` (see the module docs).
pub(super) fn contains_fact(answer: &str, fact: &Fact) -> bool {
    let w = words(answer);
    let hits = fact.answer_values.iter().filter(|v| w.contains(&v.to_lowercase())).count();
    hits > 0 && hits >= fact.answer_values.len().min(2)
}

/// The prompt of `question`, tokenized as the fine-tune tokenized its rows.
fn prompt_tokens(tok: &ml::TextTokenizer, question: &str, max_len: usize) -> Result<Vec<u32>> {
    let row = Row::PromptCompletion { prompt: question.to_string(), completion: String::new() };
    let (tokens, _, prompt_len) = factory::data::tokenize_row(tok, None, &row, max_len)
        .map_err(|e| anyhow!("the prompt of {question:?}: {e}"))?;
    Ok(tokens[..prompt_len].to_vec())
}

/// Mean ppm per answer, as a fraction of the data share.
#[derive(Debug, Default, Clone)]
struct ShareTally {
    tally: Tally,
    /// ppm to contributions other than the fact's, to the generic one, to its copycat.
    others_ppm: u64,
    generic_ppm: u64,
    copycat_ppm: u64,
}

/// ppm `credits` give to contributions that `pick` selects.
fn ppm_to(credits: &[(u64, u32)], pick: impl Fn(u64) -> bool) -> u64 {
    credits.iter().filter(|c| pick(c.0)).map(|c| c.1 as u64).sum()
}

impl ShareTally {
    fn add(&mut self, credits: &[(u64, u32)], want: u64, w: &Workload) {
        self.tally.add(credits, want);
        self.others_ppm += ppm_to(credits, |c| c != want);
        self.generic_ppm += ppm_to(credits, |c| Some(c) == w.generic);
        self.copycat_ppm += ppm_to(credits, |c| Some(c) == w.copycat);
    }
    fn mean(&self, ppm: u64) -> f64 {
        if self.tally.queries == 0 { f64::NAN } else { ppm as f64 / self.tally.queries as f64 / 1e6 }
    }
    fn to_json(&self) -> Value {
        let mut v = self.tally.to_json();
        v["nonSupplierShare"] = json!(self.mean(self.others_ppm));
        v["genericShare"] = json!(self.mean(self.generic_ppm));
        v["copycatShare"] = json!(self.mean(self.copycat_ppm));
        v
    }
    fn cell(&self) -> String {
        let pct = |x: f64| if x.is_nan() { "-".to_string() } else { format!("{:.1}%", 100.0 * x) };
        format!(
            "{:>3}/{:<3} {:>6}  {:>8}  {:>8}  {:>8}",
            self.tally.hits,
            self.tally.queries,
            pct(self.tally.precision()),
            pct(self.mean(self.others_ppm)),
            pct(self.mean(self.generic_ppm)),
            pct(self.mean(self.copycat_ppm)),
        )
    }
}

impl Attributor<'_> {
    /// Ask every fact's two questions, and attribute each answer at `span_weight`.
    pub(super) fn answer_all(&self, w: &Workload, max_new_tokens: usize, span_weight: u32) -> Result<Vec<Answer>> {
        let (model, tok) = (self.model, self.tok);
        let params = ml::SamplingParams { max_tokens: max_new_tokens, ..ml::SamplingParams::default() };
        let max_len = model.config.max_position_embeddings;
        let mut out = Vec::new();
        for (fi, fact) in w.facts.iter().enumerate() {
            let fact_tokens = tok.encode(&fact.text, false).map_err(|e| anyhow!("{e}"))?;
            for (question_kind, question) in QUESTION_KINDS.into_iter().zip([&fact.question, &fact.question_paraphrase])
            {
                let prompt = prompt_tokens(tok, question, max_len)?;
                let g = ml::generate(model, tok, Some(&self.ft.adapter), &prompt, &params, |_| true)
                    .map_err(|e| anyhow!("answering {question:?}: {e}"))?;
                let fact_run = longest_common_run(&g.tokens, &fact_tokens);
                let contains = contains_fact(&g.text, fact);
                let class =
                    contains.then_some(if fact_run >= self.min_span_tokens { "verbatim" } else { "paraphrased" });
                let mut a = Answer {
                    fact: fi,
                    question_kind,
                    text: g.text,
                    tokens: g.tokens,
                    fact_run,
                    contains_fact: contains,
                    class,
                    parts: [vec![], vec![], vec![]],
                    record_s: None,
                    span_s: None,
                };
                if !a.tokens.is_empty() {
                    self.attribute(&mut a, &format!("answer to the {question_kind} question"), span_weight)?;
                }
                out.push(a);
            }
        }
        Ok(out)
    }

    /// Attribution time of answers of exactly `n_tokens` tokens: the first
    /// `count` trained questions answered with EOS off (the answers above stop
    /// at ~20 tokens, so the 64-token goal could only be extrapolated), each
    /// attributed as the node would. Returns (record seconds, span part seconds).
    pub(super) fn fixed_length_latency(
        &self,
        w: &Workload,
        n_tokens: usize,
        count: usize,
        span_weight: u32,
    ) -> Result<(Vec<f64>, Vec<f64>)> {
        let mut model = self.model.clone();
        model.config.eos_token_ids.clear();
        let mut tok = self.tok.clone();
        tok.eos_token = None;
        let params = ml::SamplingParams { max_tokens: n_tokens, ..ml::SamplingParams::default() };
        let (mut record_s, mut span_s) = (vec![], vec![]);
        for (fi, fact) in w.facts.iter().enumerate().take(count) {
            let prompt = prompt_tokens(&tok, &fact.question, model.config.max_position_embeddings)?;
            let g = ml::generate(&model, &tok, Some(&self.ft.adapter), &prompt, &params, |_| true)
                .map_err(|e| anyhow!("answering {:?}: {e}", fact.question))?;
            if g.tokens.len() != n_tokens {
                bail!("a {n_tokens}-token answer came out with {} tokens", g.tokens.len());
            }
            let mut a = Answer {
                fact: fi,
                question_kind: QUESTION_KINDS[0],
                text: g.text,
                tokens: g.tokens,
                fact_run: 0,
                contains_fact: false,
                class: None,
                parts: [vec![], vec![], vec![]],
                record_s: None,
                span_s: None,
            };
            self.attribute(&mut a, &format!("{n_tokens}-token answer"), span_weight)?;
            record_s.extend(a.record_s);
            span_s.extend(a.span_s);
        }
        Ok((record_s, span_s))
    }

    /// The record of answer `a` and the time it took; the span part alone, timed.
    fn attribute(&self, a: &mut Answer, kind: &str, span_weight: u32) -> Result<()> {
        let t = Instant::now();
        let rec = self.record(kind, a.fact, &a.text, &a.tokens, span_weight)?;
        a.record_s = Some(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let starts = attribution::word_starts(self.tok, &a.tokens);
        let span =
            attribution::trace_index(self.index, self.tok, &a.tokens, &starts, self.min_span_tokens, self.max_credits);
        a.span_s = Some(t.elapsed().as_secs_f64());
        std::hint::black_box(span);
        a.parts =
            [ppm_pairs(&rec["credits"]), ppm_pairs(&rec["span"]["credits"]), ppm_pairs(&rec["gradient"]["credits"])];
        Ok(())
    }
}

/// Per part and class of answer, the tallies.
fn tallies(answers: &[Answer], w: &Workload) -> [[ShareTally; 2]; 3] {
    let mut t: [[ShareTally; 2]; 3] = Default::default();
    for a in answers {
        let Some(ci) = a.class.map(|c| if c == "verbatim" { 0 } else { 1 }) else { continue };
        for (pi, credits) in a.parts.iter().enumerate() {
            t[pi][ci].add(credits, w.facts[a.fact].contribution, w);
        }
    }
    t
}

/// Print the answers' table and return it as JSON.
pub(super) fn report(answers: &[Answer], w: &Workload, a: &Attributor, span_weight: u32, max_new: usize) -> Value {
    let t = tallies(answers, w);
    let chat = a.tok.chat_template.is_some();
    println!(
        "\ngenerated answers: greedy, ≤ {max_new} new tokens, the fine-tuned adapter; prompt = the question as trained ({}); one record per answer at span weight {span_weight}, min span {}, max credits {}",
        if chat { "the model's chat template" } else { "no chat template: the question and a newline" },
        a.min_span_tokens,
        a.max_credits
    );
    let mut recall = serde_json::Map::new();
    let mut recall_line = Vec::new();
    for kind in QUESTION_KINDS {
        let asked = answers.iter().filter(|x| x.question_kind == kind).count();
        let hit = answers.iter().filter(|x| x.question_kind == kind && x.contains_fact).count();
        let r = if asked == 0 { f64::NAN } else { hit as f64 / asked as f64 };
        recall_line.push(format!("{kind} questions {hit}/{asked} ({:.1}%)", 100.0 * r));
        recall.insert(kind.to_string(), json!({"asked": asked, "containFact": hit, "recall": r}));
    }
    println!("  recall (the answer names ≥ 2 of the values the question does not give): {}", recall_line.join(", "));
    let count = |c: Option<&str>| answers.iter().filter(|x| x.class == c).count();
    let (verbatim, paraphrased, without) = (count(Some("verbatim")), count(Some("paraphrased")), count(None));
    println!(
        "  answers with the fact: {verbatim} verbatim (≥ {} tokens in a row from the fact), {paraphrased} paraphrased; {without} without it",
        a.min_span_tokens
    );
    println!(
        "  {:<38} {:<12} {:<14}  {:>8}  {:>8}  {:>8}",
        "part (shares: mean % of the data share)", "answers", "precision@1", "others", "generic", "copycat"
    );
    let mut parts = serde_json::Map::new();
    for (pi, (key, label)) in PARTS.iter().enumerate() {
        for (ci, class) in ["verbatim", "paraphrased"].iter().enumerate() {
            println!("  {label:<38} {class:<12} {}", t[pi][ci].cell());
        }
        parts.insert(
            key.to_string(),
            json!({"label": label, "verbatim": t[pi][0].to_json(), "paraphrased": t[pi][1].to_json()}),
        );
    }
    let latency = latency(answers, a);
    json!({
        "maxNewTokens": max_new, "chatTemplate": chat, "spanWeightPpm": span_weight,
        "minSpanTokens": a.min_span_tokens, "maxCredits": a.max_credits,
        "containsRule": "names >= 2 of the fact's slot values that neither question gives, as whole words",
        "recall": recall,
        "classes": {"verbatim": verbatim, "paraphrased": paraphrased, "withoutFact": without},
        "parts": parts,
        "latencyS": latency,
        "items": answers.iter().map(|x| item_json(x, w)).collect::<Vec<_>>(),
    })
}

/// Per-answer attribution time, printed and as JSON.
fn latency(answers: &[Answer], a: &Attributor) -> Value {
    let record: Vec<f64> = answers.iter().filter_map(|x| x.record_s).collect();
    let span: Vec<f64> = answers.iter().filter_map(|x| x.span_s).collect();
    let lens: Vec<f64> = answers.iter().map(|x| x.tokens.len() as f64).collect();
    let max_len = lens.iter().cloned().fold(0.0, f64::max);
    println!(
        "  attribution per answer ({} answers of {:.0} tokens median, {max_len:.0} max; {} checkpoints): record p50 {:.1} ms, p99 {:.1} ms; span part (word_starts + trace_index) p50 {:.2} ms, p99 {:.2} ms",
        record.len(),
        median(&lens),
        a.ft.grads.checkpoints.len(),
        1e3 * median(&record),
        1e3 * percentile(&record, 99.0),
        1e3 * median(&span),
        1e3 * percentile(&span, 99.0),
    );
    json!({
        "answers": record.len(), "tokensMedian": median(&lens), "tokensMax": max_len,
        "checkpoints": a.ft.grads.checkpoints.len(),
        "record": {"p50": median(&record), "p99": percentile(&record, 99.0)},
        "span": {"p50": median(&span), "p99": percentile(&span, 99.0)},
    })
}

fn item_json(x: &Answer, w: &Workload) -> Value {
    let fact = &w.facts[x.fact];
    let share = |pick: &dyn Fn(u64) -> bool| ppm_to(&x.parts[0], pick) as f64 / 1e6;
    json!({
        "fact": x.fact, "contribution": fact.contribution, "questionKind": x.question_kind,
        "question": if x.question_kind == "verbatim" { &fact.question } else { &fact.question_paraphrase },
        "answer": x.text, "tokens": x.tokens.len(), "factRun": x.fact_run,
        "containsFact": x.contains_fact, "class": x.class,
        "finalTop": top_credit(&x.parts[0]), "spanTop": top_credit(&x.parts[1]), "gradientTop": top_credit(&x.parts[2]),
        "shareToFact": share(&|c| c == fact.contribution),
        "nonSupplierShare": share(&|c| c != fact.contribution),
        "genericShare": share(&|c| Some(c) == w.generic),
        "copycatShare": share(&|c| Some(c) == w.copycat),
        "recordS": x.record_s, "spanS": x.span_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(fact: usize, class: Option<&'static str>, finals: Vec<(u64, u32)>) -> Answer {
        Answer {
            fact,
            question_kind: "verbatim",
            text: String::new(),
            tokens: vec![1, 2],
            fact_run: 0,
            contains_fact: class.is_some(),
            class,
            parts: [finals, vec![], vec![]],
            record_s: Some(0.0),
            span_s: Some(0.0),
        }
    }

    #[test]
    fn shares_to_non_suppliers_the_generic_contributor_and_its_copycat() {
        let o = super::super::AttributionQualityOpts {
            answers: true,
            contributors: 2,
            facts: 1,
            ..super::super::AttributionQualityOpts::default()
        };
        let w = super::super::workload(&o);
        let (g, c) = (w.generic.unwrap(), w.copycat.unwrap());
        let (f0, f1) = (w.facts[0].contribution, w.facts[1].contribution);
        let answers = [
            answer(0, Some("verbatim"), vec![(f0, 600_000), (g, 300_000), (c, 100_000)]),
            answer(1, Some("verbatim"), vec![(f0, 500_000), (f1, 400_000), (g, 100_000)]),
            answer(1, Some("paraphrased"), vec![]),
            answer(0, None, vec![(g, 1_000_000)]),
        ];
        let t = tallies(&answers, &w);
        let v = &t[0][0];
        assert_eq!((v.tally.hits, v.tally.queries), (1, 2), "the second answer's top credit is not its fact's");
        assert!((v.mean(v.others_ppm) - (0.4 + 0.6) / 2.0).abs() < 1e-12);
        assert!((v.mean(v.generic_ppm) - 0.2).abs() < 1e-12);
        assert!((v.mean(v.copycat_ppm) - 0.05).abs() < 1e-12);
        let p = &t[0][1];
        assert_eq!((p.tally.hits, p.tally.queries, p.tally.empty), (0, 1, 1));
        assert_eq!(p.mean(p.others_ppm), 0.0, "no credit is no credit to others");
        assert_eq!(t[1][0].tally.queries, 2, "every part counts the same answers");
        let j = t[0][0].to_json();
        assert_eq!(j["queries"], 2);
        assert!((j["genericShare"].as_f64().unwrap() - 0.2).abs() < 1e-12);
    }
}
