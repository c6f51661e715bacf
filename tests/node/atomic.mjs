// A client of pyredis-atomic's scripts that knows nothing but the exported manifest
// (`pyredis-atomic scripts export --format manifest -o manifest.json`): script sources and
// SHA1s, key templates and their escaping rule, argument defaults and packed fields, and
// reply layouts all come from it. Nothing here is copied from the Python package or lua/.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

export function loadManifest(path) {
  const manifest = JSON.parse(readFileSync(path, 'utf8'));
  if (manifest.version !== 2) throw new Error(`manifest version ${manifest.version}, want 2`);
  return manifest;
}

export function sha1(text) {
  return createHash('sha1').update(text, 'utf8').digest('hex');
}

// Fill a key template: '{{' / '}}' are literal braces, '{placeholder}' a value, escaped
// first (manifest.keys.escapes, in order) when the placeholder is one of keys.escaped.
export function expandTemplate(manifest, template, values) {
  const { escapes, escaped } = manifest.keys;
  return template.replace(/\{\{|\}\}|\{([a-z_]+)\}/g, (match, placeholder) => {
    if (match === '{{') return '{';
    if (match === '}}') return '}';
    let value = values[placeholder];
    if (value === undefined) throw new Error(`no value for {${placeholder}} in ${template}`);
    if (escaped.includes(placeholder)) {
      for (const [from, to] of escapes) value = value.split(from).join(to);
    }
    return value;
  });
}

export class Scripts {
  constructor(redis, manifest, { prefix } = {}) {
    this.redis = redis;
    this.manifest = manifest;
    this.prefix = prefix ?? manifest.keys.default_prefix;
    this.byName = new Map(manifest.scripts.map((s) => [s.name, s]));
    this.evals = 0; // how many calls fell back to EVAL (NOSCRIPT)
  }

  script(name) {
    const script = this.byName.get(name);
    if (!script) throw new Error(`no script ${name} in the manifest`);
    return script;
  }

  // A primitive's key by its name in the manifest (primitives.<p>.keys).
  key(primitive, keyName, values) {
    const template = this.manifest.primitives[primitive].keys[keyName];
    if (template === undefined) throw new Error(`no key ${keyName} of ${primitive}`);
    return expandTemplate(this.manifest, template, { prefix: this.prefix, ...values });
  }

  // The KEYS of a script: each key's template filled with values ({name}, {key},
  // {request_id}); `overrides` maps a key name to a ready key (e.g. counter_add's request
  // key is KEYS[1] again when there is no request id).
  keys(name, values, overrides = {}) {
    return this.script(name).keys.map((k) => overrides[k.name]
      ?? expandTemplate(this.manifest, k.template, { prefix: this.prefix, ...values }));
  }

  // The ARGV of a script: given[arg.name], else the manifest's default (what the Python
  // API sends). A packed argument may be given as an object of its fields, the others taken
  // from the default. A variadic last argument takes an array.
  args(name, given = {}) {
    const out = [];
    for (const arg of this.script(name).args) {
      let value = given[arg.name];
      if (arg.variadic) {
        if (!Array.isArray(value)) throw new Error(`${name}: ${arg.name} takes an array`);
        out.push(...value);
        continue;
      }
      if (arg.fields && (value === undefined || typeof value === 'object')) {
        // A configured argument (a counter's configuration) has no default: every field given.
        const defaults = arg.default === null ? [] : arg.default.split(' ');
        value = arg.fields.map((f, i) => {
          const field = value?.[f] ?? defaults[i];
          if (field === undefined) throw new Error(`${name}: no ${f} for ${arg.name}`);
          return String(field);
        }).join(' ');
      }
      value ??= arg.default;
      if (value === null || value === undefined) throw new Error(`${name}: no ${arg.name}`);
      out.push(Buffer.isBuffer(value) ? value : String(value));
    }
    return out;
  }

  // EVALSHA; on NOSCRIPT (the script cache was flushed, or the server restarted) nothing ran:
  // EVAL the manifest's source (which also caches it), after checking it is the SHA1's text.
  async call(name, keys, args, { buffers = false } = {}) {
    const script = this.script(name);
    const send = buffers ? this.redis.callBuffer.bind(this.redis) : this.redis.call.bind(this.redis);
    try {
      return await send('EVALSHA', script.sha1, keys.length, ...keys, ...args);
    } catch (err) {
      if (!String(err.message).startsWith('NOSCRIPT')) throw err;
      if (sha1(script.source) !== script.sha1) throw new Error(`${name}: source is not its SHA1`);
      this.evals += 1;
      return send('EVAL', script.source, keys.length, ...keys, ...args);
    }
  }

  // Decode a reply by the script's returns.layout: named fields of a space-separated string
  // (with a repeated group after them), or named items of an array.
  decode(name, reply) {
    return decodeLayout(this.script(name).returns.layout, reply);
  }
}

export function decodeLayout(layout, reply) {
  if (!layout || reply === null) return reply;
  if (layout.items) {
    if (!Array.isArray(reply)) {
      // an integer|array reply that is an integer: layout.integer names it
      return { [layout.integer]: reply };
    }
    const out = {};
    layout.items.forEach((item, i) => {
      out[item.name] = decodeLayout(item, reply[i]);
    });
    if (layout.rest) out[layout.rest] = reply.slice(layout.items.length);
    return out;
  }
  if (layout.fields) {
    const parts = reply.toString('utf8').split(' ');
    const out = {};
    layout.fields.forEach((f, i) => { out[f] = parts[i]; });
    if (layout.repeat) {
      const group = layout.repeat;
      out.groups = [];
      for (let i = layout.fields.length; i + group.length <= parts.length; i += group.length) {
        const g = {};
        group.forEach((f, j) => { g[f] = parts[i + j]; });
        out.groups.push(g);
      }
    }
    return out;
  }
  return reply;
}
