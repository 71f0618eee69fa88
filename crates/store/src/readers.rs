//! The reader threads: a fixed set, each owning a read-only connection, fed from one queue.
//!
//! Reads take well under a millisecond. Run on tokio's blocking pool, a split of a few
//! thousand cached answers read at full speed made it start a thread for nearly every read
//! (hundreds of threads, each kept alive for seconds) and open a connection, with its own page
//! cache, for every read beyond the pooled ones. A fixed set of threads bounds both.

use std::path::Path;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OpenFlags};

use crate::{StoreError, open_connection};

/// Reader threads (and read connections) per store.
pub(crate) const READERS: usize = 4;

/// One read, given the thread's connection.
pub(crate) type Job = Box<dyn FnOnce(&Connection) + Send>;

pub(crate) struct Readers {
    tx: Sender<Job>,
}

impl Readers {
    /// Opens the read connections (so that an unreadable database fails here, not at the
    /// first read) and starts a thread for each. The threads end when the store is dropped.
    pub(crate) fn start(path: &Path) -> Result<Readers, StoreError> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..READERS {
            let conn = open_connection(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("metaprompt-store-read-{i}"))
                .spawn(move || serve(&conn, &rx))
                .map_err(|e| StoreError::Corrupt(format!("cannot start a reader thread: {e}")))?;
        }
        Ok(Readers { tx })
    }

    /// Queues a read; it fails only if every reader thread has stopped.
    pub(crate) fn submit(&self, job: Job) -> Result<(), StoreError> {
        self.tx
            .send(job)
            .map_err(|_| StoreError::Corrupt("the store's reader threads have stopped".into()))
    }
}

fn serve(conn: &Connection, rx: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for the next job; another thread takes the
        // following one.
        let job = match rx.lock().unwrap_or_else(PoisonError::into_inner).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        // A read that panics answers nothing (its caller sees the reply channel closed) and
        // leaves the thread serving.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(conn)));
    }
}
