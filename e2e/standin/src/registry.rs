//! The images the stand-in knows: registry files mapping an image reference to how to run it
//! as a local process. The repo's file is `e2e/images.yaml`; `KSO_STANDIN_IMAGES` names more
//! (colon-separated), so a user or a test adds an app without editing the repo.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use tokio::sync::OnceCell;

use crate::error::Error;

/// The environment variable naming extra registry files.
pub const EXTRA_REGISTRIES_ENV: &str = "KSO_STANDIN_IMAGES";

/// One registry file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    images: Vec<ImageEntry>,
}

/// How to run one image.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageEntry {
    /// The image reference as pods spell it (`repo/name:tag`), matched exactly.
    pub image: String,
    /// The image's own environment (its `ENV` lines); the pod's environment overrides it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// A JVM app: the image's entrypoint is `java ... <main class or -jar>`.
    pub jvm: Option<JvmImage>,
    /// The container's `command` and `args` run as a host process (for tests and tools).
    pub host: Option<HostImage>,
}

/// A JVM app built by a script.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JvmImage {
    /// A command (run in the registry file's directory) printing the jar, or with
    /// `mainClass` the classpath, on its last stdout line. Run once per stand-in.
    pub build: Vec<String>,
    /// Main class run with `-cp`; unset runs the printed jar with `-jar`.
    pub main_class: Option<String>,
    /// JVM options before the class or jar.
    #[serde(default)]
    pub options: Vec<String>,
}

/// Runs the container's command line on the host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostImage {
    /// The image's entrypoint: what runs when the container sets no `command` (its `args`
    /// follow, as with a Dockerfile's ENTRYPOINT).
    #[serde(default)]
    pub command: Vec<String>,
}

/// How an image runs, resolved from its entry.
#[derive(Debug, Clone)]
pub enum Launch {
    /// `java <options> (-cp <classpath> <main> | -jar <jar>)` then the container's args.
    Jvm {
        /// Options before the class or jar.
        options: Vec<String>,
        /// `-cp X Main` or `-jar X`.
        target: Vec<String>,
    },
    /// The container's command and args, or the image's entrypoint and the args.
    Host {
        /// The image's entrypoint.
        entrypoint: Vec<String>,
    },
}

/// A known image: its entry, where its file is, and its build once done.
#[derive(Debug)]
pub struct Known {
    /// The entry.
    pub entry: ImageEntry,
    dir: PathBuf,
    built: OnceCell<Result<String, String>>,
}

impl Known {
    /// How to run the image; builds it on first use (concurrent callers wait for one build).
    pub async fn launch(&self) -> Result<Launch, Error> {
        if let Some(host) = &self.entry.host {
            return Ok(Launch::Host {
                entrypoint: host.command.clone(),
            });
        }
        let Some(jvm) = &self.entry.jvm else {
            return Err(Error::Registry(format!(
                "image {}: neither jvm nor host",
                self.entry.image
            )));
        };
        let built = self
            .built
            .get_or_init(|| build(&self.dir, &jvm.build))
            .await
            .clone()
            .map_err(|e| Error::ImageBuild(self.entry.image.clone(), e))?;
        let target = match &jvm.main_class {
            Some(main) => vec!["-cp".into(), built, main.clone()],
            None => vec!["-jar".into(), built],
        };
        Ok(Launch::Jvm {
            options: jvm.options.clone(),
            target,
        })
    }
}

async fn build(dir: &Path, command: &[String]) -> Result<String, String> {
    let (program, args) = command.split_first().ok_or("empty build command")?;
    let out = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .map_err(|e| format!("running {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{} exited with {}", command.join(" "), out.status));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default().trim().to_string();
    if last.is_empty() {
        return Err(format!("{} printed nothing", command.join(" ")));
    }
    Ok(last)
}

/// Every known image, by reference.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    images: BTreeMap<String, Arc<Known>>,
}

impl Registry {
    /// The registry from `files`, then those `KSO_STANDIN_IMAGES` names; a later file's
    /// entry for an image replaces an earlier one.
    pub fn load(files: &[PathBuf]) -> Result<Self, Error> {
        let extra = std::env::var_os(EXTRA_REGISTRIES_ENV).unwrap_or_default();
        let extra = std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty());
        let mut registry = Self::default();
        for file in files.iter().cloned().chain(extra) {
            registry.add_file(&file)?;
        }
        Ok(registry)
    }

    /// Adds the entries of one registry file.
    pub fn add_file(&mut self, file: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::Registry(format!("{}: {e}", file.display())))?;
        let parsed: RegistryFile = serde_yaml::from_str(&text)
            .map_err(|e| Error::Registry(format!("{}: {e}", file.display())))?;
        let dir = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        for entry in parsed.images {
            if entry.jvm.is_some() == entry.host.is_some() {
                return Err(Error::Registry(format!(
                    "{}: image {} needs exactly one of jvm and host",
                    file.display(),
                    entry.image
                )));
            }
            let known = Known {
                entry,
                dir: dir.clone(),
                built: OnceCell::new(),
            };
            self.images
                .insert(known.entry.image.clone(), Arc::new(known));
        }
        Ok(())
    }

    /// The entry for `image`, if known.
    pub fn get(&self, image: &str) -> Option<Arc<Known>> {
        self.images.get(image).cloned()
    }

    /// The known image references.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.images.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repos_registry_parses_and_an_entry_needs_one_kind() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../images.yaml");
        let mut registry = Registry::default();
        registry.add_file(&repo).unwrap();
        assert!(registry.get("kstreams-examples/wordcount:0.1.0").is_some());

        let dir = std::env::temp_dir().join(format!("standin-reg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.yaml");
        std::fs::write(&bad, "images:\n- image: x\n").unwrap();
        let err = registry.add_file(&bad).unwrap_err().to_string();
        assert!(err.contains("exactly one of jvm and host"), "{err}");
        std::fs::write(&bad, "images:\n- image: x\n  hots: {}\n").unwrap();
        let err = registry.add_file(&bad).unwrap_err().to_string();
        assert!(err.contains("unknown field `hots`"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
