//! The process-wide wasmtime engine, the epoch clock that bounds every
//! call, and the compiled-component cache.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

use crate::PluginError;
use crate::cache::{self, Untrusted};

/// How often the epoch advances: the granularity of call timeouts.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// A wasmtime [`Engine`] configured for plugins, and where compiled
/// components are cached.
///
/// Compiling a component takes from tens of milliseconds to seconds;
/// [`Runtime::load`] does it once per distinct file content: the result is
/// kept in memory for the process and on disk under the cache directory,
/// named by the SHA-256 of the component and the engine's compatibility
/// hash, so a restart (or another pipeline using the same plugin) loads
/// the machine code directly. That code is trusted, so the disk cache is
/// used only when Weir's user alone can write it (see [`crate::cache`]).
///
/// Instances are long-lived (created at start and after a failure), so the
/// default on-demand instance allocator is used: the pooling allocator pays
/// off for a new instance per request, which Weir does not do, and it would
/// reserve address space for the largest memory cap of every slot up front.
/// Linear memories are still initialised copy-on-write.
pub struct Runtime {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    compiled: Mutex<HashMap<String, Component>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache_dir", &self.cache_dir)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime caching compiled components in `cache_dir` (created with
    /// mode `0700` when needed), or in memory only with `None`.
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Arc<Runtime>, PluginError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // `WEIR_WASM_PROFILE=perfmap` (or `jitdump`) names plugin code for
        // `perf`, so a plugin author can see where a plugin spends its time.
        match std::env::var("WEIR_WASM_PROFILE").as_deref() {
            Ok("perfmap") => {
                config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            }
            Ok("jitdump") => {
                config.profiler(wasmtime::ProfilingStrategy::JitDump);
            }
            _ => {}
        }
        let engine = Engine::new(&config).map_err(|e| PluginError::Internal(e.to_string()))?;
        let runtime = Arc::new(Runtime {
            engine,
            cache_dir,
            compiled: Mutex::new(HashMap::new()),
        });
        start_epoch_clock(Arc::downgrade(&runtime));
        Ok(runtime)
    }

    /// The runtime shared by every plugin of the process, caching in
    /// `$WEIR_WASM_CACHE`, else `$XDG_CACHE_HOME/weir/wasm`, else
    /// `$HOME/.cache/weir/wasm` (or in memory only when none is set).
    pub fn shared() -> Result<Arc<Runtime>, PluginError> {
        static SHARED: OnceLock<Arc<Runtime>> = OnceLock::new();
        if let Some(r) = SHARED.get() {
            return Ok(r.clone());
        }
        let runtime = Runtime::new(default_cache_dir())?;
        Ok(SHARED.get_or_init(|| runtime).clone())
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled component for the WebAssembly `bytes` (a component
    /// binary or its text form), from the cache when it is there.
    pub fn load(&self, bytes: &[u8]) -> Result<(Component, CacheOutcome), PluginError> {
        let key = self.cache_key(bytes);
        let mut compiled = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = compiled.get(&key) {
            return Ok((c.clone(), CacheOutcome::Memory));
        }
        let found = match &self.cache_dir {
            Some(dir) => cache::lookup(dir, &key),
            None => cache::Lookup::default(),
        };
        if let Some(path) = &found.load
            && let Some(component) = self.deserialize(path)
        {
            compiled.insert(key, component.clone());
            return Ok((component, CacheOutcome::Disk));
        }
        let artifact = self
            .engine
            .precompile_component(bytes)
            .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
        if let Some(path) = &found.store {
            // A cache that cannot be written costs a compile next time, no more.
            if let Err(e) = cache::write_atomically(path, &artifact) {
                tracing::warn!(path = %path.display(), error = %e, "could not cache a compiled plugin");
            }
        }
        let component = self.deserialize_bytes(&artifact)?;
        compiled.insert(key, component.clone());
        let outcome = found
            .refused
            .map_or(CacheOutcome::Compiled, CacheOutcome::Untrusted);
        Ok((component, outcome))
    }

    fn cache_key(&self, bytes: &[u8]) -> String {
        let digest = Sha256::digest(bytes);
        let mut engine_hash = DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut key = String::with_capacity(81);
        for b in digest {
            key.push_str(&format!("{b:02x}"));
        }
        key.push_str(&format!("-{:016x}", engine_hash.finish()));
        key
    }

    #[allow(unsafe_code)]
    fn deserialize(&self, path: &Path) -> Option<Component> {
        // SAFETY: wasmtime requires that the file was produced by
        // `precompile_component` of a compatible engine and is not changed
        // while mapped. `cache::lookup` offers only a regular file that
        // Weir's user owns, in a directory Weir's user owns, neither
        // writable by group or others, so no one else can have written or
        // swapped it; Weir names files by the engine's compatibility hash,
        // writes them whole to a temporary name and renames them into
        // place, never modifying them afterwards; wasmtime additionally
        // checks the header and the engine settings.
        match unsafe { Component::deserialize_file(&self.engine, path) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring an unusable cached plugin; compiling again");
                None
            }
        }
    }

    #[allow(unsafe_code)]
    fn deserialize_bytes(&self, artifact: &[u8]) -> Result<Component, PluginError> {
        // SAFETY: `artifact` was produced just now by this engine's
        // `precompile_component`.
        unsafe { Component::deserialize(&self.engine, artifact) }
            .map_err(|e| PluginError::Internal(e.to_string()))
    }
}

/// Where [`Runtime::load`] found the compiled component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled in this process already.
    Memory,
    /// Read from the on-disk cache.
    Disk,
    /// Compiled now (and written to the disk cache, if there is one).
    Compiled,
    /// Compiled now because the disk cache was not trusted: an artifact
    /// writable by others or not Weir's user's (not loaded, replaced), or
    /// such a directory (neither read nor written). A warning says which.
    Untrusted(Untrusted),
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WEIR_WASM_CACHE") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("weir/wasm"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/weir/wasm"))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until the runtime is
/// dropped; a call whose deadline passes is interrupted.
fn start_epoch_clock(runtime: Weak<Runtime>) {
    let spawned = std::thread::Builder::new()
        .name("weir-wasm-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match runtime.upgrade() {
                    Some(r) => r.engine.increment_epoch(),
                    None => return,
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start the plugin epoch clock; plugin timeouts will not fire");
    }
}
