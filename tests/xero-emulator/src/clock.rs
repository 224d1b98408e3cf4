use std::sync::{Arc, Mutex};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The emulator's notion of "now". Every expiry (codes, tokens, rate-limit windows) and every
/// timestamp the emulator writes reads this clock, so tests move time instead of sleeping.
#[derive(Clone, Debug)]
pub struct Clock(Arc<Mutex<DateTime<Utc>>>);

impl Clock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Clock(Arc::new(Mutex::new(truncate_ms(start))))
    }

    /// A clock that starts at the real current time (to the millisecond, like Xero's dates).
    pub fn starting_now() -> Self {
        Self::new(Utc::now())
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.lock()
    }

    pub fn advance(&self, by: std::time::Duration) {
        let delta = TimeDelta::from_std(by).unwrap_or(TimeDelta::MAX);
        let mut now = self.lock();
        *now = now.checked_add_signed(delta).unwrap_or(*now);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self.lock() = truncate_ms(to);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DateTime<Utc>> {
        // A poisoned clock still holds a valid instant; keep serving it.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::milliseconds(1)).unwrap_or(t)
}
