/**
 * node:tls, loaded at the first TLS connection: a plain-HTTP pull, a warm pull or `stowage ls`
 * does without its modules (part of every CLI run's start otherwise).
 */
export const tls = (): typeof import('node:tls') => require('node:tls');
