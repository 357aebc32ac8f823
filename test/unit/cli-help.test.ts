// Every command's --help comes from the table its parser uses; small wording helpers of the CLI.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { helpText, parseCommandArgs, platformFlags, plural } from '../../src/cli/command';
import { commands } from '../../src/cli/commands';
import { main } from '../../src/cli/main';
import { closest } from '../../src/cli/suggest';

/** Runs main() in-process with `isTTY` as given on stdout; returns the exit code and stderr. */
async function mainOn(isTTY: boolean, argv: string[]): Promise<{ code: number; stderr: string }> {
  const saved = { tty: process.stdout.isTTY, write: process.stderr.write };
  let stderr = '';
  process.stdout.isTTY = isTTY;
  process.stderr.write = ((chunk: string) => {
    stderr += chunk;
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(argv), stderr };
  } finally {
    process.stdout.isTTY = saved.tty;
    process.stderr.write = saved.write;
  }
}

describe('help', () => {
  for (const [name, entry] of Object.entries(commands)) {
    test(`${name} --help: usage, a description, and every option the parser accepts`, async () => {
      const command = await entry.load();
      const help = helpText(command);
      assert.match(help, new RegExp(`^usage: stowage ${name}\\b`));
      assert.ok(command.description.length > 20, 'a description');
      assert.ok(help.includes(`\n\n${command.description}\n\n`));
      for (const [option, spec] of Object.entries(command.options)) {
        const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${option}${spec.value ? ` ${spec.value}` : ''}`;
        assert.match(
          help,
          new RegExp(`\n  ${flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +${spec.help.slice(0, 10)}`),
        );
      }
    });
  }

  test('the options the reviewer found unlisted are listed', async () => {
    const pull = helpText(await commands.pull!.load());
    const tags = helpText(await commands.tags!.load());
    assert.match(pull, /-v, --verbose/);
    for (const flag of ['--offline', '--mirror', '-v, --verbose']) assert.ok(tags.includes(flag), flag);
  });
});

describe('argument wording', () => {
  const options = { platform: { type: 'string', help: 'p' }, json: { type: 'boolean', help: 'j' } } as const;
  const problem = (args: string[]) => {
    try {
      parseCommandArgs(args, options, 'x [OPTIONS]');
    } catch (e) {
      return (e as Error).message.split('\n')[0];
    }
    return undefined;
  };

  test("parseArgs' messages, put in a line of ours", () => {
    assert.equal(problem(['--plaform', 'a']), 'unknown option --plaform (did you mean --platform?)');
    assert.equal(problem(['--zzz']), 'unknown option --zzz');
    assert.equal(problem(['-z']), 'unknown option -z');
    assert.equal(problem(['--platform']), '--platform needs a value');
    assert.equal(problem(['--json=yes']), '--json takes no value');
    assert.equal(problem(['--json']), undefined);
  });

  test('closest: a typo or a prefix, not an unrelated word', () => {
    assert.equal(closest('pul', ['pull', 'push', 'ls']), 'pull');
    assert.equal(closest('inspcet', ['inspect', 'import']), 'inspect');
    assert.equal(closest('all-plat', ['all-platforms', 'always']), 'all-platforms');
    assert.equal(closest('frobnicate', ['pull', 'push']), undefined);
  });

  test('plural', () => {
    assert.equal(plural(1, 'blob'), '1 blob');
    assert.equal(plural(0, 'blob'), '0 blobs');
    assert.equal(plural(3, 'partial download'), '3 partial downloads');
  });

  test('--platform values split on commas', () => {
    assert.deepEqual(
      platformFlags(['linux/amd64, linux/arm64', 'linux/arm/v7'], 'x').map((p) => p.architecture),
      ['amd64', 'arm64', 'arm'],
    );
  });
});

describe('export -o -', () => {
  test('refuses to write an archive to a terminal, before touching the cache', async () => {
    const r = await mainOn(true, ['export', 'alpine', '-o', '-', '--cache', '/nonexistent/stowage']);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      'stowage export: refusing to write an archive to a terminal; use -o FILE or redirect\n',
    );
  });
});
