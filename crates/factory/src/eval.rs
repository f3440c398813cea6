//! Held-out evaluation: validation loss and perplexity over the held-out rows;
//! for `{prompt, completion}` rows, exact match and ROUGE-L of a greedy answer.

use ml::{LoraAdapter, Model, SamplingParams, TextTokenizer};

use crate::FactoryError;
use crate::data::TrainingRow;

/// Validation figures.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalReport {
    pub rows: usize,
    pub target_tokens: u64,
    pub loss: f64,
    pub perplexity: f64,
    /// Over `{prompt, completion}` rows (None when there are none).
    pub exact_match: Option<f64>,
    pub rouge_l: Option<f64>,
    pub generated_rows: usize,
}

/// Mean token loss over `rows` (token-weighted), with or without an adapter.
pub fn validation_loss(
    model: &Model,
    adapter: Option<&LoraAdapter>,
    rows: &[TrainingRow],
) -> Result<(f64, u64), FactoryError> {
    let (sum, n) =
        ml::eval::token_nll(model, adapter, rows.iter().map(|r| (r.tokens.as_slice(), r.target.as_slice())))?;
    Ok((if n > 0 { sum / n as f64 } else { f64::NAN }, n))
}

/// Loss, perplexity and (on up to `max_generate` prompt/completion rows) exact match and ROUGE-L.
pub fn evaluate(
    model: &Model,
    tok: &TextTokenizer,
    adapter: Option<&LoraAdapter>,
    rows: &[TrainingRow],
    max_generate: usize,
) -> Result<EvalReport, FactoryError> {
    let (loss, n) = validation_loss(model, adapter, rows)?;
    let mut em = 0usize;
    let mut rouge = 0.0;
    let mut gen_rows = 0usize;
    for r in rows.iter().filter(|r| r.completion.is_some()).take(max_generate) {
        let reference = r.completion.as_deref().unwrap_or("");
        let prompt = &r.tokens[..r.prompt_len.max(1)];
        let want = tok.encode(reference, false)?.len();
        let p = SamplingParams { max_tokens: want + 8, ..Default::default() };
        let g = ml::generate(model, tok, adapter, prompt, &p, |_| true)?;
        if normalise(&g.text) == normalise(reference) {
            em += 1;
        }
        rouge += rouge_l(&g.text, reference);
        gen_rows += 1;
    }
    Ok(EvalReport {
        rows: rows.len(),
        target_tokens: n,
        loss,
        perplexity: loss.exp(),
        exact_match: (gen_rows > 0).then(|| em as f64 / gen_rows as f64),
        rouge_l: (gen_rows > 0).then(|| rouge / gen_rows as f64),
        generated_rows: gen_rows,
    })
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

/// ROUGE-L F1 over lower-cased whitespace tokens (longest common subsequence).
pub fn rouge_l(candidate: &str, reference: &str) -> f64 {
    let c: Vec<String> = candidate.split_whitespace().map(|w| w.to_lowercase()).collect();
    let r: Vec<String> = reference.split_whitespace().map(|w| w.to_lowercase()).collect();
    if c.is_empty() || r.is_empty() {
        return if c.is_empty() && r.is_empty() { 1.0 } else { 0.0 };
    }
    let mut prev = vec![0usize; r.len() + 1];
    for cw in &c {
        let mut cur = vec![0usize; r.len() + 1];
        for (j, rw) in r.iter().enumerate() {
            cur[j + 1] = if cw == rw { prev[j] + 1 } else { cur[j].max(prev[j + 1]) };
        }
        prev = cur;
    }
    let lcs = prev[r.len()] as f64;
    if lcs == 0.0 {
        return 0.0;
    }
    let (p, rc) = (lcs / c.len() as f64, lcs / r.len() as f64);
    2.0 * p * rc / (p + rc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rouge_l_values() {
        assert_eq!(rouge_l("the cat sat", "the cat sat"), 1.0);
        assert_eq!(rouge_l("dog", "the cat sat"), 0.0);
        let v = rouge_l("the cat", "the cat sat");
        assert!((v - 0.8).abs() < 1e-9, "{v}");
    }
}
