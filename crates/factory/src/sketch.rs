//! The gradient-sketch blob: for every training row, its projected LoRA
//! gradient at each kept checkpoint. Little-endian, fixed layout:
//!
//! ```text
//! "OLGS" | version u32 = 2 | projection u32 | k u32 | seed u64 | checkpoints u32
//! | learning rate f64 × checkpoints
//! | rows u64 | per row: contribution u64, row index u32, contributor [u8; 20], f32 × (checkpoints × k)
//! ```
//! Rows are in training order; a row's vectors follow the checkpoint order.
//! `projection` is an `ml::Projection` id. Version 1 blobs (written before
//! the count sketch) have no projection field and used the dense sign
//! projection (id 0); they still parse.

use ml::Projection;
use primitives::Address;
use primitives::rows::RowId;

use crate::FactoryError;

const MAGIC: &[u8; 4] = b"OLGS";

/// Builds a sketch blob.
pub struct SketchWriter {
    k: usize,
    n_ck: usize,
    head: Vec<u8>,
    body: Vec<u8>,
    rows: u64,
}

impl SketchWriter {
    pub fn new(projection: Projection, k: usize, seed: u64, learning_rates: Vec<f64>) -> SketchWriter {
        let mut head = Vec::new();
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&2u32.to_le_bytes());
        head.extend_from_slice(&projection.id().to_le_bytes());
        head.extend_from_slice(&(k as u32).to_le_bytes());
        head.extend_from_slice(&seed.to_le_bytes());
        head.extend_from_slice(&(learning_rates.len() as u32).to_le_bytes());
        for lr in &learning_rates {
            head.extend_from_slice(&lr.to_le_bytes());
        }
        SketchWriter { k, n_ck: learning_rates.len(), head, body: Vec::new(), rows: 0 }
    }

    pub fn push(&mut self, id: RowId, contributor: Address, per_checkpoint: &[Vec<f32>]) {
        assert_eq!(per_checkpoint.len(), self.n_ck, "one vector per checkpoint");
        self.body.extend_from_slice(&id.contribution.to_le_bytes());
        self.body.extend_from_slice(&id.index.to_le_bytes());
        self.body.extend_from_slice(contributor.as_slice());
        for v in per_checkpoint {
            assert_eq!(v.len(), self.k, "k values per checkpoint");
            for x in v {
                self.body.extend_from_slice(&x.to_le_bytes());
            }
        }
        self.rows += 1;
    }

    pub fn finish(mut self) -> Vec<u8> {
        self.head.extend_from_slice(&self.rows.to_le_bytes());
        self.head.extend_from_slice(&self.body);
        self.head
    }
}

/// A parsed sketch blob.
#[derive(Debug, Clone, PartialEq)]
pub struct Sketches {
    /// How the row gradients were projected (dense sign for version 1 blobs).
    pub projection: Projection,
    pub k: usize,
    pub seed: u64,
    pub learning_rates: Vec<f64>,
    /// (row, contributor, vectors per checkpoint).
    pub rows: Vec<(RowId, Address, Vec<Vec<f32>>)>,
}

impl Sketches {
    pub fn parse(b: &[u8]) -> Result<Sketches, FactoryError> {
        let bad = |m: &str| FactoryError::Data(format!("gradient sketch blob: {m}"));
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], FactoryError> {
            let s = b.get(at..at + n).ok_or_else(|| bad("truncated"))?;
            at += n;
            Ok(s)
        };
        if take(4)? != MAGIC {
            return Err(bad("not a sketch (magic)"));
        }
        let u32_ = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4"));
        let u64_ = |s: &[u8]| u64::from_le_bytes(s.try_into().expect("8"));
        let projection = match u32_(take(4)?) {
            1 => Projection::DenseSign,
            2 => {
                let id = u32_(take(4)?);
                Projection::from_id(id).ok_or_else(|| bad(&format!("unknown projection {id}")))?
            }
            v => return Err(bad(&format!("unknown version {v}"))),
        };
        let k = u32_(take(4)?) as usize;
        if k == 0 || (projection == Projection::CountSketch && k > Projection::MAX_COUNT_SKETCH_K) {
            return Err(bad(&format!("k = {k} is out of range")));
        }
        let seed = u64_(take(8)?);
        let n_ck = u32_(take(4)?) as usize;
        let mut lrs = Vec::with_capacity(n_ck);
        for _ in 0..n_ck {
            lrs.push(f64::from_le_bytes(take(8)?.try_into().expect("8")));
        }
        let n = u64_(take(8)?) as usize;
        let mut rows = Vec::with_capacity(n.min(1 << 20));
        for _ in 0..n {
            let contribution = u64_(take(8)?);
            let index = u32_(take(4)?);
            let contributor = Address::from_slice(take(20)?);
            let mut vs = Vec::with_capacity(n_ck);
            for _ in 0..n_ck {
                let raw = take(4 * k)?;
                vs.push(raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4"))).collect());
            }
            rows.push((RowId { contribution, index }, contributor, vs));
        }
        if at != b.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(Sketches { projection, k, seed, learning_rates: lrs, rows })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut w = SketchWriter::new(Projection::CountSketch, 3, 9, vec![0.1, 0.05]);
        w.push(
            RowId { contribution: 4, index: 2 },
            Address::repeat_byte(7),
            &[vec![1.0, 2.0, 3.0], vec![-1.0, 0.5, 0.0]],
        );
        let b = w.finish();
        let s = Sketches::parse(&b).unwrap();
        assert_eq!((s.k, s.projection), (3, Projection::CountSketch));
        assert_eq!(s.learning_rates, vec![0.1, 0.05]);
        assert_eq!(s.rows[0].2[1], vec![-1.0, 0.5, 0.0]);
        assert!(Sketches::parse(&b[..b.len() - 1]).is_err());
        // A version 1 blob (no projection field) is a dense sign sketch.
        let mut v1 = b[..4].to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&b[12..]);
        let s1 = Sketches::parse(&v1).unwrap();
        assert_eq!(s1.projection, Projection::DenseSign);
        assert_eq!(s1.rows, s.rows);
        // An unknown projection or version is refused, not guessed.
        let mut bad = b.clone();
        bad[8] = 9;
        assert!(Sketches::parse(&bad).unwrap_err().to_string().contains("unknown projection"));
        bad[4] = 3;
        assert!(Sketches::parse(&bad).unwrap_err().to_string().contains("unknown version"));
    }
}
