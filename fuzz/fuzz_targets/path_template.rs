#![no_main]
//! See `userdir::fuzzing::path_template`; the regression test replays the same function.

libfuzzer_sys::fuzz_target!(|data: &[u8]| userdir::fuzzing::path_template(data));
