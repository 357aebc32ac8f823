export { type Directive, escapeDirective, syntaxDirective } from './directives';
export { parseDockerfile } from './parse';
export {
  errorReason,
  type ImageInstruction,
  type ImageUse,
  missingBuildArgs,
  type Position,
  type Range,
  type ResolveOptions,
  resolveDockerfile,
  stageName,
  useAt,
} from './resolve';
export { type Expansion, expandWord, unquoteFlagValue } from './shell';
