//! Who may talk to the control socket, and taking the socket path safely.

use std::io::ErrorKind;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use nix::sys::socket::{getsockopt, sockopt};

use super::ServerError;

/// The uid of the process at the other end (`SO_PEERCRED`, socket(7)): the
/// kernel's record of who connected, which the peer cannot forge.
pub fn peer_uid(stream: &UnixStream) -> Result<u32, nix::Error> {
    Ok(getsockopt(stream, sockopt::PeerCredentials)?.uid())
}

/// The uids allowed: the configured list, or the relay's own uid when the
/// list is empty. Root gets no exception: list uid 0 to allow it.
pub fn allowed_uids(configured: &[u32]) -> Vec<u32> {
    if configured.is_empty() {
        vec![nix::unistd::getuid().as_raw()]
    } else {
        configured.to_vec()
    }
}

/// The decision: is a peer with this uid allowed?
pub fn uid_allowed(uid: u32, allowed: &[u32]) -> bool {
    allowed.contains(&uid)
}

/// Binds the control socket at `path`, mode `0660`.
///
/// An existing socket file is probed first: if a relay answers on it, this
/// one refuses to start ([`ServerError::AlreadyRunning`]); if nobody
/// answers, the file is a leftover of a relay that died and is removed.
/// Anything that is not a socket is never removed.
pub fn bind(path: &Path) -> Result<UnixListener, ServerError> {
    let io = |source| ServerError::Io {
        path: path.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
        Ok(m) if !m.file_type().is_socket() => {
            return Err(ServerError::NotASocket(path.to_owned()));
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(ServerError::AlreadyRunning(path.to_owned())),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing stale control socket");
                std::fs::remove_file(path).map_err(io)?;
            }
            Err(e) => return Err(io(e)),
        },
    }
    let listener = UnixListener::bind(path).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn uid_decision_uses_the_list_or_own_uid() {
        assert!(uid_allowed(1000, &[1000, 1001]));
        assert!(!uid_allowed(0, &[1000, 1001]), "root gets no exception");
        assert!(!uid_allowed(1002, &[1000, 1001]));
        let own = nix::unistd::getuid().as_raw();
        assert_eq!(allowed_uids(&[]), vec![own]);
        assert_eq!(allowed_uids(&[7]), vec![7]);
    }

    #[test]
    fn so_peercred_reads_the_real_uid_on_a_socketpair() {
        let (a, b) = UnixStream::pair().unwrap();
        let own = nix::unistd::getuid().as_raw();
        assert_eq!(peer_uid(&a).unwrap(), own);
        assert_eq!(peer_uid(&b).unwrap(), own);
    }

    #[test]
    fn bind_sets_0660_removes_stale_and_refuses_live_or_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let l = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
        assert!(matches!(bind(&path), Err(ServerError::AlreadyRunning(_))));
        drop(l); // the file stays, nobody answers: stale
        assert!(path.exists());
        let _l = bind(&path).unwrap();
        let file = dir.path().join("not-a-socket");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(bind(&file), Err(ServerError::NotASocket(_))));
        assert!(file.exists());
    }
}
