/**
 * What the Attention inspector panel says about the snapshots of a run store: runs grouped
 * with their snapshots, option labels, and the messages for an empty or missing store.
 *
 *   const runs = groupByRun(list.snapshots);   // newest run first, as the server sends them
 *   emptyStoreMessage(list);                   // '' when there is something to open
 */
import type { ISnapshotEntry, ISnapshotList } from '../api';
import { missingStoreMessage } from './storeLocation';

/** One run and its snapshot folders. */
export interface IRunSnapshots {
  runId: string;
  runName: string;
  runStatus: string;
  entries: ISnapshotEntry[];
}

/** What to type in a notebook to put a snapshot into the store. */
export const SAVE_HINT =
  'Save one from a notebook: cap = llmlab.inspect(model, tok, text); cap.save(run, "name").';

/** Entries grouped by run, keeping the server's order (newest run first). */
export function groupByRun(entries: ISnapshotEntry[]): IRunSnapshots[] {
  const runs = new Map<string, IRunSnapshots>();
  for (const entry of entries) {
    let run = runs.get(entry.run_id);
    if (!run) {
      run = {
        runId: entry.run_id,
        runName: entry.run_name,
        runStatus: entry.run_status,
        entries: []
      };
      runs.set(entry.run_id, run);
    }
    run.entries.push(entry);
  }
  return [...runs.values()];
}

/** A run's option label: its name, with the id when the name is not the id. */
export function runLabel(run: IRunSnapshots): string {
  const name = run.runName === run.runId ? run.runId : `${run.runName} (${run.runId})`;
  return run.runStatus === 'corrupt' ? `${name} — unreadable run` : name;
}

/** A snapshot's option label: name, token counts per kind, or why it cannot be opened. */
export function snapshotLabel(entry: ISnapshotEntry): string {
  if (entry.error) {
    return `${entry.name} — cannot open`;
  }
  const sizes = Object.entries(entry.kinds || {}).map(([kind, [q, k]]) =>
    q === k ? `${kind} ${q}` : `${kind} ${q}×${k}`
  );
  return sizes.length ? `${entry.name} (${sizes.join(', ')} tokens)` : entry.name;
}

/** The message for a store with nothing to show, or '' when it has snapshots. */
export function emptyStoreMessage(list: ISnapshotList, hadSnapshots = false): string {
  if (list.snapshots.length) {
    return '';
  }
  if (!list.exists) {
    return missingStoreMessage(list.store, hadSnapshots, SAVE_HINT);
  }
  return `No attention snapshots in the run store ${list.store}. ${SAVE_HINT}`;
}

/** Why a run's snapshots may be odd: '' for a run whose manifest reads fine. */
export function runWarning(run: IRunSnapshots): string {
  return run.runStatus === 'corrupt'
    ? `Run ${run.runId} has no readable manifest (half written or damaged); ` +
        'its snapshots may still open.'
    : '';
}

/** The first snapshot that can be opened, or null. */
export function firstReadable(run: IRunSnapshots | undefined): ISnapshotEntry | null {
  return run?.entries.find(e => !e.error) || null;
}
