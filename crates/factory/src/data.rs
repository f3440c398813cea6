//! From Datanet rows to training sequences: tokenise (chat-formatted for
//! `{prompt, completion}` rows, with only the completion as the target), split
//! train/validation deterministically by row id, and pack rows into sequences.

use ml::{ChatMessage, TextTokenizer};
use primitives::Address;
use primitives::rows::VersionRow;
use primitives::rows::{Row, RowId};

use crate::FactoryError;

/// One row, tokenised.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingRow {
    pub id: RowId,
    pub contributor: Address,
    pub tokens: Vec<u32>,
    /// `target[i]`: token i is predicted (from token i − 1) and counts in the loss.
    pub target: Vec<bool>,
    /// For `{prompt, completion}` rows: the prompt's tokens (generation starts
    /// after them) and the completion text (the reference).
    pub prompt_len: usize,
    pub completion: Option<String>,
}

/// The tokens of a row and which of them are targets.
pub fn tokenize_row(
    tok: &TextTokenizer,
    eos: Option<u32>,
    row: &Row,
    max_len: usize,
) -> Result<(Vec<u32>, Vec<bool>, usize), FactoryError> {
    let (mut tokens, mut target, prompt_len) = match row {
        Row::Text { text } => {
            let t = tok.encode(text, false)?;
            let n = t.len();
            (t, vec![true; n], 0)
        }
        Row::PromptCompletion { prompt, completion } => {
            let p = if tok.chat_template.is_some() {
                let msgs = [ChatMessage { role: "user".into(), content: prompt.clone() }];
                tok.encode(&tok.apply_chat_template(&msgs, true)?, false)?
            } else {
                tok.encode(&format!("{prompt}\n"), false)?
            };
            let c = tok.encode(completion, false)?;
            let pl = p.len();
            let mut target = vec![false; pl];
            target.extend(std::iter::repeat_n(true, c.len()));
            let mut t = p;
            t.extend(c);
            (t, target, pl)
        }
    };
    if let Some(e) = eos {
        tokens.push(e);
        target.push(true);
    }
    if let Some(f) = target.first_mut() {
        *f = false;
    }
    tokens.truncate(max_len);
    target.truncate(max_len);
    Ok((tokens, target, prompt_len.min(max_len)))
}

/// Which rows are held out: a row is in validation when
/// `splitmix64(seed ⊕ splitmix64(contribution << 32 | index)) mod 100 < percent`;
/// a row's side never depends on the other rows.
pub fn is_validation(id: &RowId, seed: u64, percent: u32) -> bool {
    let h = ml::rng::splitmix64(seed ^ ml::rng::splitmix64((id.contribution << 32) | id.index as u64));
    (h % 100) < percent as u64
}

/// The tokenised rows of a job, split.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub train: Vec<TrainingRow>,
    pub validation: Vec<TrainingRow>,
}

impl Dataset {
    pub fn build(
        rows: &[VersionRow],
        tok: &TextTokenizer,
        eos: Option<u32>,
        max_len: usize,
        seed: u64,
        percent: u32,
    ) -> Result<Dataset, FactoryError> {
        let mut train = Vec::new();
        let mut validation = Vec::new();
        for r in rows {
            let (tokens, target, prompt_len) = tokenize_row(tok, eos, &r.row, max_len)?;
            if tokens.len() < 2 || !target.iter().any(|t| *t) {
                continue;
            }
            let completion = match &r.row {
                Row::PromptCompletion { completion, .. } => Some(completion.clone()),
                Row::Text { .. } => None,
            };
            let tr = TrainingRow { id: r.id, contributor: r.contributor, tokens, target, prompt_len, completion };
            if is_validation(&r.id, seed, percent) { validation.push(tr) } else { train.push(tr) }
        }
        if train.is_empty() {
            return Err(FactoryError::Data("no training rows: the Datanet versions have no usable rows".into()));
        }
        Ok(Dataset { train, validation })
    }
}

/// A packed training sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    pub tokens: Vec<u32>,
    pub target: Vec<bool>,
}

/// Concatenate rows (in order) into sequences of at most `max_len` tokens; a
/// row never straddles two sequences, and a row's first token is never a
/// target of the previous row's last.
pub fn pack(rows: &[TrainingRow], max_len: usize) -> Vec<Packed> {
    let mut out = Vec::new();
    let mut cur = Packed { tokens: vec![], target: vec![] };
    for r in rows {
        if !cur.tokens.is_empty() && cur.tokens.len() + r.tokens.len() > max_len {
            out.push(std::mem::replace(&mut cur, Packed { tokens: vec![], target: vec![] }));
        }
        cur.tokens.extend_from_slice(&r.tokens);
        cur.target.extend_from_slice(&r.target);
    }
    if !cur.tokens.is_empty() {
        out.push(cur);
    }
    out
}

/// A `[b, t]` batch padded with `pad` (never a target).
pub fn batch(seqs: &[&Packed], pad: u32) -> (Vec<u32>, Vec<f32>, usize) {
    let t = seqs.iter().map(|s| s.tokens.len()).max().unwrap_or(0).max(2);
    let mut toks = Vec::with_capacity(seqs.len() * t);
    let mut mask = Vec::with_capacity(seqs.len() * t);
    for s in seqs {
        toks.extend_from_slice(&s.tokens);
        mask.extend(s.target.iter().map(|&m| if m { 1.0 } else { 0.0 }));
        for _ in s.tokens.len()..t {
            toks.push(pad);
            mask.push(0.0);
        }
    }
    (toks, mask, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(c: u64, i: u32, n: usize) -> TrainingRow {
        TrainingRow {
            id: RowId { contribution: c, index: i },
            contributor: Address::ZERO,
            tokens: (0..n as u32).collect(),
            target: (0..n).map(|j| j > 0).collect(),
            prompt_len: 0,
            completion: None,
        }
    }

    #[test]
    fn packing_keeps_rows_whole_and_within_length() {
        let rows = vec![row(1, 0, 5), row(1, 1, 4), row(2, 0, 7), row(2, 1, 1)];
        let p = pack(&rows, 10);
        assert_eq!(p.iter().map(|s| s.tokens.len()).collect::<Vec<_>>(), vec![9, 8]);
        assert!(p.iter().all(|s| s.tokens.len() <= 10));
        assert!(!p[0].target[5], "the second row's first token is not a target");
    }

    #[test]
    fn split_is_by_row_id_alone() {
        let ids: Vec<RowId> = (0..1000).map(|i| RowId { contribution: i / 10, index: (i % 10) as u32 }).collect();
        let v = ids.iter().filter(|id| is_validation(id, 3, 10)).count();
        assert!((60..140).contains(&v), "{v} of 1000 held out for 10%");
        assert!(ids.iter().all(|id| is_validation(id, 3, 10) == is_validation(id, 3, 10)));
        assert_eq!(ids.iter().filter(|id| is_validation(id, 3, 0)).count(), 0);
    }
}
