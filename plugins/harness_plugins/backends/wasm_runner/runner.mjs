// The harness runner for onnxruntime-web under Node.js: the runner protocol of harness/measure/remote.py
// on stdin/stdout, and the timing plan of harness/measure/timing.py (run_plan) ported to this runtime, so
// a WASM latency is measured exactly as an in-process one: warm-up for a minimum count and time and
// then until two windows of 10 single calls agree within 5%; the clock's overhead from empty blocks;
// where one call lasts at least per_query_factor x (resolution + overhead), every call timed by
// itself (per-query samples), else an inner loop calibrated so a sample lasts at least min_sample_s
// and 10x the timer's resolution (block means); then min_samples samples and min_time_s, at most
// max_samples kept (a seeded uniform reservoir). Timed with process.hrtime.bigint() around awaited
// session.run calls.
import * as ort from 'onnxruntime-web';

const PROTOCOL = 3;
const WARMUP_WINDOW = 10;
const WARMUP_TOLERANCE = 0.05;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const nowS = () => Number(process.hrtime.bigint()) / 1e9;

// process.hrtime.bigint() counts nanoseconds; its real step and cost come from back-to-back reads
// (timing.py's measure_clock): the smallest non-zero step and the median step.
function measureClock(reads = 2001) {
  const stamps = [];
  for (let k = 0; k < reads; k++) stamps.push(process.hrtime.bigint());
  const deltas = [];
  for (let k = 1; k < reads; k++) deltas.push(Number(stamps[k] - stamps[k - 1]));
  const positive = deltas.filter((d) => d > 0);
  const resolutionNs = positive.length ? Math.min(...positive) : 1;
  return { resolution_s: resolutionNs / 1e9, overhead_s: median(deltas) / 1e9, reads };
}

// A small seeded generator (mulberry32) for the reservoir: the same plan keeps the same samples.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function runPlan(block, plan) {
  const resolution = measureClock(201).resolution_s;
  const began = nowS();
  let single = [];
  let i = 0;
  let stable = false;
  const maxWarmup = Math.max(4 * plan.warmup_s, 1.0);
  for (;;) {
    single.push(await block(1, i));
    i += 1;
    const elapsed = nowS() - began;
    if (i < plan.warmup_iters || elapsed < plan.warmup_s || single.length < 2 * WARMUP_WINDOW) continue;
    const prev = median(single.slice(-2 * WARMUP_WINDOW, -WARMUP_WINDOW));
    const last = median(single.slice(-WARMUP_WINDOW));
    if (prev > 0 && Math.abs(last - prev) / prev <= WARMUP_TOLERANCE) { stable = true; break; }
    if (elapsed >= maxWarmup) break;
    if (single.length > 4 * WARMUP_WINDOW) single = single.slice(-2 * WARMUP_WINDOW);
  }
  const warmupIters = i;
  const warmupS = nowS() - began;
  const callS = median(single.slice(-WARMUP_WINDOW));
  const empties = [];
  for (let k = 0; k < 31; k++) empties.push(await block(0, i));
  const overhead = Math.max(0, median(empties));
  const factor = plan.per_query_factor ?? 20;
  const threshold = factor * (resolution + overhead);
  const perQuery = (plan.sampling ?? 'auto') === 'auto' && callS >= threshold;
  const floor = Math.max(plan.min_sample_s, 10 * resolution);
  let inner = 1;
  // Start from the warm-up's median call, so one noisy block cannot stop calibration short.
  while (!perQuery && callS > 0 && inner * callS < floor && inner < (1 << 20)) inner *= 2;
  let pos = i;
  while (!perQuery) {
    const took = await block(inner, pos);
    pos += inner;
    if (took >= floor || inner >= (1 << 20)) break;
    inner *= 2;
  }
  const cap = plan.max_samples ?? 10000;
  const pick = rng(0);
  const samples = [];
  let taken = 0;
  const begin = nowS();
  for (;;) {
    const value = (await block(inner, pos)) / inner;
    pos += inner;
    taken += 1;
    if (samples.length < cap) samples.push(value);
    else {
      const j = Math.floor(pick() * taken);
      if (j < cap) samples[j] = value;
    }
    const spent = nowS() - begin;
    if (taken >= plan.min_samples && spent >= plan.min_time_s) break;
    if (spent >= plan.max_time_s && taken >= 3) break;
  }
  const info = {
    warmup_stable: stable, warmup_s: warmupS, timer_resolution_s: resolution, timer_overhead_s: overhead,
    per_query_threshold_s: threshold, call_estimate_s: callS,
    sampling: perQuery ? 'per query' : 'block means',
    samples: perQuery ? 'per query' : `block means of ${inner} calls`,
    calls_per_sample: inner, samples_taken: taken, samples_kept: samples.length,
  };
  if (!perQuery) info.min_sample_s = floor;
  return { samples_s: samples, inner_loops: inner, warmup_iters: warmupIters,
    timer: 'process.hrtime.bigint (node)', info };
}

// ------------------------------------------------------------------ framing
let buffer = Buffer.alloc(0);
let waiting = null;
process.stdin.on('data', (chunk) => { buffer = Buffer.concat([buffer, chunk]); if (waiting) { const w = waiting; waiting = null; w(); } });
process.stdin.on('end', () => { if (waiting) { const w = waiting; waiting = null; w(); } });

async function readExact(n) {
  while (buffer.length < n) {
    if (process.stdin.readableEnded) return null;
    await new Promise((resolve) => { waiting = resolve; });
  }
  const out = buffer.subarray(0, n);
  buffer = buffer.subarray(n);
  return out;
}

async function readFrame() {
  const len = await readExact(4);
  if (!len) return null;
  const header = JSON.parse((await readExact(len.readUInt32BE(0))).toString('utf8'));
  const blobs = [];
  for (const b of header.blobs || []) blobs.push(Buffer.from(await readExact(b.nbytes)));
  return [header, blobs];
}

function writeFrame(header, blobs = []) {
  const full = { ...header, blobs: blobs.map(([d, b]) => ({ ...d, nbytes: b.length })) };
  const data = Buffer.from(JSON.stringify(full), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length, 0);
  process.stdout.write(Buffer.concat([len, data, ...blobs.map(([, b]) => b)]));
}

// A blob's bytes as a typed array of its dtype: copied, because a Buffer's byteOffset into Node's
// pool need not be aligned (a Float32Array or BigInt64Array view over it would throw or misread).
const TYPED = { float32: Float32Array, int64: BigInt64Array, int32: Int32Array };
const typed = (desc, buf) => {
  const Kind = TYPED[desc.dtype];
  if (!Kind) throw new Error(`unsupported blob dtype ${desc.dtype}`);
  return new Kind(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
};

// Input blobs grouped into feeds, one per `batch` index (0 when absent), keyed by the model's input
// names: by the blobs' names when they match the model's, else by position (harness/measure/remote.py).
function feedsOf(descs, blobs) {
  const groups = new Map();
  descs.forEach((d, k) => {
    const b = d.batch ?? 0;
    if (!groups.has(b)) groups.set(b, []);
    groups.get(b).push([d.name, new ort.Tensor(d.dtype, typed(d, blobs[k]), d.shape)]);
  });
  const names = session.inputNames;
  return [...groups.keys()].sort((a, b) => a - b).map((b) => {
    const pairs = groups.get(b);
    const given = new Set(pairs.map(([n]) => n));
    if (given.size === names.length && names.every((n) => given.has(n))) return Object.fromEntries(pairs);
    if (pairs.length !== names.length) throw new Error(`the model takes inputs ${names}; got ${[...given]}`);
    return Object.fromEntries(names.map((n, i) => [n, pairs[i][1]]));
  });
}

// ------------------------------------------------------------------ requests
let session = null;

async function handle(req, blobs) {
  switch (req.op) {
    case 'hello':
      return [{ ok: true, protocol: PROTOCOL, runtime: 'onnxruntime-web', version: ort.env.versions?.web ?? 'unknown',
        features: { node: process.version, arch: process.arch, wasm_simd: true }, clock: measureClock() }];
    case 'load': {
      ort.env.wasm.numThreads = req.threads;
      session = await ort.InferenceSession.create(new Uint8Array(blobs[0]), { executionProviders: ['wasm'] });
      return [{ ok: true, info: { runtime: 'onnxruntime-web', version: ort.env.versions?.web ?? 'unknown',
        threads: req.threads, provider: 'wasm', node: process.version } }];
    }
    case 'run': {
      const out = await session.run(feedsOf(req.blobs, blobs)[0]);
      const t = out[session.outputNames[0]];
      const data = Buffer.from(Float32Array.from(t.data).buffer);
      return [{ ok: true }, [[{ dtype: 'float32', shape: t.dims }, data]]];
    }
    case 'time': {
      const feeds = feedsOf(req.blobs, blobs);
      const k = feeds.length;
      const block = async (n, offset) => {
        const t0 = process.hrtime.bigint();
        for (let j = offset; j < offset + n; j++) await session.run(feeds[j % k]);
        return Number(process.hrtime.bigint() - t0) / 1e9;
      };
      return [{ ok: true, ...(await runPlan(block, req.plan)) }];
    }
    case 'outputs': {
      // TEST01: each batch through the very call the 'time' loop makes (await session.run(feed)).
      const out = [];
      for (const feed of feedsOf(req.blobs, blobs)) {
        const res = await session.run(feed);
        const t = res[session.outputNames[0]];
        out.push([{ dtype: 'float32', shape: t.dims }, Buffer.from(Float32Array.from(t.data).buffer)]);
      }
      return [{ ok: true }, out];
    }
    case 'close':
      return [{ ok: true }];
    default:
      return [{ ok: false, error: `unknown op ${req.op}` }];
  }
}

for (;;) {
  const frame = await readFrame();
  if (!frame) break;
  const [req, blobs] = frame;
  let resp;
  try {
    resp = await handle(req, blobs);
  } catch (err) {
    resp = [{ ok: false, error: String(err && err.stack ? err.stack : err) }];
  }
  writeFrame(resp[0], resp[1] || []);
  if (req.op === 'close') break;
}
process.exit(0);
