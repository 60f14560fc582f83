//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published ports, from
//! its inspect data (as docker's CLI does).

use anyhow::{bail, Result};
use berth::ops::containers;

use super::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    /// Only this container port (`80` or `80/tcp`)
    port: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let c = containers::inspect(&ctx.engine, &args.container)?;
    let want = args.port.as_deref().map(|p| match p.split_once('/') {
        Some((n, proto)) => format!("{n}/{proto}"),
        None => format!("{p}/tcp"),
    });
    let mut found = false;
    for (port, bindings) in &c.network_settings.ports {
        for b in bindings {
            let host_ip = if b.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                &b.host_ip
            };
            match &want {
                Some(w) if w == port => {
                    println!("{host_ip}:{}", b.host_port);
                    found = true;
                }
                Some(_) => {}
                None => {
                    println!("{port} -> {host_ip}:{}", b.host_port);
                    found = true;
                }
            }
        }
    }
    if let (Some(p), false) = (&args.port, found) {
        bail!("No public port '{p}' published for {}", args.container);
    }
    Ok(())
}
