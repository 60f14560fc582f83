//! Link settings of the `berth-runtime` binary.
//!
//! `-z pack-relative-relocs` (DT_RELR, binutils 2.38+, glibc 2.36+) stores the binary's
//! relative relocations as a bitmap instead of one 24-byte entry each: ~370 KiB of .rela.dyn
//! that the dynamic loader read at every start shrink to a few KiB. Every `run` pays for
//! start-up twice (the runtime, and the pages its init child touches), so this is measurable
//! in peak RSS (docs/benchmarks.md). The binary stays position-independent (ASLR).
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
