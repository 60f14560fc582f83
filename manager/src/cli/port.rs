//! `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`: the container's published ports.

use anyhow::{bail, Result};

use super::{ctr, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    container: String,
    /// Only this container port (`80` or `80/tcp`)
    port: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<()> {
    let (_, r) = ctr::find(&ctx.settings.root, &args.container)?;
    let want = args.port.as_deref().map(|p| match p.split_once('/') {
        Some((n, proto)) => (n.to_string(), proto.to_string()),
        None => (p.to_string(), "tcp".to_string()),
    });
    let mut found = false;
    for p in &r.config.ports {
        let host_ip = if p.host_ip.is_empty() {
            "0.0.0.0"
        } else {
            &p.host_ip
        };
        match &want {
            Some((n, proto)) => {
                if *n == p.container_port.to_string() && *proto == p.protocol {
                    println!("{host_ip}:{}", p.host_port);
                    found = true;
                }
            }
            None => {
                println!(
                    "{}/{} -> {host_ip}:{}",
                    p.container_port, p.protocol, p.host_port
                );
                found = true;
            }
        }
    }
    if let (Some(p), false) = (&args.port, found) {
        bail!("No public port '{p}' published for {}", args.container);
    }
    Ok(())
}
