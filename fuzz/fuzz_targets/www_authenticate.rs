//! `parse_www_authenticate` never panics (nor loops) on any header value.
#![no_main]
use boxctr::registry::auth::parse_www_authenticate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    for c in parse_www_authenticate(&s) {
        assert!(!c.scheme.is_empty());
        let _ = c.param("realm");
    }
});
