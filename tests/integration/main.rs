//! The one integration-test binary: every test runs `box` as the unprivileged `boxtest` user
//! against a real registry. See `harness` for the set-up.
