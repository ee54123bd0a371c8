// Drops DEBUG and lower logs and masks the digits of log bodies: the
// JavaScript twin of the `redact-rust` example, built into a component of
// the `weir:plugin` world `processor` by ComponentizeJS.
//
// ```toml
// [processors.redact]
// type = "wasm"
// inputs = ["otlp.logs"]
// path = "redact_js.wasm"
// config = { mask = "#" }   # the character digits become; default "#"
// ```
//
// Severity numbers 1 to 8 are TRACE and DEBUG; 0 (unspecified) is kept.
//
// How the contract looks from JavaScript: the batch handed to `process` is
// an instance of the `batch` resource of `weir:plugin/batch@0.1.0`, with
// its methods in camelCase (`readInts`, `dropRows`, ...). An `s64` is a
// BigInt, a `none` is `undefined`, a `list<u8>` a `Uint8Array` and a
// `list<u32>` a `Uint32Array`. A `result` export returns its `ok` value
// and throws its `err` value. An import that returns `err` throws an error
// whose `payload` is the `error` variant (`{ tag, val }`); let through, it
// becomes this export's `err` as it is.

/** The character digits become; set by `init`. */
let mask = '#';

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** An `invalid-argument` error of the contract, thrown to return `err`. */
function invalidArgument(message) {
  return { tag: 'invalid-argument', val: message };
}

/**
 * `config` is the plugin's `config` table as JSON text (`{}` when the
 * pipeline gives none). Its one setting, `mask`, must be a one-character
 * string.
 */
export function init(config) {
  let parsed;
  try {
    parsed = JSON.parse(config);
  } catch (e) {
    throw invalidArgument(`config is not JSON: ${e.message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalidArgument('config must be a JSON object');
  }
  if (Object.hasOwn(parsed, 'mask')) {
    const m = parsed.mask;
    // One character is one Unicode code point, as a Rust `char`.
    if (typeof m !== 'string' || [...m].length !== 1) {
      throw invalidArgument('`mask` must be a one-character string');
    }
    mask = m;
  } else {
    mask = '#';
  }
  return { tickEveryMs: undefined };
}

/** True for a severity number of TRACE or DEBUG (1 to 8). */
function isDebugOrLower(severity) {
  return severity !== undefined && severity !== null && severity >= 1n && severity <= 8n;
}

/** Drops TRACE and DEBUG rows, then masks the digits of the bodies left. */
export function process(batch) {
  const severities = batch.readInts('severity_number');
  const drop = severities.map(isDebugOrLower);
  let rows = drop.length;
  if (drop.includes(true)) {
    rows = batch.dropRows(drop);
  }
  if (rows === 0) {
    return;
  }

  if (mask.length === 1 && mask.charCodeAt(0) < 0x80) {
    // An ASCII mask replaces one byte by one byte: decode the whole body
    // column at once, mask it, encode it back, and keep its offsets. A
    // few calls into the engine, not one per row. (`replaceAll` with a
    // string is a plain search, several times faster here than a regular
    // expression; both are far faster than a loop over the bytes.)
    const text = batch.readText('body');
    let all = decoder.decode(text.data);
    if (!/[0-9]/.test(all)) {
      return;
    }
    for (const digit of '0123456789') {
      // A one-character replacement is taken literally (even `$`).
      all = all.replaceAll(digit, mask);
    }
    const data = encoder.encode(all);
    batch.writeText('body', { data, offsets: text.offsets, nulls: text.nulls });
    return;
  }

  // Any other mask changes the values' lengths: value by value.
  const bodies = batch.readStrings('body');
  let changed = 0;
  for (let i = 0; i < bodies.length; i++) {
    const body = bodies[i];
    if (typeof body === 'string' && /[0-9]/.test(body)) {
      bodies[i] = body.replace(/[0-9]/g, mask);
      changed++;
    }
  }
  if (changed > 0) {
    batch.writeStrings('body', bodies);
  }
}

/** Never called (`tick-every-ms` is none); the world requires it. */
export function tick(_now) {}
