//! The memory of the requests in flight, counted in bytes: what a body
//! takes while it arrives, then what its request takes once converted,
//! until the request is answered (`max_in_flight_bytes`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The budget is counted in KiB so that a `u32` of permits covers 4 TiB.
const UNIT: u64 = 1024;

/// The bytes all requests in flight of one source may take.
pub(crate) struct Budget {
    permits: Arc<Semaphore>,
    /// The whole budget, in bytes (rounded down to whole KiB).
    total: u64,
}

/// Why bytes could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Short {
    /// More than the whole budget: it could never be held.
    Never,
    /// Other requests hold the rest of the budget now.
    Now,
}

/// Bytes held by one request, given back when it is dropped.
#[derive(Debug, Default)]
pub(crate) struct Held {
    permit: Option<OwnedSemaphorePermit>,
}

impl Held {
    /// The bytes held (whole KiB).
    pub(crate) fn bytes(&self) -> u64 {
        self.permit.as_ref().map_or(0, |p| p.num_permits() as u64) * UNIT
    }

    fn add(&mut self, more: OwnedSemaphorePermit) {
        match &mut self.permit {
            Some(permit) => permit.merge(more),
            None => self.permit = Some(more),
        }
    }
}

impl Budget {
    /// A budget of `bytes` (at least 1 KiB, at most `u32::MAX` KiB).
    pub(crate) fn new(bytes: u64) -> Self {
        let units = (bytes / UNIT).clamp(1, u64::from(u32::MAX));
        Budget {
            permits: Arc::new(Semaphore::new(units as usize)),
            total: units * UNIT,
        }
    }

    /// The whole budget, in bytes.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The units `held` lacks to cover `bytes`, or `Short::Never` when no
    /// request may ever hold that much.
    fn missing(&self, held: &Held, bytes: u64) -> Result<u32, Short> {
        if bytes > self.total {
            return Err(Short::Never);
        }
        let want = bytes.div_ceil(UNIT);
        let have = held.bytes() / UNIT;
        // `want` <= total units <= u32::MAX.
        Ok(u32::try_from(want.saturating_sub(have)).unwrap_or(u32::MAX))
    }

    /// Grows `held` to cover `bytes` if the budget has room now.
    pub(crate) fn try_grow(&self, held: &mut Held, bytes: u64) -> Result<(), Short> {
        let missing = self.missing(held, bytes)?;
        if missing == 0 {
            return Ok(());
        }
        let more = self
            .permits
            .clone()
            .try_acquire_many_owned(missing)
            .map_err(|_| Short::Now)?;
        held.add(more);
        Ok(())
    }

    /// Grows `held` to cover `bytes`, waiting at most `wait` for room.
    pub(crate) async fn grow_within(
        &self,
        held: &mut Held,
        bytes: u64,
        wait: Duration,
    ) -> Result<(), Short> {
        let missing = self.missing(held, bytes)?;
        if missing == 0 {
            return Ok(());
        }
        let acquire = self.permits.clone().acquire_many_owned(missing);
        match tokio::time::timeout(wait, acquire).await {
            Ok(Ok(more)) => {
                held.add(more);
                Ok(())
            }
            // A timeout, or the semaphore closed (never done).
            _ => Err(Short::Now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: bytes are held until dropped, a request cannot take
    /// more than the rest of the budget, and more than the whole budget
    /// is refused for good.
    #[tokio::test]
    async fn bytes_are_held_until_dropped() {
        let budget = Budget::new(10 * UNIT);
        let mut a = Held::default();
        budget.try_grow(&mut a, 1).expect("room");
        assert_eq!(a.bytes(), UNIT);
        budget.try_grow(&mut a, 6 * UNIT).expect("room");
        assert_eq!(a.bytes(), 6 * UNIT);
        let mut b = Held::default();
        assert_eq!(budget.try_grow(&mut b, 5 * UNIT), Err(Short::Now));
        assert_eq!(
            budget.grow_within(&mut b, 5 * UNIT, Duration::ZERO).await,
            Err(Short::Now)
        );
        assert_eq!(budget.try_grow(&mut b, 11 * UNIT), Err(Short::Never));
        drop(a);
        budget
            .grow_within(&mut b, 10 * UNIT, Duration::from_millis(10))
            .await
            .expect("room once a is gone");
        assert_eq!(b.bytes(), 10 * UNIT);
    }
}
