//! `linux.seccomp` alone, straight to the BPF compiler: reaches the profile code far faster
//! than whole configs. Any profile must compile or fail with a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(profile) = serde_json::from_slice::<oci_spec::runtime::LinuxSeccomp>(data) {
        let _ = berth_runtime::linux::seccomp::compile(&profile);
    }
});
