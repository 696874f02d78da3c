//! Named points in the use cases that race between nodes, where a test can
//! hold one node's transaction open until another node's has begun: two
//! approvals of one request at the same moment, two first-operator
//! bootstraps. Without a hook (every server) a point costs one load.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use shomei_core::Operation;

/// Where a use case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePoint {
    /// Just before the change's write transaction begins (the operator's
    /// password hashed).
    Begin(Operation),
    /// The write transaction open and what it decides on read (an
    /// approval: the request; the first operator: the count of operators).
    InTransaction(Operation),
}

/// Called at every point; the use case goes on once its future is done.
pub type PauseHook =
    Arc<dyn Fn(PausePoint) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The hook of one service, set at most once (by the tests' handle).
#[derive(Default)]
pub(crate) struct Pauses(pub(crate) OnceLock<PauseHook>);

impl Pauses {
    pub(crate) async fn at(&self, point: PausePoint) {
        if let Some(hook) = self.0.get() {
            hook(point).await;
        }
    }
}
