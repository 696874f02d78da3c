//! Certificates: issuance and renewal, revocation, the CRLs, the OCSP
//! responder, the in-memory revocation set and whether this server's view
//! of it is current.

pub(crate) mod crl;
pub(crate) mod enroll;
pub(crate) mod ocsp;
pub(crate) mod revocation;
pub(crate) mod revoke;
pub(crate) mod revset;
pub(crate) mod snapshot;
pub(crate) mod view;
