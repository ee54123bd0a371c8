//! Where the Parquet tables live: a local directory (the default, or a
//! `file://` URL) or an S3 bucket and prefix (`s3://bucket/prefix`), behind
//! one `object_store` rooted at the tables' root.
//!
//! Reads, listings and deletions go through the object store. Writes to
//! local disk are done by [`crate::local`] (fsync and rename), because
//! `object_store`'s local backend does not fsync; writes to S3 are one
//! `PUT` (or a multipart upload), durable when it returns.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::execution::object_store::ObjectStoreUrl;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use url::Url;
use weir_core::Signal;

use crate::error::StoreError;
use crate::layout::table_prefix;
use crate::local;

/// The tables' root.
#[derive(Debug, Clone)]
pub(crate) struct Location {
    /// The object store, rooted at the tables' root.
    pub store: Arc<dyn ObjectStore>,
    /// The local backend, when the tables are on local disk.
    local: Option<Arc<LocalFileSystem>>,
    /// The URL the store is registered under in DataFusion sessions.
    pub url: ObjectStoreUrl,
    /// How to name the root in messages.
    pub display: String,
}

impl Location {
    /// The tables' root of `url` (`None`: `<path>/tables`), `path` being
    /// the store's absolute local directory.
    pub fn resolve(url: Option<&str>, path: &Path) -> Result<Location, StoreError> {
        let parsed = match url {
            None => None,
            Some(text) => Some(Url::parse(text).map_err(|e| {
                StoreError::Config(format!(
                    "`url = \"{text}\"` is not a URL ({e}): write `file:///absolute/dir` or `s3://bucket/prefix`"
                ))
            })?),
        };
        let location = match parsed {
            None => Location::local(&path.join("tables"))?,
            Some(u) if u.scheme() == "file" => {
                let dir = u.to_file_path().map_err(|()| {
                    StoreError::Config(format!(
                        "`url = \"{u}\"` is not an absolute local path: write `file:///absolute/dir`"
                    ))
                })?;
                Location::local(&dir)?
            }
            Some(u) if u.scheme() == "s3" => Location::s3(&u)?,
            Some(u) => {
                return Err(StoreError::Config(format!(
                    "`url = \"{u}\"` has scheme `{}`, which the store does not support: use `file://` or `s3://`",
                    u.scheme()
                )));
            }
        };
        Ok(location)
    }

    fn local(dir: &Path) -> Result<Location, StoreError> {
        local::create_dir_durably(dir)
            .map_err(|e| StoreError::io("create the tables directory", dir, e))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| StoreError::io("resolve the tables directory", dir, e))?;
        let fs = LocalFileSystem::new_with_prefix(&dir)
            .map_err(|e| StoreError::object_store("open", dir.display(), e))?
            .with_automatic_cleanup(true);
        let fs = Arc::new(fs);
        let display = dir.display().to_string();
        Ok(Location {
            store: fs.clone(),
            local: Some(fs),
            url: registration_url(&display)?,
            display,
        })
    }

    fn s3(u: &Url) -> Result<Location, StoreError> {
        let bucket = u.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
            StoreError::Config(format!(
                "`url = \"{u}\"` names no bucket: write `s3://bucket/prefix`"
            ))
        })?;
        let s3 = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .build()
            .map_err(|e| StoreError::object_store("connect to", u, e))?;
        let prefix = u.path().trim_matches('/');
        let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
            Arc::new(s3)
        } else {
            Arc::new(PrefixStore::new(s3, prefix))
        };
        let display = u.to_string();
        Ok(Location {
            store,
            local: None,
            url: registration_url(&display)?,
            display,
        })
    }

    /// A root in memory, standing for a remote object store in tests.
    #[cfg(test)]
    pub(crate) fn in_memory() -> Location {
        let display = format!("memory://{:016x}", crate::checkpoint::random_u64());
        Location {
            store: Arc::new(object_store::memory::InMemory::new()),
            local: None,
            url: registration_url(&display).expect("a valid URL"),
            display,
        }
    }

    /// The local file of `path`, when the tables are on local disk.
    pub fn local_path(&self, path: &ObjPath) -> Option<Result<PathBuf, StoreError>> {
        let fs = self.local.as_ref()?;
        Some(
            fs.path_to_filesystem(path)
                .map_err(|e| StoreError::object_store("locate", path, e)),
        )
    }

    /// Writes a whole file durably.
    pub async fn put(&self, path: &ObjPath, bytes: Vec<u8>) -> Result<(), StoreError> {
        match self.local_path(path) {
            Some(file) => {
                let file = file?;
                tokio::task::spawn_blocking(move || {
                    local::write_durably(&file, &bytes)
                        .map_err(|e| StoreError::io("write", &file, e))
                })
                .await
                .map_err(|e| StoreError::Internal(format!("a file write task failed: {e}")))?
            }
            None => self
                .store
                .put(path, PutPayload::from(bytes))
                .await
                .map(|_| ())
                .map_err(|e| StoreError::object_store("write", self.describe(path), e)),
        }
    }

    /// Deletes a file; a file already gone is not an error.
    pub async fn delete(&self, path: &ObjPath) -> Result<(), StoreError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StoreError::object_store("delete", self.describe(path), e)),
        }
    }

    /// Every object under a table's directory.
    pub async fn list(&self, table: Signal) -> Result<Vec<ObjectMeta>, StoreError> {
        let prefix = table_prefix(table);
        self.store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(|e| StoreError::object_store("list", self.describe(&prefix), e))
    }

    /// A path as the user knows it.
    pub fn describe(&self, path: &ObjPath) -> String {
        format!("{}/{path}", self.display.trim_end_matches('/'))
    }
}

/// The URL under which a root is registered in DataFusion: one per root,
/// so several stores can share a session.
fn registration_url(display: &str) -> Result<ObjectStoreUrl, StoreError> {
    let mut h = DefaultHasher::new();
    display.hash(&mut h);
    let url = format!("weir-store://{:016x}", h.finish());
    ObjectStoreUrl::parse(&url)
        .map_err(|e| StoreError::Internal(format!("bad registration URL {url}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: an unsupported scheme or a non-URL is refused with a
    /// message naming the accepted forms; `file://` URLs are local.
    #[test]
    fn urls_are_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = Location::resolve(Some("ftp://x/y"), dir.path()).expect_err("ftp");
        assert!(e.to_string().contains("file://"), "{e}");
        let e = Location::resolve(Some("not a url"), dir.path()).expect_err("junk");
        assert!(e.to_string().contains("s3://"), "{e}");
        let other = dir.path().join("elsewhere");
        let url = Url::from_directory_path(&other).expect("url");
        let loc = Location::resolve(Some(url.as_str()), dir.path()).expect("file url");
        assert!(loc.local.is_some());
        assert!(other.is_dir());
    }
}
