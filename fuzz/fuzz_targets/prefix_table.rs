#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| conf::fuzzing::prefix_table(data));
