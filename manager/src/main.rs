fn main() -> anyhow::Result<()> {
    anyhow::bail!("berth: the manager is being built (see issue 6)")
}
