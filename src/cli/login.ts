// `stowage login` and `stowage logout`: sign in to a registry the way `docker login` does (the
// password checked with the registry first, then kept by docker's credential helper or in its
// config.json), so that a machine needs no docker to pull from a private registry.
import { createInterface } from 'node:readline/promises';
import { StowageError } from '../core/errors';
import { redactUserinfo } from '../core/redact';
import { DOCKER_HUB, registryName } from '../core/reference';
import { DockerConfigCredentials, StaticCredentials } from '../core/registry/credentials';
import { type Command, type OptionTable, parseCommandArgs, usageError } from './command';
import { createClient, ENGINE_OPTIONS } from './engine';

const LOGIN_USAGE = 'login [OPTIONS] [REGISTRY]';
const LOGOUT_USAGE = 'logout [REGISTRY]';

const LOGIN_OPTIONS = {
  username: { type: 'string', short: 'u', value: 'USER', help: 'the user name' },
  password: {
    type: 'string',
    short: 'p',
    value: 'PASSWORD',
    help: 'the password or token (insecure: others may see it; prefer --password-stdin)',
  },
  'password-stdin': { type: 'boolean', help: 'read the password or token from stdin' },
  'insecure-registry': ENGINE_OPTIONS['insecure-registry'],
  'ca-file': ENGINE_OPTIONS['ca-file'],
  verbose: ENGINE_OPTIONS.verbose,
} as const satisfies OptionTable;

export const loginCommand: Command = {
  usage: LOGIN_USAGE,
  description:
    "Sign in to a registry (default: Docker Hub) as docker login does: the password is checked with\nthe registry, then kept by docker's credential helper or in its config.json, where pulls find it.\nWithout -p or --password-stdin, asks on the terminal.",
  options: LOGIN_OPTIONS,
  async run(args) {
    const { values, positionals } = parseCommandArgs(args, LOGIN_OPTIONS, LOGIN_USAGE);
    const registry = registryArgument(positionals, LOGIN_USAGE);
    if (values.password !== undefined && values['password-stdin']) {
      throw usageError('--password and --password-stdin cannot be used together');
    }
    let username = values.username;
    let password: string | undefined;
    if (values['password-stdin']) {
      if (!username) throw usageError('--password-stdin needs the user name: -u USER');
      password = await readStdin();
    } else if (values.password !== undefined) {
      process.stderr.write(
        'WARNING! Using --password via the command line is insecure. Use --password-stdin.\n',
      );
      password = values.password;
    }
    username ||= await ask('Username: ', false);
    password ??= await ask('Password: ', true);
    if (!username || !password) throw usageError('A user name and a password are needed.');

    // Checked with only this credential, before anything is saved.
    const credentials = new StaticCredentials();
    credentials.set(registry, { username, password });
    const client = await createClient(values, credentials);
    try {
      await client.ping(registry);
    } catch (e) {
      if (e instanceof StowageError && (e.code === 'UNAUTHORIZED' || e.code === 'DENIED')) {
        throw new StowageError(
          e.code,
          `Login to ${registry} failed: the registry refused the user name or password.`,
          'Check them (for many registries the password is an access token) and try again; nothing was saved.',
        );
      }
      if (e instanceof StowageError) {
        throw new StowageError(e.code, `Login to ${registry} failed: ${e.message}`, e.hint, { cause: e });
      }
      throw e;
    } finally {
      await client.close();
    }
    const where = await new DockerConfigCredentials().store(registry, { username, password });
    if (!where.helper) {
      process.stderr.write(
        `WARNING! The password is stored unencrypted (base64) in ${where.file}.\n` +
          'Configure a credential helper ("credsStore" in that file) to keep it in your keychain instead.\n',
      );
    }
    process.stdout.write(`Login Succeeded${where.helper ? ` (kept by ${where.helper})` : ''}\n`);
    return 0;
  },
};

export const logoutCommand: Command = {
  usage: LOGOUT_USAGE,
  description: "Remove a registry's stored credentials (default: Docker Hub).",
  options: {},
  async run(args) {
    const { positionals } = parseCommandArgs(args, {}, LOGOUT_USAGE);
    const registry = registryArgument(positionals, LOGOUT_USAGE);
    const removed = await new DockerConfigCredentials().erase(registry);
    process.stdout.write(
      removed ? `Removed login credentials for ${registry}\n` : `Not logged in to ${registry}\n`,
    );
    return 0;
  },
};

/** REGISTRY as docker takes it (a host, https:// allowed; Docker Hub when left out). */
function registryArgument(positionals: string[], usage: string): string {
  if (positionals.length > 1) throw usageError(`one registry at most\nusage: stowage ${usage}`);
  const input = positionals[0] ?? DOCKER_HUB;
  const registry = registryName(input);
  if (!registry) {
    throw usageError(
      `"${redactUserinfo(input)}" is not a registry name: a host with an optional :port, e.g. ghcr.io or 127.0.0.1:5000`,
    );
  }
  return registry;
}

/** The password on standard input, without the newline that ends it (as docker reads it). */
async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of process.stdin) parts.push(chunk as Buffer);
  return Buffer.concat(parts).toString('utf8').replace(/\n$/, '').replace(/\r$/, '');
}

/** Asks on the terminal (the password without echo); no terminal is a usage error. */
async function ask(question: string, hidden: boolean): Promise<string> {
  const { stdin, stderr } = process;
  if (!stdin.isTTY) {
    throw usageError(
      `No ${hidden ? 'password' : 'user name'} given and no terminal to ask on: use -u USER and --password-stdin.`,
    );
  }
  if (!hidden) {
    const rl = createInterface({ input: stdin, output: stderr });
    try {
      return (await rl.question(question)).trim();
    } finally {
      rl.close();
    }
  }
  stderr.write(question);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (data: Buffer) => {
        for (const ch of data.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            resolve(value);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new StowageError('ABORTED', 'Login cancelled.'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else if (ch >= ' ') value += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    stderr.write('\n');
  }
}
