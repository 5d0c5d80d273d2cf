#![no_main]
//! See `userdir::fuzzing::regex_subset`; the regression test replays the same function.

libfuzzer_sys::fuzz_target!(|data: &[u8]| userdir::fuzzing::regex_subset(data));
