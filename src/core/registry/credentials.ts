/**
 * Where registry credentials come from: docker's config.json (inline `auths`, `credsStore`,
 * `credHelpers`), credentials the extension supplies (from SecretStorage), and chains of those.
 *
 * Lookups are lazy: nothing is read or executed until a registry actually asks for
 * authentication, so a broken credential helper cannot fail a pull that needs no credentials.
 * Errors name the file or helper at fault and never contain a secret.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { isStowageError, StowageError } from '../errors';
import { credentialKey, DOCKER_HUB } from '../reference';

export interface Credential {
  username?: string;
  password?: string;
  /** A refresh token for the OAuth2 POST token flow (docker's `identitytoken`). */
  identityToken?: string;
  /** A bearer token to send to the registry as is (docker's `registrytoken`). */
  registryToken?: string;
}

export interface CredentialSource {
  /** `registry` is the registry name as in references: 'docker.io', '127.0.0.1:5000', 'ghcr.io'. */
  get(registry: string): Promise<Credential | undefined>;
}

/** Runs a credential helper program (`docker-credential-<name>`) and returns its stdout. */
export type HelperExec = (helper: string, action: HelperAction, input: string) => Promise<string>;

/** The docker-credential-helpers protocol's verbs (`list` is not used). */
export type HelperAction = 'get' | 'store' | 'erase';

/** True when a credential carries nothing usable. */
export function isEmptyCredential(c: Credential | undefined): boolean {
  return !c || !(c.username || c.password || c.identityToken || c.registryToken);
}

/**
 * The host a config.json key or registry name stands for, as docker normalises them:
 * `https://host:5000/v1/` → `host:5000`; Docker Hub's aliases → `docker.io`.
 */
export function normaliseRegistryKey(key: string): string {
  let k = key.trim().toLowerCase();
  k = k.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  const slash = k.indexOf('/');
  if (slash >= 0) k = k.slice(0, slash);
  if (k === 'index.docker.io' || k === 'registry-1.docker.io') k = DOCKER_HUB;
  return k;
}

/** Finds a registry's entry in a config.json map: the exact docker key first, then any alias. */
function lookupKey<T>(map: Record<string, T> | undefined, registry: string): [string, T] | undefined {
  if (!map) return undefined;
  const exact = credentialKey(registry);
  if (Object.hasOwn(map, exact)) return [exact, map[exact]!];
  for (const [k, v] of Object.entries(map)) if (normaliseRegistryKey(k) === registry) return [k, v];
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Static credentials (the extension's SecretStorage) and chains.

/** Credentials held in memory, set by the embedding program (the extension, from SecretStorage). */
export class StaticCredentials implements CredentialSource {
  readonly #map = new Map<string, Credential>();

  set(registry: string, cred: Credential): void {
    this.#map.set(normaliseRegistryKey(registry), { ...cred });
  }
  delete(registry: string): void {
    this.#map.delete(normaliseRegistryKey(registry));
  }
  clear(): void {
    this.#map.clear();
  }
  async get(registry: string): Promise<Credential | undefined> {
    const c = this.#map.get(normaliseRegistryKey(registry));
    return c && !isEmptyCredential(c) ? { ...c } : undefined;
  }
}

/**
 * Asks each source in turn; the first credential found wins and later sources are not asked.
 * A source that fails does not hide later ones: its error is thrown only if none has a credential.
 */
export function chainCredentials(...sources: CredentialSource[]): CredentialSource {
  return {
    async get(registry) {
      let failure: unknown;
      for (const s of sources) {
        try {
          const c = await s.get(registry);
          if (!isEmptyCredential(c)) return c;
        } catch (e) {
          failure ??= e;
        }
      }
      if (failure !== undefined) throw failure;
      return undefined;
    },
  };
}

/**
 * Looks a credential up without letting a broken source fail the caller: a failing source yields
 * `problem`, which the caller should proceed without (anonymously) and report only if the
 * registry then refuses anonymous access. This is what keeps a missing `docker-credential-desktop`
 * from failing pulls of public images on Docker Hub, which challenges even anonymous clients.
 */
export async function lookupCredential(
  source: CredentialSource,
  registry: string,
): Promise<{ credential?: Credential; problem?: StowageError }> {
  try {
    const credential = await source.get(registry);
    return isEmptyCredential(credential) ? {} : { credential: credential! };
  } catch (e) {
    if (isStowageError(e)) return { problem: e };
    return {
      problem: new StowageError('CREDENTIALS', `Could not look up credentials for ${registry}.`, undefined, {
        cause: e,
      }),
    };
  }
}

// ---------------------------------------------------------------------------------------------
// docker's config.json

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

interface DockerConfig {
  auths: Record<string, AuthEntry>;
  credsStore?: string;
  credHelpers: Record<string, string>;
}

/** Helper programs may wait on a keychain prompt; past this they are treated as broken. */
const HELPER_TIMEOUT_MS = 60_000;
const HELPER_MAX_OUTPUT = 1024 * 1024;
const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
/** What docker-credential-helpers print when a server has no stored credential. */
const NOT_FOUND = /credentials not found/i;

class HelperFailure extends Error {
  constructor(
    message: string,
    readonly kind: 'missing' | 'exit' | 'timeout' | 'output',
  ) {
    super(message);
  }
}

/**
 * Runs `helper action` with `input` on stdin, as docker does; resolves with its stdout. It runs in
 * `cwd`, a folder of the user's (docker's config folder): Windows looks for the program in the
 * current folder before PATH (and so does a PATH with an empty entry), and the folder the user
 * works in may be a cloned repository that brings a docker-credential-desktop.exe of its own.
 */
export function defaultHelperExec(
  env: NodeJS.ProcessEnv,
  timeoutMs = HELPER_TIMEOUT_MS,
  cwd = homedir(),
): HelperExec {
  return (helper, action, input) =>
    new Promise((resolve, reject) => {
      // spawn resolves the program on env.PATH; no shell is involved.
      const child = spawn(helper, [action], {
        cwd,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let failed: HelperFailure | undefined;
      const fail = (f: HelperFailure) => {
        failed ??= f;
        child.kill();
        // Rejected now, pipes closed: a child of the helper (gpg, pinentry…) may hold them open,
        // and then 'close' would never come.
        clearTimeout(timer);
        child.stdout.destroy();
        child.stderr.destroy();
        reject(f);
      };
      const collect = (into: Buffer[]) => (b: Buffer) => {
        size += b.length;
        if (size > HELPER_MAX_OUTPUT) fail(new HelperFailure('its output is too large', 'output'));
        else into.push(b);
      };
      child.stdout.on('data', collect(out));
      child.stderr.on('data', collect(err));
      const timer = setTimeout(
        () => fail(new HelperFailure(`it did not answer within ${timeoutMs / 1000} s`, 'timeout')),
        timeoutMs,
      );
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          e.code === 'ENOENT'
            ? new HelperFailure('it is not installed or not on PATH', 'missing')
            : new HelperFailure(`it could not be run (${e.code ?? e.message})`, 'exit'),
        );
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        if (failed) return reject(failed);
        const stdout = Buffer.concat(out).toString('utf8');
        if (code === 0) return resolve(stdout);
        // Helpers report errors on stdout (docker-credential-helpers) or stderr.
        const text = (stdout.trim() || Buffer.concat(err).toString('utf8').trim()).split('\n')[0] ?? '';
        const why = text ? text.slice(0, 200) : signal ? `killed by ${signal}` : `exit status ${code}`;
        reject(new HelperFailure(why, 'exit'));
      });
      child.stdin.on('error', () => {}); // a helper that exits without reading stdin: the close event reports
      child.stdin.end(input);
    });
}

export interface DockerConfigOptions {
  /** Default: $DOCKER_CONFIG, else ~/.docker. */
  configDir?: string;
  /** Environment for DOCKER_CONFIG, HOME and the helpers' PATH. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Runs credential helpers; default spawns `docker-credential-<name> get`. */
  execHelper?: HelperExec;
}

/**
 * Credentials from docker's config.json, read as docker reads them:
 * - `credHelpers[registry]`, else `credsStore`, names a helper `docker-credential-<name>`, run with
 *   `get` and the server URL on stdin, answering `{ServerURL, Username, Secret}`; a Username of
 *   `<token>` means Secret is an identity token; "credentials not found" means none.
 * - `auths[key]` with `auth` (base64 `user:password`), `identitytoken`, `registrytoken`. Docker
 *   Hub's key is `https://index.docker.io/v1/`; other keys are host[:port], optionally with a
 *   scheme and path, which docker ignores.
 * Unlike docker, an inline `auths` credential is still used when the helper has none.
 *
 * A missing or unreadable config.json means no credentials; a malformed one is an error naming
 * the file. The parsed file is cached and re-read when its mtime or size changes.
 */
export class DockerConfigCredentials implements CredentialSource {
  readonly configFile: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #exec: HelperExec;
  #cached?: { stamp: string; config: DockerConfig };
  readonly #inflight = new Map<string, Promise<Credential | undefined>>();

  constructor(options: DockerConfigOptions = {}) {
    this.#env = options.env ?? process.env;
    const home = this.#env.HOME || this.#env.USERPROFILE || homedir();
    const dir = options.configDir ?? (this.#env.DOCKER_CONFIG || join(home, '.docker'));
    this.configFile = join(dir, 'config.json');
    this.#exec = options.execHelper ?? defaultHelperExec(this.#env, undefined, dir);
  }

  get(registry: string): Promise<Credential | undefined> {
    const key = normaliseRegistryKey(registry);
    // Concurrent requests for one registry share one helper run.
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#lookup(key).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  async #lookup(registry: string): Promise<Credential | undefined> {
    const config = await this.#load();
    if (!config) return undefined;
    const helperEntry = lookupKey(config.credHelpers, registry);
    const helper = helperEntry ? helperEntry[1] : config.credsStore;
    if (helper) {
      const fromHelper = await this.#fromHelper(helper, registry, helperEntry ? 'credHelpers' : 'credsStore');
      if (fromHelper) return fromHelper;
    }
    const entry = lookupKey(config.auths, registry);
    return entry ? this.#fromEntry(entry[0], entry[1]) : undefined;
  }

  #fromEntry(key: string, e: AuthEntry): Credential | undefined {
    const c: Credential = {};
    if (e.auth) {
      const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon < 0) {
        throw new StowageError(
          'CREDENTIALS',
          `The "auth" value for "${key}" in ${this.configFile} is not base64 of "user:password".`,
          `Run "docker login" again, or fix or remove that entry.`,
        );
      }
      c.username = decoded.slice(0, colon);
      c.password = decoded.slice(colon + 1);
    } else {
      if (e.username) c.username = e.username;
      if (e.password) c.password = e.password;
    }
    if (e.identitytoken) c.identityToken = e.identitytoken;
    if (e.registrytoken) c.registryToken = e.registrytoken;
    return isEmptyCredential(c) ? undefined : c;
  }

  async #fromHelper(name: string, registry: string, field: string): Promise<Credential | undefined> {
    const program = `docker-credential-${name}`;
    const where = `("${field}" in ${this.configFile})`;
    const stdout = await this.#runHelper(name, 'get', credentialKey(registry), registry, field);
    if (stdout === undefined) return undefined;
    let answer: unknown;
    try {
      answer = JSON.parse(stdout);
    } catch {
      // Never echo the output: it may hold the secret.
      throw new StowageError(
        'CREDENTIALS',
        `Docker credential helper ${program} ${where} gave an answer for ${registry} that is not JSON.`,
      );
    }
    const a = (answer ?? {}) as { Username?: unknown; Secret?: unknown };
    const username = typeof a.Username === 'string' ? a.Username : '';
    const secret = typeof a.Secret === 'string' ? a.Secret : '';
    if (!secret) return undefined;
    if (username === '<token>') return { identityToken: secret };
    return { username, password: secret };
  }

  /** Runs a helper; undefined when it has nothing for the server ("credentials not found"). */
  async #runHelper(
    name: string,
    action: HelperAction,
    input: string,
    registry: string,
    field: string,
  ): Promise<string | undefined> {
    const program = `docker-credential-${name}`;
    const where = `("${field}" in ${this.configFile})`;
    if (!HELPER_NAME.test(name)) {
      throw new StowageError('CREDENTIALS', `Invalid credential helper name "${name}" ${where}.`);
    }
    try {
      return await this.#exec(program, action, input);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      if (NOT_FOUND.test(message)) return undefined;
      const missing = e instanceof HelperFailure && e.kind === 'missing';
      const verb =
        action === 'get'
          ? 'failed for'
          : action === 'store'
            ? 'could not store credentials for'
            : 'could not erase credentials for';
      throw new StowageError(
        'CREDENTIALS',
        `Docker credential helper ${program} ${where} ${verb} ${registry}: ${message}.`,
        missing
          ? `Install ${program}, or remove "${field}" from ${this.configFile}.`
          : `Check that ${program} works ("docker login ${registry}"), or remove "${field}" from the config.`,
        { cause: e },
      );
    }
  }

  /**
   * Saves a user name and password for `registry` as `docker login` does: through the credential
   * helper the config names for it (then `auths` keeps an empty entry, as docker's does), else
   * inline in `auths` as base64 `user:password`. The rest of the file is kept as it was; it is
   * written whole to a temporary file (mode 0600) and renamed over the old one.
   * Returns where the secret went: the helper program, or the config file (unencrypted).
   */
  async store(
    registry: string,
    credential: { username: string; password: string },
  ): Promise<{ helper?: string; file: string }> {
    const { raw, config } = await this.#loadForWrite();
    const key = credentialKey(registry);
    const helperEntry = lookupKey(config.credHelpers, registry);
    const helper = helperEntry ? helperEntry[1] : config.credsStore;
    const auths = (raw.auths ?? {}) as Record<string, AuthEntry>;
    if (helper) {
      const input = JSON.stringify({
        ServerURL: key,
        Username: credential.username,
        Secret: credential.password,
      });
      await this.#runHelper(helper, 'store', input, registry, helperEntry ? 'credHelpers' : 'credsStore');
      auths[key] = {};
    } else {
      auths[key] = { auth: Buffer.from(`${credential.username}:${credential.password}`).toString('base64') };
    }
    raw.auths = auths;
    await this.#write(raw);
    return { ...(helper ? { helper: `docker-credential-${helper}` } : {}), file: this.configFile };
  }

  /**
   * Forgets `registry`'s credentials as `docker logout` does: erased from its helper, and every
   * `auths` entry that stands for it removed. Returns whether anything was there.
   */
  async erase(registry: string): Promise<boolean> {
    const { raw, config, exists } = await this.#loadForWrite();
    if (!exists) return false;
    let found = false;
    const helperEntry = lookupKey(config.credHelpers, registry);
    const helper = helperEntry ? helperEntry[1] : config.credsStore;
    if (helper) {
      const field = helperEntry ? 'credHelpers' : 'credsStore';
      found =
        (await this.#runHelper(helper, 'erase', credentialKey(registry), registry, field)) !== undefined;
    }
    const auths = (raw.auths ?? {}) as Record<string, AuthEntry>;
    const keys = Object.keys(auths).filter((k) => normaliseRegistryKey(k) === registry);
    for (const k of keys) delete auths[k];
    if (keys.length > 0) await this.#write(raw);
    return found || keys.length > 0;
  }

  /** The file as a plain object (every field kept), checked as a lookup checks it. */
  async #loadForWrite(): Promise<{ raw: Record<string, unknown>; config: DockerConfig; exists: boolean }> {
    let text: string;
    try {
      text = await readFile(this.configFile, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StowageError(
          'CREDENTIALS',
          `Cannot read ${this.configFile}: ${(e as NodeJS.ErrnoException).code}.`,
        );
      }
      return { raw: {}, config: { auths: {}, credHelpers: {} }, exists: false };
    }
    return { ...this.#parse(text), exists: true };
  }

  async #write(raw: Record<string, unknown>): Promise<void> {
    // A config.json that is a link (dotfile repositories) is written where it points.
    const target = await realpath(this.configFile).catch(() => this.configFile);
    await mkdir(dirname(target), { recursive: true, mode: 0o700 });
    const temp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(temp, `${JSON.stringify(raw, null, '\t')}\n`, { mode: 0o600, flag: 'wx' });
      await rename(temp, target);
    } catch (e) {
      await rm(temp, { force: true });
      throw new StowageError(
        'CREDENTIALS',
        `Cannot write ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`,
        'Check that the folder is writable, or point DOCKER_CONFIG at one that is.',
      );
    }
    this.#cached = undefined;
  }

  async #load(): Promise<DockerConfig | undefined> {
    let stamp: string;
    try {
      const s = await stat(this.configFile);
      stamp = `${s.mtimeMs}:${s.size}:${s.ino}`;
    } catch {
      this.#cached = undefined;
      return undefined;
    }
    if (this.#cached?.stamp === stamp) return this.#cached.config;
    let text: string;
    try {
      text = await readFile(this.configFile, 'utf8');
    } catch {
      return undefined; // unreadable: as if absent, like docker
    }
    const { config } = this.#parse(text);
    this.#cached = { stamp, config };
    return config;
  }

  /** The file's object as it is (for rewriting it) and, checked, what lookups use. */
  #parse(text: string): { raw: Record<string, unknown>; config: DockerConfig } {
    const bad = (why: string) =>
      new StowageError(
        'CREDENTIALS',
        `The docker config file ${this.configFile} is malformed: ${why}.`,
        'Fix or remove it (it is written by "docker login").',
      );
    let raw: unknown;
    try {
      raw = text.trim() ? JSON.parse(text) : {};
    } catch (e) {
      // Only the position: JSON.parse messages can quote the text, which may hold secrets.
      throw bad(`it is not valid JSON${jsonErrorPosition(text, (e as Error).message)}`);
    }
    if (!isRecord(raw)) throw bad('it is not a JSON object');
    const auths = raw.auths ?? {};
    if (!isRecord(auths)) throw bad('"auths" is not an object');
    for (const [k, v] of Object.entries(auths)) {
      if (!isRecord(v)) throw bad(`"auths" entry "${k}" is not an object`);
      for (const f of ['auth', 'username', 'password', 'identitytoken', 'registrytoken']) {
        if (v[f] !== undefined && typeof v[f] !== 'string')
          throw bad(`"${f}" of "auths" entry "${k}" is not a string`);
      }
    }
    const credHelpers = raw.credHelpers ?? {};
    if (!isRecord(credHelpers) || Object.values(credHelpers).some((v) => typeof v !== 'string')) {
      throw bad('"credHelpers" is not an object of strings');
    }
    if (raw.credsStore !== undefined && typeof raw.credsStore !== 'string')
      throw bad('"credsStore" is not a string');
    const config: DockerConfig = {
      auths: auths as Record<string, AuthEntry>,
      credHelpers: credHelpers as Record<string, string>,
      ...(raw.credsStore ? { credsStore: raw.credsStore as string } : {}),
    };
    return { raw, config };
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** ` (line L, column C)` from a JSON.parse message that gives a position, else ''. */
function jsonErrorPosition(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return '';
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return ` (line ${line}, column ${column})`;
}
