// Text from a Dockerfile, a registry or the cache, put into Markdown (hovers, tooltips) as text.
// No vscode import: unit-tested.

/**
 * Markdown `code` that holds any text (line breaks as spaces): its fence is one backtick longer
 * than the longest run of backticks in it, so that the text (an image's labels say what they
 * like) cannot close the span and go on as Markdown: a link to a command the hover allows, an
 * image fetched from the web.
 */
export function code(value: string): string {
  // A blank line would end the paragraph, and the span with it.
  const text = value.replace(/[\r\n]+/g, ' ');
  const longest = (text.match(/`+/g) ?? []).reduce((n, run) => Math.max(n, run.length), 0);
  const ticks = '`'.repeat(longest + 1);
  // A backtick at either end would join the fence: a space inside each end (CommonMark drops it).
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${ticks}${pad}${text}${pad}${ticks}`;
}

/** Text with the characters Markdown acts on escaped (links, images, emphasis, HTML, theme icons). */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]|<>$]/g, '\\$&');
}
