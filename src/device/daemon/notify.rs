//! systemd's notification socket: readiness, reloading, stopping, status and the watchdog.

/// Tells systemd (when it started us with NOTIFY_SOCKET) how we are, as `sd_notify::notify` does but
/// without ever blocking: a datagram socket whose reader has fallen behind makes a blocking sender wait,
/// and that would stall the outputs thread and with it the whole pipeline. A message that does not fit
/// is dropped (the next watchdog ping or status goes out a second later).
pub fn notify(states: &[sd_notify::NotifyState]) {
    use std::fmt::Write as _;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let mut msg = String::new();
    for s in states {
        let _ = writeln!(msg, "{s}");
    }
    let sent = (|| {
        let sock = std::os::unix::net::UnixDatagram::unbound()?;
        sock.set_nonblocking(true)?;
        sock.connect(&path)?;
        sock.send(msg.as_bytes())
    })();
    match sent {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => log::debug!("sd_notify: the service manager is not reading; dropped {:?}", msg.trim_end()),
        Err(e) => log::debug!("sd_notify: {e}"),
    }
}
