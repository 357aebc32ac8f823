/**
 * A digest ending a reference (`…@sha256:…`): what precedes its `@` is a name, not credentials. A
 * known algorithm with any value (a digest typed short is still one), or any algorithm with a
 * value a port number could not be (`user:pass@host:5000` ends in `@host:5000`).
 */
const DIGEST_TAIL = /@(?:sha256|sha384|sha512|blake3):[^@]*$|@[a-z0-9]+(?:[+._-][a-z0-9]+)*:[\w=-]{32,}$/i;

/**
 * An input as it may be quoted back (an error, a log, JSON) with the user information of a URL or
 * reference hidden: `https://user:pass@host/x` → `https://***@host/x`, `user:pass@host/x` →
 * `***@host/x`. Everything up to the last `@` goes (a password may hold `@` or `/`), except a
 * trailing digest's. `alpine@latest` (a tag typed after `@`) is left as it is.
 */
export function redactUserinfo(value: string): string {
  const tail = DIGEST_TAIL.exec(value)?.[0] ?? '';
  const rest = value.slice(0, value.length - tail.length);
  const at = rest.lastIndexOf('@');
  if (at < 0) return value;
  const scheme = rest.indexOf('://');
  if (scheme >= 0 && scheme < at) return `${rest.slice(0, scheme + 3)}***${rest.slice(at)}${tail}`;
  const after = rest.slice(at + 1);
  if (!rest.slice(0, at).includes(':') && !/[./:]|^localhost$/.test(after)) return value;
  return `***${rest.slice(at)}${tail}`;
}
