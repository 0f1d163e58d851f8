//! Locks that outlive a panicking holder.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking the data over from a holder that panicked. Only for data that every update
/// leaves whole (each update is one call or one assignment), so a poisoned lock still holds a
/// consistent value; a frame that fails must not take the daemon's shared state down with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_opens() {
        let m = std::sync::Arc::new(Mutex::new(3));
        let m2 = std::sync::Arc::clone(&m);
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("holder dies");
        })
        .join();
        assert!(m.is_poisoned());
        assert_eq!(*lock(&m), 3);
    }
}
