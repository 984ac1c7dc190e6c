//! A bounded pool of database connections.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use crate::error::Result;

/// At most `max` connections, opened on demand and kept for reuse; a caller
/// beyond `max` waits for one to come back, so that a burst of requests
/// cannot exhaust the database's connections.
pub(crate) struct Pool<C> {
    state: Mutex<PoolState<C>>,
    returned: Condvar,
    max: usize,
    connect: Box<dyn Fn() -> Result<C> + Send + Sync>,
}

struct PoolState<C> {
    idle: Vec<C>,
    /// Connections in use or idle.
    open: usize,
}

impl<C> Pool<C> {
    pub(crate) fn new(
        max: usize,
        idle: Vec<C>,
        connect: Box<dyn Fn() -> Result<C> + Send + Sync>,
    ) -> Pool<C> {
        Pool {
            state: Mutex::new(PoolState {
                open: idle.len(),
                idle,
            }),
            returned: Condvar::new(),
            max,
            connect,
        }
    }

    pub(crate) fn take(&self) -> Result<C> {
        let mut state = locked(&self.state);
        loop {
            if let Some(c) = state.idle.pop() {
                return Ok(c);
            }
            if state.open < self.max {
                state.open += 1;
                drop(state);
                return (self.connect)().inspect_err(|_| self.lose());
            }
            state = self
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Gives a connection back, or forgets it when it is broken.
    pub(crate) fn give(&self, c: C, broken: bool) {
        if broken {
            return self.lose();
        }
        locked(&self.state).idle.push(c);
        self.returned.notify_one();
    }

    fn lose(&self) {
        locked(&self.state).open -= 1;
        self.returned.notify_one();
    }
}

/// A mutex's guard. A panic elsewhere while holding it leaves nothing half
/// done (every write is in a transaction, a pool's state is counts and a
/// list), so poisoning is ignored.
pub(crate) fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
