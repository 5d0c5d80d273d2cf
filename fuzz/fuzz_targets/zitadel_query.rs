#![no_main]
//! See `userdir::fuzzing::zitadel_query`; the regression test replays the same function.

libfuzzer_sys::fuzz_target!(|data: &[u8]| userdir::fuzzing::zitadel_query(data));
