#![no_main]
//! See `userdir::fuzzing::transcoder_bind`; the regression test replays the same function.

libfuzzer_sys::fuzz_target!(|data: &[u8]| userdir::fuzzing::transcoder_bind(data));
