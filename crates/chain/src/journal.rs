//! The mempool journal: every accepted transaction is appended and fsynced
//! before `eth_sendRawTransaction` answers. One writer thread batches the
//! appends that arrive while it syncs (group commit), so durability costs one
//! fsync per batch, not per transaction.
//!
//! Frame: length u32 LE ‖ crc32 of the bytes u32 LE ‖ the raw transaction.
//! A torn tail (crash mid-write) fails its length or crc and is cut off on open.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use primitives::Bytes;
use tokio::sync::oneshot;

enum Msg {
    Append(Bytes, oneshot::Sender<io::Result<()>>),
    /// Replace the whole journal by these transactions (what the pool still holds).
    Rewrite(Vec<Bytes>, oneshot::Sender<io::Result<()>>),
}

/// Handle to the journal's writer thread. [`Journal::close`] (or dropping the
/// journal) lets the writer write and sync everything already queued, then
/// joins it: nothing is left in flight once it returns.
pub struct Journal {
    /// `None` once closed: later appends are refused.
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    frames: Arc<AtomicUsize>,
}

const MAX_FRAME: usize = 1 << 20;

fn read_frames(path: &Path) -> io::Result<(Vec<Bytes>, u64)> {
    let mut buf = Vec::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_end(&mut buf)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(e),
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos + 8 <= buf.len() {
        let len = u32::from_le_bytes(buf[pos..pos + 4].try_into().unwrap()) as usize;
        let crc = u32::from_le_bytes(buf[pos + 4..pos + 8].try_into().unwrap());
        if len > MAX_FRAME || pos + 8 + len > buf.len() {
            break;
        }
        let body = &buf[pos + 8..pos + 8 + len];
        if crc32fast::hash(body) != crc {
            break;
        }
        out.push(Bytes::copy_from_slice(body));
        pos += 8 + len;
    }
    Ok((out, pos as u64))
}

fn write_frame(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    w.write_all(&(b.len() as u32).to_le_bytes())?;
    w.write_all(&crc32fast::hash(b).to_le_bytes())?;
    w.write_all(b)
}

fn sync_dir(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

impl Journal {
    /// Open (or create) the journal; returns it and the transactions it held.
    pub fn open(path: &Path) -> io::Result<(Journal, Vec<Bytes>)> {
        let (frames, good_len) = read_frames(path)?;
        let file = OpenOptions::new().create(true).truncate(false).append(true).open(path)?;
        if file.metadata()?.len() != good_len {
            // Cut a torn tail so new frames follow the last good one.
            file.set_len(good_len)?;
            file.sync_all()?;
        }
        let count = Arc::new(AtomicUsize::new(frames.len()));
        let (tx, rx) = mpsc::channel();
        let path = path.to_path_buf();
        let c = count.clone();
        let handle =
            std::thread::Builder::new().name("mempool-journal".into()).spawn(move || writer(path, file, rx, c))?;
        Ok((Journal { tx: Mutex::new(Some(tx)), writer: Mutex::new(Some(handle)), frames: count }, frames))
    }

    /// Queue a message for the writer; a closed journal refuses it at once.
    fn send(&self, msg: Msg) {
        let refused = match self.tx.lock().unwrap().as_ref() {
            Some(tx) => tx.send(msg).err().map(|mpsc::SendError(m)| m),
            None => Some(msg),
        };
        let stopped = || Err(io::Error::other("journal writer stopped"));
        match refused {
            Some(Msg::Append(_, ack)) | Some(Msg::Rewrite(_, ack)) => {
                let _ = ack.send(stopped());
            }
            None => {}
        }
    }

    /// Queue an append; the receiver resolves once it is on disk.
    pub fn append(&self, raw: Bytes) -> oneshot::Receiver<io::Result<()>> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Append(raw, tx));
        rx
    }

    /// Queue a rewrite with exactly `txs`.
    pub fn rewrite(&self, txs: Vec<Bytes>) -> oneshot::Receiver<io::Result<()>> {
        let (tx, rx) = oneshot::channel();
        self.send(Msg::Rewrite(txs, tx));
        rx
    }

    /// Stop taking appends, let the writer write, sync and acknowledge what is
    /// already queued, and join it. Idempotent.
    pub fn close(&self) {
        // Dropping the only sender ends the writer's loop once the queue is drained.
        drop(self.tx.lock().unwrap().take());
        let handle = self.writer.lock().unwrap().take();
        if let Some(h) = handle
            && h.join().is_err()
        {
            tracing::error!("the mempool journal's writer panicked");
        }
    }

    /// Frames currently in the file.
    pub fn frames(&self) -> usize {
        self.frames.load(Ordering::Relaxed)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

fn writer(path: PathBuf, file: File, rx: mpsc::Receiver<Msg>, frames: Arc<AtomicUsize>) {
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut acks: Vec<oneshot::Sender<io::Result<()>>> = Vec::new();
    let mut failed: Option<String> = None;
    let flush =
        |w: &mut BufWriter<File>, acks: &mut Vec<oneshot::Sender<io::Result<()>>>, failed: &mut Option<String>| {
            if acks.is_empty() {
                return;
            }
            let r = if let Some(f) = failed.as_ref() {
                Err(io::Error::other(f.clone()))
            } else {
                w.flush().and_then(|_| w.get_ref().sync_data())
            };
            if let Err(e) = &r {
                // A failed fsync leaves the file's state unknown: refuse everything from now on.
                *failed = Some(format!("mempool journal unusable: {e}"));
            }
            for a in acks.drain(..) {
                let _ = a.send(match &r {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::other(e.to_string())),
                });
            }
        };
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Append(raw, ack) => {
                    if failed.is_none() {
                        if let Err(e) = write_frame(&mut w, &raw) {
                            failed = Some(format!("mempool journal unusable: {e}"));
                        } else {
                            frames.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    acks.push(ack);
                }
                Msg::Rewrite(txs, ack) => {
                    flush(&mut w, &mut acks, &mut failed);
                    let r = rewrite(&path, &txs);
                    match r {
                        Ok(f) => {
                            w = BufWriter::with_capacity(1 << 20, f);
                            frames.store(txs.len(), Ordering::Relaxed);
                            let _ = ack.send(Ok(()));
                        }
                        Err(e) => {
                            let _ = ack.send(Err(e));
                        }
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        flush(&mut w, &mut acks, &mut failed);
    }
    flush(&mut w, &mut acks, &mut failed);
}

/// Write `txs` to a temporary file, sync it, and rename it over the journal.
fn rewrite(path: &Path, txs: &[Bytes]) -> io::Result<File> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = BufWriter::new(File::create(&tmp)?);
        for t in txs {
            write_frame(&mut f, t)?;
        }
        f.flush()?;
        f.get_ref().sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path)?;
    OpenOptions::new().append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn appends_survive_reopen_and_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        {
            let (j, old) = Journal::open(&p).unwrap();
            assert!(old.is_empty());
            for i in 0..10u8 {
                j.append(Bytes::from(vec![i; 100])).await.unwrap().unwrap();
            }
        }
        // Simulate a crash in the middle of a frame.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(&[50, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (j, got) = Journal::open(&p).unwrap();
        assert_eq!(got.len(), 10);
        assert_eq!(got[3], Bytes::from(vec![3u8; 100]));
        j.append(Bytes::from_static(b"after")).await.unwrap().unwrap();
        j.rewrite(vec![Bytes::from_static(b"only")]).await.unwrap().unwrap();
        j.append(Bytes::from_static(b"tail")).await.unwrap().unwrap();
        drop(j);
        let (_j, got) = Journal::open(&p).unwrap();
        assert_eq!(got, vec![Bytes::from_static(b"only"), Bytes::from_static(b"tail")]);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn close_syncs_what_was_queued_then_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j");
        let (j, _) = Journal::open(&p).unwrap();
        // Queued, not yet awaited: closing must still write and acknowledge them.
        let acks: Vec<_> = (0..50u8).map(|i| j.append(Bytes::from(vec![i; 10]))).collect();
        j.close();
        for a in acks {
            a.await.unwrap().unwrap();
        }
        let e = j.append(Bytes::from_static(b"late")).await.unwrap().unwrap_err();
        assert!(e.to_string().contains("stopped"), "{e}");
        j.close();
        drop(j);
        let (_j, got) = Journal::open(&p).unwrap();
        assert_eq!(got.len(), 50);
        assert_eq!(got[49], Bytes::from(vec![49u8; 10]));
    }
}
