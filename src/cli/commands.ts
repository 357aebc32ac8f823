import type { Command } from './command';

/** A command's one-line summary, and its module, loaded only when the command runs (fast start). */
export interface CommandEntry {
  readonly summary: string;
  load(): Promise<Command>;
}

/** Every CLI command by name. Add a command by adding its entry here. */
export const commands: Record<string, CommandEntry> = {
  pull: {
    summary: 'pull an image into the cache (only the blobs it is missing)',
    load: async () => (await import('./pull')).pullCommand,
  },
  ls: {
    summary: 'list cached images',
    load: async () => (await import('./cache')).lsCommand,
  },
  inspect: {
    summary: 'show what the cache holds for an image (no network)',
    load: async () => (await import('./cache')).inspectCommand,
  },
  rm: {
    summary: 'remove an image reference from the cache (blobs go at the next gc)',
    load: async () => (await import('./cache')).rmCommand,
  },
  gc: {
    summary: 'delete blobs no cached reference needs, and stale partial downloads',
    load: async () => (await import('./cache')).gcCommand,
  },
  tags: {
    summary: "list a repository's tags (page by page)",
    load: async () => (await import('./tags')).tagsCommand,
  },
  refs: {
    summary: 'list the images a Dockerfile pulls (FROM, COPY --from, RUN --mount from, # syntax)',
    load: async () => (await import('./refs')).refsCommand,
  },
  export: {
    summary: 'write cached images to an OCI layout tarball (for air-gapped machines; no network)',
    load: async () => (await import('./export')).exportCommand,
  },
  import: {
    summary: 'verify an OCI layout tarball and add its images to the cache (no network)',
    load: async () => (await import('./import')).importCommand,
  },
  login: {
    summary: 'sign in to a registry (kept where docker keeps it: its credential helper or config.json)',
    load: async () => (await import('./login')).loginCommand,
  },
  logout: {
    summary: "remove a registry's stored credentials",
    load: async () => (await import('./login')).logoutCommand,
  },
  push: {
    summary: 'copy a cached image to a registry (seed a team registry from this cache)',
    load: async () => (await import('./push')).pushCommand,
  },
};
