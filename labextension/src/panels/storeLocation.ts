/**
 * Where the run store lies as JupyterLab sees it. The server reports the store as
 * an absolute path; the file browser and notebooks work in paths relative to the
 * server root, and a kernel in its notebook's folder.
 *
 *   const rel = await storeInRoot('/srv/lab/llmlab-runs', contents); // 'llmlab-runs' for root /srv/lab
 *   storeForKernel('llmlab-runs', '/srv/lab/llmlab-runs', 'a/nb.ipynb'); // '../llmlab-runs'
 */
import { PageConfig } from '@jupyterlab/coreutils';
import type { Contents } from '@jupyterlab/services';

/** The folder name the library uses when no store is given. */
const DEFAULT_STORE = 'llmlab-runs';

/**
 * The store's path relative to the server root ('' for the root itself), or null
 * when it lies outside the root (then only its absolute path can be shown).
 */
export async function storeInRoot(
  store: string,
  contents: Contents.IManager
): Promise<string | null> {
  const path = normalize(store);
  const root = normalize(PageConfig.getOption('serverRoot'));
  if (!root.startsWith('~')) {
    return within(root, path);
  }
  // The server abbreviates its user's home to "~", which the browser cannot expand:
  // try each folder the store's path passes through as that home, and keep the
  // reading the contents API confirms.
  const tail = root.slice(1);
  for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) {
    const candidate = within(path.slice(0, i) + tail, path);
    if (candidate !== null && (await isDirectory(contents, candidate))) {
      return candidate;
    }
  }
  return null;
}

/**
 * The `store=` argument a kernel started beside `notebookPath` needs to open the
 * store: relative to the notebook's folder when the store is under the server root,
 * absolute otherwise, and undefined for the default `llmlab-runs` beside the notebook.
 */
export function storeForKernel(
  storeRelative: string | null,
  storeAbsolute: string,
  notebookPath: string
): string | undefined {
  if (storeRelative === null) {
    return storeAbsolute;
  }
  const from = notebookPath.split('/').slice(0, -1).filter(Boolean);
  const to = storeRelative.split('/').filter(Boolean);
  let common = 0;
  while (common < from.length && from[common] === to[common]) {
    common++;
  }
  const steps = [...from.slice(common).map(() => '..'), ...to.slice(common)];
  const relative = steps.join('/') || '.';
  return relative === DEFAULT_STORE ? undefined : relative;
}

/** Forward slashes, no "." or ".." segments, no trailing slash. */
function normalize(path: string): string {
  const absolute = path.startsWith('/') || path.startsWith('\\');
  const parts: string[] = [];
  for (const part of path.split(/[\\/]+/)) {
    if (part === '..') {
      parts.pop();
    } else if (part && part !== '.') {
      parts.push(part);
    }
  }
  return (absolute ? '/' : '') + parts.join('/');
}

/** `path` relative to `root`, or null when it is not inside it. */
function within(root: string, path: string): string | null {
  if (path === root) {
    return '';
  }
  const prefix = root.endsWith('/') ? root : `${root}/`;
  return path.startsWith(prefix) ? path.slice(prefix.length) : null;
}

async function isDirectory(
  contents: Contents.IManager,
  path: string
): Promise<boolean> {
  try {
    const model = await contents.get(path, { content: false });
    return model.type === 'directory';
  } catch {
    return false;
  }
}

/**
 * What a panel says when its run store folder is missing: never created yet, or gone while
 * the panel showed what was in it (`hadContent`: deleted, moved, or a disk unmounted).
 */
export function missingStoreMessage(store: string, hadContent: boolean, hint: string): string {
  return hadContent
    ? `The run store ${store} is gone: it was deleted or moved while this panel showed it. ` +
        'Press Refresh once it is back, or start a run to create it again.'
    : `The run store ${store} does not exist yet. ${hint}`;
}
