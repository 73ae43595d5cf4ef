//! `chat`: S senders each send CPIM messages at a rate to their M devices;
//! latency from send to each device and, with IMDN, to the sender's one
//! delivery notification (the relay sends exactly one of the M devices'
//! notifications on).
//!
//! This module runs the scenario mode by mode. `messages`: the CPIM
//! messages and IMDN notifications; `readers`: the devices' and senders'
//! readers, which time each message; `setup`: a run's sessions, through
//! the relay or a baseline; `traffic`: one run, its senders at their rate
//! and its outcome; `report`: a run's rows.

mod messages;
mod readers;
mod report;
mod setup;
mod traffic;

use std::time::Duration;

use serde_json::json;

use super::Env;
use crate::cli::{Baseline, ChatArgs};
use crate::error::{LoadError, Result};
use crate::report::Report;
use crate::scenario::fanout::Mode;
use crate::stats::Percentiles;

pub use messages::{cpim, delivered, imdn_target};
pub use readers::{ChatDevice, ChatSender};
pub use traffic::{ChatRun, run_once};

use report::add_rows;

/// The `chat` scenario.
pub fn run(a: &ChatArgs) -> Result<Report> {
    if a.rate <= 0.0 || a.duration <= 0.0 || a.devices == 0 || a.sessions == 0 {
        return Err(LoadError::Args(
            "rate, duration, devices and sessions must be > 0".into(),
        ));
    }
    let env = Env::open_tls(&a.common, "", &a.tls)?;
    let imdn = a.imdn == "on";
    let mut rep = Report::new("chat", a.common.runs as usize);
    let case0 = format!("{}x{}", a.sessions, a.devices);
    let mut curves = Vec::new();
    for run in 0..a.common.runs as usize {
        let mut modes = vec![(Mode::Relay, false)];
        if env.tls.is_some() {
            modes.push((Mode::Relay, true));
        }
        modes.extend(a.common.baseline.iter().map(|b| match b {
            Baseline::Direct => (Mode::Direct, false),
            Baseline::Tcp => (Mode::Tcp, false),
        }));
        let mut plain = None;
        for (mode, tls) in modes {
            let sfx = if tls { " tls" } else { "" };
            let case = format!("{case0}{sfx}");
            let pb = indicatif::ProgressBar::new_spinner();
            pb.set_message(format!(
                "run {} {mode:?}{sfx}: {} msg/s for {} s",
                run + 1,
                a.rate,
                a.duration
            ));
            pb.enable_steady_tick(Duration::from_millis(200));
            let tag = format!("chat{run}{}", if tls { "t" } else { "" });
            let r = run_once(mode, tls, &env, a, &tag)?;
            pb.finish_and_clear();
            let d = Percentiles::of(&r.device);
            add_rows(&mut rep, &case, mode, imdn, &d, &r);
            if mode == Mode::Relay {
                let me = (d.p50_us, d.p99_us, r.relay_cores);
                match plain {
                    None => plain = Some(me),
                    Some(pl) => super::versus::chat(&mut rep, &case, me, pl),
                }
            }
            if run + 1 == a.common.runs as usize {
                curves.push((
                    format!("{mode:?} device{sfx}").to_lowercase(),
                    Percentiles::curve(&r.device),
                    d,
                ));
                if imdn && mode == Mode::Relay {
                    curves.push((
                        format!("relay notification{sfx}"),
                        Percentiles::curve(&r.notify),
                        Percentiles::of(&r.notify),
                    ));
                }
            }
            std::thread::sleep(Duration::from_millis(200));
            env.ctl.events.clear();
        }
    }
    rep.notes.push(format!(
        "{} msg/s per session for {} s, {} B of text in CPIM, IMDN {}; latency from the sender's write to the device's decode of the end-line",
        a.rate, a.duration, a.size, a.imdn
    ));
    if env.tls.is_some() {
        super::versus::note(
            &mut rep,
            "the `tls` case is the case before it with the senders' and every device's leg over TLS, run right after it on the same relay",
        );
    }
    if a.common.baseline.contains(&Baseline::Direct) && imdn {
        rep.notes.push(
            "direct: the sender gets one notification per device and counts the first".into(),
        );
    }
    rep.detail = json!({"curves": curves.iter().map(|(n, c, p)| json!({"series": n, "points": c, "percentiles": p})).collect::<Vec<_>>()});
    if let Some(dir) = &a.common.plot {
        let series: Vec<(String, Vec<(f64, f64)>)> =
            curves.into_iter().map(|(n, c, _)| (n, c)).collect();
        crate::plot::latency(dir, "chat-latency", "chat latency percentiles", &series)?;
    }
    Ok(rep)
}
