// Entry point of the tests that run inside a real extension host (the test-electron contract:
// export run()). Suites register with mocha's BDD globals when imported below.
import { format } from 'node:util';
import Mocha from 'mocha';

export function run(): Promise<void> {
  // Reporters log printf-style (console.log('%d passing', n)); a VS Code host that forwards console
  // output as text (code-server's smoke-test driver) would show the raw format, so format here.
  Mocha.reporters.Base.consoleLog = (...args: unknown[]) => console.log(format(...args));
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: 'spec' });
  mocha.suite.emit('pre-require', globalThis, 'host', mocha);
  // Imported after the globals exist; esbuild bundles them into dist-test/suite.js.
  require('./activation.suite');
  require('./editor.suite');
  require('./workbench.suite');
  return new Promise((resolve, reject) => {
    mocha.run((failures) => (failures ? reject(new Error(`${failures} host test(s) failed`)) : resolve()));
  });
}
