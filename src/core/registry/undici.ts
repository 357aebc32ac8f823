// The parts of undici the client uses, loaded from their own modules. The package's index also
// loads fetch, WebSocket, EventSource, caches, mocks and more, about half of its code, which every
// CLI run would parse and initialise for nothing (≈25 ms of a process's start here). What the
// index does for these parts is done here too: it gives Dispatcher its request API. If a new
// undici moves these files the build fails, it does not misbehave.

import api from 'undici/lib/api/index.js';
import buildConnector from 'undici/lib/core/connect.js';
import Agent from 'undici/lib/dispatcher/agent.js';
import Dispatcher from 'undici/lib/dispatcher/dispatcher.js';
import ProxyAgent from 'undici/lib/dispatcher/proxy-agent.js';

Object.assign(Dispatcher.prototype, api);

export { Agent, buildConnector, Dispatcher, ProxyAgent };

let fallback: Agent | undefined;

/** For callers that bring no dispatcher (undici's own global one lives in the index). */
export function defaultDispatcher(): Agent {
  fallback ??= new Agent();
  return fallback;
}
