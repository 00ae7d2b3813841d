//! The threads that own the SQLite connections.
//!
//! Every statement runs on a thread of ours, never on the async runtime:
//! SQLite calls block (on the disk, on fsync). A caller hands over one job
//! — a whole catalog operation — and awaits its answer, so one operation
//! costs one hand-over however many statements it runs.
//!
//! Writes go to one writer thread that commits in groups: it takes every
//! job already queued, runs each in its own savepoint inside one
//! transaction and commits once, so one fsync makes a whole group durable
//! while the next group queues up. Reads go to a few reader threads, which
//! run beside the writer thanks to WAL.

use std::any::Any;
use std::cell::Cell;
use std::ffi::c_int;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use rusqlite::hooks::Wal;
use tokio::sync::oneshot;
use tusk_core::catalog::{CatalogError, CatalogResult};

use super::backend;

/// At most this many jobs share one transaction: bounds how long a job
/// waits behind the others of its group.
const MAX_BATCH: usize = 512;

/// Once the WAL holds this many pages, the writer copies them into the
/// database file (a checkpoint: SQLite's default threshold). It does so
/// between groups, after answering, rather than inside a commit as
/// SQLite would: the group that grew the WAL does not wait for it.
const CHECKPOINT_PAGES: c_int = 1000;

thread_local! {
    /// Pages in the WAL after the writer's last commit.
    static WAL_PAGES: Cell<c_int> = const { Cell::new(0) };
}

/// Sends jobs to the writer thread.
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn WriteJob>>,
}

impl Writer {
    /// Starts the writer thread on `conn`; it ends once the `Writer` is
    /// dropped and the jobs queued before are done.
    pub(super) fn spawn(conn: Connection) -> CatalogResult<Writer> {
        let (jobs, queue) = mpsc::channel();
        thread::Builder::new()
            .name("catalog-writer".to_owned())
            .spawn(move || {
                // Replaces SQLite's own checkpoint-on-commit.
                conn.wal_hook(Some(count_wal_pages));
                write_loop(&conn, &queue);
            })
            .map_err(backend)?;
        Ok(Writer { jobs })
    }

    /// Runs `work` inside a write transaction and answers once that
    /// transaction is committed. An error from `work` undoes what it did
    /// (and nothing else).
    pub(super) async fn run<T, F>(&self, work: F) -> CatalogResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> CatalogResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
        });
        self.jobs
            .send(job)
            .map_err(|_| backend("the catalog writer stopped"))?;
        answer
            .await
            .map_err(|_| backend("the catalog writer stopped"))?
    }
}

/// A job of the writer: runs, then learns whether its group committed.
trait WriteJob: Send {
    /// Runs the work; true if it succeeded and its changes are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: the work's result if `failed` is `None` (the
    /// group committed), else the reason the group failed.
    fn answer(self: Box<Self>, failed: Option<&str>);
}

struct Pending<F, T> {
    work: Option<F>,
    result: Option<CatalogResult<T>>,
    reply: oneshot::Sender<CatalogResult<T>>,
}

impl<F, T> WriteJob for Pending<F, T>
where
    T: Send,
    F: FnOnce(&Connection) -> CatalogResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = guarded(|| work(conn));
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, failed: Option<&str>) {
        let answer = match (self.result, failed) {
            // Its own error stands: its changes were undone either way.
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), None) => Ok(value),
            (_, Some(why)) => Err(CatalogError::Backend(why.to_owned())),
            (None, None) => Err(backend("the job did not run")),
        };
        // The caller may have given up waiting; nothing to do then.
        let _ = self.reply.send(answer);
    }
}

fn write_loop(conn: &Connection, queue: &mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = queue.recv() {
        let mut group = Vec::with_capacity(64);
        group.push(first);
        group.extend(queue.try_iter().take(MAX_BATCH - 1));
        let failed = commit_group(conn, &mut group)
            .err()
            .map(|e| format!("the catalog transaction failed: {e}"));
        for job in group {
            job.answer(failed.as_deref());
        }
        if WAL_PAGES.get() >= CHECKPOINT_PAGES {
            checkpoint(conn);
        }
    }
}

fn count_wal_pages(_: &Wal, pages: c_int) -> rusqlite::Result<()> {
    WAL_PAGES.set(pages);
    Ok(())
}

/// Copies the WAL into the database file, as far as readers allow; the
/// next commit then starts the WAL afresh if it could copy it all.
fn checkpoint(conn: &Connection) {
    WAL_PAGES.set(0);
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::warn!("catalog checkpoint failed: {e}");
    }
}

/// Runs a group of jobs in one transaction, each in its own savepoint, and
/// commits. An error here means nothing of the group was committed.
fn commit_group(conn: &Connection, group: &mut [Box<dyn WriteJob>]) -> rusqlite::Result<()> {
    exec(conn, "BEGIN IMMEDIATE")?;
    let done = group
        .iter_mut()
        .try_for_each(|job| run_in_savepoint(conn, job.as_mut()))
        .and_then(|()| exec(conn, "COMMIT"));
    if done.is_err() && !conn.is_autocommit() {
        // Best effort: the error at hand is the one to report.
        let _ = exec(conn, "ROLLBACK");
    }
    done
}

/// Runs one job in a savepoint, undoing its changes if it fails. An error
/// here is the transaction's, not the job's: the whole group fails.
fn run_in_savepoint(conn: &Connection, job: &mut dyn WriteJob) -> rusqlite::Result<()> {
    exec(conn, "SAVEPOINT job")?;
    let ok = job.run(conn);
    if conn.is_autocommit() {
        // SQLite rolls back the whole transaction on some errors (a full
        // disk, an I/O error): the jobs before this one are lost too.
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ABORT),
            Some("the transaction was rolled back".to_owned()),
        ));
    }
    if !ok {
        exec(conn, "ROLLBACK TO job")?;
    }
    exec(conn, "RELEASE job")
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// Sends jobs to the reader threads.
pub(super) struct Readers {
    jobs: flume::Sender<ReadJob>,
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

impl Readers {
    /// Starts one reader thread per connection; they end once the
    /// `Readers` is dropped and the jobs queued before are done.
    pub(super) fn spawn(conns: Vec<Connection>) -> CatalogResult<Readers> {
        let (jobs, queue) = flume::unbounded::<ReadJob>();
        for (i, conn) in conns.into_iter().enumerate() {
            let queue = queue.clone();
            thread::Builder::new()
                .name(format!("catalog-reader-{i}"))
                .spawn(move || {
                    while let Ok(job) = queue.recv() {
                        job(&conn);
                    }
                })
                .map_err(backend)?;
        }
        Ok(Readers { jobs })
    }

    /// Runs `work` on a reader connection (each statement sees what was
    /// committed when it started).
    pub(super) async fn run<T, F>(&self, work: F) -> CatalogResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> CatalogResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(guarded(|| work(conn)));
        });
        self.jobs
            .send(job)
            .map_err(|_| backend("the catalog readers stopped"))?;
        answer
            .await
            .map_err(|_| backend("the catalog readers stopped"))?
    }
}

/// Runs `work`, turning a panic into an error so that the caller gets an
/// answer and the thread goes on.
fn guarded<T>(work: impl FnOnce() -> CatalogResult<T>) -> CatalogResult<T> {
    catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| Err(panicked(&*panic)))
}

fn panicked(panic: &(dyn Any + Send)) -> CatalogError {
    let what = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic");
    backend(format!("a catalog job panicked: {what}"))
}

#[cfg(test)]
mod tests;
