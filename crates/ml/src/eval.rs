//! Scoring token sequences without gradients (validation loss, perplexity).

use candle_core::{Device, Tensor};

use crate::MlError;
use crate::lora::LoraAdapter;
use crate::model::Model;

/// Σ NLL and the number of target tokens over `rows` of (tokens, target flags),
/// where `target[i]` means token i is predicted from the tokens before it.
/// Rows are scored in padded batches of up to 8 (a row's result does not
/// depend on its batch: padding is never attended to by earlier positions).
pub fn token_nll<'a>(
    model: &Model,
    adapter: Option<&LoraAdapter>,
    rows: impl IntoIterator<Item = (&'a [u32], &'a [bool])>,
) -> Result<(f64, u64), MlError> {
    let vars = match adapter {
        Some(a) => {
            model.check_adapter(a)?;
            Some(a.to_vars()?)
        }
        None => None,
    };
    let rows: Vec<(&[u32], &[bool])> = rows.into_iter().filter(|(t, _)| t.len() >= 2).collect();
    let mut sum = 0.0f64;
    let mut count = 0u64;
    for chunk in rows.chunks(8) {
        let t = chunk.iter().map(|(t, _)| t.len()).max().unwrap_or(2);
        let mut toks = Vec::with_capacity(chunk.len() * t);
        let mut mask = Vec::with_capacity(chunk.len() * t);
        for (tk, tg) in chunk {
            toks.extend_from_slice(tk);
            mask.extend(tg.iter().map(|&m| if m { 1.0f32 } else { 0.0 }));
            toks.extend(std::iter::repeat_n(0u32, t - tk.len()));
            mask.extend(std::iter::repeat_n(0.0f32, t - tk.len()));
        }
        let toks = Tensor::from_vec(toks, (chunk.len(), t), &Device::Cpu)?;
        let mask = Tensor::from_vec(mask, (chunk.len(), t), &Device::Cpu)?;
        for (s, c) in model.sequence_nll(&toks, &mask, vars.as_ref())? {
            sum += s;
            count += c as u64;
        }
    }
    Ok((sum, count))
}
