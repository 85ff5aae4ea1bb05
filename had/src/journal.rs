//! Persistence of the binding cache: an append-only journal of [`JournalRecord`]s.
//!
//! ```text
//! file   = "HADJ" version(u32 BE = 1) frame*
//! frame  = length(u32 BE) crc32(u32 BE, over the length octets and the payload) payload
//! ```
//!
//! * **Write path.** The core emits `HaEvent::Persist` before the BA of the change it
//!   records. The shell calls [`Journal::append`] for each (buffered), then
//!   [`Journal::sync`] (one `write` + `fdatasync` for the whole batch), and only then sends
//!   the BAs. A crash in the middle leaves at most a torn last frame, whose BA never left.
//! * **Load.** Frames are checked one by one; a damaged one (torn, bad CRC, undecodable) is
//!   reported with its offset and skipped: the loader searches forward for the next frame
//!   whose CRC verifies, so one bad record costs only itself. No record is ever loaded
//!   half. Records are folded (last write wins, `Remove` deletes) and bindings whose
//!   absolute expiry has passed are dropped.
//! * **Compaction.** The live set is written to `<file>.tmp`, fsync'ed, renamed over the
//!   journal, and the directory fsync'ed: at any instant the journal is either the old or the
//!   new file, complete. [`Journal::open`] compacts once at start, which also cuts off a torn
//!   tail before anything is appended after it.
//! * **Compaction off the loop.** At 100,000 bindings the live set is megabytes: writing
//!   and syncing it took had's loop up to 98 ms (issue 13). [`Journal::begin_compaction`]
//!   starts a thread that reads the journal as synced so far, folds it (as a load does) and
//!   writes and syncs the result to `<file>.tmp`; meanwhile records are appended to the
//!   journal as always and kept aside too. [`Journal::poll_compaction`], once the thread is
//!   done, appends those to the new file, syncs it and renames it over the journal: the
//!   fold plus what came after it folds to the same bindings, and until the rename the old
//!   file, complete, is the journal.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use tracing::{info, warn};

use crate::record::{JournalRecord, PersistedBinding};

const MAGIC: &[u8; 4] = b"HADJ";
const VERSION: u32 = 1;
const FILE_HEADER_LEN: usize = 8;
const FRAME_HEADER_LEN: usize = 8;
/// No record comes near this (a BU is at most 2 KiB); larger lengths are damage.
const MAX_RECORD_LEN: usize = 64 * 1024;

/// Journal errors (damaged records are not errors: they are reported in [`LoadReport`]).
#[derive(Debug, Error)]
pub enum JournalError {
    /// I/O failure.
    #[error("journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file exists but is not a journal of ours; it is left alone.
    #[error("journal {0}: not a had journal (bad magic or version)")]
    NotAJournal(PathBuf),
}

/// A damaged stretch of the journal, skipped on load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// File offset where the damaged frame starts.
    pub offset: u64,
    /// Octets skipped until the next good frame (or the end).
    pub skipped: u64,
    /// What was wrong.
    pub reason: String,
}

/// What [`load`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Live bindings (folded, unexpired), sorted by home address and BID.
    pub bindings: Vec<PersistedBinding>,
    /// Good records read.
    pub records: usize,
    /// Bindings dropped because their expiry had passed.
    pub expired: usize,
    /// Damaged stretches skipped.
    pub damaged: Vec<Damage>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Appends one framed record to `out`.
pub fn frame(rec: &JournalRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    rec.encode(out);
    let len = (out.len() - start - FRAME_HEADER_LEN) as u32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_be_bytes());
    h.update(&out[start + FRAME_HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&h.finalize().to_be_bytes());
}

pub(crate) fn file_header() -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..4].copy_from_slice(MAGIC);
    h[4..].copy_from_slice(&VERSION.to_be_bytes());
    h
}

/// The frame at the start of `data`: `Ok((payload, frame length))`, or why not.
fn frame_at(data: &[u8]) -> Result<(&[u8], usize), &'static str> {
    if data.len() < FRAME_HEADER_LEN {
        return Err("torn frame header");
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    if len == 0 || len > MAX_RECORD_LEN {
        return Err("implausible length");
    }
    let crc = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    let Some(payload) = data.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
        return Err("torn frame");
    };
    let mut h = crc32fast::Hasher::new();
    h.update(&data[..4]);
    h.update(payload);
    if h.finalize() != crc {
        return Err("CRC mismatch");
    }
    Ok((payload, FRAME_HEADER_LEN + len))
}

/// Decodes every record of a journal image, skipping damage frame by frame.
pub fn parse(data: &[u8]) -> (Vec<JournalRecord>, Vec<Damage>) {
    let mut records = Vec::new();
    let mut damaged = Vec::new();
    let mut at = FILE_HEADER_LEN.min(data.len());
    while at < data.len() {
        match frame_at(&data[at..]) {
            Ok((payload, n)) => {
                match JournalRecord::decode(payload) {
                    Ok(r) => records.push(r),
                    // The frame is intact (CRC), so its length is right: skip just it.
                    Err(e) => damaged.push(Damage {
                        offset: at as u64,
                        skipped: n as u64,
                        reason: format!("undecodable record: {e}"),
                    }),
                }
                at += n;
            }
            Err(reason) => {
                // Search for the next frame that verifies; the CRC covers the length, so a
                // false resynchronisation needs a 32-bit coincidence.
                let next = (at + 1..data.len())
                    .find(|&i| frame_at(&data[i..]).is_ok())
                    .unwrap_or(data.len());
                damaged.push(Damage {
                    offset: at as u64,
                    skipped: (next - at) as u64,
                    reason: reason.to_string(),
                });
                at = next;
            }
        }
    }
    (records, damaged)
}

/// Folds records into the live set at `wall` (time since the UNIX epoch).
pub fn fold(records: Vec<JournalRecord>, wall: Duration) -> (Vec<PersistedBinding>, usize) {
    // One binding per home address and Binding Identifier (RFC 5648).
    let mut live: HashMap<(Ipv6Addr, Option<u16>), PersistedBinding> = HashMap::new();
    for r in records {
        match r {
            JournalRecord::Upsert(b) => {
                live.insert((b.hoa, b.bid), b);
            }
            JournalRecord::Remove { hoa, bid } => {
                live.remove(&(hoa, bid));
            }
        }
    }
    let wall_ms = wall.as_millis() as u64;
    let before = live.len();
    let mut v: Vec<_> = live
        .into_values()
        .filter(|b| b.expires_unix_ms > wall_ms)
        .collect();
    v.sort_by_key(|b| (b.hoa, b.bid));
    let expired = before - v.len();
    (v, expired)
}

/// Reads a journal file. A missing file is an empty journal.
pub fn load(path: &Path, wall: Duration) -> Result<LoadReport, JournalError> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LoadReport::default()),
        Err(e) => return Err(io_err(path)(e)),
    };
    load_image(path, &data, wall)
}

/// [`load`] on the octets of the journal file at `path` (named in the log and errors).
pub fn load_image(path: &Path, data: &[u8], wall: Duration) -> Result<LoadReport, JournalError> {
    if data.is_empty() {
        return Ok(LoadReport::default());
    }
    if data.len() < FILE_HEADER_LEN || data[..FILE_HEADER_LEN] != file_header() {
        return Err(JournalError::NotAJournal(path.to_path_buf()));
    }
    let (records, damaged) = parse(data);
    for d in &damaged {
        warn!(path = %path.display(), offset = d.offset, skipped = d.skipped, reason = %d.reason, "damaged journal record skipped");
    }
    let n = records.len();
    let (bindings, expired) = fold(records, wall);
    Ok(LoadReport {
        bindings,
        records: n,
        expired,
        damaged,
    })
}

/// An open journal, appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
    appended: usize,
    live_hint: usize,
    /// A compaction under way on its thread.
    compaction: Option<Compaction>,
}

/// A compaction on its thread, and what was appended since its snapshot.
#[derive(Debug)]
struct Compaction {
    /// The thread folding the journal and writing the result to the temporary file (the
    /// file, synced, and how many bindings it holds).
    writer: std::thread::JoinHandle<Result<(File, usize), JournalError>>,
    /// Frames synced to the journal since the thread's read, for the new file.
    tail: Vec<u8>,
}

/// The temporary file a compaction writes.
fn tmp_path(path: &Path) -> PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    PathBuf::from(tmp)
}

impl Journal {
    /// Loads the journal at `path` (creating it if missing), compacts it to the live set
    /// (cutting off any torn tail) and opens it for appending. Feed `report.bindings` to
    /// `Ha::restore`.
    pub fn open(
        path: impl Into<PathBuf>,
        wall: Duration,
    ) -> Result<(Journal, LoadReport), JournalError> {
        let path = path.into();
        let report = load(&path, wall)?;
        write_compacted(&path, &report.bindings)?;
        let file = open_append(&path)?;
        info!(path = %path.display(), bindings = report.bindings.len(), records = report.records, damaged = report.damaged.len(), "journal loaded");
        Ok((
            Journal {
                path,
                file,
                pending: Vec::new(),
                appended: 0,
                live_hint: report.bindings.len(),
                compaction: None,
            },
            report,
        ))
    }

    /// The journal file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a record (nothing is written until [`Journal::sync`]).
    pub fn append(&mut self, rec: &JournalRecord) {
        frame(rec, &mut self.pending);
        self.appended += 1;
    }

    /// Writes the queued records and waits until they are on disk (`fdatasync`). Call
    /// before sending the BAs that acknowledge them.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file
            .write_all(&self.pending)
            .map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        if let Some(c) = &mut self.compaction {
            c.tail.extend_from_slice(&self.pending);
        }
        self.pending.clear();
        Ok(())
    }

    /// Records appended since the last compaction.
    pub fn appended_since_compaction(&self) -> usize {
        self.appended
    }

    /// A simple policy: compact when the journal holds more than twice the live set plus
    /// 1024 records.
    pub fn should_compact(&self, live: usize) -> bool {
        self.appended > 2 * live.max(self.live_hint) + 1024
    }

    /// Whether a compaction is under way on its thread.
    pub fn compacting(&self) -> bool {
        self.compaction.is_some()
    }

    /// Starts rewriting the journal on a thread, as the bindings its records fold to now
    /// (bindings expired at `wall` left out): the thread reads the file as synced so far
    /// and folds it, so the loop pays neither the walk of the cache nor the writing. The
    /// caller goes on appending and syncing, and calls [`Journal::poll_compaction`] now
    /// and then.
    pub fn begin_compaction(&mut self, wall: Duration) -> Result<(), JournalError> {
        self.sync()?;
        if self.compaction.is_some() {
            return Ok(());
        }
        let tmp = tmp_path(&self.path);
        let path = self.path.clone();
        let len = self.file.metadata().map_err(io_err(&self.path))?.len();
        let writer = std::thread::Builder::new()
            .name("had-compaction".into())
            .spawn(move || {
                use std::io::Read;
                let mut data = Vec::new();
                File::open(&path)
                    .and_then(|f| f.take(len).read_to_end(&mut data))
                    .map_err(io_err(&path))?;
                let live = load_image(&path, &data, wall)?.bindings;
                drop(data);
                Ok((write_snapshot(&tmp, &live)?, live.len()))
            })
            .map_err(io_err(&self.path))?;
        self.compaction = Some(Compaction {
            writer,
            tail: Vec::new(),
        });
        // Records appended from here on are counted against the new file.
        self.appended = 0;
        Ok(())
    }

    /// Finishes a compaction whose thread is done: the records synced since its snapshot
    /// go after it, then the new file replaces the journal. `Ok(true)` when it did; a
    /// failure leaves the old journal, complete, in use.
    pub fn poll_compaction(&mut self) -> Result<bool, JournalError> {
        if !self
            .compaction
            .as_ref()
            .is_some_and(|c| c.writer.is_finished())
        {
            return Ok(false);
        }
        let c = self.compaction.take().expect("checked above");
        let tmp = tmp_path(&self.path);
        let finish = |c: Compaction| -> Result<(File, usize), JournalError> {
            let (mut f, live) = c
                .writer
                .join()
                .map_err(|_| io_err(&tmp)(io::Error::other("compaction thread panicked")))??;
            f.write_all(&c.tail).map_err(io_err(&tmp))?;
            f.sync_data().map_err(io_err(&tmp))?;
            fs::rename(&tmp, &self.path).map_err(io_err(&self.path))?;
            sync_dir(&self.path)?;
            Ok((f, live))
        };
        match finish(c) {
            // The handle follows the file through the rename: appending goes on there.
            Ok((f, live)) => {
                self.file = f;
                self.live_hint = live;
                info!(path = %self.path.display(), bindings = live, appended_meanwhile = self.appended,
                    "journal compacted (off the loop)");
                Ok(true)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Rewrites the journal as exactly `live` (e.g. `Ha::snapshot`), atomically. Pending
    /// records are synced first so nothing acknowledged is lost if this fails. A
    /// compaction under way on its thread is waited for first.
    pub fn compact(&mut self, live: &[PersistedBinding]) -> Result<(), JournalError> {
        if let Some(c) = self.compaction.take() {
            let _ = c.writer.join();
            let _ = fs::remove_file(tmp_path(&self.path));
        }
        self.sync()?;
        write_compacted(&self.path, live)?;
        self.file = open_append(&self.path)?;
        self.appended = 0;
        self.live_hint = live.len();
        info!(path = %self.path.display(), bindings = live.len(), "journal compacted");
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, JournalError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(io_err(path))
}

/// Writes `live` as a whole journal to `tmp` and syncs it; the file comes back open for
/// appending.
fn write_snapshot(tmp: &Path, live: &[PersistedBinding]) -> Result<File, JournalError> {
    let mut data = file_header().to_vec();
    for b in live {
        frame(&JournalRecord::Upsert(b.clone()), &mut data);
    }
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(tmp)
        .map_err(io_err(tmp))?;
    f.write_all(&data).map_err(io_err(tmp))?;
    f.sync_all().map_err(io_err(tmp))?;
    Ok(f)
}

/// Syncs the directory holding `path` (a rename in it is durable after this).
fn sync_dir(path: &Path) -> Result<(), JournalError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Temp file + fsync + rename + directory fsync.
fn write_compacted(path: &Path, live: &[PersistedBinding]) -> Result<(), JournalError> {
    let tmp = tmp_path(path);
    drop(write_snapshot(&tmp, live)?);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(path)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use mipsock::CareOf;

    use super::*;

    const NOW: Duration = Duration::from_secs(1_800_000_000);

    fn b(i: u16, expires_in_s: u64) -> PersistedBinding {
        PersistedBinding {
            hoa: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i),
            bid: None,
            coa: CareOf::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, i)),
            flags: 0xc400,
            sequence: i,
            lifetime_secs: 400,
            expires_unix_ms: (NOW + Duration::from_secs(expires_in_s)).as_millis() as u64,
            mnp_v6: vec!["2001:db8:100::/48".parse().unwrap()],
            mnp_v4: vec!["10.0.0.0/24".parse().unwrap()],
            hoa_v4: Some(Ipv4Addr::new(10, 0, 0, 1)),
            spi: Some(1000),
            last_timestamp: Some(u64::from(i) << 32),
            nat_detected: false,
            rh2: true,
            flows: Vec::new(),
            bid_pri: 0,
        }
    }

    fn image(recs: &[JournalRecord]) -> (Vec<u8>, Vec<usize>) {
        let mut data = file_header().to_vec();
        let mut starts = Vec::new();
        for r in recs {
            starts.push(data.len());
            frame(r, &mut data);
        }
        (data, starts)
    }

    fn upserts(n: u16) -> Vec<JournalRecord> {
        (1..=n).map(|i| JournalRecord::Upsert(b(i, 100))).collect()
    }

    #[test]
    fn append_sync_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bc.journal");
        let (mut j, rep) = Journal::open(&path, NOW).unwrap();
        assert!(rep.bindings.is_empty());
        for r in upserts(3) {
            j.append(&r);
        }
        j.append(&JournalRecord::Remove {
            hoa: b(2, 0).hoa,
            bid: None,
        });
        j.append(&JournalRecord::Upsert(b(3, 200)));
        j.sync().unwrap();
        drop(j);
        let rep = load(&path, NOW).unwrap();
        assert_eq!(rep.bindings, vec![b(1, 100), b(3, 200)]);
        assert_eq!(rep.records, 5);
        assert!(rep.damaged.is_empty());
        // Expiry by wall clock.
        let rep = load(&path, NOW + Duration::from_secs(150)).unwrap();
        assert_eq!(rep.bindings, vec![b(3, 200)]);
        assert_eq!(rep.expired, 1);
    }

    #[test]
    fn kill_in_the_middle_of_the_last_record() {
        let recs = upserts(4);
        let (data, starts) = image(&recs);
        let last = *starts.last().unwrap();
        for cut in last..data.len() {
            let (got, damaged) = parse(&data[..cut]);
            assert_eq!(got, recs[..3].to_vec(), "cut at {cut}");
            if cut > last {
                assert_eq!(damaged.len(), 1, "cut at {cut}");
                assert_eq!(damaged[0].offset, last as u64);
            } else {
                assert!(damaged.is_empty());
            }
        }
        // Through the file API too, and a torn tail is cut off by open().
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        fs::write(&path, &data[..data.len() - 3]).unwrap();
        let (mut j, rep) = Journal::open(&path, NOW).unwrap();
        assert_eq!(rep.bindings.len(), 3);
        assert_eq!(rep.damaged.len(), 1);
        j.append(&JournalRecord::Upsert(b(9, 100)));
        j.sync().unwrap();
        let rep = load(&path, NOW).unwrap();
        assert_eq!(rep.bindings.len(), 4);
        assert!(rep.damaged.is_empty());
    }

    #[test]
    fn flipped_bits_skip_only_their_record() {
        let recs = upserts(5);
        let (data, starts) = image(&recs);
        let victim = 2;
        let (from, to) = (starts[victim], starts[victim + 1]);
        for byte in from..to {
            for bit in [0u8, 3, 7] {
                let mut d = data.clone();
                d[byte] ^= 1 << bit;
                let (got, damaged) = parse(&d);
                let mut want = recs.clone();
                want.remove(victim);
                assert_eq!(got, want, "byte {byte} bit {bit}");
                assert_eq!(damaged.len(), 1, "byte {byte} bit {bit}");
                assert_eq!(damaged[0].offset, from as u64);
                assert_eq!(damaged[0].offset + damaged[0].skipped, to as u64);
            }
        }
    }

    #[test]
    fn garbage_never_panics_and_foreign_files_are_refused() {
        let (data, _) = image(&upserts(3));
        for cut in 0..data.len() {
            let _ = parse(&data[..cut]);
        }
        let mut d = data.clone();
        d.extend_from_slice(&[0xff; 37]);
        let (got, damaged) = parse(&d);
        assert_eq!(got.len(), 3);
        assert_eq!(damaged.len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        fs::write(&path, b"not a journal at all").unwrap();
        assert!(matches!(
            Journal::open(&path, NOW),
            Err(JournalError::NotAJournal(_))
        ));
        assert_eq!(fs::read(&path).unwrap(), b"not a journal at all");
    }

    #[test]
    fn compaction_keeps_exactly_the_live_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bc.journal");
        let (mut j, _) = Journal::open(&path, NOW).unwrap();
        for round in 0..5u16 {
            for i in 1..=20u16 {
                let mut x = b(i, 100);
                x.sequence = round;
                j.append(&JournalRecord::Upsert(x));
            }
        }
        for i in (1..=20u16).filter(|i| i % 3 == 0) {
            j.append(&JournalRecord::Remove {
                hoa: b(i, 0).hoa,
                bid: None,
            });
        }
        j.sync().unwrap();
        let before = fs::metadata(&path).unwrap().len();
        let live = load(&path, NOW).unwrap().bindings;
        assert_eq!(live.len(), 14);
        assert!(live.iter().all(|x| x.sequence == 4));
        j.compact(&live).unwrap();
        let after = fs::metadata(&path).unwrap().len();
        assert!(after < before / 4);
        let (records, damaged) = parse(&fs::read(&path).unwrap());
        assert!(damaged.is_empty());
        assert_eq!(
            records,
            live.iter()
                .cloned()
                .map(JournalRecord::Upsert)
                .collect::<Vec<_>>()
        );
        assert!(!dir.path().join("bc.journal.tmp").exists());
        // Appending continues after compaction.
        j.append(&JournalRecord::Remove {
            hoa: live[0].hoa,
            bid: None,
        });
        j.sync().unwrap();
        assert_eq!(load(&path, NOW).unwrap().bindings, live[1..].to_vec());
        assert_eq!(j.appended_since_compaction(), 1);
        assert!(!j.should_compact(14));
    }

    /// A compaction on its thread: records appended meanwhile land in the old journal (a
    /// crash before the swap loses nothing) and after the snapshot in the new one.
    #[test]
    fn compaction_off_the_loop_keeps_what_came_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bc.journal");
        let (mut j, _) = Journal::open(&path, NOW).unwrap();
        for round in 0..3u16 {
            for i in 1..=20u16 {
                let mut x = b(i, 100);
                x.sequence = round;
                j.append(&JournalRecord::Upsert(x));
            }
        }
        j.sync().unwrap();
        let live = load(&path, NOW).unwrap().bindings;
        j.begin_compaction(NOW).unwrap();
        assert!(j.compacting());
        // Meanwhile: one refresh, one removal, one new binding.
        let mut refreshed = b(5, 100);
        refreshed.sequence = 9;
        j.append(&JournalRecord::Upsert(refreshed.clone()));
        j.append(&JournalRecord::Remove {
            hoa: b(6, 0).hoa,
            bid: None,
        });
        j.append(&JournalRecord::Upsert(b(30, 100)));
        j.sync().unwrap();
        let mut want: Vec<PersistedBinding> = live
            .iter()
            .filter(|x| x.hoa != b(6, 0).hoa)
            .map(|x| {
                if x.hoa == refreshed.hoa {
                    refreshed.clone()
                } else {
                    x.clone()
                }
            })
            .collect();
        want.push(b(30, 100));
        let sorted = |mut v: Vec<PersistedBinding>| {
            v.sort_by_key(|x| x.hoa);
            v
        };
        // Before the swap the old journal holds everything.
        assert_eq!(
            sorted(load(&path, NOW).unwrap().bindings),
            sorted(want.clone())
        );
        while !j.poll_compaction().unwrap() {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!j.compacting());
        assert!(!dir.path().join("bc.journal.tmp").exists());
        let (records, damaged) = parse(&fs::read(&path).unwrap());
        assert!(damaged.is_empty());
        assert_eq!(records.len(), live.len() + 3);
        assert_eq!(
            sorted(load(&path, NOW).unwrap().bindings),
            sorted(want.clone())
        );
        // Appending goes on into the new file.
        j.append(&JournalRecord::Upsert(b(31, 100)));
        j.sync().unwrap();
        want.push(b(31, 100));
        assert_eq!(sorted(load(&path, NOW).unwrap().bindings), sorted(want));
        assert_eq!(j.appended_since_compaction(), 4);
    }

    /// RFC 5648: one home address, several BIDs; a removal takes only its own BID, and
    /// the plain binding of the same home address is a binding of its own.
    #[test]
    fn bindings_by_home_address_and_bid() {
        let with = |bid: Option<u16>, secs: u64| {
            let mut x = b(1, secs);
            x.bid = bid;
            x
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bc.journal");
        let (mut j, _) = Journal::open(&path, NOW).unwrap();
        j.append(&JournalRecord::Upsert(with(None, 100)));
        j.append(&JournalRecord::Remove {
            hoa: b(1, 0).hoa,
            bid: None,
        });
        for bid in [3, 1, 2] {
            j.append(&JournalRecord::Upsert(with(Some(bid), 100)));
        }
        j.append(&JournalRecord::Remove {
            hoa: b(1, 0).hoa,
            bid: Some(2),
        });
        j.append(&JournalRecord::Upsert(with(Some(3), 300)));
        j.sync().unwrap();
        drop(j);
        let rep = load(&path, NOW).unwrap();
        assert_eq!(rep.bindings, vec![with(Some(1), 100), with(Some(3), 300)]);
        // Compaction keeps both BIDs.
        let (_, rep) = Journal::open(&path, NOW).unwrap();
        assert_eq!(rep.bindings.len(), 2);
        assert_eq!(load(&path, NOW).unwrap().bindings, rep.bindings);
    }
}
