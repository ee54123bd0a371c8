// Runs a built redact component (JavaScript or Python, or any other with the
// same behaviour) against a stand-in for Weir's host, in Node: the
// component is transpiled by jco, the `batch` resource is an in-memory
// table, and the cases are those of `redact-rust`'s tests.
//
//     node check.mjs COMPONENT.wasm
//
// Prints one line per case and `N passed, N failed` last; exits non-zero on
// a failure.

import { transpile } from '@bytecodealliance/jco';
import * as wasi from '@bytecodealliance/preview2-shim';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';

// componentize-py's core modules use extended constant expressions, which
// Node 20 compiles only with this flag (later versions have them on).
setFlagsFromString('--experimental-wasm-extended-const');

const componentPath = process.argv[2];
if (!componentPath) {
  console.error('usage: node check.mjs COMPONENT.wasm');
  process.exit(2);
}

/** An `error` of the contract, thrown by a host function to return `err`. */
class HostError extends Error {
  constructor(payload) {
    super(`${payload.tag}: ${payload.val}`);
    this.payload = payload;
  }
}

/** The rows of one batch, held by the stand-in host, with a call log. */
class Batch {
  constructor(columns) {
    this.columns = structuredClone(columns);
    this.calls = [];
  }
  #column(name) {
    if (!Object.hasOwn(this.columns, name)) {
      throw new HostError({ tag: 'no-such-column', val: name });
    }
    return this.columns[name];
  }
  signal() {
    this.calls.push('signal');
    return 'logs';
  }
  numRows() {
    this.calls.push('num-rows');
    return Object.values(this.columns)[0]?.length ?? 0;
  }
  columnNames() {
    this.calls.push('column-names');
    return Object.keys(this.columns);
  }
  readStrings(column) {
    this.calls.push(`read-strings ${column}`);
    return this.#column(column).map((v) => (v == null ? undefined : String(v)));
  }
  readText(column) {
    this.calls.push(`read-text ${column}`);
    const values = this.#column(column);
    const encoder = new TextEncoder();
    const parts = values.map((v) => encoder.encode(v == null ? '' : String(v)));
    const offsets = new Uint32Array(values.length + 1);
    parts.forEach((p, i) => { offsets[i + 1] = offsets[i] + p.length; });
    const data = new Uint8Array(offsets[values.length]);
    parts.forEach((p, i) => data.set(p, offsets[i]));
    const nulls = values.some((v) => v == null) ? values.map((v) => v == null) : [];
    return { data, offsets, nulls };
  }
  writeText(column, { data, offsets, nulls }) {
    this.calls.push(`write-text ${column}`);
    const old = this.#column(column);
    if (offsets.length !== old.length + 1 || (nulls.length !== 0 && nulls.length !== old.length)) {
      throw new HostError({ tag: 'invalid-argument', val: 'wrong length' });
    }
    const decoder = new TextDecoder('utf-8', { fatal: true });
    const bytes = Uint8Array.from(data);
    this.columns[column] = old.map((_, i) =>
      nulls[i] ? null : decoder.decode(bytes.subarray(offsets[i], offsets[i + 1])));
  }
  readInts(column) {
    this.calls.push(`read-ints ${column}`);
    return this.#column(column).map((v) => (v == null ? undefined : BigInt(v)));
  }
  writeStrings(column, values) {
    this.calls.push(`write-strings ${column}`);
    const old = this.#column(column);
    if (values.length !== old.length) {
      throw new HostError({ tag: 'invalid-argument', val: 'wrong length' });
    }
    this.columns[column] = values.map((v) => (v === undefined ? null : v));
  }
  dropRows(mask) {
    this.calls.push('drop-rows');
    for (const name of Object.keys(this.columns)) {
      this.columns[name] = this.columns[name].filter((_, i) => !mask[i]);
    }
    return Object.values(this.columns)[0]?.length ?? 0;
  }
  readFloats() { throw new HostError({ tag: 'failed', val: 'not used' }); }
  readAttribute() { throw new HostError({ tag: 'failed', val: 'not used' }); }
  writeInts() { throw new HostError({ tag: 'failed', val: 'not used' }); }
  writeFloats() { throw new HostError({ tag: 'failed', val: 'not used' }); }
  setAttribute() { throw new HostError({ tag: 'failed', val: 'not used' }); }
  removeAttribute() { throw new HostError({ tag: 'failed', val: 'not used' }); }
}

/** Every other host function: the redact plugin must not call them. */
function unused(name) {
  return () => {
    throw new Error(`the plugin called ${name}`);
  };
}

const camel = (s) => s.replace(/-(\w)/g, (_, c) => c.toUpperCase());

function importsFor(names) {
  const imports = {};
  for (const name of names) {
    const [, pkg, iface] = name.match(/^([^/]+)\/([^@]+)/) ?? [];
    if (pkg === 'weir:plugin') {
      imports[name] = {
        types: {},
        batch: { Batch },
        emit: { emit: unused('emit') },
        log: { log: unused('log') },
        metrics: {
          counterAdd: unused('counter-add'),
          gaugeSet: unused('gauge-set'),
          histogramRecord: unused('histogram-record'),
        },
        state: { get: unused('state.get'), set: unused('state.set'), delete: unused('state.delete') },
        lookup: { get: unused('lookup.get'), getMany: unused('lookup.get-many') },
        clock: { now: unused('now') },
      }[iface];
    } else if (pkg.startsWith('wasi:')) {
      imports[name] = wasi[pkg.slice(5)][camel(iface)];
    }
    if (!imports[name]) throw new Error(`no stand-in for import ${name}`);
  }
  return imports;
}

// Transpile once; instantiate afresh for each case (one instance, one init).
const bytes = await readFile(componentPath);
const { files, imports: importNames } = await transpile(bytes, {
  name: 'component',
  instantiation: 'async',
  noTypescript: true,
  quiet: true,
});
const dir = await mkdtemp(join(tmpdir(), 'redact-check-'));
for (const [name, data] of Object.entries(files)) {
  await mkdir(dirname(join(dir, name)), { recursive: true });
  await writeFile(join(dir, name), data);
}
const { instantiate } = await import(pathToFileURL(join(dir, 'component.js')).href);
const modules = new Map();
const getCoreModule = (path) => {
  if (!modules.has(path)) {
    modules.set(path, readFile(join(dir, path)).then((b) => WebAssembly.compile(b)));
  }
  return modules.get(path);
};
const imports = importsFor(importNames);
const fresh = () => instantiate(getCoreModule, imports);

/** Calls a `result` export: `{ ok }` or `{ err }` (the `error` variant). */
function call(f) {
  try {
    return { ok: f() };
  } catch (e) {
    if (e && typeof e === 'object' && 'payload' in e) return { err: e.payload };
    throw e;
  }
}

const LOGS = {
  severity_number: [5, 1, 9, 17, null],
  body: ['debug 1', 'trace 2', 'card 4111 1111', 'no digits', 'unspecified 7'],
};

const cases = {
  'init gives no tick': async () => {
    const p = await fresh();
    assert.deepEqual(call(() => p.init('{}')), { ok: { tickEveryMs: undefined } });
  },
  'drops DEBUG and TRACE, masks digits with #': async () => {
    const p = await fresh();
    p.init('{}');
    const b = new Batch(LOGS);
    assert.deepEqual(call(() => p.process(b)), { ok: undefined });
    assert.deepEqual(b.columns, {
      severity_number: [9, 17, null],
      body: ['card #### ####', 'no digits', 'unspecified #'],
    });
    assert.deepEqual(b.calls, [
      'read-ints severity_number',
      'drop-rows',
      'read-text body',
      'write-text body',
    ]);
  },
  'the mask comes from the config': async () => {
    const p = await fresh();
    p.init('{"mask":"*"}');
    const b = new Batch(LOGS);
    p.process(b);
    assert.equal(b.columns.body[0], 'card **** ****');
  },
  'a `$` mask is taken literally': async () => {
    const p = await fresh();
    p.init('{"mask":"$"}');
    const b = new Batch({ severity_number: [9], body: ['id 42'] });
    p.process(b);
    assert.equal(b.columns.body[0], 'id $$');
  },
  'a mask of one non-ASCII character': async () => {
    const p = await fresh();
    p.init('{"mask":"\u00e9"}');
    const b = new Batch({ severity_number: [9], body: ['pin 42'] });
    p.process(b);
    assert.equal(b.columns.body[0], 'pin \u00e9\u00e9');
    // A mask of two bytes in UTF-8 changes lengths: value by value.
    assert.deepEqual(b.calls, [
      'read-ints severity_number',
      'read-strings body',
      'write-strings body',
    ]);
  },
  'a bad mask is refused': async () => {
    for (const config of ['{"mask":""}', '{"mask":"ab"}', '{"mask":5}', '{"mask":null}']) {
      const p = await fresh();
      const r = call(() => p.init(config));
      assert.equal(r.err?.tag, 'invalid-argument', `${config}: ${JSON.stringify(r)}`);
    }
  },
  'nothing to drop or mask: no writes': async () => {
    const p = await fresh();
    p.init('{}');
    const b = new Batch({ severity_number: [0, 9, null], body: ['a', null, 'b'] });
    p.process(b);
    assert.deepEqual(b.columns, { severity_number: [0, 9, null], body: ['a', null, 'b'] });
    assert.deepEqual(b.calls, ['read-ints severity_number', 'read-text body']);
  },
  'null bodies stay null': async () => {
    const p = await fresh();
    p.init('{}');
    const b = new Batch({ severity_number: [9, 9], body: [null, 'id 7'] });
    p.process(b);
    assert.deepEqual(b.columns.body, [null, 'id #']);
  },
  'all rows dropped: bodies not read': async () => {
    const p = await fresh();
    p.init('{}');
    const b = new Batch({ severity_number: [1, 8], body: ['1', '2'] });
    assert.deepEqual(call(() => p.process(b)), { ok: undefined });
    assert.deepEqual(b.columns, { severity_number: [], body: [] });
    assert.deepEqual(b.calls, ['read-ints severity_number', 'drop-rows']);
  },
  "the host's error is returned": async () => {
    const p = await fresh();
    p.init('{}');
    const b = new Batch({ body: ['x'] });
    assert.deepEqual(call(() => p.process(b)), {
      err: { tag: 'no-such-column', val: 'severity_number' },
    });
  },
  'tick is ok': async () => {
    const p = await fresh();
    p.init('{}');
    assert.deepEqual(call(() => p.tick(1n)), { ok: undefined });
  },
};

let passed = 0;
let failed = 0;
for (const [name, run] of Object.entries(cases)) {
  try {
    await run();
    passed++;
    console.log(`ok   ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
await rm(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
