//! File reads with a size cap, and writes that never leave a half-written file behind: every
//! write replaces its file under an exclusive lock on the file's directory, so a read-check-write
//! is a real compare-and-swap between processes and leftover temporary files can be swept.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Temporary files are named `.flagramp-<random>.tmp`, beside the file they replace.
const TEMP_PREFIX: &str = ".flagramp-";
const TEMP_SUFFIX: &str = ".tmp";

/// The directories this process has swept of leftover temporary files ([`DirLock`]).
static SWEPT: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// How long a write waits for another process's write in the same directory; those take
/// milliseconds, so reaching this means that process is stuck.
const DIR_LOCK_WAIT: Duration = Duration::from_secs(30);

/// One mebibyte, for read caps.
pub const MIB: u64 = 1024 * 1024;

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file holds more than the cap.
    #[error("is larger than {} MiB, more than flagramp reads", .0 / MIB)]
    TooLarge(u64),
    /// A device, a FIFO or a directory where a file should be.
    #[error("is not a regular file")]
    NotAFile,
    /// The file could not be read.
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the whole file at `path` if it holds at most `cap` bytes; `None` when it does not exist.
///
/// At most `cap + 1` bytes are ever read, so a file linked to `/dev/zero` or grown without bound
/// cannot exhaust memory.
pub fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>, ReadError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    // Opening a FIFO would block until a writer appears.
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(cap));
    }
    Ok(Some(bytes))
}

/// Takes an exclusive lock on `file`, trying again until `wait` has passed; `false` when another
/// process still holds it then.
pub fn lock_within(file: &File, wait: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(true),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(false);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Why a write failed. Every failure happens before the rename that commits the write, so
/// nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The file has no write permission: a person made it read-only on purpose.
    #[error("is read-only: make it writable (chmod u+w) for flagramp to change it")]
    ReadOnly,
    /// Another process kept the directory locked.
    #[error("another process has kept {} locked for {}s", .0.display(), DIR_LOCK_WAIT.as_secs())]
    LockTimeout(PathBuf),
    /// Creating, writing or renaming the temporary file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An exclusive lock on a directory, held while its files are read, checked and replaced.
///
/// Every flagramp write holds it, so while it is held any `.flagramp-*.tmp` file in the
/// directory was left by a process that died mid-write.
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    // The OS releases the lock when this closes, or when the process dies.
    _handle: File,
}

impl DirLock {
    /// Locks the directory that holds `path`, waiting while another process writes there.
    pub fn for_file(path: &Path) -> Result<DirLock, WriteError> {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => DirLock::for_dir(p),
            _ => DirLock::for_dir(Path::new(".")),
        }
    }

    /// Locks the directory `dir`, waiting while another process writes there.
    pub fn for_dir(dir: &Path) -> Result<DirLock, WriteError> {
        let dir = dir.to_path_buf();
        let handle = File::open(&dir)?;
        if !lock_within(&handle, DIR_LOCK_WAIT)? {
            return Err(WriteError::LockTimeout(dir));
        }
        Ok(DirLock { dir, _handle: handle })
    }

    /// Replaces `path` (in the locked directory) with `bytes`: a temporary file beside it is
    /// flushed to disk, then renamed over it, so readers see the old content or the new, never a
    /// mix. Leftover temporary files of dead processes are removed first (once per directory
    /// and process).
    pub fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
        self.sweep_temp_files();
        let tmp = self.prepare(path, bytes, true)?;
        crate::crashpoint::pause_at("before-rename");
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Replaces several files of the locked directory, as [`DirLock::replace`] does one: every
    /// temporary file is written and flushed first, then all are renamed, then the directory is
    /// flushed once, so a batch costs one pass of syncs rather than a round per file. Each file
    /// holds its old content or its new, never a mix; a failure before the renames writes none.
    /// One result per file, in order.
    pub fn replace_all(&self, files: &[(PathBuf, Vec<u8>)]) -> Vec<Result<(), WriteError>> {
        self.sweep_temp_files();
        let mut prepared = Vec::with_capacity(files.len());
        for (path, bytes) in files {
            match self.prepare(path, bytes, false) {
                Ok(tmp) => prepared.push(tmp),
                // Nothing is renamed yet: every temporary file is removed when dropped.
                Err(e) => {
                    let failed = path.display().to_string();
                    return files
                        .iter()
                        .map(|(p, _)| {
                            Err(match &e {
                                WriteError::ReadOnly if p == path => WriteError::ReadOnly,
                                e if p == path => WriteError::Io(std::io::Error::other(e.to_string())),
                                e => WriteError::Io(std::io::Error::other(format!(
                                    "not written, because {failed} of the same batch could not be: {e}"
                                ))),
                            })
                        })
                        .collect();
                }
            }
        }
        // Every temporary file must be on disk before any rename makes it the file.
        if let Err(e) = flush_all(&self.dir, &prepared) {
            let why = e.to_string();
            return files
                .iter()
                .map(|_| Err(WriteError::Io(std::io::Error::other(why.clone()))))
                .collect();
        }
        crate::crashpoint::pause_at("before-rename");
        let results: Vec<Result<(), WriteError>> = prepared
            .into_iter()
            .zip(files)
            .map(|(tmp, (path, _))| tmp.persist(path).map(|_| ()).map_err(|e| WriteError::Io(e.error)))
            .collect();
        // The renames themselves are durable once the directory is.
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        results
    }

    /// A temporary file with `bytes`, beside `path`, keeping `path`'s mode; flushed to disk
    /// with `flush`, else the caller flushes it.
    fn prepare(&self, path: &Path, bytes: &[u8], flush: bool) -> Result<tempfile::NamedTempFile, WriteError> {
        let kept_mode = match std::fs::metadata(path) {
            Ok(meta) if meta.permissions().readonly() => return Err(WriteError::ReadOnly),
            Ok(meta) => Some(meta.permissions()),
            Err(_) => None,
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.dir)?;
        tmp.write_all(bytes)?;
        if flush {
            tmp.as_file().sync_all()?;
        }
        if let Some(mode) = kept_mode {
            // Keep the file's mode: a flag file may be group-readable for a flagd sidecar.
            let _ = std::fs::set_permissions(tmp.path(), mode);
        }
        Ok(tmp)
    }

    fn sweep_temp_files(&self) {
        // Once per directory and process: a dead writer's leftovers are there before this
        // process's first write, and a run that writes a thousand flag files into one directory
        // would otherwise list it a thousand times (BENCHMARKS.md, "Scale").
        let first = SWEPT
            .lock()
            .map(|mut swept| swept.insert(self.dir.clone()))
            .unwrap_or(true);
        if !first {
            return;
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let ours = name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX);
            if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
                // Another sweeper may have removed it first; either way it is gone.
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Puts every file of a batch on disk. On Linux one `syncfs` of the file system that holds
/// `dir` does it for all of them: a thousand state files cost one flush, not a thousand. Elsewhere
/// each file is flushed in turn.
fn flush_all(dir: &Path, files: &[tempfile::NamedTempFile]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let _ = files;
        let dir = File::open(dir)?;
        rustix::fs::syncfs(&dir).map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = dir;
        files.iter().try_for_each(|f| f.as_file().sync_all())
    }
}

/// Replaces `path` with `bytes` under its directory's lock (see [`DirLock::replace`]).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    DirLock::for_file(path)?.replace(path, bytes)
}

/// Creates `path` with `bytes`, and its missing parent directories: a temporary file beside it
/// is flushed to disk, then linked into place only if nothing is there yet, so a reader sees no
/// file or the whole file, and a file that appeared meanwhile is never replaced (`AlreadyExists`).
pub fn create_atomically(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let lock = DirLock::for_file(path)?;
    let tmp = lock.prepare(path, bytes, true)?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    if let Ok(dir) = File::open(&lock.dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// A stable fingerprint of file content, used as a compare-and-swap version.
pub fn fingerprint(bytes: &[u8]) -> String {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}-{}", bytes.len())
}

/// `1 MiB`, `8 MiB`, `512 KiB`: a cap as people read it.
pub fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b.is_multiple_of(1 << 20) => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b.is_multiple_of(1 << 10) => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}
