//! A `weir:plugin@0.2.0` plugin that does what each log's body says, so
//! that the host's hold, partitioning and ticks can be tested. Bodies:
//!
//! * `hold K`: the row goes into the hold under key `K`;
//! * `release K` / `discard K`: releases / discards key `K`; the body
//!   becomes `released R B` / `discarded R B` (rows, bytes);
//! * `holding`: the body becomes `holding R B`;
//! * `later K`: key `K` is released at the instance's next tick;
//! * `keys`: the body becomes the batch's record attribute keys, joined by
//!   `,` (`attribute-keys`);
//! * `ticked`: the body becomes `ticked N`, the number of instances that
//!   have ticked at least once;
//! * `seen`: the body becomes `seen C U`: how many values of the
//!   partition column met more than one instance (C), and how many
//!   instances saw any (U);
//! * `trap`: the call panics, after the rows of the batch were held;
//! * anything else passes unchanged.
//!
//! Config: `{"partition": "COLUMN"}` partitions by that column (and each
//! instance notes in `state` which values it saw); `{"tick": true}` asks
//! for a tick every second.

use weir_plugin::services::{state_get, state_set};
use weir_plugin::{AttributeSet, Batch, Error, Held, Plugin, export_plugin, hold};

struct Keeper {
    id: u64,
    partition: Option<String>,
    tick: bool,
    later: Vec<String>,
}

/// The value of `"key":"..."` in the config (no JSON parser needed).
fn string_of(config: &str, key: &str) -> Option<String> {
    let at = config.find(&format!("\"{key}\""))?;
    config[at..].split('"').nth(3).map(str::to_owned)
}

fn counter(key: &str) -> u64 {
    state_get(key)
        .and_then(|v| v.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

fn set_counter(key: &str, n: u64) -> Result<(), Error> {
    state_set(key, &n.to_le_bytes())
}

fn held(word: &str, h: Held) -> String {
    format!("{word} {} {}", h.rows, h.bytes)
}

impl Plugin for Keeper {
    fn init(config: &str) -> Result<Self, Error> {
        // Instances start one after the other: each takes the next id.
        let id = counter("instances");
        set_counter("instances", id + 1)?;
        Ok(Keeper {
            id,
            partition: string_of(config, "partition"),
            tick: config.contains("\"tick\":true"),
            later: Vec::new(),
        })
    }

    fn partition_by(&self) -> Option<&str> {
        self.partition.as_deref()
    }

    fn tick_every(&self) -> Option<std::time::Duration> {
        self.tick.then(|| std::time::Duration::from_secs(1))
    }

    fn process(&mut self, batch: &mut Batch<'_>) -> Result<(), Error> {
        if let Some(column) = &self.partition {
            set_counter(&format!("used/{}", self.id), 1)?;
            for value in batch.strings(column)?.into_iter().flatten() {
                let key = format!("seen/{value}");
                match state_get(&key) {
                    Some(by) if by != self.id.to_le_bytes() => {
                        set_counter("conflicts", counter("conflicts") + 1)?
                    }
                    Some(_) => {}
                    None => set_counter(&key, self.id)?,
                }
            }
        }
        let bodies = batch.strings("body")?;
        let keys: Vec<Option<String>> = bodies
            .iter()
            .map(|b| b.as_deref()?.strip_prefix("hold ").map(str::to_owned))
            .collect();
        let trap = bodies.iter().any(|b| b.as_deref() == Some("trap"));
        if keys.iter().any(Option::is_some) {
            match batch.hold(&keys) {
                Ok(_) => {}
                Err(Error::LimitExceeded(_)) => {
                    let bodies: Vec<Option<String>> = bodies
                        .iter()
                        .map(|b| match b.as_deref() {
                            Some(h) if h.starts_with("hold ") => Some("refused".to_string()),
                            _ => b.clone(),
                        })
                        .collect();
                    batch.set_strings("body", &bodies)?;
                }
                Err(e) => return Err(e),
            }
        }
        if trap {
            panic!("keeper traps on request");
        }
        let mut changed = false;
        let mut bodies = batch.strings("body")?;
        for body in bodies.iter_mut() {
            let Some(text) = body.as_deref() else {
                continue;
            };
            let (word, arg) = text.split_once(' ').unwrap_or((text, ""));
            let new = match word {
                "release" => held("released", hold::release(&[arg.to_string()])?),
                "discard" => held("discarded", hold::discard(&[arg.to_string()])?),
                "holding" => held("holding", hold::holding()),
                "later" => {
                    self.later.push(arg.to_string());
                    continue;
                }
                "keys" => batch.attribute_keys(AttributeSet::Record)?.join(","),
                "ticked" => {
                    let ids = counter("instances");
                    let n = (0..ids)
                        .filter(|i| counter(&format!("ticks/{i}")) > 0)
                        .count();
                    format!("ticked {n}")
                }
                "seen" => {
                    let ids = counter("instances");
                    let used = (0..ids)
                        .filter(|i| counter(&format!("used/{i}")) > 0)
                        .count();
                    format!("seen {} {used}", counter("conflicts"))
                }
                _ => continue,
            };
            *body = Some(new);
            changed = true;
        }
        if changed {
            batch.set_strings("body", &bodies)?;
        }
        Ok(())
    }

    fn tick(&mut self, _now: u64) -> Result<(), Error> {
        let key = format!("ticks/{}", self.id);
        set_counter(&key, counter(&key) + 1)?;
        hold::release(&std::mem::take(&mut self.later))?;
        Ok(())
    }
}

export_plugin!(Keeper);
