//! [`QueryPool`]: one query's memory, limited twice — by the query's own
//! limit (`[query] memory_limit`) and by what every running query holds
//! together (`[query] total_memory_limit`, one [`GreedyMemoryPool`] shared
//! by the whole service).

use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
    TrackConsumersPool,
};

use crate::error::{TOTAL_MEMORY_KEY, bytes};

/// A query's memory pool: a reservation grows only if both the query's own
/// pool and the shared total have room.
#[derive(Debug)]
pub(crate) struct QueryPool {
    own: TrackConsumersPool<GreedyMemoryPool>,
    total: Arc<GreedyMemoryPool>,
    total_limit: u64,
}

impl QueryPool {
    /// A pool of `limit` bytes for one query, drawing on `total` (whose
    /// size is `total_limit`).
    pub(crate) fn new(limit: u64, total: Arc<GreedyMemoryPool>, total_limit: u64) -> Self {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let top_consumers = NonZeroUsize::new(5).unwrap_or(NonZeroUsize::MIN);
        QueryPool {
            own: TrackConsumersPool::new(GreedyMemoryPool::new(limit), top_consumers),
            total,
            total_limit,
        }
    }
}

impl fmt::Display for QueryPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "query({}, total: {})", self.own, self.total)
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "weir-query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.own.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.own.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.own.grow(reservation, additional);
        self.total.grow(reservation, additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.own.shrink(reservation, shrink);
        self.total.shrink(reservation, shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        self.own.try_grow(reservation, additional)?;
        if self.total.try_grow(reservation, additional).is_err() {
            self.own.shrink(reservation, additional);
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the queries running now hold all of the {} that queries may use together \
                 ({TOTAL_MEMORY_KEY}); {} more were asked for by {}: try again when fewer \
                 queries run, or raise the limit",
                bytes(self.total_limit),
                additional,
                reservation.consumer().name()
            )));
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.own.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.own.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two queries within their own limits are refused once together they
    /// pass the total; memory released by one is free for the other.
    #[test]
    fn the_total_binds_queries_together() {
        let total = Arc::new(GreedyMemoryPool::new(100));
        let a: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(80, total.clone(), 100));
        let b: Arc<dyn MemoryPool> = Arc::new(QueryPool::new(80, total.clone(), 100));
        let ra = MemoryConsumer::new("sort a").register(&a);
        let rb = MemoryConsumer::new("sort b").register(&b);
        ra.try_grow(60).expect("a fits");
        let refused = rb.try_grow(60).expect_err("b passes the total");
        assert!(refused.to_string().contains(TOTAL_MEMORY_KEY), "{refused}");
        assert_eq!(b.reserved(), 0, "a refused growth is not kept");
        assert_eq!(total.reserved(), 60);
        rb.try_grow(40).expect("what is left of the total");
        let own = ra.try_grow(30).expect_err("a passes its own limit");
        assert!(!own.to_string().contains(TOTAL_MEMORY_KEY), "{own}");
        drop(ra);
        assert_eq!(total.reserved(), 40, "a's memory went back to the total");
        rb.try_grow(40).expect("b may use what a gave back");
    }
}
