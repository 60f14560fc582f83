//! `berth history` / `berth image history`: the image's steps, newest first.

use anyhow::Result;
use berth::ops::images;
use serde::Serialize;

use super::format::{human_size, print_formatted};
use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image
    image: String,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a Go template (table, json, ...)
    #[arg(long, default_value = "table")]
    format: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Row {
    #[serde(rename = "ID")]
    id: String,
    created_since: String,
    created_at: String,
    created_by: String,
    size: String,
    comment: String,
}

const TABLE: &str = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let items = images::history(&ctx.engine, &args.image)?;
    let short = |id: &str| {
        if args.no_trunc || id == "<missing>" {
            id.to_string()
        } else {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        }
    };
    if args.quiet {
        for i in &items {
            println!("{}", short(&i.id));
        }
        return Ok(());
    }
    let mut rows = Vec::new();
    for i in &items {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(i.created.max(0) as u64);
        let at = humantime::format_rfc3339_seconds(t).to_string();
        let created_by = i.created_by.replace('\t', " ");
        rows.push(serde_json::to_value(Row {
            id: short(&i.id),
            created_since: if args.human {
                super::format::human_age(Some(&at))
            } else {
                at.clone()
            },
            created_at: at,
            created_by: if args.no_trunc {
                created_by
            } else {
                ellipsis(&created_by, 45)
            },
            size: if args.human {
                human_size(i.size.max(0) as u64)
            } else {
                i.size.to_string()
            },
            comment: i.comment.clone(),
        })?);
    }
    let header = |f: &str| match f {
        "ID" => "IMAGE".to_string(),
        "CreatedSince" => "CREATED".to_string(),
        "CreatedBy" => "CREATED BY".to_string(),
        other => berth::template::default_header(other),
    };
    print_formatted(&args.format, TABLE, &rows, &header)
}
