//! config.json parsing and validation (what `create` does before anything exists): any
//! input must give a spec or a typed error, never a panic, a hang or a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = berth_runtime::config::parse(data, std::path::Path::new("config.json"));
});
