//! What `tusk upload PATH...` means: each file, and every file under each
//! folder, with the name it gets on the server. A file given by itself is
//! named by its file name; a file inside a folder by the folder's name and
//! its path below it (`photos/2024/a.jpg`), as a browser names a folder's
//! files.

use std::path::{Path, PathBuf};

use crate::cache::Stamp;

/// One local file to upload.
#[derive(Debug, Clone)]
pub struct Entry {
    /// As given or found, for messages.
    pub path: PathBuf,
    /// Absolute, for the cache.
    pub key: PathBuf,
    /// The name on the server.
    pub name: String,
    pub stamp: Stamp,
}

/// The files under `inputs`, sorted by name within each input, and the
/// paths that could not be read, with why.
pub fn collect(inputs: &[PathBuf], prefix: Option<&str>) -> (Vec<Entry>, Vec<(PathBuf, String)>) {
    let mut entries = Vec::new();
    let mut failed = Vec::new();
    for input in inputs {
        let meta = match std::fs::metadata(input) {
            Ok(m) => m,
            Err(e) => {
                failed.push((input.clone(), e.to_string()));
                continue;
            }
        };
        let key = match std::path::absolute(input) {
            Ok(k) => k,
            Err(e) => {
                failed.push((input.clone(), e.to_string()));
                continue;
            }
        };
        if meta.is_file() {
            let name = file_name(&key);
            entries.push(Entry {
                path: input.clone(),
                name: prefixed(prefix, &name),
                key,
                stamp: Stamp::of(&meta),
            });
            continue;
        }
        if !meta.is_dir() {
            failed.push((input.clone(), "not a regular file or a folder".into()));
            continue;
        }
        let top = file_name(&std::fs::canonicalize(input).unwrap_or(key.clone()));
        for found in walkdir::WalkDir::new(input).sort_by_file_name() {
            let found = match found {
                Ok(f) => f,
                Err(e) => {
                    let at = e.path().unwrap_or(input).to_owned();
                    failed.push((at, e.io_error().map_or(e.to_string(), |io| io.to_string())));
                    continue;
                }
            };
            // Links to files are followed; links to folders are not (no
            // loops, no surprises), nor are fifos, sockets and devices.
            let meta = match std::fs::metadata(found.path()) {
                Ok(m) if m.is_file() => m,
                Ok(m) if m.is_dir() => continue,
                Ok(_) => {
                    eprintln!(
                        "tusk upload: {}: not a regular file; skipped",
                        found.path().display()
                    );
                    continue;
                }
                Err(e) => {
                    failed.push((found.path().to_owned(), e.to_string()));
                    continue;
                }
            };
            let below = found.path().strip_prefix(input).unwrap_or(found.path());
            let mut name = top.clone();
            for part in below.components() {
                name.push('/');
                name.push_str(&part.as_os_str().to_string_lossy());
            }
            entries.push(Entry {
                path: found.path().to_owned(),
                key: key.join(below),
                name: prefixed(prefix, &name),
                stamp: Stamp::of(&meta),
            });
        }
    }
    (entries, failed)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".to_owned())
}

fn prefixed(prefix: Option<&str>, name: &str) -> String {
    match prefix
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(p) => format!("{p}/{name}"),
        None => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_the_folder_and_the_path_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("photos");
        std::fs::create_dir_all(top.join("2024/x")).unwrap();
        std::fs::write(top.join("b.txt"), b"b").unwrap();
        std::fs::write(top.join("2024/x/a.jpg"), b"a").unwrap();
        std::fs::write(dir.path().join("alone.bin"), b"z").unwrap();
        std::os::unix::fs::symlink(&top, top.join("loop")).unwrap();
        let (entries, failed) = collect(
            &[
                top.clone(),
                dir.path().join("alone.bin"),
                dir.path().join("missing"),
            ],
            None,
        );
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["photos/2024/x/a.jpg", "photos/b.txt", "alone.bin"]);
        assert_eq!(failed.len(), 1);
        assert!(failed[0].0.ends_with("missing"));
        let (entries, _) = collect(&[dir.path().join("alone.bin")], Some("/in/here/"));
        assert_eq!(entries[0].name, "in/here/alone.bin");
    }
}
