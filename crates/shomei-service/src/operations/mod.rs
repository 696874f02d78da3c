//! The bank's operation of the service: the operator's tasks, e-mail
//! notices, metrics and the demo company.

pub(crate) mod demo;
pub(crate) mod metrics;
pub(crate) mod notices;
pub(crate) mod operator;
