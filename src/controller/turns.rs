//! Reconciles take turns in the order they fell due.
//!
//! kube-runtime's own limit (`controller::Config::concurrency`) holds the reconciles it cannot
//! start yet in a `HashSet` and starts them in that set's order (kube-runtime 5.0.0,
//! `scheduler.rs`): while more fall due than can run, as when thousands of stacks are created
//! at once, the stacks early in that order are served again and again and the others wait
//! without bound. So kube-runtime starts every due reconcile at once, and each first waits here
//! for one of a few slots, handed out first come, first served (tokio's semaphore is fair).
//! kube-runtime still runs at most one reconcile of a stack at a time and folds the triggers
//! that come meanwhile into one.

use std::future::Future;

use tokio::sync::Semaphore;

pub struct Turns {
    slots: Semaphore,
}

impl Turns {
    pub fn new(slots: usize) -> Self {
        Self {
            slots: Semaphore::new(slots),
        }
    }

    /// Run `work` once a slot is free, in the order of the calls; `None` once [`Turns::close`]d.
    /// `work` is called only then: a reconcile that waits holds no more than its closure, and
    /// reads the stack when its turn comes, not when it fell due.
    pub async fn run<F: Future>(&self, work: impl FnOnce() -> F) -> Option<F::Output> {
        let _slot = self.slots.acquire().await.ok()?;
        // Boxed: the waiting future stays the size of the closure, not of the reconcile.
        Some(Box::pin(work()).await)
    }

    /// Every waiting and later [`Turns::run`] returns `None` at once; those running finish.
    pub fn close(&self) {
        self.slots.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn turns_go_in_the_order_they_were_asked_for() {
        let turns = Arc::new(Turns::new(1));
        let order = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(tokio::sync::Notify::new());
        // The first holds the only slot until the others are all waiting.
        let first = {
            let (turns, gate) = (turns.clone(), gate.clone());
            tokio::spawn(async move { turns.run(|| gate.notified()).await })
        };
        tokio::task::yield_now().await;
        let mut waiting = Vec::new();
        for n in [5, 3, 9, 1, 7] {
            let (turns, order) = (turns.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                turns.run(|| async { order.lock().unwrap().push(n) }).await
            }));
            tokio::task::yield_now().await;
        }
        gate.notify_one();
        first.await.unwrap().unwrap();
        for task in waiting {
            task.await.unwrap().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), [5, 3, 9, 1, 7]);
    }

    #[tokio::test]
    async fn closing_ends_the_waiting_turns_without_running_them() {
        let turns = Arc::new(Turns::new(1));
        let gate = Arc::new(tokio::sync::Notify::new());
        let running = {
            let (turns, gate) = (turns.clone(), gate.clone());
            tokio::spawn(async move { turns.run(|| async move { gate.notified().await }).await })
        };
        tokio::task::yield_now().await;
        let ran = Arc::new(Mutex::new(false));
        let waiting = {
            let (turns, ran) = (turns.clone(), ran.clone());
            tokio::spawn(async move {
                turns
                    .run(|| async move { *ran.lock().unwrap() = true })
                    .await
            })
        };
        tokio::task::yield_now().await;
        turns.close();
        assert_eq!(waiting.await.unwrap(), None);
        assert!(!*ran.lock().unwrap(), "a waiting turn ran after the close");
        gate.notify_one();
        assert_eq!(running.await.unwrap(), Some(()), "the running one finishes");
        assert_eq!(turns.run(|| async {}).await, None);
    }
}
