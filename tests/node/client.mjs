// The Node.js side of tests/test_node_client.py: a service in another language sharing
// locks, queues and counters with Python, knowing only the exported manifest.
//
//   node tests/node/client.mjs <scenario> <redis url> <manifest.json> '<params json>'
//
// Prints one JSON object per line ({"event": ...}) as it goes; the test drives it by
// pushing to the list params.go (the test's own key) and reads its events.
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { loadManifest, Scripts, sha1 } from './atomic.mjs';

const [scenario, url, manifestPath, paramsJson = '{}'] = process.argv.slice(2);
if (!scenario || !url || !manifestPath) {
  console.error('usage: node client.mjs <scenario> <redis url> <manifest.json> [params json]');
  process.exit(2);
}
const params = JSON.parse(paramsJson);
const manifest = loadManifest(manifestPath);
const redis = new Redis(url, { connectionName: params.client_name ?? 'node-client',
                               maxRetriesPerRequest: 0, enableOfflineQueue: true });
const scripts = new Scripts(redis, manifest, { prefix: params.prefix });

function emit(event, data = {}) {
  process.stdout.write(JSON.stringify({ event, t: performance.timeOrigin + performance.now(),
                                        ...data }) + '\n');
}

// Wait for the test's go-ahead (an LPUSH to params.go); returns what it pushed.
async function go(timeoutS = 60) {
  const reply = await redis.blpop(params.go, timeoutS);
  if (reply === null) throw new Error(`no go-ahead on ${params.go} within ${timeoutS} s`);
  return reply[1];
}

// -- lock: primitives.lock.operations.acquire's protocol ---------------------------------
async function lockAcquire(name, { timeoutMs = 30000, ttlMs } = {}) {
  const token = randomBytes(16).toString('hex');
  const keys = scripts.keys('lock_acquire', { name });
  const signal = scripts.key('lock', 'signal', { name });
  const deadline = Date.now() + timeoutMs;
  let waited = false;
  for (;;) {
    const reply = await scripts.call('lock_acquire', keys,
                                     scripts.args('lock_acquire', { token, ttl_ms: ttlMs }));
    if (reply > 0) return { token, fence: reply, waited };
    const left = deadline - Date.now();
    if (left <= 0) return null;
    // the holder's lease ends in -1 - reply ms (0: no expiry): wait at most that long
    const leaseLeft = reply < 0 ? -1 - reply : left;
    const waitMs = Math.max(1, Math.min(leaseLeft, left));
    if (!waited) emit('lock-waiting', { holder_lease_ms: leaseLeft });
    waited = true;
    await redis.blpop(signal, waitMs / 1000);
  }
}

async function lockRelease(name, { token, fence }) {
  return scripts.call('lock_release', scripts.keys('lock_release', { name }),
                      scripts.args('lock_release', { token, fence }));
}

async function lockScenario() {
  const { name } = params;
  // 1. take the lock, then hand it to the Python waiter that blocks on it
  const first = await lockAcquire(name);
  emit('acquired', { fence: first.fence, waited: first.waited });
  await go();
  const sent = performance.timeOrigin + performance.now();
  const released = await lockRelease(name, first);
  emit('released', { result: released, sent });
  // 2. wait for the lock Python holds now (BLPOP on its signal key), take it when released
  await go();
  const second = await lockAcquire(name);
  emit('acquired', { fence: second.fence, waited: second.waited });
  const again = await lockRelease(name, second);
  emit('released', { result: again });
  // a second release of the same acquisition: 2 (a re-send is recognised)
  emit('released-again', { result: await lockRelease(name, second) });
}

// -- queue ------------------------------------------------------------------------------
// Deterministic binary payloads: every byte value, NUL, invalid UTF-8, empty and large.
function payload(i) {
  if (i === 0) return Buffer.alloc(0);
  if (i === 1) return Buffer.from(Array.from({ length: 256 }, (_, b) => b));
  if (i === 2) return Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]);
  const size = (i * 37) % 700 + 1;
  return Buffer.from(Array.from({ length: size }, (_, j) => (i * 131 + j * 7) % 256));
}

async function queuePush() {
  const { name, count, batch = 100 } = params;
  const keys = scripts.keys('queue_push', { name });
  const ids = [];
  for (let start = 0; start < count; start += batch) {
    const items = [];
    for (let i = start; i < Math.min(count, start + batch); i += 1) items.push(payload(i));
    const reply = await scripts.call('queue_push', keys, scripts.args('queue_push', { items }));
    ids.push(...scripts.decode('queue_push', reply).groups.map((g) => g.id));
  }
  const payloads = Array.from({ length: count }, (_, i) => payload(i).toString('base64'));
  emit('pushed', { ids, payloads });
}

// Consume `count` messages: claim (acking the previous batch in the same call), and when
// nothing was claimed BLPOP the signal key for at most wait_ms (primitives.queue pop).
async function queueConsume() {
  const { name, count, n = 50, timeout_ms: timeoutMs = 60000 } = params;
  const keys = scripts.keys('queue_claim', { name });
  const signal = scripts.key('queue', 'signal', { name });
  const receiptOf = (g) => expandReceipt(g);
  const got = [];
  let acks = [];
  let acked = 0;
  let announced = false;
  const deadline = Date.now() + timeoutMs;
  while (got.length < count || acks.length) {
    if (Date.now() > deadline) throw new Error(`consumed ${got.length} of ${count} in time`);
    const want = got.length < count ? Math.min(n, count - got.length) : 0;
    const reply = await scripts.call('queue_claim', keys, scripts.args('queue_claim', {
      n: want, acks: acks.join(' ') }), { buffers: true });
    const claim = scripts.decode('queue_claim', reply);
    acked += Number(claim.header.acked);
    acks = [];
    claim.header.groups.forEach((g, i) => {
      got.push({ id: g.id, deliveries: Number(g.deliveries),
                 payload: claim.payloads[i].toString('base64') });
      acks.push(receiptOf(g));
    });
    if (claim.header.groups.length === 0 && want > 0) {
      if (!announced) emit('queue-waiting');
      announced = true;
      const waitMs = Number(claim.header.wait_ms);
      const left = deadline - Date.now();
      const bound = waitMs >= 0 ? Math.min(waitMs, left) : left;
      await redis.blpop(signal, Math.max(1, bound) / 1000);
    }
  }
  emit('consumed', { messages: got, acked });
}

// A receipt from a claimed message's fields, by primitives.queue.receipt ({id}/{deliveries}).
function expandReceipt(fields) {
  return manifest.primitives.queue.receipt.replace(/\{([a-z_]+)\}/g, (_, f) => fields[f]);
}

// -- counter ----------------------------------------------------------------------------
// Each step: {delta, clamp, config?}. The bounds are the ones stored with the counter (read
// with counter_config, sent back byte for byte); a step's own config (an object of the
// packed argument's fields: min, max, mode) is another caller's, which the script refuses.
// Every step's result carries the value read right after it (value_after).
async function counterScenario() {
  const { name, steps } = params;
  const stored = await scripts.call('counter_config', scripts.keys('counter_config', { name }),
                                    scripts.args('counter_config'));
  const keys = scripts.keys('counter_add', { name }, {
    request: scripts.key('counter', 'counter', { name }) }); // no request id
  const read = () => scripts.call('counter_get', scripts.keys('counter_get', { name }),
                                  scripts.args('counter_get'));
  const results = [];
  for (const step of steps) {
    const result = { ...step };
    try {
      const reply = await scripts.call('counter_add', keys, scripts.args('counter_add', {
        delta: step.delta, config: step.config ?? stored,
        options: { clamp: step.clamp ? 1 : 0 } }));
      result.reply = scripts.decode('counter_add', reply);
    } catch (err) {
      result.error = String(err.message);
    }
    result.value_after = await read();
    results.push(result);
  }
  emit('counter', { results, value: await read(), stored });
}

// A counter Node creates: its first counter_add stores Node's configuration.
async function counterCreate() {
  const { name, config, delta } = params;
  const keys = scripts.keys('counter_add', { name }, {
    request: scripts.key('counter', 'counter', { name }) });
  const reply = await scripts.call('counter_add', keys,
                                   scripts.args('counter_add', { delta, config }));
  const stored = await scripts.call('counter_config', scripts.keys('counter_config', { name }),
                                    scripts.args('counter_config'));
  emit('created', { reply: scripts.decode('counter_add', reply), stored });
}

// -- semaphore and rate limiter: their stored configurations ---------------------------
// Another limit / rate is refused; the stored one, read with <kind>_config and taken apart
// by its layout into the arguments it goes back into, is what Node then uses.
async function limitsScenario() {
  const { semaphore, limiter, own_limit: ownLimit, own_burst: ownBurst } = params;
  const attempt = async (fn) => {
    try { return { reply: await fn() }; } catch (err) { return { error: String(err.message) }; }
  };
  const config = async (kind, name) => scripts.decode(`${kind}_config`, await scripts.call(
    `${kind}_config`, scripts.keys(`${kind}_config`, { name }), scripts.args(`${kind}_config`)));

  const permit = randomBytes(8).toString('hex');
  const semKeys = scripts.keys('semaphore_acquire', { name: semaphore });
  const acquire = async (given) => scripts.decode('semaphore_acquire', await scripts.call(
    'semaphore_acquire', semKeys, scripts.args('semaphore_acquire', { permit, ...given })));
  const semStored = await config('semaphore', semaphore);
  const semOwn = await attempt(() => acquire({ limit: ownLimit }));
  const full = await acquire(semStored);
  emit('semaphore-full', { stored: semStored, own: semOwn, full });
  await go();
  const held = await acquire(semStored);
  emit('semaphore-held', { held });

  const rlKeys = scripts.keys('ratelimit_hit', { name: limiter });
  const hit = async (given) => scripts.decode('ratelimit_hit', await scripts.call(
    'ratelimit_hit', rlKeys, scripts.args('ratelimit_hit', given)));
  const rlStored = await config('ratelimit', limiter);
  const rlOwn = await attempt(() => hit({ ...rlStored, burst: ownBurst }));
  const faster = await attempt(() => hit({ ...rlStored, interval_us: '1' }));
  const hits = [];
  for (let i = 0; i < 3; i += 1) hits.push(await hit(rlStored));
  emit('ratelimit', { stored: rlStored, own: rlOwn, faster, hits });
}

// -- NOSCRIPT: a flushed script cache, recovered with the manifest's sources ------------
async function noscriptScenario() {
  const { name } = params;
  const bad = manifest.scripts.filter((s) => sha1(s.source) !== s.sha1).map((s) => s.name);
  await redis.call('SCRIPT', 'FLUSH');
  const keys = scripts.keys('counter_get', { name });
  let noscript = null;
  try {
    await redis.call('EVALSHA', scripts.script('counter_get').sha1, keys.length, ...keys,
                     ...scripts.args('counter_get'));
  } catch (err) {
    noscript = String(err.message);
  }
  const before = scripts.evals;
  const value = await scripts.call('counter_get', keys, scripts.args('counter_get'));
  const fellBack = scripts.evals - before;
  const [cached] = await redis.call('SCRIPT', 'EXISTS', scripts.script('counter_get').sha1);
  const loaded = await redis.call('SCRIPT', 'LOAD', scripts.script('lock_acquire').source);
  emit('noscript', { noscript, value, fell_back: fellBack, cached_after_eval: cached,
                     script_load_sha1: loaded, lock_acquire_sha1: scripts.script('lock_acquire').sha1,
                     sources_not_matching_sha1: bad, scripts: manifest.scripts.length });
}

// -- Functions mode: the same scripts called as the library's functions ----------------
// (loaded by Python's `functions load`): FCALL / FCALL_RO by the manifest's function names.
function versionAtLeast(version, minimum) {
  const a = version.split('.').map(Number);
  const b = minimum.split('.').map(Number);
  for (let i = 0; i < b.length; i += 1) {
    if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) > b[i];
  }
  return true;
}

async function fcall(name, keys, args) {
  const { function: fn } = scripts.script(name);
  return redis.call(fn.command, fn.name, keys.length, ...keys, ...args);
}

async function functionsScenario() {
  const { name } = params;
  const info = await redis.info('server');
  const version = /^(?:valkey|redis)_version:(\S+)/m.exec(info)[1];
  const supported = versionAtLeast(version, manifest.functions.min_redis);
  if (!supported) {
    emit('functions', { supported, version, min_redis: manifest.functions.min_redis });
    return;
  }
  const token = randomBytes(16).toString('hex');
  const keys = scripts.keys('lock_acquire', { name });
  const fence = await fcall('lock_acquire', keys, scripts.args('lock_acquire', { token }));
  const inspect = await fcall('lock_inspect', scripts.keys('lock_inspect', { name }),
                              scripts.args('lock_inspect', { token }));
  const released = await fcall('lock_release', scripts.keys('lock_release', { name }),
                               scripts.args('lock_release', { token, fence }));
  const commands = ['lock_acquire', 'lock_inspect', 'lock_release']
    .map((n) => scripts.script(n).function.command);
  emit('functions', { supported, version, fence, inspect, released, commands,
                      library: manifest.functions.library });
}

const scenarios = {
  lock: lockScenario, 'queue-push': queuePush, 'queue-consume': queueConsume,
  counter: counterScenario, 'counter-create': counterCreate, noscript: noscriptScenario,
  functions: functionsScenario, limits: limitsScenario,
};
try {
  if (!scenarios[scenario]) throw new Error(`unknown scenario ${scenario}`);
  await scenarios[scenario]();
  emit('done', { evals: scripts.evals });
} catch (err) {
  emit('error', { message: String(err.stack ?? err) });
  process.exitCode = 1;
} finally {
  redis.disconnect();
}
