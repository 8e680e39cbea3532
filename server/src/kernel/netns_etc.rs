//! Per-namespace configuration files: `ip netns exec NAME` bind-mounts each file found in
//! `/etc/netns/NAME/` over its namesake in `/etc`, so a container's `resolv.conf` and `hosts`
//! written there are what commands run in it read.

use std::path::{Path, PathBuf};

use super::KernelError;

/// The files netbridge writes for a namespace; nothing else there is ever touched.
pub const ETC_FILES: [&str; 2] = ["resolv.conf", "hosts"];

fn dir_of(etc_dir: &Path, name: &str) -> PathBuf {
    etc_dir.join(name)
}

/// Writes `files` (name, content; names from [`ETC_FILES`]) for namespace `name`, each
/// through a temporary file renamed into place, so a reader never sees half a file.
pub fn write_netns_etc(
    etc_dir: &Path,
    name: &str,
    files: &[(&'static str, String)],
) -> Result<(), KernelError> {
    let dir = dir_of(etc_dir, name);
    let os = |op: &'static str, target: &Path| {
        let target = target.display().to_string();
        move |source| KernelError::Os { op, target, source }
    };
    std::fs::create_dir_all(&dir).map_err(os("create directory", &dir))?;
    for (file, content) in files {
        debug_assert!(ETC_FILES.contains(file));
        let path = dir.join(file);
        let temp = dir.join(format!(".{file}.netbridge"));
        std::fs::write(&temp, content).map_err(os("write", &temp))?;
        std::fs::rename(&temp, &path).map_err(os("rename", &path))?;
    }
    Ok(())
}

/// Removes what [`write_netns_etc`] wrote for `name`, and the directory once it is empty;
/// files already gone are fine.
pub fn remove_netns_etc(etc_dir: &Path, name: &str) -> Result<(), KernelError> {
    let dir = dir_of(etc_dir, name);
    for file in ETC_FILES {
        let path = dir.join(file);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(KernelError::Os {
                    op: "remove",
                    target: path.display().to_string(),
                    source,
                });
            }
        }
    }
    // Not empty (someone else's files) or not there: left as it is.
    let _ = std::fs::remove_dir(&dir);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_then_removed() {
        let etc = std::env::temp_dir().join(format!("nb-etc-{}", std::process::id()));
        write_netns_etc(
            &etc,
            "c1",
            &[("hosts", "127.0.0.1\tlocalhost\n".to_string())],
        )
        .expect("write");
        let hosts = std::fs::read_to_string(etc.join("c1/hosts")).expect("read");
        assert_eq!(hosts, "127.0.0.1\tlocalhost\n");
        remove_netns_etc(&etc, "c1").expect("remove");
        assert!(!etc.join("c1").exists());
        remove_netns_etc(&etc, "c1").expect("removing again is fine");
        let _ = std::fs::remove_dir(&etc);
    }
}
