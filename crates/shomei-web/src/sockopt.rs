//! The one socket option the server sets that neither rustix nor socket2
//! has a safe call for: `TCP_DEFER_ACCEPT` on the PKI listener, so that
//! `accept` hands over a connection once its request has come (as nginx's
//! `listen … deferred` does). The crate denies `unsafe` code; this module
//! alone allows it, for one `setsockopt`.
#![allow(unsafe_code)]

use std::os::fd::AsFd;

/// Makes `listener` hand over a connection only once data has come on it,
/// or once about `seconds` have passed without (Linux; elsewhere, nothing).
#[cfg(target_os = "linux")]
pub(crate) fn defer_accept(listener: &impl AsFd, seconds: u32) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(seconds).unwrap_or(libc::c_int::MAX);
    let fd = listener.as_fd();
    // SAFETY: `fd` is an open socket, borrowed for the duration of the
    // call; the kernel reads `size_of::<c_int>()` bytes from `&value`, a
    // live `c_int` of exactly that size, and keeps no pointer to it.
    let done = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere, connections are handed over as they are made.
#[cfg(not(target_os = "linux"))]
pub(crate) fn defer_accept(_listener: &impl AsFd, _seconds: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::os::fd::AsRawFd;

    /// The option reads back as set (the kernel rounds the seconds to its
    /// SYN-ACK retransmissions: one second is one).
    #[test]
    fn the_listener_defers_as_asked() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert_eq!(read_back(&l), 0, "the control: not deferred by default");
        super::defer_accept(&l, 1).unwrap();
        assert_eq!(read_back(&l), 1);
    }

    fn read_back(l: &std::net::TcpListener) -> libc::c_int {
        // Neither 0 nor 1: a read that wrote nothing is told apart.
        let mut value: libc::c_int = 0x5a5a;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: an open socket; `value` and `len` are live and sized as
        // the kernel writes them.
        let done = unsafe {
            libc::getsockopt(
                l.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_DEFER_ACCEPT,
                (&raw mut value).cast(),
                &raw mut len,
            )
        };
        assert_eq!(done, 0);
        value
    }
}
