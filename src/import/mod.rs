//! `userdir import FILE`: users from a JSON Lines file, one `ImportUserRecord` per line in
//! proto3 JSON (what the HTTP/JSON API takes), written batch by batch through the import
//! command, as the ImportUsers RPC writes them.
//!
//! The file is streamed: a reader thread reads and parses the next batch while the last one is
//! written, and at most two batches wait between them, so memory stays bounded whatever the
//! file's size (a line longer than the message limit fails alone, unread). Each record that is
//! not imported is reported with its line number; a failure never stops the rest.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::ConnectionTrait;
use tokio::sync::mpsc;

use crate::api::grpc::import::{JsonRecords, MAX_BATCH_BYTES};
use crate::command::import::{ImportUser, Importer, Outcome};
use crate::error::Error;
use crate::store::ScopedDb;

/// Records per batch (one transaction) unless asked otherwise: at 200,000 users, 5000 a batch
/// imported 16% faster than 1000 on PostgreSQL (fewer COPY round trips, see
/// `store::writes::import`) and 19% faster on SQLite, for 85 and 139 MiB of peak RSS.
pub const DEFAULT_BATCH_SIZE: usize = 5000;
/// Most records per batch.
pub const MAX_BATCH_SIZE: usize = 50_000;

pub struct ImportOptions {
    pub file: PathBuf,
    /// Records per transaction, 1 to [`MAX_BATCH_SIZE`].
    pub batch_size: usize,
    pub progress: bool,
    /// Longest record, in bytes (the server's message limit).
    pub max_message_bytes: usize,
    /// Longest name, username or address, in characters (the server's text limit).
    pub max_text: usize,
    /// One transaction for the whole file, with the directory to itself and its indexes and
    /// foreign keys built at the end (see `store::writes::exclusive`).
    pub exclusive: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines that held a record (blank lines are none).
    pub records: u64,
    pub imported: u64,
    /// Records whose userId was present already.
    pub skipped: u64,
    pub failed: u64,
    pub elapsed: Duration,
}

/// Records read from the file, with their line numbers (from 1).
struct Chunk {
    records: Vec<(u64, ImportUser)>,
    failed: Vec<(u64, Error)>,
    /// Bytes of the file read so far.
    position: u64,
}

/// Imports `options.file` as `db`'s caller; every record not imported is reported on `out`,
/// one line each, with its line number. An error is the file's or the database's: the batches
/// before it are written, unless the import is exclusive (then nothing is).
pub async fn run(
    db: ScopedDb,
    options: ImportOptions,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<ImportReport> {
    let started = Instant::now();
    let file = std::fs::File::open(&options.file)
        .with_context(|| format!("opening {}", options.file.display()))?;
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let records = JsonRecords::new(options.max_message_bytes, options.max_text)?;
    let batch_size = options.batch_size.clamp(1, MAX_BATCH_SIZE);
    let (sender, mut receiver) = mpsc::channel(2);
    let reader = std::thread::spawn(move || read(file, &records, batch_size, &sender));

    let bar = if options.progress {
        ProgressBar::new(length)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} importing [{bar:40}] {bytes}/{total_bytes} ({msg}, {eta} left)",
        )?
        .progress_chars("=> "),
    );
    let connection = db.connection().clone();
    let mut importer = if options.exclusive {
        Importer::exclusive(db).await?
    } else {
        Importer::new(db)
    };
    let mut report = ImportReport::default();
    while let Some(chunk) = receiver.recv().await {
        let chunk: Chunk = chunk?;
        let (lines, batch): (Vec<u64>, Vec<ImportUser>) = chunk.records.into_iter().unzip();
        let outcomes = if batch.is_empty() {
            Vec::new()
        } else {
            importer.import(batch).await?
        };
        let mut reports: Vec<(u64, Outcome)> = lines.into_iter().zip(outcomes).collect();
        reports.extend(
            chunk
                .failed
                .into_iter()
                .map(|(line, error)| (line, Outcome::Failed(error))),
        );
        reports.sort_by_key(|(line, _)| *line);
        let mut text = String::new();
        for (line, outcome) in reports {
            report.records += 1;
            match outcome {
                Outcome::Imported(_) => report.imported += 1,
                Outcome::Present(id) => {
                    report.skipped += 1;
                    text.push_str(&format!(
                        "line {line}: skipped: the user {id} is already present\n"
                    ));
                }
                Outcome::Failed(error) => {
                    report.failed += 1;
                    let status = tonic::Status::from(error);
                    text.push_str(&format!(
                        "line {line}: failed: {:?}: {}\n",
                        status.code(),
                        status.message()
                    ));
                }
            }
        }
        bar.suspend(|| out.write_all(text.as_bytes()))
            .context("writing the report")?;
        bar.set_position(chunk.position);
        bar.set_message(format!("{} users", report.imported));
    }
    reader
        .join()
        .map_err(|_| anyhow::anyhow!("the file's reader thread failed"))?;
    if options.exclusive {
        bar.set_message(format!(
            "{} users; building indexes, checking foreign keys",
            report.imported
        ));
    }
    importer.finish().await?;
    bar.finish_and_clear();
    if report.imported > 0 {
        // Fresh statistics, so the query planner knows the new population at once.
        let analyzing = Instant::now();
        connection.execute_unprepared("ANALYZE").await?;
        tracing::debug!(
            elapsed_ms = analyzing.elapsed().as_millis() as u64,
            "import: statistics read"
        );
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// The reader thread: lines into parsed records, `batch_size` records (or failures) a chunk.
fn read(
    file: std::fs::File,
    records: &JsonRecords,
    batch_size: usize,
    sender: &mpsc::Sender<anyhow::Result<Chunk>>,
) {
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = Vec::new();
    let mut number = 0;
    let mut position = 0;
    let empty = |position| Chunk {
        records: Vec::with_capacity(batch_size),
        failed: Vec::new(),
        position,
    };
    let mut chunk = empty(0);
    // Bytes of the chunk's lines: a chunk is sent early past MAX_BATCH_BYTES, so that memory
    // stays bounded whatever the batch size and the records' size.
    let mut chunk_bytes = 0;
    loop {
        let next = match next_line(&mut reader, &mut line, records.max_bytes()) {
            Ok(next) => next,
            Err(error) => {
                let _ = sender
                    .blocking_send(Err(anyhow::Error::new(error).context("reading the file")));
                return;
            }
        };
        let Some((read, fits)) = next else { break };
        number += 1;
        position += read;
        if fits && line.trim_ascii().is_empty() {
            continue;
        }
        let parsed = if fits {
            records.parse(&line)
        } else {
            Err(Error::invalid(
                "record",
                format!(
                    "the line is longer than the limit of {} bytes",
                    records.max_bytes()
                ),
            ))
        };
        match parsed {
            Ok(record) => chunk.records.push((number, record)),
            Err(error) => chunk.failed.push((number, error)),
        }
        chunk_bytes += line.len();
        if chunk.records.len() >= batch_size
            || chunk.failed.len() >= batch_size
            || chunk_bytes >= MAX_BATCH_BYTES
        {
            chunk_bytes = 0;
            chunk.position = position;
            let full = std::mem::replace(&mut chunk, empty(position));
            if sender.blocking_send(Ok(full)).is_err() {
                // The importer stopped (an error it reports itself).
                return;
            }
        }
    }
    chunk.position = position;
    let _ = sender.blocking_send(Ok(chunk));
}

/// Reads the next line into `line` (without its line break), keeping at most `max` bytes of
/// it: returns the bytes read from the file and whether the line fit, or None at the end of the
/// file. A longer line is read to its end and dropped, never held.
fn next_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Option<(u64, bool)>> {
    line.clear();
    let mut read = 0u64;
    let mut fits = true;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok((read > 0).then_some((read, fits)));
        }
        let end = available.iter().position(|b| *b == b'\n');
        let part = &available[..end.unwrap_or(available.len())];
        if fits && line.len() + part.len() <= max {
            line.extend_from_slice(part);
        } else {
            fits = false;
            line.clear();
        }
        let used = end.map_or(available.len(), |i| i + 1);
        reader.consume(used);
        read += used as u64;
        if end.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(Some((read, fits)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_within_the_bound_and_longer_ones_dropped() {
        let text = b"{\"a\":1}\r\n\nlong line here\nlast";
        let mut reader = BufReader::with_capacity(4, &text[..]);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        while let Some((read, fits)) = next_line(&mut reader, &mut line, 8).unwrap() {
            seen.push((String::from_utf8(line.clone()).unwrap(), read, fits));
        }
        assert_eq!(
            seen,
            [
                ("{\"a\":1}".to_owned(), 9, true),
                (String::new(), 1, true),
                (String::new(), 15, false),
                ("last".to_owned(), 4, true),
            ]
        );
    }
}
