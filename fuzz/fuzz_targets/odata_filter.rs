#![no_main]
//! See `userdir::fuzzing::odata_filter`; the regression test replays the same function.

libfuzzer_sys::fuzz_target!(|data: &[u8]| userdir::fuzzing::odata_filter(data));
