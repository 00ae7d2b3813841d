//! Folders and files only the server's user may open: folders 0700, files
//! 0600. The modes are given when a folder or file is created, so no other
//! user can open it in between, whatever the umask (which can only take
//! bits away). Used by the store and by whatever else the server keeps in
//! its data folder (lock files, the SQLite catalog's folder).

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The mode of folders the server creates.
pub const DIR_MODE: u32 = 0o700;

/// The mode of files the server creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents, each 0700; a folder already
/// there is left as it is.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Options that create files 0600 (an existing file keeps its mode).
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// Takes every group and other permission off `path` (a file or folder)
/// if it has any; whether it did. A missing path is left missing.
pub fn tighten(path: &Path) -> io::Result<bool> {
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if mode & 0o077 == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))?;
    tracing::info!(
        path = %path.display(),
        "took the permissions of other users off {} (mode {:o} → {:o})",
        path.display(),
        mode & 0o777,
        mode & 0o700
    );
    Ok(true)
}
