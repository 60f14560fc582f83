//! `berth events`: the event journal, replayed from `--since` and followed until `--until`
//! (or until interrupted), in docker's line format or a `--format` template.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use berth::ops::events::{self, EventsOptions, Message};
use berth::ops::models::Filters;
use berth::ops::Cancel;
use berth::template::Template;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Filter output based on conditions provided (type=, event=, container=, image=, label=, network=, volume=)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template ('{{json .}}' for JSON lines)
    #[arg(long)]
    format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    until: Option<String>,
}

pub fn run(ctx: &Ctx, a: Args) -> Result<()> {
    let filters = Filters::parse(&a.filter).context("flag --filter")?;
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some(f) if f.trim() == "{{json .}}" || f == "json" => None,
        Some(f) => Some(
            Template::parse(&f.replace("\\t", "\t").replace("\\n", "\n"))
                .context("flag --format")?,
        ),
    };
    let json = a
        .format
        .as_deref()
        .is_some_and(|f| f.trim() == "{{json .}}" || f == "json");
    let opts = EventsOptions {
        since: a.since,
        until: a.until,
        filters,
    };
    let cancel = Cancel::new();
    let stdout = std::io::stdout();
    for m in events::events(&ctx.engine, &opts, &cancel)? {
        let m = m?;
        let line = if json {
            serde_json::to_string(&m)?
        } else if let Some(t) = &template {
            t.render(&template_value(&m))?
        } else {
            pretty(&m)
        };
        let mut out = stdout.lock();
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    Ok(())
}

/// docker's line: the time (RFC 3339, nanoseconds), type, action, actor and its attributes.
fn pretty(m: &Message) -> String {
    let t = UNIX_EPOCH + Duration::from_nanos(m.time_nano.max(0) as u64);
    let mut s = format!(
        "{} {} {} {}",
        humantime::format_rfc3339_nanos(t),
        m.kind,
        m.action,
        m.actor.id
    );
    if !m.actor.attributes.is_empty() {
        let attrs: Vec<String> = m
            .actor
            .attributes
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        s.push_str(&format!(" ({})", attrs.join(", ")));
    }
    s
}

/// The event as a template sees it: docker's Go field names (`.Status`, `.ID`, `.Time`,
/// ...) beside the JSON ones.
fn template_value(m: &Message) -> serde_json::Value {
    let mut v = serde_json::to_value(m).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("Status".into(), m.status.clone().into());
        o.insert("ID".into(), m.id.clone().into());
        o.insert("From".into(), m.from.clone().into());
        o.insert("Scope".into(), m.scope.clone().into());
        o.insert("Time".into(), m.time.into());
        o.insert("TimeNano".into(), m.time_nano.into());
    }
    v
}
