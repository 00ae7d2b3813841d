//! Group commit: what one job of a group does to the others.

use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};
use tusk_core::catalog::{CatalogError, CatalogResult};

use super::{Readers, Writer};

/// A database with a table `t` of keys, and a table `child` whose foreign
/// key is checked only at commit.
fn database() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = Connection::open(dir.path().join("t.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;
         CREATE TABLE t (k TEXT PRIMARY KEY);
         CREATE TABLE child (p TEXT REFERENCES t(k) DEFERRABLE INITIALLY DEFERRED);",
    )
    .unwrap();
    (dir, conn)
}

fn reader(dir: &tempfile::TempDir) -> Readers {
    let conn =
        Connection::open_with_flags(dir.path().join("t.db"), OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    Readers::spawn(vec![conn]).unwrap()
}

fn insert(conn: &Connection, sql: &str, key: &str) -> CatalogResult<()> {
    conn.execute(sql, [key]).map(drop).map_err(super::backend)
}

async fn keys(readers: &Readers) -> Vec<String> {
    readers
        .run(|c| {
            let mut stmt = c.prepare("SELECT k FROM t ORDER BY k").unwrap();
            let rows = stmt.query_map([], |r| r.get(0)).unwrap();
            Ok(rows.map(Result::unwrap).collect())
        })
        .await
        .unwrap()
}

type Job<T> = Box<dyn FnOnce(&Connection) -> CatalogResult<T> + Send>;

/// Queues `jobs` behind a job that holds the writer until all are queued,
/// so that they run as one group; their answers in order.
async fn one_group<T: Send + 'static>(
    writer: &Arc<Writer>,
    jobs: Vec<Job<T>>,
) -> Vec<CatalogResult<T>> {
    let (started, running) = tokio::sync::oneshot::channel();
    let (release, gate) = std::sync::mpsc::channel::<()>();
    let hold = tokio::spawn({
        let writer = writer.clone();
        async move {
            writer
                .run(move |_| {
                    started.send(()).unwrap();
                    gate.recv().unwrap();
                    Ok(())
                })
                .await
        }
    });
    running.await.unwrap();
    // `Writer::run` queues its job when first polled, and `join_all` polls
    // its futures once each, in order: one poll queues every job, in the
    // order given, while the writer is held.
    let mut answers = Box::pin(futures::future::join_all(
        jobs.into_iter().map(|job| writer.run(job)),
    ));
    assert!(futures::poll!(&mut answers).is_pending());
    release.send(()).unwrap();
    hold.await.unwrap().unwrap();
    answers.await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_or_panicking_job_undoes_only_itself() {
    let (dir, conn) = database();
    let writer = Arc::new(Writer::spawn(conn).unwrap());
    let answers = one_group::<()>(
        &writer,
        vec![
            Box::new(|c| insert(c, "INSERT INTO t VALUES (?)", "a")),
            Box::new(|c| {
                insert(c, "INSERT INTO t VALUES (?)", "b")?;
                Err(CatalogError::NotFound)
            }),
            // A statement error: the key exists already.
            Box::new(|c| insert(c, "INSERT INTO t VALUES (?)", "a")),
            Box::new(|c| {
                insert(c, "INSERT INTO t VALUES (?)", "d")?;
                panic!("job d");
            }),
            Box::new(|c| insert(c, "INSERT INTO t VALUES (?)", "e")),
        ],
    )
    .await;
    assert!(answers[0].is_ok());
    assert!(matches!(answers[1], Err(CatalogError::NotFound)));
    assert!(matches!(answers[2], Err(CatalogError::Backend(_))));
    assert!(
        matches!(&answers[3], Err(CatalogError::Backend(m)) if m.contains("job d")),
        "{:?}",
        answers[3]
    );
    assert!(answers[4].is_ok());
    assert_eq!(keys(&reader(&dir)).await, ["a", "e"]);
    // The writer goes on after a panic.
    writer
        .run(|c| insert(c, "INSERT INTO t VALUES (?)", "f"))
        .await
        .unwrap();
    assert_eq!(keys(&reader(&dir)).await, ["a", "e", "f"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_the_whole_group() {
    let (dir, conn) = database();
    let writer = Arc::new(Writer::spawn(conn).unwrap());
    let answers = one_group::<()>(
        &writer,
        vec![
            Box::new(|c| insert(c, "INSERT INTO t VALUES (?)", "a")),
            // Passes on its own; its foreign key fails the commit.
            Box::new(|c| insert(c, "INSERT INTO child VALUES (?)", "nobody")),
        ],
    )
    .await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Err(CatalogError::Backend(_))))
    );
    assert!(keys(&reader(&dir)).await.is_empty());
    // The next group starts afresh.
    writer
        .run(|c| insert(c, "INSERT INTO t VALUES (?)", "b"))
        .await
        .unwrap();
    assert_eq!(keys(&reader(&dir)).await, ["b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_read_answers_with_an_error() {
    let (dir, _conn) = database();
    let readers = reader(&dir);
    let answer = readers.run::<(), _>(|_| panic!("read")).await;
    assert!(matches!(answer, Err(CatalogError::Backend(m)) if m.contains("read")));
    assert!(keys(&readers).await.is_empty());
}
