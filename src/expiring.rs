//! `ExpiringMap`: a per-key map whose memory is bounded by time and by count.
//!
//! Every per-key map fed from outside input (the denial recorder's per-object throttle, the
//! audit 403 trackers) uses it: an entry expires `ttl` after it was last written, and the map
//! never holds more than `cap` entries. When a new key arrives at the cap, expired entries are
//! swept first; if that frees nothing, the oldest eighth is evicted (a flood of new keys costs
//! amortised O(1) per insert, never O(n)).
//!
//! The methods without `_at` read the monotonic clock; the `_at` variants take it, for tests.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Slot<V> {
    value: V,
    written: Instant,
}

#[derive(Debug)]
pub struct ExpiringMap<K, V> {
    entries: HashMap<K, Slot<V>>,
    ttl: Duration,
    cap: usize,
    /// When expired entries are next swept even below the cap (so idle memory is returned).
    next_sweep: Option<Instant>,
}

impl<K: Eq + Hash, V> ExpiringMap<K, V> {
    /// A map whose entries live `ttl` after their last write, at most `cap` of them (min 1).
    pub fn new(ttl: Duration, cap: usize) -> Self {
        ExpiringMap {
            entries: HashMap::new(),
            ttl,
            cap: cap.max(1),
            next_sweep: None,
        }
    }

    /// Entries held, expired ones not yet swept included (never more than the cap).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn live(&self, slot: &Slot<V>, now: Instant) -> bool {
        now.saturating_duration_since(slot.written) < self.ttl
    }

    /// The value, unless it expired.
    pub fn get_at<Q>(&self, key: &Q, now: Instant) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries
            .get(key)
            .filter(|slot| self.live(slot, now))
            .map(|slot| &slot.value)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_at(key, Instant::now())
    }

    /// Sets the value and restarts its lifetime; returns the previous live value.
    pub fn insert_at(&mut self, key: K, value: V, now: Instant) -> Option<V> {
        if !self.entries.contains_key(&key) {
            self.make_room(now);
        }
        let previous = self.entries.insert(
            key,
            Slot {
                value,
                written: now,
            },
        )?;
        self.live(&previous, now).then_some(previous.value)
    }

    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.insert_at(key, value, Instant::now())
    }

    /// The live value for `key` (a fresh `make()` if it was missing or expired), with its
    /// lifetime restarted.
    pub fn get_or_insert_with_at(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
        now: Instant,
    ) -> &mut V {
        match self.entries.get(&key).map(|slot| self.live(slot, now)) {
            None => self.make_room(now),
            Some(false) => {
                self.entries.remove(&key);
            }
            Some(true) => {}
        }
        let slot = self.entries.entry(key).or_insert_with(|| Slot {
            value: make(),
            written: now,
        });
        slot.written = now;
        &mut slot.value
    }

    pub fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.remove(key).map(|slot| slot.value)
    }

    /// `HashMap::entry`-like access on the monotonic clock: `map.entry(k).or_default()`.
    pub fn entry(&mut self, key: K) -> Entry<'_, K, V> {
        Entry { map: self, key }
    }

    /// Drops expired entries; at the cap, also the oldest eighth.
    fn make_room(&mut self, now: Instant) {
        let sweep_due = self.next_sweep.is_none_or(|at| now >= at);
        if sweep_due || self.entries.len() >= self.cap {
            let ttl = self.ttl;
            self.entries
                .retain(|_, slot| now.saturating_duration_since(slot.written) < ttl);
            self.next_sweep = Some(now + ttl.max(Duration::from_millis(1)));
        }
        if self.entries.len() >= self.cap {
            let mut ages: Vec<Instant> = self.entries.values().map(|s| s.written).collect();
            let nth = ages.len() / 8;
            let (_, oldest_kept, _) = ages.select_nth_unstable(nth);
            let threshold = *oldest_kept;
            // Exactly nth + 1 of the oldest go (ties beyond that stay).
            let mut evict = nth + 1;
            self.entries.retain(|_, slot| {
                let old = evict > 0 && slot.written <= threshold;
                evict -= usize::from(old);
                !old
            });
        }
    }
}

/// A vacant-or-occupied slot of an [`ExpiringMap`], as `HashMap::entry` gives.
pub struct Entry<'a, K, V> {
    map: &'a mut ExpiringMap<K, V>,
    key: K,
}

impl<'a, K: Eq + Hash, V> Entry<'a, K, V> {
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        self.map
            .get_or_insert_with_at(self.key, make, Instant::now())
    }

    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn entries_expire_ttl_after_their_last_write() {
        let t0 = Instant::now();
        let mut map = ExpiringMap::new(TTL, 100);
        map.insert_at("a", 1, t0);
        assert_eq!(map.get_at("a", t0 + Duration::from_secs(59)), Some(&1));
        assert_eq!(map.get_at("a", t0 + TTL), None);
        // A write restarts the lifetime; a read does not.
        map.insert_at("a", 2, t0 + Duration::from_secs(30));
        assert_eq!(map.get_at("a", t0 + Duration::from_secs(89)), Some(&2));
        assert_eq!(map.get_at("a", t0 + Duration::from_secs(90)), None);
    }

    #[test]
    fn an_expired_value_is_replaced_not_resumed() {
        let t0 = Instant::now();
        let mut map: ExpiringMap<&str, Vec<u32>> = ExpiringMap::new(TTL, 100);
        map.get_or_insert_with_at("a", Vec::new, t0).push(1);
        map.get_or_insert_with_at("a", Vec::new, t0 + Duration::from_secs(1))
            .push(2);
        assert_eq!(
            map.get_at("a", t0 + Duration::from_secs(2)),
            Some(&vec![1, 2])
        );
        let later = t0 + Duration::from_secs(1) + TTL;
        assert!(map.get_or_insert_with_at("a", Vec::new, later).is_empty());
        assert_eq!(map.insert_at("a", vec![9], later + TTL), None, "expired");
    }

    #[test]
    fn a_flood_of_new_keys_never_exceeds_the_cap_and_keeps_the_newest() {
        let t0 = Instant::now();
        let mut map = ExpiringMap::new(TTL, 1_000);
        for i in 0..100_000u64 {
            map.insert_at(i, i, t0 + Duration::from_micros(i));
            assert!(map.len() <= 1_000);
        }
        assert_eq!(
            map.get_at(&99_999, t0 + Duration::from_secs(1)),
            Some(&99_999)
        );
        assert_eq!(map.get_at(&0, t0 + Duration::from_secs(1)), None);
    }

    #[test]
    fn expired_entries_are_swept_when_new_keys_arrive() {
        let t0 = Instant::now();
        let mut map = ExpiringMap::new(TTL, 1_000);
        for i in 0..500u32 {
            map.insert_at(i, (), t0);
        }
        map.insert_at(1_000, (), t0 + TTL + TTL);
        assert_eq!(map.len(), 1, "the 500 expired entries were dropped");
    }

    #[test]
    fn entry_or_default_reads_like_a_hash_map() {
        let mut map: ExpiringMap<String, u32> = ExpiringMap::new(TTL, 10);
        *map.entry("x".into()).or_default() += 1;
        *map.entry("x".into()).or_default() += 1;
        assert_eq!(map.get("x"), Some(&2));
        assert_eq!(map.remove("x"), Some(2));
        assert!(map.is_empty());
    }
}
