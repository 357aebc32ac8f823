// Smoke test of `npm run demo -- --no-editor`: the script a newcomer runs first starts a real
// registry with the sample images, writes the sample workspace, lets the CLI pull from it, and
// stops cleanly on Ctrl+C (SIGINT).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freePort, repoRoot } from '../support/code-server';
import { MEDIA } from '../support/fixtures';
import { run } from '../support/proc';
import { MANIFEST_ACCEPT } from '../support/push';

const READY_TIMEOUT_MS = 180_000;

describe('npm run demo -- --no-editor', { timeout: READY_TIMEOUT_MS + 120_000 }, () => {
  let dir: string;
  let cache: string;
  let port: number;
  let registry: string;
  let demo: ChildProcess;
  let output = '';
  let exited: Promise<number | null>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-demo-test-'));
    cache = await mkdtemp(join(tmpdir(), 'stowage-demo-cache-'));
    port = await freePort();
    registry = `127.0.0.1:${port}`;
    // detached: its own process group, so the after hook can end whatever is left of it.
    demo = spawn(
      'bash',
      [join(repoRoot, 'scripts', 'demo.sh'), '--no-editor', '--port', String(port), '--dir', dir],
      {
        cwd: repoRoot,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    exited = new Promise((done) => demo.once('exit', (code) => done(code)));
    demo.stdout!.on('data', (b: Buffer) => {
      output += b.toString('utf8');
    });
    demo.stderr!.on('data', (b: Buffer) => {
      output += b.toString('utf8');
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the demo was not ready within ${READY_TIMEOUT_MS} ms:\n${output}`)),
        READY_TIMEOUT_MS,
      );
      const check = () => {
        if (/Stowage demo ready/.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      demo.stdout!.on('data', check);
      demo.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the demo exited (${code}) before it was ready:\n${output}`));
      });
    });
  });

  after(async () => {
    if (demo?.pid !== undefined && demo.exitCode === null && demo.signalCode === null) {
      try {
        process.kill(-demo.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    // The registry runs in its own process group; the demo records it.
    const state = join(dir ?? '', 'demo.pid.json');
    if (dir && existsSync(state)) {
      const { registryPid } = JSON.parse(readFileSync(state, 'utf8')) as { registryPid?: number };
      if (registryPid) {
        try {
          process.kill(-registryPid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    if (dir) await rm(dir, { recursive: true, force: true });
    if (cache) await rm(cache, { recursive: true, force: true });
  });

  test('prints where the registry is and how to use the CLI against it', () => {
    assert.match(output, new RegExp(`Registry +http://127\\.0\\.0\\.1:${port}\\b`));
    assert.match(output, new RegExp(`pull --cache \\S+ 127\\.0\\.0\\.1:${port}/demo/base:1\\.0`));
    assert.doesNotMatch(output, /Open VS Code/, '--no-editor starts no editor');
  });

  test('the registry serves the seeded images and tags', async () => {
    const tags = async (repo: string) => {
      const res = await fetch(`http://${registry}/v2/${repo}/tags/list`);
      assert.equal(res.status, 200, `tags/list of ${repo}`);
      return ((await res.json()) as { tags: string[] }).tags.sort();
    };
    assert.deepEqual(await tags('demo/base'), ['1.0', '1.1']);
    assert.deepEqual(await tags('demo/tools'), ['latest']);
    const app = await tags('demo/app');
    assert.ok(app.length > 30, `demo/app has ${app.length} tags`);
    assert.ok(app.includes('2024') && app.includes('latest'));

    const res = await fetch(`http://${registry}/v2/demo/base/manifests/1.0`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MEDIA.ociIndex);
    const index = (await res.json()) as { manifests: { platform: { architecture: string } }[] };
    assert.deepEqual(index.manifests.map((m) => m.platform.architecture).sort(), ['amd64', 'arm', 'arm64']);
  });

  test('the sample workspace uses the registry, including an invalid reference', async () => {
    const ws = join(dir, 'workspace');
    const dockerfile = await readFile(join(ws, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, new RegExp(`^FROM ${registry}/demo/base:\\$\\{BASE_TAG\\} AS build$`, 'm'));
    assert.match(dockerfile, new RegExp(`^COPY --from=${registry}/demo/tools:latest `, 'm'));
    const refs = await run(process.execPath, [
      join(repoRoot, 'dist', 'cli.js'),
      'refs',
      '--json',
      join(ws, 'Dockerfile'),
    ]);
    const names = JSON.stringify(JSON.parse(refs.stdout));
    for (const ref of ['demo/base:1.1', 'demo/tools:latest', 'demo/app:2024']) {
      assert.ok(names.includes(`${registry}/${ref}`), `refs lists ${ref}: ${names}`);
    }
    assert.ok(existsSync(join(ws, 'services', 'worker', 'Dockerfile')));
    assert.match(await readFile(join(ws, 'legacy.Dockerfile'), 'utf8'), /\/Demo\/Legacy:1\.0/);
  });

  test('the CLI pulls a sample image from the demo registry', async () => {
    const cli = join(repoRoot, 'dist', 'cli.js');
    const ref = `${registry}/demo/base:1.0`;
    const pulled = await run(process.execPath, [cli, 'pull', '--cache', cache, '--json', ref]);
    const result = JSON.parse(pulled.stdout) as {
      reference: string;
      digest: string;
      blobsDownloaded: number;
    };
    const head = await fetch(`http://${registry}/v2/demo/base/manifests/1.0`, {
      method: 'HEAD',
      headers: { accept: MANIFEST_ACCEPT },
    });
    assert.equal(result.reference, ref);
    assert.equal(result.digest, head.headers.get('docker-content-digest'));
    assert.ok(result.blobsDownloaded > 0);
    const ls = JSON.parse((await run(process.execPath, [cli, 'ls', '--cache', cache, '--json'])).stdout) as {
      name: string;
    }[];
    assert.deepEqual(
      ls.map((r) => r.name),
      [ref],
    );
  });

  test('Ctrl+C stops the demo and its registry', { timeout: 30_000 }, async () => {
    const state = JSON.parse(await readFile(join(dir, 'demo.pid.json'), 'utf8')) as { registryPid: number };
    // bash exec'd node, so this is the demo's own process, as a terminal's Ctrl+C would reach it.
    process.kill(demo.pid!, 'SIGINT');
    assert.equal(await exited, 0, output);
    assert.match(output, /demo: stopped/);
    assert.throws(() => process.kill(state.registryPid, 0), /ESRCH/, 'the registry process is gone');
    await assert.rejects(fetch(`http://${registry}/v2/`), 'nothing answers on the registry port');
    assert.equal(existsSync(join(dir, 'demo.pid.json')), false);
  });
});
