import { isStowageError } from '../../core/errors';

/** A button on an error message: its title and the command it runs. */
export interface FailureAction {
  title: string;
  command: string;
  args?: unknown[];
}

/**
 * The buttons an error message about `registry` offers, chosen by the cause: sign in where
 * credentials are missing or refused, the settings where TLS, a proxy or an insecure registry is
 * the problem, workspace trust where trust blocks the network, the repository's tags where the tag
 * does not exist, and always the log.
 */
export function failureActions(
  error: unknown,
  registry: string | undefined,
  trusted: boolean,
  /** The image that failed, for actions about its repository. */
  reference?: string,
): FailureAction[] {
  const out: FailureAction[] = [];
  const code = isStowageError(error) ? error.code : undefined;
  switch (code) {
    case 'UNAUTHORIZED':
    case 'DENIED':
    case 'TOO_MANY_REQUESTS':
    case 'CREDENTIALS':
      out.push({ title: 'Sign In', command: 'stowage.signIn', args: registry ? [registry] : [] });
      break;
    case 'TLS':
      out.push({
        title: 'Open Settings',
        command: 'workbench.action.openSettings',
        args: ['stowage.caCertificates'],
      });
      break;
    case 'PROXY':
      // http.proxy, http.noProxy and http.proxyAuthorization sit together there.
      out.push({ title: 'Open Settings', command: 'workbench.action.openSettings', args: ['http.proxy'] });
      break;
    case 'INSECURE_REFUSED':
      out.push({
        title: 'Open Settings',
        command: 'workbench.action.openSettings',
        args: ['stowage.insecureRegistries'],
      });
      break;
    case 'OFFLINE':
      if (!trusted) out.push({ title: 'Manage Workspace Trust', command: 'workbench.trust.manage' });
      else
        out.push({
          title: 'Open Settings',
          command: 'workbench.action.openSettings',
          args: ['stowage.offline'],
        });
      break;
    case 'NOT_FOUND':
      // Most often a mistyped or retired tag: show the ones that exist.
      if (reference) out.push({ title: 'Browse Tags…', command: 'stowage.browseTags', args: [reference] });
      break;
    case 'NO_MATCHING_PLATFORM':
      out.push({
        title: 'Open Settings',
        command: 'workbench.action.openSettings',
        args: ['stowage.platforms'],
      });
      break;
  }
  out.push({ title: 'Show Log', command: 'stowage.showLog' });
  return out;
}

/** The message text of an error: the StowageError's message and hint, else the error's message. */
export function errorText(error: unknown): string {
  if (isStowageError(error)) return error.detail;
  return error instanceof Error ? error.message : String(error);
}

/** Cancelled by the user (or by shutting down), not a failure to report. */
export function isCancellation(error: unknown): boolean {
  return isStowageError(error, 'ABORTED');
}
