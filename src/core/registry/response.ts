// Reading HTTP responses, the same way for the registry client, the token service and push.

type Headers = Record<string, string | string[] | undefined>;

/** A header's value (the first, when it came more than once). */
export function headerValue(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * A whole body of at most `cap` bytes: one that says (Content-Length) or turns out to be larger is
 * dropped with `tooLarge()`. Chunks are copied as they come (the direct reader reuses its buffer).
 */
export async function readCapped(
  res: { headers: Headers; body: AsyncIterable<Uint8Array> & { destroy(): unknown } },
  cap: number,
  tooLarge: () => Error,
): Promise<Buffer> {
  const over = () => {
    res.body.destroy();
    return tooLarge();
  };
  if (Number(headerValue(res.headers, 'content-length')) > cap) throw over();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body) {
    total += chunk.length;
    if (total > cap) throw over();
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}
