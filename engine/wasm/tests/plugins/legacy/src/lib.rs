//! A plugin of `weir:plugin@0.1.0`, written against the frozen WIT
//! package (`wit/v0.1`) with wit-bindgen alone, as plugins were built
//! before 0.2.0. It upper-cases bodies; each tick adds one to the `ticks`
//! entry of the plugin's state; a log whose body is `ticks` has its body
//! replaced by that count.

#![allow(missing_docs, unsafe_code)]

wit_bindgen::generate!({
    path: "../../../../../wit/v0.1",
    world: "processor",
});

// The world's `use` brings `Batch`, `Error` and `Settings` in.
use weir::plugin::state;

struct Legacy;

fn ticks() -> u64 {
    state::get("ticks")
        .and_then(|v| v.try_into().ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

impl Guest for Legacy {
    fn init(_config: String) -> Result<Settings, Error> {
        Ok(Settings {
            tick_every_ms: Some(1000),
        })
    }

    fn process(input: &Batch) -> Result<(), Error> {
        let bodies: Vec<Option<String>> = input
            .read_strings("body")?
            .into_iter()
            .map(|b| {
                b.map(|b| match b.as_str() {
                    "ticks" => ticks().to_string(),
                    _ => b.to_uppercase(),
                })
            })
            .collect();
        input.write_strings("body", &bodies)
    }

    fn tick(_now: u64) -> Result<(), Error> {
        state::set("ticks", &(ticks() + 1).to_le_bytes())
    }
}

export!(Legacy);
