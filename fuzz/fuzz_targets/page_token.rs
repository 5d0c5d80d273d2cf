#![no_main]
//! See `userdir::fuzzing::page_token`; the regression test replays the same function.

libfuzzer_sys::fuzz_target!(|data: &[u8]| userdir::fuzzing::page_token(data));
