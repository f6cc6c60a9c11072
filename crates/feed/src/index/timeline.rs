//! A list of posts by time: an author's posts of the window, or a hashtag's.

use std::collections::VecDeque;

use super::PostKey;

/// `(create_time, post)` pairs in order, oldest first. A sorted ring buffer rather than a
/// tree: posts mostly arrive newest last and leave oldest first (both O(1) at the ends), and a
/// feed reads each list as one binary search and a backward scan over contiguous memory.
#[derive(Debug, Default, Clone)]
pub(super) struct TimeList(VecDeque<(i64, PostKey)>);

impl TimeList {
    /// Adds an entry (once).
    pub fn insert(&mut self, entry: (i64, PostKey)) {
        if let Err(at) = self.0.binary_search(&entry) {
            self.0.insert(at, entry);
        }
    }

    /// Removes an entry; whether it was there.
    pub fn remove(&mut self, entry: &(i64, PostKey)) -> bool {
        match self.0.binary_search(entry) {
            Ok(at) => self.0.remove(at).is_some(),
            Err(_) => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Every entry, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &(i64, PostKey)> + '_ {
        self.0.iter()
    }

    /// The newest `take` entries with a time in `[since, as_of]`, newest first.
    pub fn newest(
        &self,
        since: i64,
        as_of: i64,
        take: usize,
    ) -> impl Iterator<Item = (i64, PostKey)> + '_ {
        let start = self.0.partition_point(|(t, _)| *t < since);
        let end = self.0.partition_point(|(t, _)| *t <= as_of).max(start);
        self.0.range(start..end).rev().take(take).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_reads_the_newest_within_bounds() {
        let mut list = TimeList::default();
        for (t, k) in [(5, 1), (1, 2), (9, 3), (5, 0), (7, 4), (5, 1)] {
            list.insert((t, k));
        }
        assert_eq!(
            list.newest(i64::MIN, i64::MAX, 10).collect::<Vec<_>>(),
            [(9, 3), (7, 4), (5, 1), (5, 0), (1, 2)]
        );
        assert_eq!(list.newest(5, 7, 2).collect::<Vec<_>>(), [(7, 4), (5, 1)]);
        assert_eq!(list.newest(8, 3, 5).count(), 0, "an empty window");
        assert!(list.remove(&(5, 1)));
        assert!(!list.remove(&(5, 1)));
        assert_eq!(list.newest(2, 6, 5).collect::<Vec<_>>(), [(5, 0)]);
        list.clear();
        assert!(list.is_empty());
    }
}
