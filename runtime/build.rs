//! Link settings of the `berth-runtime` binary.
//!
//! `-z pack-relative-relocs` (DT_RELR, binutils 2.38+, glibc 2.36+) stores the binary's
//! relative relocations as a bitmap instead of one 24-byte entry each: ~370 KiB of .rela.dyn
//! that the dynamic loader read at every start shrink to a few KiB. Every `run` pays for
//! start-up twice (the runtime, and the pages its init child touches), so this is measurable
//! in peak RSS (docs/benchmarks.md). The binary stays position-independent (ASLR).
//!
//! Release builds are also linked in the order of `link/symbol-order.txt`: the functions that
//! `run`, `create`, `start`, `exec` and `delete` execute come first and together, so the 64 KiB
//! windows the kernel maps around each first touch of the text hold code that runs rather than
//! code that never does (hack/order-runtime makes the list; docs/benchmarks.md measures it).
//! That is an lld option, and lld is rustc's linker on x86_64 Linux since Rust 1.90; set
//! `BERTH_LINK_ORDER=0` to link without it (another linker, or to measure the difference).
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let wanted = std::env::var("BERTH_LINK_ORDER").as_deref() != Ok("0");
    if release && wanted && os == "linux" && arch == "x86_64" {
        let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
        println!(
            "cargo:rustc-link-arg-bin=berth-runtime=-Wl,--symbol-ordering-file={dir}/link/symbol-order.txt"
        );
        // Functions renamed or gone since the list was made are skipped, silently.
        println!("cargo:rustc-link-arg-bin=berth-runtime=-Wl,--no-warn-symbol-ordering");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link/symbol-order.txt");
    println!("cargo:rerun-if-env-changed=BERTH_LINK_ORDER");
}
