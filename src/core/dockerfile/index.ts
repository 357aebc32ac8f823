export { type Directive, escapeDirective, syntaxDirective } from './directives';
export { parseDockerfile } from './parse';
export {
  contains,
  errorReason,
  flags,
  type ImageInstruction,
  type ImageUse,
  missingBuildArgs,
  mountFromOption,
  type Position,
  type Range,
  type ResolveOptions,
  resolveDockerfile,
  stageName,
  useAt,
} from './resolve';
export { type Expansion, expandWord, unquoteFlagValue } from './shell';
