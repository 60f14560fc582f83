//! `compose events [--json] [SERVICE...]`: the project's container events as they happen,
//! until ^C, SIGTERM or the reader of stdout goes away.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use berth::ops::compose::{self as c, ProjectEvent};
use berth::ops::Cancel;

use super::{Args, Ctx};

#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Output events as a stream of json objects
    #[arg(long)]
    json: bool,
    services: Vec<String>,
}

pub fn events(ctx: &Ctx, args: &Args, a: &EventsArgs) -> Result<()> {
    let (name, project) = args.project_or_name()?;
    if let Some(p) = &project {
        for s in &a.services {
            if !p.services.contains_key(s) {
                anyhow::bail!("no such service: {s}");
            }
        }
    }
    let cancel = Cancel::new();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing a signal handler")?;
    }
    watch(stop, cancel.clone());
    let stdout = std::io::stdout();
    for e in c::events(&ctx.engine, &name, &a.services, &cancel)? {
        let e = e?;
        let line = if a.json {
            let mut e = e;
            e.time = json_time(e.time_nano);
            serde_json::to_string(&e)?
        } else {
            text(&e)
        };
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    cancel.cancel();
    Ok(())
}

/// Cancels the stream on a signal or once stdout's reader is gone (a pipe's write end
/// polls as POLLERR then), even while no event comes to write.
fn watch(stop: Arc<AtomicBool>, cancel: Cancel) {
    std::thread::spawn(move || {
        while !cancel.is_cancelled() {
            let mut fd = libc::pollfd {
                fd: libc::STDOUT_FILENO,
                events: 0,
                revents: 0,
            };
            // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
            let n = unsafe { libc::poll(&mut fd, 1, 200) };
            let gone = n > 0 && fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0;
            if gone || stop.load(Ordering::SeqCst) {
                cancel.cancel();
            } else if n != 0 {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    });
}

/// docker compose's line: local time to the microsecond, `container`, the action, the id
/// and the attributes.
fn text(e: &ProjectEvent) -> String {
    let mut s = format!(
        "{} {} {} {}",
        local_time(e.time_nano),
        e.kind,
        e.action,
        e.id
    );
    if !e.attributes.is_empty() {
        let attrs: Vec<String> = e
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

/// The broken-down local time of `secs` since the epoch.
fn local_tm(secs: libc::time_t) -> Option<libc::tm> {
    // SAFETY: `tm` is plain data that localtime_r fills; both pointers are valid locals.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            None
        } else {
            Some(tm)
        }
    }
}

/// `2006-01-02 15:04:05.000000` in the local time zone (UTC when it cannot be read).
fn local_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as libc::time_t;
    let micros = nanos.rem_euclid(1_000_000_000) / 1000;
    match local_tm(secs) {
        Some(t) => format!("{} {}.{micros:06}", date(&t), clock(&t)),
        None => {
            let t = std::time::UNIX_EPOCH + Duration::from_nanos(nanos.max(0) as u64);
            humantime::format_rfc3339_micros(t)
                .to_string()
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_string()
        }
    }
}

fn date(t: &libc::tm) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        t.tm_year + 1900,
        t.tm_mon + 1,
        t.tm_mday
    )
}

fn clock(t: &libc::tm) -> String {
    format!("{:02}:{:02}:{:02}", t.tm_hour, t.tm_min, t.tm_sec)
}

/// The JSON line's time as Go writes a local `time.Time`: RFC 3339 with the nanoseconds'
/// trailing zeros cut, and the zone's offset (`Z` when it is UTC).
fn json_time(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as libc::time_t;
    let frac = format!("{:09}", nanos.rem_euclid(1_000_000_000));
    let frac = frac.trim_end_matches('0');
    let frac = if frac.is_empty() {
        String::new()
    } else {
        format!(".{frac}")
    };
    let (t, offset) = match local_tm(secs) {
        Some(t) => (t, t.tm_gmtoff),
        None => {
            // SAFETY: as in local_tm, with gmtime_r.
            let t = unsafe {
                let mut tm: libc::tm = std::mem::zeroed();
                libc::gmtime_r(&secs, &mut tm);
                tm
            };
            (t, 0)
        }
    };
    let zone = if offset == 0 {
        "Z".to_string()
    } else {
        let sign = if offset < 0 { '-' } else { '+' };
        let m = offset.abs() / 60;
        format!("{sign}{:02}:{:02}", m / 60, m % 60)
    };
    format!("{}T{}{frac}{zone}", date(&t), clock(&t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_time_is_gos_rfc3339_nano_in_the_local_zone() {
        // The zone of the process is the machine's: check the shape and the instant.
        let t = json_time(1_700_000_000_120_000_000);
        assert!(t.contains(".12") && !t.contains(".120"), "{t}");
        assert!(
            t.ends_with('Z') || t[t.len() - 6..].starts_with(['+', '-']),
            "{t}"
        );
        let whole = json_time(1_700_000_000_000_000_000);
        assert!(!whole.contains('.'), "{whole}");
        if local_tm(0).map(|t| t.tm_gmtoff) == Some(0) {
            assert_eq!(whole, "2023-11-14T22:13:20Z");
        }
    }
}
