#![no_main]
//! See `userdir::fuzzing::logto_search`; the regression test replays the same function.

libfuzzer_sys::fuzz_target!(|data: &[u8]| userdir::fuzzing::logto_search(data));
