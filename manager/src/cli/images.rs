//! `berth images` / `berth image ls`.

use anyhow::{Context, Result};
use berth::image::{ImageRecord, ImageStore};
use berth::reference::Reference;
use berth::template::{default_header, Format};
use serde::Serialize;
use serde_json::Value;

use super::format::{human_age, human_size};
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only images of this repository (NAME[:TAG])
    repository: Option<String>,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Output format: table, table TEMPLATE, json (one object per line) or a Go template
    #[arg(long, default_value = "table")]
    format: String,
}

/// One row of `images`, also the `--format json` object.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    repository: String,
    tag: String,
    #[serde(rename = "ID")]
    id: String,
    digest: String,
    created_at: String,
    created_since: String,
    size: String,
    #[serde(rename = "VirtualSize")]
    size_bytes: u64,
}

const DEFAULT_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const DIGESTS_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";

/// Column titles of `images` tables, as docker names them.
fn header(field: &str) -> String {
    match field {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        other => default_header(other),
    }
}

pub fn run(ctx: &mut Ctx, args: Args) -> Result<()> {
    // `{{json .}}` keeps the full-ID machine output it always had (same as `json`).
    let format_arg = if args.format == "{{json .}}" {
        "json"
    } else {
        args.format.as_str()
    };
    let default = if args.digests {
        DIGESTS_TABLE
    } else {
        DEFAULT_TABLE
    };
    let format = Format::parse(format_arg, default).context("flag --format")?;
    let filter = args
        .repository
        .as_deref()
        .map(Reference::parse_name_only)
        .transpose()?;
    let store = ctx.store()?;
    let mut rows = Vec::new();
    for rec in store.records()? {
        if let Some(f) = &filter {
            let Some(r) = rec.reference() else { continue };
            if r.name() != f.name() || f.tag().is_some_and(|t| r.tag() != Some(t)) {
                continue;
            }
        }
        rows.push(row(store, &rec));
    }
    rows.sort_by(|a, b| (&a.repository, &a.tag).cmp(&(&b.repository, &b.tag)));
    let short = |id: &str| -> String {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        if args.no_trunc {
            id.to_string()
        } else {
            hex.chars().take(12).collect()
        }
    };
    if args.quiet {
        let mut seen = Vec::new();
        for r in &rows {
            let id = short(&r.id);
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(());
    }
    let values = rows
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r)?;
            // Tables and templates show the ID as docker does (short unless --no-trunc);
            // `json` keeps the full digest for machines.
            if !matches!(format, Format::Json) {
                v["ID"] = Value::String(short(&r.id));
            }
            Ok(v)
        })
        .collect::<Result<Vec<Value>>>()?;
    print!("{}", format.render(&values, &header)?);
    Ok(())
}

fn row(store: &ImageStore, rec: &ImageRecord) -> Row {
    let reference = rec.reference();
    let repository = reference
        .as_ref()
        .map_or_else(|| "<none>".to_string(), Reference::name);
    let tag = reference
        .as_ref()
        .and_then(|r| r.tag().map(str::to_string))
        .unwrap_or_else(|| "<none>".to_string());
    let digest = rec.index_digest.as_ref().unwrap_or(&rec.digest).to_string();
    match store.image(rec) {
        Ok(info) => {
            let created = info.config.created().clone();
            Row {
                repository,
                tag,
                id: info.id().to_string(),
                digest,
                created_since: human_age(created.as_deref()),
                created_at: created.unwrap_or_default(),
                size: human_size(info.size),
                size_bytes: info.size,
            }
        }
        // A damaged image still shows up, so that the user can see and remove it.
        Err(_) => Row {
            repository,
            tag,
            id: rec.digest.to_string(),
            digest,
            created_at: String::new(),
            created_since: "N/A".into(),
            size: "N/A".into(),
            size_bytes: 0,
        },
    }
}
