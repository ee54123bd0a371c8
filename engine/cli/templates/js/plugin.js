// `{{name}}`: a Weir processor plugin in JavaScript, built into a
// WebAssembly component by ComponentizeJS (`weir plugin build`).
//
// ```toml
// [processors.{{ident}}]
// type = "wasm"
// inputs = ["otlp"]
// path = "{{name}}/{{name}}.wasm"
// config = { tag = "{{name}}" }
// ```
//
// The contract is the WIT package in `wit/` (world `processor`). The batch
// given to `process` stays in Weir; its methods (`readInts`, `readStrings`,
// `writeStrings`, `setAttribute`, `dropRows`, ...) move whole columns. An
// `s64` is a BigInt and a `none` is `undefined`. Return normally for `ok`;
// throw `{ tag: 'invalid-argument', val: 'why' }` (or any `error` case) for
// `err`.

let tag = '{{name}}';

/** `config` is the pipeline's `config` table as JSON text. */
export function init(config) {
  const parsed = JSON.parse(config);
  if (parsed.tag !== undefined) {
    if (typeof parsed.tag !== 'string' || parsed.tag === '') {
      throw { tag: 'invalid-argument', val: '`tag` must be a non-empty string' };
    }
    tag = parsed.tag;
  }
  return { tickEveryMs: undefined };
}

/** Called for every batch: logs, spans or metric points. */
export function process(batch) {
  // Drop rows by a column's value, for example TRACE logs:
  //   const drop = batch.readInts('severity_number').map((s) => s >= 1n && s <= 4n);
  //   if (batch.dropRows(drop) === 0) return;
  const values = new Array(batch.numRows()).fill(tag);
  batch.setAttribute('record', 'processed_by', values);
}

/** Called every `tickEveryMs`, if `init` asks for it. */
export function tick(_now) {}
