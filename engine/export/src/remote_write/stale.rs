//! Staleness markers for series that stopped: Prometheus marks a scraped
//! series stale as soon as a scrape misses it; a pushed series has no
//! scrape, so the exporter remembers when it last sent each series and,
//! once one has not come for `stale_after`, sends one staleness NaN for it
//! with the next batch and forgets it.
//!
//! The memory is bounded: at most [`MAX_TRACKED_SERIES`] series are
//! remembered; a new series beyond that gets no marker (its samples are
//! sent as usual, and Prometheus' 5-minute lookback ends it).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::proto::Label;

/// The most series remembered for staleness markers.
pub const MAX_TRACKED_SERIES: usize = 100_000;

/// When each series was last sent, and whether it holds native histograms
/// (its marker is then a histogram).
#[derive(Debug)]
pub(crate) struct Staleness {
    last_seen: HashMap<Vec<Label>, (Instant, bool)>,
    capacity: usize,
}

impl Staleness {
    /// An empty memory of at most `capacity` series.
    pub fn new(capacity: usize) -> Self {
        Staleness {
            last_seen: HashMap::new(),
            capacity,
        }
    }

    /// Remembers that `labels` (a native-histogram series if `histogram`)
    /// was sent at `now`.
    pub fn seen(&mut self, labels: &[Label], histogram: bool, now: Instant) {
        if let Some(entry) = self.last_seen.get_mut(labels) {
            *entry = (now, histogram);
        } else if self.last_seen.len() < self.capacity {
            self.last_seen.insert(labels.to_vec(), (now, histogram));
        }
    }

    /// The series not seen for `stale_after` before `now`, with whether
    /// each holds native histograms.
    pub fn expired(&self, now: Instant, stale_after: Duration) -> Vec<(Vec<Label>, bool)> {
        self.last_seen
            .iter()
            .filter(|(_, (at, _))| now.saturating_duration_since(*at) >= stale_after)
            .map(|(labels, (_, histogram))| (labels.clone(), *histogram))
            .collect()
    }

    /// Forgets the series whose markers were sent, unless they were seen
    /// again since `before`.
    pub fn forget(&mut self, series: &[(Vec<Label>, bool)], before: Instant) {
        for (labels, _) in series {
            if self
                .last_seen
                .get(labels)
                .is_some_and(|(at, _)| *at < before)
            {
                self.last_seen.remove(labels);
            }
        }
    }

    /// How many series are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.last_seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Vec<Label> {
        vec![Label {
            name: "__name__".to_string(),
            value: name.to_string(),
        }]
    }

    /// Guarantees: a series unseen for `stale_after` expires once, a series
    /// seen again does not, and the memory never exceeds its capacity.
    #[test]
    fn expiry_and_bound() {
        let start = Instant::now();
        let mut s = Staleness::new(2);
        s.seen(&labels("a"), false, start);
        s.seen(&labels("b"), true, start);
        s.seen(&labels("c"), false, start);
        assert_eq!(s.len(), 2, "capacity holds");

        let later = start + Duration::from_secs(60);
        s.seen(&labels("a"), false, later);
        let expired = s.expired(later, Duration::from_secs(30));
        assert_eq!(expired, vec![(labels("b"), true)]);
        s.forget(&expired, later);
        assert_eq!(s.len(), 1);
        assert!(s.expired(later, Duration::from_secs(30)).is_empty());
    }
}
