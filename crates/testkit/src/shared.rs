//! `../shared` fixtures and external programs: skipped with a `SKIP:` line in a user's clone,
//! a test failure where they must be present (CI).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Set to `1` (or `true`) to make a missing shared file or program fail the test, as `CI=true`
/// does.
pub const REQUIRE_ENV: &str = "RLHF_REQUIRE_SHARED";

/// Whether `CI` / [`REQUIRE_ENV`] values ask for missing shared files to be errors: `CI` set to
/// `true` or `1`, or [`REQUIRE_ENV`] set to `1` or `true` (case-insensitive).
pub fn requirement_from(ci: Option<&str>, require: Option<&str>) -> bool {
    let yes = |v: Option<&str>| {
        v.is_some_and(|v| {
            let v = v.trim();
            v == "1" || v.eq_ignore_ascii_case("true")
        })
    };
    yes(ci) || yes(require)
}

/// Whether this process must not skip: `CI=true` or `RLHF_REQUIRE_SHARED=1` in the environment.
pub fn strict() -> bool {
    let var = |k: &str| std::env::var(k).ok();
    requirement_from(var("CI").as_deref(), var(REQUIRE_ENV).as_deref())
}

/// The `shared` folder next to the repository root (`<workspace>/../shared`).
pub fn shared_dir() -> PathBuf {
    // This crate sits at <workspace>/crates/testkit.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// `shared/rel` when it exists, else a description of what is missing.
///
/// # Errors
/// The message [`shared_path`] prints or panics with.
pub fn resolve_shared(shared: &Path, rel: &Path) -> Result<PathBuf, String> {
    let path = shared.join(rel);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "../shared/{} not found (looked at {}); the shared folder belongs next to the \
             repository",
            rel.display(),
            path.display()
        ))
    }
}

/// The program `name` on `path_var` (a `PATH`-style list), or, when `name` holds a `/`, that
/// file, if it exists and is executable.
pub fn resolve_program(name: &str, path_var: Option<OsString>) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    std::env::split_paths(&path_var?)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

fn executable(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// What to do about something missing: panic when `strict`, else print `SKIP: …` and give
/// `None`.
#[track_caller]
fn on_missing<T>(message: &str, strict: bool) -> Option<T> {
    if strict {
        panic!(
            "{message}. It is required here: CI=true or {REQUIRE_ENV}=1 is set, so this test \
             fails instead of skipping"
        );
    }
    eprintln!("SKIP: {message} (set {REQUIRE_ENV}=1 to make this a failure)");
    None
}

/// `../shared/<rel>` (a fixture or data folder or file), or `None` after printing
/// `SKIP: …` when it is absent, as in a user's clone.
///
/// # Panics
/// When it is absent and `CI=true` or `RLHF_REQUIRE_SHARED=1` is set: there the tests must
/// not pass by skipping.
#[track_caller]
pub fn shared_path(rel: impl AsRef<Path>) -> Option<PathBuf> {
    match resolve_shared(&shared_dir(), rel.as_ref()) {
        Ok(p) => Some(p),
        Err(msg) => on_missing(&msg, strict()),
    }
}

/// The external program `name` (looked up on `PATH`), or `None` after printing `SKIP: …`.
///
/// # Panics
/// When it is absent and `CI=true` or `RLHF_REQUIRE_SHARED=1` is set.
#[track_caller]
pub fn require_program(name: &str) -> Option<PathBuf> {
    match resolve_program(name, std::env::var_os("PATH")) {
        Some(p) => Some(p),
        None => on_missing(&format!("program `{name}` not found on PATH"), strict()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_or_the_require_variable_make_missing_files_errors() {
        assert!(requirement_from(Some("true"), None));
        assert!(requirement_from(Some("TRUE"), None));
        assert!(requirement_from(Some("1"), None));
        assert!(requirement_from(None, Some("1")));
        assert!(requirement_from(Some("false"), Some("true")));
        assert!(!requirement_from(None, None));
        assert!(!requirement_from(Some("false"), Some("0")));
        assert!(!requirement_from(Some(""), None));
    }

    #[test]
    fn a_missing_path_skips_in_a_clone_and_panics_when_required() {
        let tmp = std::env::temp_dir().join(format!("rlhf-testkit-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("fixtures/llama")).unwrap();
        assert_eq!(
            resolve_shared(&tmp, Path::new("fixtures/llama")).unwrap(),
            tmp.join("fixtures/llama")
        );
        let msg = resolve_shared(&tmp, Path::new("fixtures/nope")).unwrap_err();
        assert!(
            msg.starts_with("../shared/fixtures/nope not found"),
            "{msg}"
        );
        assert_eq!(on_missing::<PathBuf>(&msg, false), None);
        let err = std::panic::catch_unwind(|| on_missing::<PathBuf>("x not found", true))
            .expect_err("strict mode panics");
        let text = err.downcast_ref::<String>().unwrap();
        assert!(
            text.contains("x not found") && text.contains("RLHF_REQUIRE_SHARED=1"),
            "{text}"
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn programs_are_found_on_the_path_when_executable() {
        let sh = resolve_program("sh", std::env::var_os("PATH")).expect("sh is on PATH");
        assert!(sh.ends_with("sh"));
        assert_eq!(
            resolve_program("no-such-program-rlhf", std::env::var_os("PATH")),
            None
        );
        assert_eq!(resolve_program("sh", None), None);
        assert_eq!(resolve_program("/nonexistent/sh", None), None);
        // A file that is not executable does not count.
        let tmp = std::env::temp_dir().join(format!("rlhf-testkit-bin-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("tool"), "").unwrap();
        assert_eq!(
            resolve_program("tool", Some(tmp.clone().into_os_string())),
            None
        );
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
