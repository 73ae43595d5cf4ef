//! `soak`: sessions for a set time, file transfers and chats mixed, each to
//! three devices of one user, one joining late or leaving part-way
//! ([`session`]); every byte and every notification checked; the relay's
//! RSS and open fds sampled each second.
//!
//! `--concurrency` sessions run at once, each on a thread of the tool
//! with one thread per connection (the tool's peers are blocking), so the
//! sessions alive at a time are bounded by the tool's threads, not by the
//! relay; `--sessions` bounds how many run in all (0: as many as the
//! duration allows).

mod session;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::Env;
use crate::cli::SoakArgs;
use crate::error::{LoadError, Result};
use crate::peer::make_file;
use crate::report::{Compare, Report};
use crate::stats::median;
use crate::sync::lock;
use crate::sys::rss_kib;

/// One second's sample.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the start.
    pub t: f64,
    /// The relay's resident set, KiB.
    pub rss_kib: u64,
    /// The relay's open file descriptors.
    pub fds: u64,
    /// Sessions finished so far.
    pub sessions: u64,
}

#[derive(Debug, Default)]
struct Totals {
    sessions: AtomicU64,
    file_transfers: AtomicU64,
    chats: AtomicU64,
    bytes_verified: AtomicU64,
    lost: AtomicU64,
    messages: AtomicU64,
    notifications_wrong: AtomicU64,
    errors: AtomicU64,
}

fn fds(pid: u32) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count() as u64)
}

/// Median of `of` over the samples in `[from, to)` seconds.
fn median_between(
    samples: &[Sample],
    from: f64,
    to: f64,
    of: impl Fn(&Sample) -> u64,
) -> Option<f64> {
    let v: Vec<f64> = samples
        .iter()
        .filter(|s| s.t >= from && s.t < to)
        .map(|s| of(s) as f64)
        .collect();
    median(&v)
}

/// Runs the soak; see the module docs.
pub fn run(a: &SoakArgs) -> Result<Report> {
    let env = Env::open(&a.common)?;
    let pid = env
        .pid
        .ok_or_else(|| LoadError::Relay("soak needs the relay's pid (a local relay)".into()))?;
    let file = make_file(a.file_size as usize);
    let digest = session::digest(&file);
    let totals = Totals::default();
    let next = AtomicU64::new(0);
    let first_error = Mutex::new(None::<String>);
    let stop = AtomicBool::new(false);
    let samples = Mutex::new(Vec::<Sample>::new());
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(a.duration);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                lock(&samples).push(Sample {
                    t: t0.elapsed().as_secs_f64(),
                    rss_kib: rss_kib(pid).unwrap_or(0),
                    fds: fds(pid),
                    sessions: totals.sessions.load(Ordering::Relaxed),
                });
                // Nothing here waits on events: forget them, so the log
                // does not grow with the run.
                env.ctl.events.clear();
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        let workers: Vec<_> = (0..a.concurrency.max(1))
            .map(|_| {
                scope.spawn(|| {
                    while Instant::now() < until {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if a.sessions != 0 && i >= a.sessions {
                            break;
                        }
                        let chat = i % 2 == 1;
                        let r = if chat {
                            session::chat(&env, i, a.chat_messages, a.chat_size as usize)
                        } else {
                            session::file_transfer(&env, i, &file, &digest)
                        };
                        match r {
                            Ok(o) => {
                                let t = &totals;
                                t.bytes_verified
                                    .fetch_add(o.bytes_verified, Ordering::Relaxed);
                                t.lost.fetch_add(o.lost, Ordering::Relaxed);
                                t.messages.fetch_add(o.messages, Ordering::Relaxed);
                                t.notifications_wrong
                                    .fetch_add(o.notifications_wrong, Ordering::Relaxed);
                                let kind = if chat { &t.chats } else { &t.file_transfers };
                                kind.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => {
                                totals.errors.fetch_add(1, Ordering::Relaxed);
                                lock(&first_error).get_or_insert_with(|| e.to_string());
                            }
                        }
                        totals.sessions.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for w in workers {
            let _ = w.join();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let took = t0.elapsed().as_secs_f64();
    let samples = samples.into_inner().unwrap_or_else(|e| e.into_inner());
    let t = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
    let mut rep = Report::new("soak", 1);
    let case = format!("{} at once, {:.0} s", a.concurrency, took);
    let mut put = |metric: &str, unit: &str, v: f64| {
        rep.row(&case, metric, unit, Compare::None).relay.push(v);
    };
    put("sessions (3 devices each)", "", t(&totals.sessions));
    put("file transfers", "", t(&totals.file_transfers));
    put("chats", "", t(&totals.chats));
    put("bytes verified", "B", t(&totals.bytes_verified));
    put("chat messages", "", t(&totals.messages));
    put("lost (messages, files not exact)", "", t(&totals.lost));
    put(
        "notifications not exactly once",
        "",
        t(&totals.notifications_wrong),
    );
    put("sessions failed", "", t(&totals.errors));
    let minute = 60f64.min(took / 3.0);
    let first = median_between(&samples, 0.0, minute, |s| s.rss_kib);
    let last = median_between(&samples, took - minute, took + 1.0, |s| s.rss_kib);
    if let (Some(f), Some(l)) = (first, last) {
        put("RSS, first minute (median)", "KiB", f);
        put("RSS, last minute (median)", "KiB", l);
        put("RSS last / first", "×", l / f);
    }
    let fds_between = |from, to| median_between(&samples, from, to, |s| s.fds);
    if let (Some(f), Some(l)) = (
        fds_between(0.0, minute),
        fds_between(took - minute, took + 1.0),
    ) {
        put("open fds, first minute (median)", "", f);
        put("open fds, last minute (median)", "", l);
    }
    if let Some(e) = lock(&first_error).take() {
        rep.notes.push(format!("first failure: {e}"));
    }
    rep.notes.push(format!(
        "file transfers of {} B: device 0 on time, device 1 accepts at half, device 2 leaves at 30 %; \
         chats of {} messages of {} B with delivery notifications from devices 0 and 1, device 2 leaves at half",
        a.file_size, a.chat_messages, a.chat_size
    ));
    rep.detail = json!({"samples": samples});
    if let Some(dir) = &a.common.plot {
        let pts: Vec<(f64, f64)> = samples
            .iter()
            .map(|s| (s.t, s.rss_kib as f64 / 1024.0))
            .collect();
        crate::plot::series(
            dir,
            "soak-rss.svg",
            "relay RSS during the soak",
            "MiB",
            &pts,
        )?;
    }
    Ok(rep)
}
