//! A plugin that misbehaves in the way its config asks, so that the host's
//! containment can be tested. `config = { mode = "..." }`:
//!
//! * `ok`: upper-cases the body, counts calls in `state` (the well-behaved
//!   control);
//! * `loop`: never returns;
//! * `alloc`: allocates until memory runs out;
//! * `trap`: reads far outside its memory;
//! * `panic`: panics;
//! * `huge`: emits far more records than it was given;
//! * `garbage`: writes a column of the wrong length and a body of the
//!   wrong type, ignores the refusals and returns `ok`;
//! * `fail-init`: refuses its config;
//! * `probe`: tries the files, environment and clocks it should not have,
//!   and fails with a report of what it saw.
//!
//! A mode may be prefixed with `once-`: the plugin misbehaves on the first
//! batch of each instance that has `"boom"` in a body, and is well-behaved
//! otherwise.

use weir_plugin::{AttributeSet, Batch, Error, Plugin, Signal, export_plugin, services};

struct Hostile {
    mode: String,
}

fn mode_of(config: &str) -> String {
    // The config is `{"mode":"..."}`; no JSON parser needed for that.
    config
        .split('"')
        .skip_while(|s| *s != "mode")
        .nth(2)
        .unwrap_or("ok")
        .to_string()
}

impl Plugin for Hostile {
    fn init(config: &str) -> Result<Self, Error> {
        let mode = mode_of(config);
        if mode == "fail-init" {
            return Err(Error::InvalidArgument(
                "`mode` fail-init refuses to start".into(),
            ));
        }
        Ok(Hostile { mode })
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        let mode = match self.mode.strip_prefix("once-") {
            Some(m) => {
                let bodies = batch.strings("body")?;
                if bodies.iter().flatten().any(|b| b.contains("boom")) {
                    m.to_string()
                } else {
                    "ok".to_string()
                }
            }
            None => self.mode.clone(),
        };
        match mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => {
                // Out-of-bounds: a trap, not a panic.
                #[allow(unsafe_code)]
                let v = unsafe { std::ptr::read_volatile(0xffff_fff0usize as *const u64) };
                std::hint::black_box(v);
                Ok(())
            }
            "panic" => panic!("the hostile plugin panics on purpose"),
            "huge" => {
                let record = r#"{"severityNumber":9,"body":{"stringValue":"spam"}}"#;
                let records = vec![record; 1000].join(",");
                let json = format!(
                    r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{records}]}}]}}]}}"#
                );
                for _ in 0..1000 {
                    // Refusals are ignored on purpose: the host must stop it anyway.
                    let _ = services::emit(Signal::Logs, &json);
                }
                Ok(())
            }
            "probe" => {
                let files = match std::fs::read_dir("/") {
                    Ok(_) => "open".to_string(),
                    Err(e) => format!("closed ({e})"),
                };
                let env = std::env::vars().count();
                let clock = match services::now() {
                    Ok(_) => "granted",
                    Err(Error::Denied(_)) => "denied",
                    Err(_) => "error",
                };
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(u64::MAX);
                Err(Error::Failed(format!(
                    "probe: files {files}; env vars {env}; clock {clock}; wall clock {wall}s"
                )))
            }
            "leak" => {
                // A toolchain that never frees: 1 MiB lost per call, then
                // the usual work.
                std::hint::black_box(Box::leak(vec![1u8; 1 << 20].into_boxed_slice()));
                batch.map_strings("body", |b| Some(b.to_uppercase()))?;
                Ok(())
            }
            "garbage" => {
                let _ = batch.set_strings("body", &[Some("only one".into())]);
                let _ = batch.set_ints("body", &vec![Some(1); batch.num_rows()]);
                let _ = services::emit(Signal::Logs, "{not json");
                Ok(())
            }
            _ => {
                batch.map_strings("body", |b| Some(b.to_uppercase()))?;
                batch.set_attribute_all(AttributeSet::Record, "plugin", "hostile")?;
                let calls = services::state_get("calls")
                    .and_then(|v| v.try_into().ok())
                    .map(u64::from_le_bytes)
                    .unwrap_or(0)
                    + 1;
                services::state_set("calls", &calls.to_le_bytes())?;
                Ok(())
            }
        }
    }
}

export_plugin!(Hostile);
