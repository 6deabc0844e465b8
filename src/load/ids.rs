use super::*;

/// Groups lines by customer, keeping their order within a customer (a counting sort):
/// line `i`, of the customer coded `customer[i]`, moves to `position[i]`, and
/// `offsets[r]..offsets[r + 1]` are the places of the customer ranked `r`. The codes
/// are replaced by the ranks.
///
/// The lines are split into `parts`, counted and placed each on its own task; a part's
/// lines of a customer come after those of the parts before it, so the result is the
/// same for any number of parts.
pub(super) fn group_lines(
    customer: &mut [u32],
    rank: &[u32],
    n_customers: usize,
    parts: usize,
) -> (Vec<usize>, Vec<usize>) {
    use rayon::prelude::*;
    customer.par_iter_mut().for_each(|c| *c = rank[*c as usize]);
    let part = customer.len().div_ceil(parts).max(1);
    let mut next: Vec<Vec<usize>> = customer
        .par_chunks(part)
        .map(|lines| {
            let mut count = vec![0usize; n_customers];
            for &r in lines {
                count[r as usize] += 1;
            }
            count
        })
        .collect();
    // Each part's first place for each customer.
    let mut offsets = vec![0usize; n_customers + 1];
    let mut placed = 0;
    for r in 0..n_customers {
        offsets[r] = placed;
        for count in &mut next {
            let n = count[r];
            count[r] = placed;
            placed += n;
        }
    }
    offsets[n_customers] = placed;
    let mut position = vec![0usize; customer.len()];
    position
        .par_chunks_mut(part)
        .zip(customer.par_chunks(part))
        .zip(next.par_iter_mut())
        .for_each(|((position, lines), next)| {
            for (p, &r) in position.iter_mut().zip(lines) {
                *p = next[r as usize];
                next[r as usize] += 1;
            }
        });
    (offsets, position)
}

/// Moves value `i` of `values` to `position[i]`, mapping every value by `f`, into a new
/// column, in the room of `into` (emptied first): reusing a column that is done with
/// spares touching fresh memory, which costs a page fault every 4 KiB. `position` is a permutation of `0..values.len()`, so the lines can be split
/// into parts placed side by side: no two write the same place. Out of place, every
/// write is independent of the last, so the processor keeps many in flight; following
/// the permutation's cycles in place waits for each random read in turn.
pub(super) fn scatter<T: Copy + Send + Sync>(
    values: &[T],
    position: &[usize],
    f: impl Fn(T) -> T + Sync,
    mut into: Vec<T>,
) -> Vec<T> {
    use rayon::prelude::*;
    struct Out<T>(*mut T);
    // SAFETY: the pointer is only written through at distinct places (see below).
    unsafe impl<T: Send> Sync for Out<T> {}
    let n = values.len();
    assert_eq!(position.len(), n);
    into.clear();
    into.reserve(n);
    let mut placed = into;
    let out = Out(placed.as_mut_ptr());
    let part = n.div_ceil(rayon::current_num_threads() * 4).max(1 << 15);
    values
        .par_chunks(part)
        .zip(position.par_chunks(part))
        .for_each(|(values, position)| {
            let out = &out;
            for (&v, &to) in values.iter().zip(position) {
                assert!(to < n);
                // SAFETY: `to < n` is within the allocation, and `position` is a
                // permutation, so each place is written once, by one task.
                unsafe { out.0.add(to).write(f(v)) };
            }
        });
    // SAFETY: all `n` places were written (a permutation covers every place).
    unsafe { placed.set_len(n) };
    placed
}

/// Sorts interned keys, given with their codes and the bound of the codes; returns the
/// sorted keys and, per code, its rank.
pub(super) fn sorted_ids<K: Send, P: Ord + Send, T>(
    (code_bound, coded): (usize, Vec<(K, u32)>),
    prefix: impl Fn(&K) -> P + Sync,
    cmp: impl Fn(&K, &K) -> std::cmp::Ordering + Sync,
    wrap: impl FnOnce(Vec<K>) -> T,
) -> (T, Vec<u32>) {
    use rayon::prelude::*;
    // Sorting by a prefix held beside each key settles most comparisons without
    // following the key to its bytes.
    let mut entries: Vec<(P, K, u32)> = coded
        .into_par_iter()
        .map(|(k, c)| (prefix(&k), k, c))
        .collect();
    // Keys are distinct, so an unstable sort orders them the same as a stable one.
    entries.par_sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| cmp(&a.1, &b.1)));
    let mut rank = vec![0u32; code_bound];
    for (r, (_, _, code)) in entries.iter().enumerate() {
        rank[*code as usize] = r as u32;
    }
    (wrap(entries.into_par_iter().map(|e| e.1).collect()), rank)
}

/// The first 16 bytes of `text`, zero-padded, as a number that orders like the bytes:
/// texts with different prefixes compare as their prefixes do.
pub(super) fn byte_prefix(text: &str) -> u128 {
    let mut head = [0u8; 16];
    let n = text.len().min(16);
    head[..n].copy_from_slice(&text.as_bytes()[..n]);
    u128::from_be_bytes(head)
}

/// The key of an order id: a 63-bit hash of its text (FNV-1a with a final avalanche).
///
/// Order keys only tell apart the orders *of one customer*, so a collision would need two
/// of one customer's order ids to hash alike: about k²/2⁶⁴ for a customer with k orders
/// (10⁻¹³ at k = 1,000). This spares a global table of every order id.
pub(super) fn order_key(id: &str) -> u64 {
    crate::parallel::mix(crate::parallel::fnv(id.as_bytes())) & !TS_ORDER_BIT
}

/// The code of `key`, giving the next code to a key not seen before (allocates only then).
pub(super) fn intern(map: &mut PlHashMap<Box<str>, u32>, key: &str) -> u32 {
    if let Some(&code) = map.get(key) {
        return code;
    }
    let Ok(code) = u32::try_from(map.len()) else {
        unreachable!("more distinct keys than 32-bit codes hold")
    };
    map.insert(key.into(), code);
    code
}

/// The shard of a key with this hash, out of `shards`: the columnar loader partitions
/// rows by it, so a partition's ids all belong to one shard of the [`IdTable`].
pub(super) fn shard_of(hash: u64, shards: usize) -> usize {
    ((hash >> 32) % shards as u64) as usize
}

/// The hash of a customer id (of the id's text, or of the integer): it chooses the id's
/// shard, and its place in the shard's table, so each id is hashed once.
pub(super) fn shard_hash<Q: std::hash::Hash + ?Sized>(key: &Q) -> u64 {
    PlFixedStateQuality::default().hash_one(key)
}

/// One shard of an [`IdTable`]: ids with their codes, placed by [`shard_hash`].
pub(super) type Shard<K> = hashbrown::HashTable<(K, u32)>;

/// Distinct customer ids with their codes, split into shards by a hash of the id, so
/// that the ids of a batch can be registered one shard per thread with nothing to merge.
/// The `k`-th id of shard `s` has the code `k * shards + s`: codes tell ids apart (the
/// final order is by the ids themselves, see [`Builder::finish`]).
pub(super) struct IdTable<K> {
    pub(super) shards: Vec<Shard<K>>,
}

impl<K: std::hash::Hash + Eq> IdTable<K> {
    pub(super) fn new(shards: usize) -> IdTable<K> {
        IdTable {
            shards: (0..shards.max(1)).map(|_| Shard::new()).collect(),
        }
    }

    /// The code of `key`, registering it if it is new.
    #[cfg(test)]
    pub(super) fn code<Q>(&mut self, key: &Q) -> u32
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        let n = self.shards.len();
        let hash = shard_hash(key);
        let s = shard_of(hash, n);
        Self::code_in(&mut self.shards[s], s, n, hash, key)
    }

    /// The code of `key`, whose hash is `hash`, in shard `s` of `n`, where `key` belongs
    /// (allocates only for a new key).
    fn code_in<Q>(shard: &mut Shard<K>, s: usize, n: usize, hash: u64, key: &Q) -> u32
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        if let Some(&(_, code)) = shard.find(hash, |(k, _)| k.borrow() == key) {
            return code;
        }
        let Ok(code) = u32::try_from(shard.len() * n + s) else {
            unreachable!("more distinct keys than 32-bit codes hold")
        };
        shard.insert_unique(hash, (key.to_owned().into(), code), |(k, _)| shard_hash(k));
        code
    }

    /// Registers the customers of a batch's rows: `part[i]` is row `i`'s shard
    /// ([`REJECTED`] for a rejected row), `hash[i]` the [`shard_hash`] of its id and
    /// `key(i)` the id. Each shard is filled on its own thread; the code of every
    /// accepted row is appended to `codes`, in row order.
    pub(super) fn register_partitioned<Q, R>(
        &mut self,
        part: &[u8],
        hash: &[u64],
        key: impl Fn(usize) -> R + Sync,
        codes: &mut Vec<u32>,
    ) where
        K: Send + std::borrow::Borrow<Q>,
        R: std::borrow::Borrow<Q>,
        Q: Eq + ToOwned + ?Sized,
        Q::Owned: Into<K>,
    {
        use rayon::prelude::*;
        assert_eq!(part.len(), hash.len(), "a hash for every row");
        let n = self.shards.len();
        // Each shard's rows, in row order: one pass, then every shard reads only its own.
        let mut rows_of: Vec<Vec<usize>> = (0..n)
            .map(|_| Vec::with_capacity(part.len() / n + 1))
            .collect();
        for (i, &q) in part.iter().enumerate() {
            if q != REJECTED {
                rows_of[usize::from(q)].push(i);
            }
        }
        let per_shard: Vec<Vec<u32>> = self
            .shards
            .par_iter_mut()
            .zip(&rows_of)
            .enumerate()
            .map(|(s, (shard, rows))| {
                rows.iter()
                    .map(|&i| Self::code_in(shard, s, n, hash[i], key(i).borrow()))
                    .collect()
            })
            .collect();
        // Back into row order, in runs of rows side by side: each run's rows per shard
        // are counted first, so every run knows where its codes start in each shard's
        // list and in `codes`.
        let runs: Vec<&[u8]> = part.chunks(CHUNK_ROWS).collect();
        let counts: Vec<Vec<usize>> = runs
            .par_iter()
            .map(|run| {
                let mut count = vec![0usize; n];
                for &q in run.iter().filter(|&&q| q != REJECTED) {
                    count[usize::from(q)] += 1;
                }
                count
            })
            .collect();
        let base = codes.len();
        let accepted: usize = counts.iter().flatten().sum();
        codes.par_extend(rayon::iter::repeat_n(u32::MAX, accepted));
        let mut rest = &mut codes[base..];
        let mut from = vec![0usize; n];
        let mut tasks = Vec::with_capacity(runs.len());
        for (run, count) in runs.into_iter().zip(&counts) {
            let (out, tail) = std::mem::take(&mut rest).split_at_mut(count.iter().sum());
            rest = tail;
            tasks.push((run, out, from.clone()));
            for (at, c) in from.iter_mut().zip(count) {
                *at += c;
            }
        }
        tasks.into_par_iter().for_each(|(run, out, mut next)| {
            let accepted = run.iter().filter(|&&q| q != REJECTED);
            for (code, &q) in out.iter_mut().zip(accepted) {
                let s = usize::from(q);
                *code = per_shard[s][next[s]];
                next[s] += 1;
            }
        });
    }

    /// Every id with its code, and a bound above every code.
    pub(super) fn into_coded(self) -> (usize, Vec<(K, u32)>)
    where
        K: Send,
    {
        use rayon::prelude::*;
        let n = self.shards.len();
        let bound = n * self.shards.iter().map(|s| s.len()).max().unwrap_or(0);
        let coded = self
            .shards
            .into_par_iter()
            .flat_map_iter(|shard| shard.into_iter())
            .collect();
        (bound, coded)
    }
}

/// The customer ids of a chunk's accepted rows, in row order, not yet registered: a
/// chunk converted on its own thread keeps them here, with their hashes, until the
/// file's [`IdTable`] takes a whole group of chunks shard by shard
/// ([`Rows::absorb_all`]).
#[derive(Default)]
pub(super) struct PendingIds {
    /// Each row's [`shard_hash`].
    pub(super) hash: Vec<u64>,
    /// Text ids, one after another; row `i`'s ends at `ends[i]`.
    pub(super) text: String,
    pub(super) ends: Vec<usize>,
    /// Integer ids (a file's ids are all text or all integers).
    pub(super) int: Vec<i64>,
}

impl PendingIds {
    pub(super) fn push_text(&mut self, id: &str) {
        self.hash.push(shard_hash(id));
        self.text.push_str(id);
        self.ends.push(self.text.len());
    }

    pub(super) fn push_int(&mut self, id: i64) {
        self.hash.push(shard_hash(&id));
        self.int.push(id);
    }

    /// The text id of row `i`.
    pub(super) fn text_at(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

/// A text customer id as the id table keeps it: up to [`IdKey::INLINE`] bytes inside the
/// table's slot (most ids), longer ones on the heap. An inline id is compared where the
/// table's probe already is: looking up ids that come in no order (lines in time order)
/// costs one cache miss a row, not two.
#[derive(Clone)]
pub(super) enum IdKey {
    Inline { len: u8, bytes: [u8; IdKey::INLINE] },
    Heap(Box<str>),
}

impl IdKey {
    pub(super) const INLINE: usize = 22;

    pub(super) fn as_str(&self) -> &str {
        match self {
            // SAFETY: inline bytes are only ever the whole of a `&str` (see `From<&str>`),
            // so they are valid UTF-8.
            IdKey::Inline { len, bytes } => unsafe {
                std::str::from_utf8_unchecked(&bytes[..usize::from(*len)])
            },
            IdKey::Heap(s) => s,
        }
    }
}

impl From<&str> for IdKey {
    fn from(s: &str) -> IdKey {
        if s.len() <= IdKey::INLINE {
            let mut bytes = [0u8; IdKey::INLINE];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            IdKey::Inline {
                len: s.len() as u8,
                bytes,
            }
        } else {
            IdKey::Heap(s.into())
        }
    }
}

impl From<String> for IdKey {
    fn from(s: String) -> IdKey {
        if s.len() <= IdKey::INLINE {
            IdKey::from(s.as_str())
        } else {
            IdKey::Heap(s.into_boxed_str())
        }
    }
}

impl std::borrow::Borrow<str> for IdKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for IdKey {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// Hashes as the `str` it holds, so a table of keys can be searched with a `&str`.
impl std::hash::Hash for IdKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq for IdKey {
    fn eq(&self, other: &IdKey) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IdKey {}
