//! `Platform::parse` never panics and its normal form is a fixed point.
#![no_main]
use boxctr::registry::Platform;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = Platform::parse(s) {
        let shown = p.to_string();
        assert_eq!(Platform::parse(&shown).ok(), Some(p), "{s:?} -> {shown:?}");
    }
});
