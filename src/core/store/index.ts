export * from './image';
export type { Ingest, IngestMeta } from './ingest';
export * from './manifest';
export * from './media-types';
export * from './names';
export * from './status';
export type { GcOptions, GcResult, IngestOptions, Lease, StoreOptions } from './store';
export { Store } from './store';
