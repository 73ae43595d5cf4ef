//! `demo`: the README's first command. One file to three devices of one
//! user through a relay the tool starts: the phone accepts at once, the PC
//! accepts when half the file has passed (and still gets all of it), the
//! tablet reads slowly (and slows nobody). Shows progress per device, then
//! what each got and when each was told to hang up.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::Env;
use super::fanout::{Params, Role, run_relay};
use crate::cli::{Common, DemoArgs, Verify};
use crate::error::{LoadError, Result};
use crate::stats::fmt_size;

/// The `demo` scenario.
pub fn run(a: &DemoArgs) -> Result<()> {
    let common = Common {
        control: a.control.clone(),
        spawn: a.control.is_none(),
        workers: 0,
        relay_config: None,
        baseline: Vec::new(),
        runs: 1,
        json: None,
        plot: None,
        timeout: 60,
    };
    println!("msrp-load demo: one file from Alice to Bob's three devices through msrp-relay");
    let env = Env::open(&common)?;
    match (env.target.spawned(), env.pid) {
        (true, Some(pid)) => println!(
            "  relay started as pid {pid}, control socket {}",
            env.target.socket.display()
        ),
        _ => println!("  relay on {}", env.target.socket.display()),
    }
    let size = usize::try_from(a.size).map_err(|_| LoadError::Args("size too large".into()))?;
    let file = crate::peer::make_file(size);
    let digest = hex::encode(Sha256::digest(&file));
    let p = Params {
        sessions: 1,
        devices: 3,
        size: a.size,
        chunk: 64 << 10,
        window: 16,
        slow: 1,
        slow_rate: a.slow_rate,
        late: 1,
        late_at: 0.5,
        verify: Verify::Sha256,
        read_buf: 256 << 10,
        names: vec![
            "Bob's phone".into(),
            "Bob's PC".into(),
            "Bob's tablet".into(),
        ],
        tls: None,
    };
    let what = |j: usize| match p.role(j) {
        Role::Fast => "accepts at once".to_owned(),
        Role::Late => "accepts when half the file has passed".to_owned(),
        Role::Slow => format!("reads slowly ({}/s)", fmt_size(a.slow_rate)),
    };
    println!(
        "  file: {} (SHA-256 {}…), 64 KiB chunks",
        fmt_size(a.size),
        &digest[..16]
    );
    for (j, n) in p.names.iter().enumerate() {
        println!("  {n:<13} {}", what(j));
    }
    println!();
    let multi = indicatif::MultiProgress::new();
    let bars: Vec<indicatif::ProgressBar> = p
        .names
        .iter()
        .map(|n| multi.add(super::bar(a.size, n)))
        .collect();
    let r = run_relay(&env, &p, &file, "demo", &mut |view| {
        for (b, d) in bars.iter().zip(view.iter().flatten()) {
            b.set_position(d.bytes.load(Ordering::Relaxed));
            if d.done().is_some() && !b.is_finished() {
                b.finish();
            }
        }
    })?;
    for b in &bars {
        b.finish();
    }
    // Let the session end so its events are in.
    let _ = env.ctl.events.wait(Duration::from_secs(5), |ev| {
        ev.iter().any(|(_, e)| e["event"] == "session-ended")
    });
    println!();
    println!(
        "  {:<13} {:>10} {:>8} {:>10} {:>10} {:>12}",
        "device", "bytes", "SHA-256", "accepted", "last byte", "leg-done"
    );
    for d in &r.devices {
        let t = |v: Option<f64>| v.map_or("-".into(), |s| format!("{s:.2} s"));
        println!(
            "  {:<13} {:>10} {:>8} {:>10} {:>10} {:>12}  {}",
            d.name,
            d.bytes,
            if d.exact { "match" } else { "MISMATCH" },
            t(d.accepted_s),
            t(d.done_s),
            t(d.leg_done_s),
            d.leg_done_reason
                .as_deref()
                .map(|r| format!("({r}: the front end sends this device its BYE)"))
                .unwrap_or_default()
        );
    }
    if let Some(s) = r.sender_s.first() {
        println!(
            "  the sender had every chunk answered at {s:.2} s; the front end then sent `delete` (Alice's BYE)"
        );
    }
    if let Some(c) = r.relay_cores {
        println!("  relay CPU while it ran: {c:.2} cores");
    }
    let events = env.ctl.events.all();
    println!("\n  control events, in order:");
    for (_, e) in &events {
        let who = e["via-branch"].as_str().map(|b| {
            b.strip_prefix('b')
                .and_then(|j| j.parse::<usize>().ok())
                .and_then(|j| p.names.get(j).cloned())
                .unwrap_or_else(|| b.to_owned())
        });
        println!(
            "    {:<16} {}{}",
            e["event"].as_str().unwrap_or("?"),
            who.unwrap_or_else(|| "Alice (sender)".into()),
            e["reason"]
                .as_str()
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        );
    }
    if r.devices.iter().all(|d| d.exact) {
        println!("\n  every device got all {} bytes, byte-exact.", file.len());
        Ok(())
    } else {
        Err(LoadError::Verify(
            "a device's bytes differ (see above)".into(),
        ))
    }
}
