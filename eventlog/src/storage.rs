//! The file I/O the log does, behind two small traits, so that tests can swap
//! the disk for one that fails or "crashes" on cue (see `mem_storage`).
//!
//! A [`Storage`] is one directory; a [`LogFile`] is one open file addressed
//! by position (pread/pwrite), so that readers on many threads share a handle
//! with the writer without a seek position to fight over.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One directory of log files.
pub trait Storage: Send + Sync + Debug + 'static {
    /// Path of a file in this directory, for error messages.
    fn path(&self, name: &str) -> PathBuf;
    /// Names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens an existing file; `writable` asks for write access.
    fn open(&self, name: &str, writable: bool) -> io::Result<Arc<dyn LogFile>>;
    /// Creates (or truncates) a file for writing.
    fn create(&self, name: &str) -> io::Result<Arc<dyn LogFile>>;
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes creations, renames and removals durable (fsync of the directory).
    fn sync_dir(&self) -> io::Result<()>;
    /// Takes the directory's exclusive lock, held until the returned guard is
    /// dropped. Storages without processes to exclude return a no-op guard.
    fn lock(&self) -> io::Result<Option<Box<dyn Debug + Send + Sync>>> {
        Ok(None)
    }
    /// Wall-clock ms for `created_ms` in segment headers and `.torn-<ms>`
    /// names. A seam so that golden-file tests can fix the clock.
    fn now_ms(&self) -> u64 {
        crate::now_ms()
    }
}

/// One open file.
pub trait LogFile: Send + Sync + Debug {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()>;
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()>;
    /// fdatasync: the data and the size, enough for appends.
    fn sync_data(&self) -> io::Result<()>;
    /// fsync: data and all metadata.
    fn sync_all(&self) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Reads a whole file into `buf` (replacing its contents). Reusing one
/// buffer across segments saves the page faults of a fresh 64 MiB
/// allocation per segment, a third of `verify`'s time.
pub fn read_all_into(file: &dyn LogFile, buf: &mut Vec<u8>) -> io::Result<()> {
    let len = file.len()?;
    let len = usize::try_from(len).map_err(|_| io::Error::other("file too large to read"))?;
    buf.clear();
    buf.resize(len, 0);
    file.read_exact_at(buf, 0)
}

/// The real file system.
#[derive(Debug, Clone)]
pub struct StdStorage {
    dir: PathBuf,
}

impl StdStorage {
    /// A storage rooted at `dir`, created if missing.
    pub fn create_dir(dir: &Path) -> io::Result<StdStorage> {
        std::fs::create_dir_all(dir)?;
        Ok(StdStorage {
            dir: dir.to_path_buf(),
        })
    }

    /// A storage rooted at an existing `dir` (for read-only use).
    pub fn existing(dir: &Path) -> io::Result<StdStorage> {
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(StdStorage {
            dir: dir.to_path_buf(),
        })
    }
}

#[derive(Debug)]
struct StdFile(File);

/// Holds the `LOCK` file; the lock goes with the file handle.
#[derive(Debug)]
struct LockGuard(#[allow(dead_code)] File);

impl Storage for StdStorage {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    fn open(&self, name: &str, writable: bool) -> io::Result<Arc<dyn LogFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(self.path(name))?;
        Ok(Arc::new(StdFile(f)))
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn LogFile>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.path(name))?;
        Ok(Arc::new(StdFile(f)))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.path(from), self.path(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.path(name))
    }

    fn sync_dir(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn lock(&self) -> io::Result<Option<Box<dyn Debug + Send + Sync>>> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(self.path("LOCK"))?;
        match f.try_lock() {
            Ok(()) => Ok(Some(Box::new(LockGuard(f)))),
            Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "directory locked",
            )),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

impl LogFile for StdFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        FileExt::read_exact_at(&self.0, buf, pos)
    }
    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        FileExt::write_all_at(&self.0, buf, pos)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
}
