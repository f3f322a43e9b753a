//! `make demo` on a machine that lacks something fails within seconds with one line naming it,
//! before any build starts; with everything present the set-up calls no apt-get at all.
//!
//! The machine's lacks are simulated on PATH: a fake `dpkg` that reports a package missing, a
//! fake `apt-get` that fails (and leaves a mark when called), or a PATH without `mvn`. Needs no
//! local stack: KSO_CACHE and KSO_STATE point at a fresh directory, so even a set-up that let
//! the demo through could not touch the shared stack or cache (and is killed at the deadline).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use integration_tests::unique;

/// Generous: the set-up takes about half a second; the builds it guards take minutes.
const DEADLINE: Duration = Duration::from_secs(30);
const MISSING: &str = "libcurl4-openssl-dev";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// A scratch directory with a `bin/` for fakes, a cache and a state dir; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(unique("setup-test"));
        std::fs::create_dir_all(dir.join("bin")).expect("scratch dir");
        Self(dir)
    }

    fn bin(&self) -> PathBuf {
        self.0.join("bin")
    }

    /// Writes an executable script `bin/NAME`.
    fn fake(&self, name: &str, script: &str) {
        let path = self.bin().join(name);
        std::fs::write(&path, script).expect("writing a fake");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// The marker the fake apt-get leaves when it is called.
    fn apt_called(&self) -> PathBuf {
        self.0.join("apt-get-was-called")
    }

    /// Fakes: `dpkg -s` reports `missing` (if any) not installed; `apt-get` always fails and
    /// leaves a mark; `sudo` runs its arguments (for a non-root run).
    fn fake_debian(&self, missing: Option<&str>) {
        let missing = missing.unwrap_or("");
        self.fake(
            "dpkg",
            &format!(
                "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = '{missing}' ] && exit 1; done\n\
                 echo 'Status: install ok installed'\n"
            ),
        );
        self.fake(
            "apt-get",
            &format!(
                "#!/bin/sh\ntouch '{}'\necho 'E: Unable to locate package' >&2\nexit 100\n",
                self.apt_called().display()
            ),
        );
        self.fake("sudo", "#!/bin/sh\nexec \"$@\"\n");
    }

    /// Links every command on `path` into `bin/` except `left_out` and the fakes already
    /// there: the machine's PATH minus one command.
    fn link_path_without(&self, path: &std::ffi::OsStr, left_out: &str) {
        for dir in std::env::split_paths(path) {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let link = self.bin().join(&name);
                let executable = std::fs::metadata(entry.path())
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
                if name == left_out || !executable || link.symlink_metadata().is_ok() {
                    continue;
                }
                std::os::unix::fs::symlink(entry.path(), &link).expect("linking a command");
            }
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run printed (stdout and stderr interleaved), whether it succeeded, how long it took.
struct Run {
    ok: bool,
    output: String,
    took: Duration,
}

/// Runs `cmd` in the repository with `path` as PATH and the scratch cache and state, in a
/// process group of its own that is killed if it outlives the deadline.
fn run(scratch: &Scratch, path: &std::ffi::OsStr, cmd: &[&str]) -> Run {
    let log = scratch.0.join("output.log");
    let file = std::fs::File::create(&log).expect("output file");
    let started = Instant::now();
    let mut child = Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(repo())
        .env("PATH", path)
        // As a user's shell runs it: not as a sub-make of `make test` (which prints
        // "Entering directory" and shares its jobserver), nor with cargo's CARGO for $(CARGO).
        .env_remove("MAKELEVEL")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("CARGO")
        .env("KSO_CACHE", scratch.0.join("cache"))
        .env("KSO_STATE", scratch.0.join("state"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(file.try_clone().expect("output handle")))
        .stderr(Stdio::from(file))
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the command") {
            break status;
        }
        if started.elapsed() > DEADLINE {
            // The whole group: make, the scripts and whatever build they started.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {DEADLINE:?}: the set-up let it through\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Run {
        ok: status.success(),
        output: std::fs::read_to_string(&log).expect("output"),
        took: started.elapsed(),
    }
}

/// Asserts `run` failed fast with exactly one error line, containing `expected`, and that
/// nothing after the set-up ran: no demo script, no tool or cargo build, no stack start.
fn assert_failed_before_any_build(scratch: &Scratch, run: &Run, expected: &str) {
    let out = &run.output;
    assert!(!run.ok, "expected a failure, got success:\n{out}");
    assert!(run.took < DEADLINE, "took {:?}:\n{out}", run.took);
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{out}");
    assert!(
        errors[0].contains(expected),
        "'{expected}' not named:\n{out}"
    );
    assert_eq!(
        out.lines().next(),
        Some("e2e/setup.sh"),
        "make runs the set-up first:\n{out}"
    );
    for started in ["e2e/demo.sh", "building ", "starting ", "Compiling "] {
        assert!(!out.contains(started), "'{started}' ran:\n{out}");
    }
    let built_logs = std::fs::read_dir(scratch.0.join("cache/logs"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("build-"))
        .count();
    assert_eq!(built_logs, 0, "a tool build started:\n{out}");
    assert!(
        !scratch.0.join("state").exists(),
        "something of the stack started:\n{out}"
    );
}

fn with_fakes_first(scratch: &Scratch) -> std::ffi::OsString {
    let mut dirs = vec![scratch.bin()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH")
}

#[test]
fn make_demo_fails_within_seconds_naming_a_package_apt_cannot_install() {
    let scratch = Scratch::new();
    scratch.fake_debian(Some(MISSING));
    let run = run(&scratch, &with_fakes_first(&scratch), &["make", "demo"]);
    assert_failed_before_any_build(
        &scratch,
        &run,
        &format!("missing package {MISSING} (apt-get install failed; see "),
    );
    assert!(
        scratch.apt_called().exists(),
        "the missing package was never installed:\n{}",
        run.output
    );
    // Only the missing package was asked for.
    let apt_log = std::fs::read_to_string(scratch.0.join("cache/logs/setup-apt.log"))
        .expect("the apt-get log the error line points at");
    assert!(apt_log.contains("Unable to locate package"), "{apt_log}");
    assert!(
        run.output.contains(&format!("installing {MISSING} (log: ")),
        "{}",
        run.output
    );
}

#[test]
fn make_demo_fails_within_seconds_naming_a_missing_toolchain_and_installs_nothing() {
    let scratch = Scratch::new();
    // A package missing too: an install attempt would leave the marker.
    scratch.fake_debian(Some("cmake"));
    scratch.link_path_without(&std::env::var_os("PATH").unwrap_or_default(), "mvn");
    let run = run(&scratch, scratch.bin().as_os_str(), &["make", "demo"]);
    assert_failed_before_any_build(&scratch, &run, "missing command mvn: install Maven 3.6.3+");
    assert!(
        !scratch.apt_called().exists(),
        "apt-get ran although a toolchain it cannot install is missing:\n{}",
        run.output
    );
}

#[test]
fn setup_with_everything_present_succeeds_quickly_without_apt() {
    let scratch = Scratch::new();
    scratch.fake_debian(None);
    let run = run(&scratch, &with_fakes_first(&scratch), &["e2e/setup.sh"]);
    assert!(run.ok, "set-up failed on this machine:\n{}", run.output);
    assert!(
        !scratch.apt_called().exists(),
        "apt-get called with every package present:\n{}",
        run.output
    );
    assert!(
        run.output.is_empty(),
        "a quiet no-op expected:\n{}",
        run.output
    );
    assert!(run.took < Duration::from_secs(10), "took {:?}", run.took);
}

#[test]
fn every_target_that_builds_runs_the_setup_first() {
    // `make -n` prints the recipes in order without running them.
    let scratch = Scratch::new();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for target in ["test", "demo", "lint", "unit", "integration", "up", "tools"] {
        let run = run(&scratch, &path, &["make", "-n", target]);
        assert!(run.ok, "make -n {target}:\n{}", run.output);
        let lines: Vec<&str> = run.output.lines().collect();
        assert_eq!(
            lines.first(),
            Some(&"e2e/setup.sh"),
            "make {target}:\n{}",
            run.output
        );
        assert_eq!(
            lines.iter().filter(|l| **l == "e2e/setup.sh").count(),
            1,
            "make {target} runs the set-up once:\n{}",
            run.output
        );
    }
}
