//! The one selection step: which records a query reads (partitions and
//! resume points, set, secondary index, filter expression), handed out one
//! partition at a time, each record read from the store when its turn comes.
//!
//! Within a partition records come in digest order (index queries: index
//! value, then digest), so "resume after this digest (and value)" picks up
//! exactly where a client left off.

use std::collections::HashSet;

use crate::sandbox::expr::{Filter, Subject};
use crate::sandbox::jobs::Job;
use crate::sandbox::sindex::{Index, Key, KeyType};
use crate::sandbox::store::{self, Digest, Record, Store};

use super::request::{N_PARTITIONS, Partitions, partition_of};

/// A record the selection picked.
pub struct Selected {
    pub digest: Digest,
    pub record: Record,
    /// The index value it matched (index queries).
    pub bval: Option<u64>,
}

pub struct Selection<'a> {
    pub store: &'a Store,
    pub ns: &'a str,
    pub set: Option<&'a str>,
    pub partitions: &'a Partitions,
    pub index: Option<super::IndexUse>,
    pub filter: Option<Filter>,
    /// Counters, progress and the stop flag.
    pub job: &'a Job,
}

/// Candidates of one partition: (index key, digest), in order.
type Candidates = Vec<(Option<Key>, Digest)>;

impl Selection<'_> {
    /// Calls `visit` once per partition that has candidates, with an
    /// iterator over its matching records. `visit` answers false to stop.
    pub fn for_each_partition(
        &self,
        visit: &mut dyn FnMut(u16, &mut dyn Iterator<Item = Selected>) -> bool,
    ) {
        match &self.index {
            None => {
                for shard in 0..store::SHARDS {
                    if self.job.stopping() {
                        return;
                    }
                    let mut digests = self
                        .store
                        .shard_digests(self.ns, shard, |d| self.partitions.wants(d));
                    digests.sort_unstable_by_key(|d| (partition_of(d), *d));
                    let all: Candidates = digests.into_iter().map(|d| (None, d)).collect();
                    let go_on = self.visit_groups(all, visit);
                    // Every wanted partition of this shard is now handed out.
                    self.job
                        .partitions_done((N_PARTITIONS / store::SHARDS) as u32);
                    if !go_on {
                        return;
                    }
                }
            }
            Some((index, lookup)) => {
                let entries = match index.matching(lookup, |d| self.partitions.wants(d)) {
                    Ok(entries) => entries,
                    Err(e) => {
                        tracing::debug!("index lookup: {e}");
                        Vec::new()
                    }
                };
                let mut all: Vec<(u16, Key, Digest)> = entries
                    .into_iter()
                    .map(|(k, d)| (partition_of(&d), k, d))
                    .collect();
                all.sort_unstable();
                let all: Candidates = all.into_iter().map(|(_, k, d)| (Some(k), d)).collect();
                self.visit_groups(all, visit);
                self.job.partitions_done(N_PARTITIONS as u32);
            }
        }
    }

    /// Splits sorted candidates by partition and visits each group that
    /// yields at least one record.
    fn visit_groups(
        &self,
        all: Candidates,
        visit: &mut dyn FnMut(u16, &mut dyn Iterator<Item = Selected>) -> bool,
    ) -> bool {
        let mut rest = all.as_slice();
        while let Some((_, first)) = rest.first() {
            let pid = partition_of(first);
            let n = rest
                .iter()
                .position(|(_, d)| partition_of(d) != pid)
                .unwrap_or(rest.len());
            let (group, tail) = rest.split_at(n);
            rest = tail;
            let mut records = PartitionRecords {
                sel: self,
                pid,
                group: group.iter(),
                seen: HashSet::new(),
            }
            .peekable();
            // A partition with nothing that matches is not visited at all.
            if records.peek().is_some() && !visit(pid, &mut records) {
                return false;
            }
            if self.job.stopping() {
                return false;
            }
        }
        true
    }

    /// Whether a candidate lies after the client's resume point.
    fn after_resume(&self, pid: u16, key: Option<&Key>, digest: &Digest) -> bool {
        let Some((rd, rb)) = self.partitions.resume(pid) else {
            return true;
        };
        match key {
            Some(Key::Int(i)) => (*i, digest) > (*rb as i64, rd),
            _ => digest > rd,
        }
    }

    /// Reads a candidate and checks it still matches.
    fn pick(&self, key: Option<&Key>, digest: &Digest) -> Option<Selected> {
        let record = self.store.get(self.ns, digest)?;
        if let Some(set) = self.set
            && record.set.as_deref() != Some(set)
        {
            return None;
        }
        if let (Some((index, lookup)), Some(key)) = (&self.index, key) {
            // The record may have changed since the index was read.
            let keys = index.keys_of(&record);
            if !keys.contains(key) || !Index::key_matches(key, lookup) {
                return None;
            }
        }
        if let Some(filter) = &self.filter {
            let subject = Subject {
                ns: self.ns,
                digest,
                record: &record,
            };
            if !filter.matches(&subject).unwrap_or(false) {
                let counter = if filter.fails_on_metadata(&subject) {
                    &self.job.filtered_meta
                } else {
                    &self.job.filtered_bins
                };
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return None;
            }
        }
        let bval = match (&self.index, key) {
            (Some((index, _)), Some(k)) if index.def.key_type != KeyType::Geo2dsphere => {
                Some(k.bval())
            }
            (Some(_), Some(_)) => Some(0),
            _ => None,
        };
        Some(Selected {
            digest: *digest,
            record,
            bval,
        })
    }
}

struct PartitionRecords<'s, 'a> {
    sel: &'s Selection<'a>,
    pid: u16,
    group: std::slice::Iter<'s, (Option<Key>, Digest)>,
    /// Collection indexes list a record once per matching element.
    seen: HashSet<Digest>,
}

impl Iterator for PartitionRecords<'_, '_> {
    type Item = Selected;

    fn next(&mut self) -> Option<Selected> {
        for (key, digest) in self.group.by_ref() {
            if self.sel.job.stopping() {
                return None;
            }
            if !self.sel.after_resume(self.pid, key.as_ref(), digest) {
                continue;
            }
            if key.is_some() && !self.seen.insert(*digest) {
                continue;
            }
            if let Some(selected) = self.sel.pick(key.as_ref(), digest) {
                return Some(selected);
            }
        }
        None
    }
}
