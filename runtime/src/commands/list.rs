use anyhow::Result;
use berth_runtime::state;

use super::Format;
use crate::Global;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value = "table")]
    pub format: Format,
    /// Print only container ids
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[inline(never)] // see main()
pub fn run(g: &Global, args: Args) -> Result<u8> {
    let all = state::list(&g.root)?;
    // Like runc, the OWNER is the user owning the container's state directory.
    let owners: Vec<String> = all
        .iter()
        .map(|(s, _)| owner_of(&g.root.join(&s.id)))
        .collect();
    if args.quiet {
        for (s, _) in &all {
            println!("{}", s.id);
        }
        return Ok(0);
    }
    match args.format {
        Format::Json => {
            let v: Vec<_> = all
                .iter()
                .zip(&owners)
                .map(|((s, st), owner)| {
                    let mut o = s.oci(*st);
                    o.owner = owner;
                    o
                })
                .collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        Format::Table => {
            let rows: Vec<[String; 6]> = all
                .iter()
                .zip(&owners)
                .map(|((s, st), owner)| {
                    let mut o = s.oci(*st);
                    o.owner = owner;
                    [
                        o.id.to_string(),
                        o.pid.to_string(),
                        o.status.to_string(),
                        o.bundle.display().to_string(),
                        o.created.to_string(),
                        o.owner.to_string(),
                    ]
                })
                .collect();
            print!(
                "{}",
                table(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"], &rows)
            );
        }
    }
    Ok(0)
}

fn owner_of(dir: &std::path::Path) -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return String::new();
    };
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(meta.uid())) {
        Ok(Some(u)) => u.name,
        _ => format!("#{}", meta.uid()),
    }
}

/// Left-aligned columns separated by at least two spaces, like Go's tabwriter in runc.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}   ", w = widths[i]));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}
