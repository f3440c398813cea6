//! Stored records as ABI-encoded values: one canonical encoding, decoded with
//! validation by alloy, shared by every module that stores structs or lists.

use alloy_sol_types::SolValue;
use primitives::Address;
use primitives::state::{StateError, StateRead};

use crate::Overlay;

/// Read and decode `key`, or `None` if absent.
pub fn load<T: SolValue + From<<T::SolType as alloy_sol_types::SolType>::RustType>>(
    st: &(impl StateRead + ?Sized),
    key: &[u8],
) -> Result<Option<T>, StateError> {
    match st.get(key)? {
        Some(b) => {
            T::abi_decode(&b).map(Some).map_err(|e| StateError(format!("record {}: {e}", String::from_utf8_lossy(key))))
        }
        None => Ok(None),
    }
}

/// Encode and write `value` at `key`.
pub fn store<T: SolValue>(st: &mut Overlay, key: Vec<u8>, value: &T) {
    st.put(key, Some(value.abi_encode()));
}

/// An append-only list kept as indexed keys, so appending is one write and
/// reading one item is one read whatever the list's length (a list stored as
/// one value is rewritten whole on every append): `<prefix>n` → u64 BE count,
/// `<prefix>i<index u64 BE>` → the item's ABI encoding.
pub struct IndexedList {
    prefix: Vec<u8>,
}

impl IndexedList {
    pub fn new(prefix: Vec<u8>) -> IndexedList {
        IndexedList { prefix }
    }

    fn count_key(&self) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.push(b'n');
        k
    }

    fn item_key(&self, i: u64) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.push(b'i');
        k.extend_from_slice(&i.to_be_bytes());
        k
    }

    pub fn len(&self, st: &(impl StateRead + ?Sized)) -> Result<u64, StateError> {
        match st.get(&self.count_key())? {
            Some(b) => Ok(u64::from_be_bytes(b.as_slice().try_into().map_err(|_| StateError("list length".into()))?)),
            None => Ok(0),
        }
    }

    pub fn get<T: SolValue + From<<T::SolType as alloy_sol_types::SolType>::RustType>>(
        &self,
        st: &(impl StateRead + ?Sized),
        i: u64,
    ) -> Result<Option<T>, StateError> {
        load(st, &self.item_key(i))
    }

    /// Append `item`; returns its index.
    pub fn push<T: SolValue>(&self, st: &mut Overlay, item: &T) -> Result<u64, StateError> {
        let n = self.len(st)?;
        store(st, self.item_key(n), item);
        st.put(self.count_key(), Some((n + 1).to_be_bytes().to_vec()));
        Ok(n)
    }

    /// Delete every item and the count (one write per item: for lists whose
    /// items a caller already paid to read).
    pub fn clear(&self, st: &mut Overlay) -> Result<(), StateError> {
        for i in 0..self.len(st)? {
            st.put(self.item_key(i), None);
        }
        st.put(self.count_key(), None);
        Ok(())
    }

    /// Replace the item at `i` (< len).
    pub fn set<T: SolValue>(&self, st: &mut Overlay, i: u64, item: &T) {
        store(st, self.item_key(i), item);
    }

    /// The first index whose item fails `pred`, for a list where `pred` holds
    /// on a prefix (a binary search: O(log len) reads).
    pub fn partition_point<T: SolValue + From<<T::SolType as alloy_sol_types::SolType>::RustType>>(
        &self,
        st: &(impl StateRead + ?Sized),
        pred: impl Fn(&T) -> bool,
    ) -> Result<u64, StateError> {
        let (mut lo, mut hi) = (0u64, self.len(st)?);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let item: T = self.get(st, mid)?.ok_or_else(|| StateError("list item missing".into()))?;
            if pred(&item) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Items `offset..offset + limit` (fewer at the end).
    pub fn page<T: SolValue + From<<T::SolType as alloy_sol_types::SolType>::RustType>>(
        &self,
        st: &(impl StateRead + ?Sized),
        offset: u64,
        limit: u64,
    ) -> Result<Vec<T>, StateError> {
        let end = self.len(st)?.min(offset.saturating_add(limit));
        (offset..end).map(|i| self.get(st, i)?.ok_or_else(|| StateError("list item missing".into()))).collect()
    }
}

/// A member of an [`IndexedSet`]: a value with a fixed key encoding.
pub trait SetMember: SolValue + From<<Self::SolType as alloy_sol_types::SolType>::RustType> + Copy {
    /// The bytes that name the member in its position key.
    fn key_bytes(&self) -> Vec<u8>;
}

impl SetMember for Address {
    fn key_bytes(&self) -> Vec<u8> {
        self.to_vec()
    }
}

impl SetMember for u64 {
    fn key_bytes(&self) -> Vec<u8> {
        self.to_be_bytes().to_vec()
    }
}

/// A set of addresses (or ids) kept as indexed keys: adding and removing are a few
/// writes whatever its size (removal moves the last member into the hole),
/// and its members read in O(len): `<prefix>n` → count, `<prefix>i<index>` →
/// member, `<prefix>p<member key>` → u64 BE index.
pub struct IndexedSet<T: SetMember = Address> {
    list: IndexedList,
    prefix: Vec<u8>,
    member: std::marker::PhantomData<T>,
}

impl<T: SetMember> IndexedSet<T> {
    pub fn new(prefix: Vec<u8>) -> IndexedSet<T> {
        IndexedSet { list: IndexedList::new(prefix.clone()), prefix, member: std::marker::PhantomData }
    }

    fn pos_key(&self, a: &T) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.push(b'p');
        k.extend_from_slice(&a.key_bytes());
        k
    }

    pub fn len(&self, st: &(impl StateRead + ?Sized)) -> Result<u64, StateError> {
        self.list.len(st)
    }

    pub fn contains(&self, st: &(impl StateRead + ?Sized), a: &T) -> Result<bool, StateError> {
        Ok(st.get(&self.pos_key(a))?.is_some())
    }

    /// Every member, in no particular order.
    pub fn members(&self, st: &(impl StateRead + ?Sized)) -> Result<Vec<T>, StateError> {
        self.list.page(st, 0, u64::MAX)
    }

    /// Members `offset..offset + limit` in the set's current order (fewer at the end).
    pub fn page(&self, st: &(impl StateRead + ?Sized), offset: u64, limit: u64) -> Result<Vec<T>, StateError> {
        self.list.page(st, offset, limit)
    }

    /// Add `a` (no effect if present).
    pub fn insert(&self, st: &mut Overlay, a: &T) -> Result<(), StateError> {
        if !self.contains(st, a)? {
            let i = self.list.push(st, a)?;
            st.put(self.pos_key(a), Some(i.to_be_bytes().to_vec()));
        }
        Ok(())
    }

    /// Remove `a` (no effect if absent).
    pub fn remove(&self, st: &mut Overlay, a: &T) -> Result<(), StateError> {
        let Some(b) = st.get(&self.pos_key(a))? else { return Ok(()) };
        let i = u64::from_be_bytes(b.as_slice().try_into().map_err(|_| StateError("set index".into()))?);
        let last = self.list.len(st)? - 1;
        if i != last {
            let moved: T = self.list.get(st, last)?.ok_or_else(|| StateError("set member missing".into()))?;
            self.list.set(st, i, &moved);
            st.put(self.pos_key(&moved), Some(i.to_be_bytes().to_vec()));
        }
        st.put(self.list.item_key(last), None);
        st.put(self.list.count_key(), if last == 0 { None } else { Some(last.to_be_bytes().to_vec()) });
        st.put(self.pos_key(a), None);
        Ok(())
    }
}
