import { isStowageError } from '../../core/errors';
import { answeredPlainHttp } from '../../core/registry/errors';
import { CA_FILES_SETTING } from '../setting-names';

/** A button on an error message: its title and the command it runs. */
export interface FailureAction {
  title: string;
  command: string;
  args?: unknown[];
}

/** What the buttons of an error message may refer to. */
export interface FailureContext {
  /** The registry the failure concerns (Sign In… fills it in). */
  registry?: string;
  /** Whether the workspace is trusted (untrusted: trust is what blocks the network). */
  trusted: boolean;
  /** The image that failed, for actions about its repository. */
  reference?: string;
  /** How to do it again, offered as "Retry" when the cause may pass (network, rate limit, busy cache). */
  retry?: Omit<FailureAction, 'title'>;
}

/**
 * The buttons an error message offers, chosen by the cause: sign in where credentials are missing
 * or refused, the setting to change where TLS, a proxy or an insecure registry is the problem,
 * workspace trust where trust blocks the network, the repository's tags where the tag does not
 * exist, Retry where trying again may work, and always the log.
 */
export function failureActions(error: unknown, context: FailureContext): FailureAction[] {
  const { registry, trusted, reference, retry } = context;
  const out: FailureAction[] = [];
  const settings = (key: string) => ({
    title: 'Open Settings',
    command: 'workbench.action.openSettings',
    args: [key],
  });
  const code = isStowageError(error) ? error.code : undefined;
  switch (code) {
    case 'UNAUTHORIZED':
    case 'DENIED':
    case 'TOO_MANY_REQUESTS':
    case 'CREDENTIALS':
      // The ellipsis: it asks for the registry, user name and password.
      out.push({ title: 'Sign In…', command: 'stowage.signIn', args: registry ? [registry] : [] });
      break;
    case 'TLS':
      // A server that answered in plain HTTP needs listing as insecure, not another CA.
      out.push(
        settings(answeredPlainHttp((error as Error).cause) ? 'stowage.insecureRegistries' : CA_FILES_SETTING),
      );
      break;
    case 'PROXY':
      // http.proxy, http.noProxy and http.proxyAuthorization sit together there.
      out.push(settings('http.proxy'));
      break;
    case 'INSECURE_REFUSED':
      out.push(settings('stowage.insecureRegistries'));
      break;
    case 'OFFLINE':
      out.push(
        trusted
          ? settings('stowage.offline')
          : { title: 'Manage Workspace Trust', command: 'workbench.trust.manage' },
      );
      break;
    case 'NOT_FOUND':
      // Most often a mistyped or retired tag: show the ones that exist.
      if (reference) out.push({ title: 'Browse Tags…', command: 'stowage.browseTags', args: [reference] });
      break;
    case 'NO_MATCHING_PLATFORM':
      out.push(settings('stowage.platforms'));
      break;
  }
  if (retry && mayPass(error)) out.push({ title: 'Retry', ...retry });
  out.push({ title: 'Show Log', command: 'stowage.showLog' });
  return out;
}

/**
 * Whether the same request may succeed a little later: the network or the transfer failed, the
 * registry rate-limited or failed on its side (5xx), another process held the cache's lock.
 */
export function mayPass(error: unknown): boolean {
  if (!isStowageError(error)) return false;
  switch (error.code) {
    case 'NETWORK':
    case 'STALLED':
    case 'TOO_MANY_REQUESTS':
    case 'LOCK_TIMEOUT':
      return true;
    case 'REGISTRY_ERROR':
      return ((error as { status?: number }).status ?? 0) >= 500;
    default:
      return false;
  }
}

/** The message text of an error: the StowageError's message and hint, else the error's message. */
export function errorText(error: unknown): string {
  return notificationText(
    isStowageError(error) ? error.detail : error instanceof Error ? error.message : String(error),
  );
}

/**
 * Text for a notification, as text: VS Code turns `[label](command:…)` (or an http or file link)
 * in a message into a link that runs the command when clicked, and what a registry, an archive or
 * a Dockerfile wrote (an error body, a name) may spell one.
 */
export function notificationText(text: string): string {
  return text.replace(/\]\(/g, '] (');
}

/** Cancelled by the user (or by shutting down), not a failure to report. */
export function isCancellation(error: unknown): boolean {
  return isStowageError(error, 'ABORTED');
}
