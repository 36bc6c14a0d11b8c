//! An in-memory [`Storage`] for tests: it keeps, for every file, the bytes
//! written and the bytes made durable by a sync, and for the directory the
//! entries made durable by a directory sync. It fails the Nth write or sync
//! on cue (optionally after a short write), and `crash` returns the storage a
//! reboot would find: synced bytes plus, at random, nothing, a prefix, or a
//! prefix and garbage or zeros of what was not synced; files created or
//! renamed since the last directory sync may vanish.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::storage::{LogFile, Storage};

/// What survives a crash of a [`MemStorage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Power loss with nothing lucky: only synced bytes and entries remain.
    DropUnsynced,
    /// A process kill: the page cache survives, everything written remains.
    KeepAll,
    /// Power loss with random luck, from this seed: per file, a random
    /// prefix of the unsynced bytes, sometimes followed by zeros or garbage;
    /// each unsynced directory change kept or lost at random.
    Random(u64),
}

/// Fault switches; counts are of calls from the moment they are set.
#[derive(Debug, Default, Clone)]
struct Faults {
    /// Writes left before one fails.
    write_fails_in: Option<u64>,
    /// A failing write writes half its bytes first.
    short_write: bool,
    /// File or directory syncs left before one fails.
    sync_fails_in: Option<u64>,
    writes: u64,
    syncs: u64,
    /// Every file sync sleeps this long, like a real disk's flush.
    sync_delay: Option<std::time::Duration>,
}

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    durable: Vec<u8>,
}

type InodeRef = Arc<Mutex<Inode>>;

#[derive(Debug, Default)]
struct Fs {
    live: BTreeMap<String, InodeRef>,
    durable: BTreeMap<String, InodeRef>,
    /// A fixed clock, if set.
    clock: Option<u64>,
}

/// See the module docs. Clones share the same files.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    fs: Arc<Mutex<Fs>>,
    faults: Arc<Mutex<Faults>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected {what} failure"))
}

impl MemStorage {
    pub fn new() -> MemStorage {
        MemStorage::default()
    }

    /// The next `n` writes succeed and the one after fails; with `short`, it
    /// writes half of its bytes before failing.
    pub fn fail_write_after(&self, n: u64, short: bool) {
        let mut f = lock(&self.faults);
        f.write_fails_in = Some(n);
        f.short_write = short;
    }

    /// The next `n` syncs (file or directory) succeed and the one after fails.
    pub fn fail_sync_after(&self, n: u64) {
        lock(&self.faults).sync_fails_in = Some(n);
    }

    /// Fixes the clock `now_ms` reports (for byte-exact golden files).
    pub fn set_clock(&self, ms: u64) {
        lock(&self.fs).clock = Some(ms);
    }

    /// Makes every sync take `d` (to test that appenders share syncs).
    pub fn set_sync_delay(&self, d: std::time::Duration) {
        lock(&self.faults).sync_delay = Some(d);
    }

    /// Clears the fault switches.
    pub fn heal(&self) {
        let mut f = lock(&self.faults);
        f.write_fails_in = None;
        f.sync_fails_in = None;
    }

    /// Writes and syncs done so far.
    pub fn counts(&self) -> (u64, u64) {
        let f = lock(&self.faults);
        (f.writes, f.syncs)
    }

    /// The storage as a reboot would find it. The old storage and its open
    /// handles stay usable but no longer share anything with the new one.
    pub fn crash(&self, mode: CrashMode) -> MemStorage {
        let fs = lock(&self.fs);
        let mut rng = match mode {
            CrashMode::Random(seed) => seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            _ => 1,
        };
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut entries: BTreeMap<String, InodeRef> = BTreeMap::new();
        match mode {
            CrashMode::KeepAll => entries = fs.live.clone(),
            CrashMode::DropUnsynced => entries = fs.durable.clone(),
            CrashMode::Random(_) => {
                let names: std::collections::BTreeSet<&String> =
                    fs.live.keys().chain(fs.durable.keys()).collect();
                for name in names {
                    let pick = match (fs.live.get(name), fs.durable.get(name)) {
                        (Some(l), Some(d)) if Arc::ptr_eq(l, d) => Some(l),
                        (l, d) => {
                            if next() % 2 == 0 {
                                l
                            } else {
                                d
                            }
                        }
                    };
                    if let Some(i) = pick {
                        entries.insert(name.clone(), i.clone());
                    }
                }
            }
        }
        let mut new_fs = Fs {
            clock: fs.clock,
            ..Fs::default()
        };
        for (name, inode) in entries {
            let inode = lock(&inode);
            let data = match mode {
                CrashMode::KeepAll => inode.data.clone(),
                CrashMode::DropUnsynced => inode.durable.clone(),
                CrashMode::Random(_) if inode.data == inode.durable => inode.durable.clone(),
                CrashMode::Random(_) => {
                    let mut d = inode.durable.clone();
                    if inode.data.len() > d.len() && inode.data.starts_with(&d) {
                        let extra = inode.data.len() - d.len();
                        let keep = (next() % (extra as u64 + 1)) as usize;
                        d.extend_from_slice(&inode.data[d.len()..d.len() + keep]);
                    }
                    match next() % 4 {
                        0 => d.resize(d.len() + (next() % 200) as usize, 0),
                        1 => {
                            for _ in 0..next() % 200 {
                                d.push(next() as u8);
                            }
                        }
                        _ => {}
                    }
                    d
                }
            };
            let node = Arc::new(Mutex::new(Inode {
                durable: data.clone(),
                data,
            }));
            new_fs.live.insert(name.clone(), node.clone());
            new_fs.durable.insert(name, node);
        }
        MemStorage {
            fs: Arc::new(Mutex::new(new_fs)),
            faults: Arc::default(),
        }
    }

    /// The current (not necessarily durable) bytes of a file.
    pub fn file_bytes(&self, name: &str) -> Option<Vec<u8>> {
        lock(&self.fs).live.get(name).map(|i| lock(i).data.clone())
    }

    /// Replaces a file's bytes, durably (for tests that damage a log).
    pub fn set_file_bytes(&self, name: &str, bytes: Vec<u8>) {
        let mut fs = lock(&self.fs);
        let node = Arc::new(Mutex::new(Inode {
            durable: bytes.clone(),
            data: bytes,
        }));
        fs.live.insert(name.to_string(), node.clone());
        fs.durable.insert(name.to_string(), node);
    }

    fn count_sync(&self) -> io::Result<()> {
        let mut f = lock(&self.faults);
        f.syncs += 1;
        if let Some(d) = f.sync_delay {
            drop(f);
            std::thread::sleep(d);
            f = lock(&self.faults);
        }
        match f.sync_fails_in {
            Some(0) => Err(injected("sync")),
            Some(n) => {
                f.sync_fails_in = Some(n - 1);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
struct MemFile {
    inode: InodeRef,
    storage: MemStorage,
    writable: bool,
}

impl Storage for MemStorage {
    fn path(&self, name: &str) -> PathBuf {
        PathBuf::from("mem:").join(name)
    }

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(lock(&self.fs).live.keys().cloned().collect())
    }

    fn open(&self, name: &str, writable: bool) -> io::Result<Arc<dyn LogFile>> {
        let fs = lock(&self.fs);
        let inode = fs
            .live
            .get(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
        Ok(Arc::new(MemFile {
            inode: inode.clone(),
            storage: self.clone(),
            writable,
        }))
    }

    fn create(&self, name: &str) -> io::Result<Arc<dyn LogFile>> {
        let inode = InodeRef::default();
        lock(&self.fs).live.insert(name.to_string(), inode.clone());
        Ok(Arc::new(MemFile {
            inode,
            storage: self.clone(),
            writable: true,
        }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut fs = lock(&self.fs);
        let inode = fs
            .live
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.to_string()))?;
        fs.live.insert(to.to_string(), inode);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        let mut fs = lock(&self.fs);
        fs.live
            .remove(name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
        Ok(())
    }

    fn now_ms(&self) -> u64 {
        lock(&self.fs).clock.unwrap_or_else(crate::now_ms)
    }

    fn sync_dir(&self) -> io::Result<()> {
        self.count_sync()?;
        let mut fs = lock(&self.fs);
        fs.durable = fs.live.clone();
        Ok(())
    }
}

impl LogFile for MemFile {
    fn read_exact_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        let inode = lock(&self.inode);
        let start = usize::try_from(pos).map_err(io::Error::other)?;
        let end = start
            .checked_add(buf.len())
            .ok_or_else(|| io::Error::other("overflow"))?;
        let src = inode
            .data
            .get(start..end)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write_all_at(&self, buf: &[u8], pos: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "read-only handle",
            ));
        }
        let (fail, short) = {
            let mut f = lock(&self.storage.faults);
            f.writes += 1;
            match f.write_fails_in {
                Some(0) => (true, f.short_write),
                Some(n) => {
                    f.write_fails_in = Some(n - 1);
                    (false, false)
                }
                None => (false, false),
            }
        };
        let n = if fail {
            if short {
                buf.len() / 2
            } else {
                0
            }
        } else {
            buf.len()
        };
        let start = usize::try_from(pos).map_err(io::Error::other)?;
        let mut inode = lock(&self.inode);
        if inode.data.len() < start + n {
            inode.data.resize(start + n, 0);
        }
        inode.data[start..start + n].copy_from_slice(&buf[..n]);
        if fail {
            return Err(injected("write"));
        }
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.storage.count_sync()?;
        let mut inode = lock(&self.inode);
        inode.durable = inode.data.clone();
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync_data()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        lock(&self.inode).data.resize(len, 0);
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.inode).data.len() as u64)
    }
}
