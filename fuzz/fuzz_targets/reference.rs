//! `Reference::parse` never panics, and what it accepts prints to a string (in full and in
//! docker's short form) that parses back to the same reference.
#![no_main]
use boxctr::registry::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(r) = Reference::parse(s) else {
        return;
    };
    let shown = r.to_string();
    match Reference::parse(&shown) {
        Ok(again) => assert_eq!(again, r, "{s:?} -> {shown:?}"),
        Err(e) => panic!("{s:?} parsed, but its Display {shown:?} does not: {e}"),
    }
    let familiar = r.familiar();
    match Reference::parse(&familiar) {
        Ok(again) => assert_eq!(again, r, "{s:?} -> familiar {familiar:?}"),
        Err(e) => panic!("{s:?} parsed, but its familiar form {familiar:?} does not: {e}"),
    }
});
