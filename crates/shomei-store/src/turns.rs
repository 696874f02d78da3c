//! Turns at SQLite's one writer. Every write transaction waits for the one
//! write connection; under a flood of logins dozens wait, each for every
//! transaction ahead of it. A returning customer's login (a valid device
//! cookie) takes the next turn instead: it waits for the transaction under
//! way, not for the queue. PostgreSQL has a pool of connections and row
//! locks, and takes no turns.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

#[derive(Default)]
struct State {
    held: bool,
    first: VecDeque<oneshot::Sender<()>>,
    rest: VecDeque<oneshot::Sender<()>>,
}

/// Who writes next: those waiting `first`, then the others, each in the
/// order they came.
#[derive(Default)]
pub(crate) struct Turns {
    state: Mutex<State>,
    /// Turns given to a `first` wait while others were waiting.
    ahead: AtomicU64,
}

/// A turn at the writer, held until the transaction ends.
pub(crate) struct Turn(Arc<Turns>);

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.pass();
    }
}

/// A wait for a turn; dropped (a cancelled request), it gives back a turn
/// handed to it meanwhile.
struct Waiting {
    rx: Option<oneshot::Receiver<()>>,
    turns: Arc<Turns>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            rx.close();
            if rx.try_recv().is_ok() {
                self.turns.pass();
            }
        }
    }
}

impl Turns {
    /// Waits for a turn: `first` goes before every wait that is not.
    pub(crate) async fn take(self: &Arc<Self>, first: bool) -> Turn {
        let rx = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if !s.held {
                s.held = true;
                return Turn(self.clone());
            }
            let (tx, rx) = oneshot::channel();
            if first {
                s.first.push_back(tx);
            } else {
                s.rest.push_back(tx);
            }
            rx
        };
        let mut waiting = Waiting {
            rx: Some(rx),
            turns: self.clone(),
        };
        if let Some(rx) = waiting.rx.as_mut() {
            // An error: the sender went without a turn (never: `pass`
            // only drops senders whose receiver is gone). Taken as a turn
            // all the same, which `Turn`'s drop passes on.
            let _ = rx.await;
        }
        waiting.rx = None;
        Turn(self.clone())
    }

    /// How many wait now, and how many turns went to a `first` wait ahead
    /// of others (for the metrics).
    pub(crate) fn figures(&self) -> (usize, u64) {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (
            s.first.len() + s.rest.len(),
            self.ahead.load(Ordering::Relaxed),
        )
    }

    /// Hands the turn to the next waiting (first those `first`), or frees it.
    fn pass(&self) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if !s.first.is_empty() && !s.rest.is_empty() {
                self.ahead.fetch_add(1, Ordering::Relaxed);
            }
            let next = s.first.pop_front().or_else(|| s.rest.pop_front());
            match next {
                // Its receiver is gone (a cancelled wait): the next one.
                Some(tx) => {
                    if tx.send(()).is_ok() {
                        return;
                    }
                }
                None => {
                    s.held = false;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_first_wait_goes_before_the_others_waiting() {
        let turns = Arc::new(Turns::default());
        let held = turns.take(false).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, first) in [("rest 1", false), ("rest 2", false), ("first", true)] {
            let (t, order) = (turns.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _t = t.take(first).await;
                order.lock().unwrap().push(name);
            }));
            // Each is waiting before the next comes.
            let waiting = |t: &Turns| {
                let s = t.state.lock().unwrap();
                s.first.len() + s.rest.len()
            };
            while waiting(&turns) < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["first", "rest 1", "rest 2"]);
        assert!(!turns.state.lock().unwrap().held, "the last turn freed it");
    }

    #[tokio::test]
    async fn a_cancelled_wait_does_not_keep_the_turn() {
        let turns = Arc::new(Turns::default());
        let held = turns.take(false).await;
        let waiting = {
            let turns = turns.clone();
            tokio::spawn(async move {
                let _t = turns.take(false).await;
                std::future::pending::<()>().await;
            })
        };
        while turns.state.lock().unwrap().rest.is_empty() {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        let _ = waiting.await;
        drop(held);
        // Not held by the cancelled wait: the next take gets it at once.
        let t = tokio::time::timeout(std::time::Duration::from_secs(5), turns.take(false)).await;
        assert!(t.is_ok(), "the turn came back");
    }
}
