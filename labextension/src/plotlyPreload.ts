/**
 * Evaluates plotly's widget bundle while the page is idle, once a notebook is
 * open, so that the first llmlab chart on the page draws without waiting about
 * a second for plotly.js to load.
 *
 *   preloadPlotlyWhenIdle(notebooks);
 *
 * llmlab's charts (`llmlab/widgets/plotly_widget.py`) load the bundle from the
 * kernel unless the page already holds it under `bundleKey(version)`; this
 * module puts the Jupyter server's plotly there. A kernel with another plotly
 * version looks under another key and loads its own, so nothing can mismatch.
 */
import type { INotebookTracker } from '@jupyterlab/notebook';

import { plotlyBundle } from './api';

/** The key prefix `plotly_widget.BUNDLE_KEY` (the Python loader) uses too. */
export const BUNDLE_KEY = 'llmlab.plotly-widget-bundle@';

/** Where a page keeps the promise of plotly `version`'s evaluated bundle. */
export function bundleKey(version: string): symbol {
  return Symbol.for(`${BUNDLE_KEY}${version}`);
}

type Store = Record<symbol, Promise<unknown> | undefined>;

/**
 * Fetch and evaluate the server's plotly widget bundle, unless this page has
 * it already; resolves with its version, or null when the server has none.
 */
export async function preloadPlotly(): Promise<string | null> {
  let version: string, body: ArrayBuffer;
  try {
    ({ version, body } = await plotlyBundle());
  } catch {
    return null; // no plotly beside the server: each chart loads it from its kernel
  }
  const store = globalThis as unknown as Store;
  const key = bundleKey(version);
  if (version && !store[key]) {
    const url = URL.createObjectURL(new Blob([body], { type: 'text/javascript' }));
    store[key] = import(/* webpackIgnore: true */ url)
      .catch(error => {
        delete store[key];
        throw error;
      })
      .finally(() => URL.revokeObjectURL(url));
    await store[key];
  }
  return version || null;
}

/** Run `preloadPlotly` once, in idle time after the first notebook opens. */
export function preloadPlotlyWhenIdle(notebooks: INotebookTracker | null): void {
  if (!notebooks) {
    return;
  }
  let started = false;
  const start = (): void => {
    if (started) {
      return;
    }
    started = true;
    notebooks.widgetAdded.disconnect(start);
    const idle = (globalThis as { requestIdleCallback?: typeof requestIdleCallback })
      .requestIdleCallback;
    const run = (): void => void preloadPlotly().catch(() => undefined);
    if (idle) {
      idle(run, { timeout: 3000 });
    } else {
      setTimeout(run, 500);
    }
  };
  if (notebooks.size > 0) {
    start();
  } else {
    notebooks.widgetAdded.connect(start);
  }
}
