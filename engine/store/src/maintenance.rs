//! Compaction and retention, run in the background (and on demand).
//!
//! # Compaction
//!
//! Every `compaction_interval`, in each hour of each table, the files
//! smaller than `compaction_target_size` are merged, in groups of up to
//! that size, into one file each. An hour is compacted once it is over
//! (it ended more than twice `flush_interval`, at least a minute, ago), or
//! earlier when it has gathered 16 small files. The merge streams: the
//! files (each sorted by the table's sort key) are read through a
//! DataFusion sort-preserving merge, one batch per file at a time, into a
//! Parquet writer that streams to disk (local: a temporary file, fsynced and
//! renamed; S3: a multipart upload). The merged file names the files it
//! replaces in its metadata; once it is durable, it takes their place in
//! the index in one step, and they are deleted after a grace period of five
//! minutes, so queries planned before the swap can still read them. If the
//! process stops in between, the next start deletes them (they are named in
//! the merged file).
//!
//! A file that does not decode while it is merged is quarantined (see
//! [`crate::quarantine`]): that merge fails and leaves the other files as
//! they are; the next round merges them without it.
//!
//! # Retention
//!
//! Every `[store.retention] check_interval`, each table's hours that ended
//! before `now - retention` are removed from the index in one step, then
//! deleted after the same grace period. Rows of an expired hour still in
//! memory are flushed as usual and removed at the next check.

use std::sync::Arc;

use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::expressions::col;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use parquet::arrow::AsyncArrowWriter;
use tracing::{info, warn};
use weir_core::Signal;

use crate::admit::{nanos, retention};
use crate::encode::{SORT_OPTIONS, sort_key, writer_properties};
use crate::error::StoreError;
use crate::inner::{Inner, blocking};
use crate::layout::{FileEntry, FileKind, compacted_file_name};
use crate::local;
use crate::obs;
use crate::partition::{HOUR_NS, hour_end};

/// A group of files of one hour to merge.
#[derive(Debug)]
pub(crate) struct Merge {
    table: Signal,
    hour: i64,
    files: Vec<Arc<FileEntry>>,
}

impl Inner {
    /// Which files to merge, as of `now_ns`.
    pub(crate) fn plan_compaction(&self, now_ns: i64) -> Vec<Merge> {
        let target = self.config.compaction_target_size;
        let cold_ns = i64::try_from(self.tuning.cold_after.as_nanos()).unwrap_or(i64::MAX);
        let state = self.state();
        let mut merges = Vec::new();
        for table in Signal::ALL {
            for (&hour, files) in &state.table(table).files {
                let mut small: Vec<Arc<FileEntry>> =
                    files.iter().filter(|f| f.size < target).cloned().collect();
                let cold = hour_end(hour).saturating_add(cold_ns) < now_ns;
                if small.len() < 2 || !(cold || small.len() >= self.tuning.hot_files) {
                    continue;
                }
                small.sort_by(|a, b| a.lsn.cmp(&b.lsn).then_with(|| a.name.cmp(&b.name)));
                let mut group: Vec<Arc<FileEntry>> = Vec::new();
                let mut size = 0u64;
                for f in small {
                    size += f.size;
                    group.push(f);
                    if size >= target {
                        if group.len() >= 2 {
                            merges.push(Merge {
                                table,
                                hour,
                                files: std::mem::take(&mut group),
                            });
                        }
                        group.clear();
                        size = 0;
                    }
                }
                if group.len() >= 2 {
                    merges.push(Merge {
                        table,
                        hour,
                        files: group,
                    });
                }
            }
        }
        merges
    }

    /// Runs one round of compaction; the first error, if any (the other
    /// merges are still tried).
    pub(crate) async fn compact(&self, now_ns: i64) -> Result<(), StoreError> {
        let _guard = self.maintenance.lock().await;
        let mut first = None;
        for merge in self.plan_compaction(now_ns) {
            let (table, hour, n) = (merge.table, merge.hour, merge.files.len());
            match self.merge(merge, now_ns).await {
                Ok(()) => {
                    obs::compacted();
                    info!(table = %table, hour = %crate::partition::hour_dir(hour), files = n, "compacted");
                }
                Err(e) => {
                    obs::error("compaction");
                    warn!(table = %table, error = %e, "compaction failed; the files are left as they are");
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Merges one group into one file and swaps it into the index.
    async fn merge(&self, merge: Merge, now_ns: i64) -> Result<(), StoreError> {
        let Merge { table, hour, files } = merge;
        let schema = table.schema();
        let rows: u64 = files.iter().map(|f| f.rows).sum();
        let time = files
            .iter()
            .filter_map(|f| f.time)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)));
        let lsn = files
            .iter()
            .map(|f| f.lsn)
            .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
            .unwrap_or((0, 0));
        let epoch = self.epoch();
        let replaces: Vec<String> = files.iter().map(|f| f.name.clone()).collect();
        let through = files.iter().map(|f| f.held_through()).max();
        let mut entry = FileEntry {
            table,
            hour,
            name: compacted_file_name(lsn.1, epoch, now_ns),
            size: 0,
            rows,
            time,
            lsn,
            epoch,
            kind: FileKind::Compacted {
                replaces: replaces.clone(),
                through,
            },
        };
        let path = entry.path();
        let where_ = self.location.describe(&path);
        let rows_err = |e: datafusion::error::DataFusionError| StoreError::rows("merge", table, e);

        // The files, each sorted, merged in order, one batch per file in memory.
        let ordering = LexOrdering::new(
            sort_key(table)
                .iter()
                .map(|c| Ok(PhysicalSortExpr::new(col(c, &schema)?, SORT_OPTIONS)))
                .collect::<datafusion::error::Result<Vec<_>>>()
                .map_err(rows_err)?,
        )
        .ok_or_else(|| StoreError::Internal(format!("no sort key for {table}")))?;
        let groups = files
            .iter()
            .map(|f| FileGroup::new(vec![PartitionedFile::new(f.path().to_string(), f.size)]))
            .collect();
        let scan = FileScanConfigBuilder::new(
            self.location.url.clone(),
            Arc::new(ParquetSource::new(schema.clone())),
        )
        .with_file_groups(groups)
        .with_output_ordering(vec![ordering.clone()])
        .build();
        let plan = SortPreservingMergeExec::new(ordering, DataSourceExec::from_data_source(scan));
        let task = Arc::new(TaskContext::default());
        task.runtime_env()
            .register_object_store(self.location.url.as_ref(), self.location.store.clone());
        let mut stream = plan.execute(0, task).map_err(rows_err)?;

        let props = writer_properties(table, entry.key_values());
        let parquet_err = |e| StoreError::parquet("write", &where_, e);
        let mut written = 0u64;
        match self.location.local_path(&path) {
            Some(file) => {
                let file = file?;
                let tmp = local::temp_path(&file);
                if let Some(dir) = file.parent() {
                    local::create_dir_durably(dir)
                        .map_err(|e| StoreError::io("create the directory", dir, e))?;
                }
                let out = tokio::fs::File::create(&tmp)
                    .await
                    .map_err(|e| StoreError::io("create", &tmp, e))?;
                let mut writer = AsyncArrowWriter::try_new(out, schema.clone(), Some(props))
                    .map_err(parquet_err)?;
                let result = async {
                    while let Some(batch) = stream.next().await {
                        let batch = match batch {
                            Ok(batch) => batch,
                            Err(e) => return Err(self.read_failed(table, &files, e).await),
                        };
                        written += batch.num_rows() as u64;
                        writer.write(&batch).await.map_err(parquet_err)?;
                    }
                    writer.finish().await.map_err(parquet_err)?;
                    check_rows(table, written, rows)?;
                    entry.size = writer.bytes_written() as u64;
                    let (tmp, file) = (tmp.clone(), file.clone());
                    blocking("commit a compacted file", move || {
                        local::commit_temp(&tmp, &file)
                            .map_err(|e| StoreError::io("write", &file, e))
                    })
                    .await
                }
                .await;
                if result.is_err() {
                    let _ = tokio::fs::remove_file(&tmp).await;
                }
                result?;
            }
            None => {
                let out = BufWriter::new(self.location.store.clone(), path.clone());
                let mut writer = AsyncArrowWriter::try_new(out, schema.clone(), Some(props))
                    .map_err(parquet_err)?;
                while let Some(batch) = stream.next().await {
                    let batch = match batch {
                        Ok(batch) => batch,
                        Err(e) => return Err(self.read_failed(table, &files, e).await),
                    };
                    written += batch.num_rows() as u64;
                    writer.write(&batch).await.map_err(parquet_err)?;
                }
                if let Err(e) = check_rows(table, written, rows) {
                    drop(writer);
                    return Err(e);
                }
                writer.finish().await.map_err(parquet_err)?;
                entry.size = writer.bytes_written() as u64;
            }
        }

        let swapped = {
            let mut state = self.state_mut();
            let ok = state.replace_files(entry, &replaces);
            let count = state.table(table).file_count();
            drop(state);
            obs::files(table, count);
            ok
        };
        if swapped {
            self.bury(files.iter().map(|f| f.path()));
            Ok(())
        } else {
            // The files changed meanwhile: the merged one is not used.
            self.location.delete(&path).await
        }
    }

    /// The error of a merge whose reading of `files` failed with `e`: the
    /// damaged files among them are quarantined, so the next round merges
    /// without them (see [`crate::quarantine`]).
    async fn read_failed(
        &self,
        table: Signal,
        files: &[Arc<FileEntry>],
        e: datafusion::error::DataFusionError,
    ) -> StoreError {
        match self.quarantine_damaged(table, files).await {
            Some(damaged) => damaged,
            None => StoreError::rows("merge", table, e),
        }
    }

    /// Removes every hour whose retention is over as of `now_ns`.
    pub(crate) async fn enforce_retention(&self, now_ns: i64) -> Result<(), StoreError> {
        let _guard = self.maintenance.lock().await;
        for table in Signal::ALL {
            let keep = nanos(retention(&self.config, table));
            let cutoff = now_ns.saturating_sub(keep);
            let removed = {
                let mut state = self.state_mut();
                let removed = state.remove_hours(table, |h| hour_end(h) < cutoff);
                obs::files(table, state.table(table).file_count());
                removed
            };
            if removed.is_empty() {
                continue;
            }
            obs::retention_deleted(table, removed.len());
            info!(
                table = %table,
                partitions = removed.len(),
                before = %crate::partition::hour_dir(cutoff.div_euclid(HOUR_NS)),
                "retention removed expired partitions"
            );
            self.bury(
                removed
                    .into_iter()
                    .flat_map(|(_, files)| files.into_iter().map(|f| f.path())),
            );
        }
        Ok(())
    }
}

/// A merge must write exactly the rows of its inputs.
fn check_rows(table: Signal, written: u64, expected: u64) -> Result<(), StoreError> {
    if written == expected {
        Ok(())
    } else {
        Err(StoreError::rows(
            "merge",
            table,
            format!(
                "the merge read {written} rows where the files hold {expected}; the files are left as they are"
            ),
        ))
    }
}
