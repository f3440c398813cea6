//! Model and adapter hashes: blake3 over the tensors sorted by name.
//!
//! For each tensor, in byte order of names: name length (u32 BE), name, dtype
//! name length (u32 BE), dtype name (as safetensors spells it: "F32", "BF16", "Q4_0"…),
//! rank (u32 BE), each dimension (u64 BE), data length (u64 BE), the little-endian
//! data bytes. Then, for a model, the tokenizer's content hash; for an adapter, the
//! content hash of its canonical config bytes. An unquantized GGUF and the safetensors
//! it came from give the same tensors, hence the same hash; a quantized file hashes
//! as what it is (its dtype names differ).

use alloy_primitives::B256;

/// One tensor as it enters a hash.
pub struct TensorRef<'a> {
    pub name: &'a str,
    pub dtype: &'a str,
    pub shape: &'a [usize],
    pub data: &'a [u8],
}

/// The hash of tensors fed one at a time in ascending byte order of their
/// names, so that a loader need not hold every tensor's bytes at once: the
/// same hash as [`model_hash`] / [`adapter_hash`] over the same tensors.
#[derive(Default)]
pub struct TensorHasher {
    h: blake3::Hasher,
    last: Option<String>,
}

impl TensorHasher {
    pub fn new() -> TensorHasher {
        TensorHasher::default()
    }

    /// Add the next tensor; its name must come after the previous one's.
    pub fn push(&mut self, t: TensorRef) -> Result<(), String> {
        if let Some(last) = &self.last
            && last.as_bytes() >= t.name.as_bytes()
        {
            return Err(format!("tensor {:?} after {last:?}: names must be distinct and ascending", t.name));
        }
        feed(&mut self.h, &t);
        self.last = Some(t.name.to_string());
        Ok(())
    }

    /// The hash, closed by the tokenizer's (a model) or the config's (an adapter) content hash.
    pub fn finish(mut self, tail: &B256) -> B256 {
        self.h.update(tail.as_slice());
        B256::from(*self.h.finalize().as_bytes())
    }
}

/// One tensor's entry: the layout in the module docs.
fn feed(h: &mut blake3::Hasher, t: &TensorRef) {
    h.update(&(t.name.len() as u32).to_be_bytes());
    h.update(t.name.as_bytes());
    h.update(&(t.dtype.len() as u32).to_be_bytes());
    h.update(t.dtype.as_bytes());
    h.update(&(t.shape.len() as u32).to_be_bytes());
    for d in t.shape {
        h.update(&(*d as u64).to_be_bytes());
    }
    h.update(&(t.data.len() as u64).to_be_bytes());
    h.update(t.data);
}

fn hash_tensors<'a>(tensors: impl IntoIterator<Item = TensorRef<'a>>, tail: &B256) -> B256 {
    let mut v: Vec<TensorRef<'a>> = tensors.into_iter().collect();
    v.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut h = blake3::Hasher::new();
    for t in &v {
        feed(&mut h, t);
    }
    h.update(tail.as_slice());
    B256::from(*h.finalize().as_bytes())
}

/// The hash of a base model: its tensors and its tokenizer's content hash.
pub fn model_hash<'a>(tensors: impl IntoIterator<Item = TensorRef<'a>>, tokenizer_hash: &B256) -> B256 {
    hash_tensors(tensors, tokenizer_hash)
}

/// The hash of a LoRA adapter: its PEFT tensors and the content hash of its canonical config.
pub fn adapter_hash<'a>(tensors: impl IntoIterator<Item = TensorRef<'a>>, config_hash: &B256) -> B256 {
    hash_tensors(tensors, config_hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_content_sensitive() {
        static A: [u8; 4] = [1, 2, 3, 4];
        static B: [u8; 4] = [5, 6, 7, 8];
        let t = |n: &'static str, d: &'static [u8]| TensorRef { name: n, dtype: "F32", shape: &[1], data: d };
        let h1 = model_hash([t("a", &A), t("b", &B)], &B256::ZERO);
        let h2 = model_hash([t("b", &B), t("a", &A)], &B256::ZERO);
        let h3 = model_hash([t("a", &B), t("b", &A)], &B256::ZERO);
        assert_eq!(h1, h2);
        assert_ne!(h1, h3);
        assert_ne!(h1, model_hash([t("a", &A), t("b", &B)], &B256::repeat_byte(1)));
        let mut s = TensorHasher::new();
        s.push(t("a", &A)).unwrap();
        s.push(t("b", &B)).unwrap();
        assert!(s.push(t("b", &A)).is_err(), "a repeated name");
        assert!(s.push(t("a", &A)).is_err(), "a name out of order");
        assert_eq!(s.finish(&B256::ZERO), h1, "streamed in order: the same hash");
    }
}
