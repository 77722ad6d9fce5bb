//! Marks the PostgreSQL tests ignored, not passed, when there is no PostgreSQL to run them on.
//!
//! With `WRIT_TEST_POSTGRES_URL` unset, the tests that need PostgreSQL are compiled with
//! `cfg(writ_no_test_postgres)`, which gives them `#[ignore]`: `cargo test` then reports them
//! as ignored, with the reason. Under `CI=true` the cfg is never set, so a missing URL fails
//! those tests with a message saying so instead of hiding them.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(writ_no_test_postgres)");
    println!("cargo::rerun-if-env-changed=WRIT_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-env-changed=CI");
    let has_url = std::env::var_os("WRIT_TEST_POSTGRES_URL").is_some_and(|v| !v.is_empty());
    let in_ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if !has_url && !in_ci {
        println!("cargo::rustc-cfg=writ_no_test_postgres");
    }
}
