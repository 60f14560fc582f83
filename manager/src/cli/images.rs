//! `berth images` / `berth image ls`.

use anyhow::{Context, Result};
use berth::ops::images;
use berth::ops::models::{Filters, ImageSummary};
use berth::ops::OpsError;
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
    /// Show all images (berth keeps no intermediate images: the same as without)
    #[arg(short, long)]
    all: bool,
    /// Filter output based on conditions provided (reference, dangling, label, before, since)
    #[arg(short, long = "filter")]
    filter: Vec<String>,
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
    let mut rows = Vec::new();
    let _ = args.all;
    let filters = Filters::parse(&args.filter).map_err(OpsError::from)?;
    for summary in images::list_filtered(&ctx.engine, args.repository.as_deref(), &filters)? {
        rows.extend(image_rows(&summary));
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

/// One row per stored name of the image.
fn image_rows(s: &ImageSummary) -> Vec<Row> {
    s.names
        .iter()
        .map(|n| {
            let (created_at, created_since, size) = if s.damaged {
                // A damaged image still shows up, so that the user can see and remove it.
                (String::new(), "N/A".to_string(), "N/A".to_string())
            } else {
                (
                    s.created_at.clone().unwrap_or_default(),
                    human_age(s.created_at.as_deref()),
                    human_size(s.size.max(0) as u64),
                )
            };
            Row {
                repository: n.repository.clone(),
                tag: n.tag.clone(),
                id: s.id.clone(),
                digest: n.digest.clone(),
                created_at,
                created_since,
                size,
                size_bytes: s.size.max(0) as u64,
            }
        })
        .collect()
}
