//! Can this process use io_uring, and with what: the probe run once at
//! start. Required: ring creation, `EXT_ARG` waits (5.11) and the opcodes
//! the driver issues; optional: multishot receive (6.0), provided-buffer
//! rings (5.19, tried at worker start), `SENDMSG_ZC` (6.1).

use io_uring::{IoUring, Probe, opcode};

use crate::io::config::UringConfig;

/// Why io_uring cannot be used; the fallback's log line shows it.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    /// `kernel.io_uring_disabled` is 2.
    #[error("/proc/sys/kernel/io_uring_disabled is 2 (disabled for all processes)")]
    Disabled,
    /// `io_uring_setup` failed with `EPERM`.
    #[error("io_uring_setup: EPERM ({0})")]
    Denied(&'static str),
    /// `io_uring_setup` failed with `ENOSYS`.
    #[error("io_uring_setup: ENOSYS (kernel built without io_uring)")]
    NoSys,
    /// Another setup or registration error.
    #[error("io_uring setup: {0}")]
    Setup(#[source] std::io::Error),
    /// The kernel lacks an opcode or feature the driver needs.
    #[error("kernel lacks {0}")]
    Missing(&'static str),
    /// `UringConfig::force_unavailable` is set.
    #[error("forced by configuration (uring.force_unavailable)")]
    Forced,
}

/// What the kernel offers beyond the required set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Features {
    pub(crate) multishot_recv: bool,
    pub(crate) multishot_accept: bool,
    pub(crate) send_zc: bool,
    pub(crate) defer_taskrun: bool,
    /// `IORING_RECVSEND_POLL_FIRST` (5.19).
    pub(crate) poll_first: bool,
}

/// The kernel's `major.minor`, from `/proc/sys/kernel/osrelease`.
fn kernel_version() -> (u32, u32) {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = r
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

const REQUIRED: &[(u8, &str)] = &[
    (opcode::Accept::CODE, "IORING_OP_ACCEPT"),
    (opcode::Connect::CODE, "IORING_OP_CONNECT"),
    (opcode::Recv::CODE, "IORING_OP_RECV"),
    (opcode::SendMsg::CODE, "IORING_OP_SENDMSG"),
    (opcode::Read::CODE, "IORING_OP_READ"),
    (opcode::AsyncCancel::CODE, "IORING_OP_ASYNC_CANCEL"),
    (opcode::LinkTimeout::CODE, "IORING_OP_LINK_TIMEOUT"),
    (opcode::Close::CODE, "IORING_OP_CLOSE"),
    (opcode::Shutdown::CODE, "IORING_OP_SHUTDOWN"),
];

/// Probes io_uring: the sysctl, a small ring, its features and opcodes.
pub(crate) fn probe(cfg: &UringConfig) -> Result<Features, Unavailable> {
    if cfg.force_unavailable {
        return Err(Unavailable::Forced);
    }
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok())
        .unwrap_or(0);
    if disabled == 2 {
        return Err(Unavailable::Disabled);
    }
    let ring = IoUring::new(8).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) if disabled == 1 => Unavailable::Denied(
            "io_uring_disabled is 1 and this process is not in kernel.io_uring_group",
        ),
        Some(libc::EPERM) => Unavailable::Denied("refused by seccomp or an LSM"),
        Some(libc::ENOSYS) => Unavailable::NoSys,
        _ => Unavailable::Setup(e),
    })?;
    if !ring.params().is_feature_ext_arg() {
        return Err(Unavailable::Missing("IORING_FEAT_EXT_ARG (Linux 5.11)"));
    }
    let mut p = Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(Unavailable::Setup)?;
    if let Some((_, name)) = REQUIRED.iter().find(|(op, _)| !p.is_supported(*op)) {
        return Err(Unavailable::Missing(name));
    }
    // Multishot flags are not opcodes: the probe cannot see them.
    let v = kernel_version();
    Ok(Features {
        multishot_recv: cfg.multishot && v >= (6, 0),
        multishot_accept: v >= (5, 19),
        send_zc: p.is_supported(opcode::SendMsgZc::CODE),
        defer_taskrun: v >= (6, 1),
        poll_first: v >= (5, 19),
    })
}
