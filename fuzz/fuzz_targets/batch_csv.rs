#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    kicc_fuzz::checks::batch_csv(data);
});
