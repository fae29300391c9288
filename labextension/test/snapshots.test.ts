import { describe, expect, it } from 'vitest';

import type { ISnapshotEntry } from '../src/api';
import {
  emptyStoreMessage,
  firstReadable,
  groupByRun,
  runLabel,
  runWarning,
  snapshotLabel
} from '../src/panels/snapshots';

const RUN_A = '20261123-101010-aaaaaa';
const RUN_B = '20261122-090909-bbbbbb';

function entry(run: string, name: string, extra: Partial<ISnapshotEntry> = {}): ISnapshotEntry {
  return { run_id: run, run_name: run === RUN_A ? 'alpha' : run, run_status: 'finished', name, error: null, ...extra };
}

const entries = [
  entry(RUN_A, 'broken', { error: 'has format_version 9; Upgrade llmlab to read it.' }),
  entry(RUN_A, 'tired', { kinds: { decoder: [12, 12] } }),
  entry(RUN_B, 'pair', { run_status: 'corrupt', kinds: { encoder: [5, 5], cross: [4, 5] } })
];

describe('snapshot list', () => {
  it('groups entries by run in the server order', () => {
    const runs = groupByRun(entries);
    expect(runs.map(r => [r.runId, r.entries.map(e => e.name)])).toEqual([
      [RUN_A, ['broken', 'tired']],
      [RUN_B, ['pair']]
    ]);
    expect(firstReadable(runs[0])?.name).toBe('tired');
    expect(firstReadable(undefined)).toBeNull();
  });

  it('labels runs and snapshots', () => {
    const [a, b] = groupByRun(entries);
    expect(runLabel(a)).toBe(`alpha (${RUN_A})`);
    expect(runLabel(b)).toBe(`${RUN_B} — unreadable run`);
    expect(snapshotLabel(entries[0])).toBe('broken — cannot open');
    expect(snapshotLabel(entries[1])).toBe('tired (decoder 12 tokens)');
    expect(snapshotLabel(entries[2])).toBe('pair (encoder 5, cross 4×5 tokens)');
  });

  it('warns about runs whose manifest cannot be read', () => {
    const [a, b] = groupByRun(entries);
    expect(runWarning(a)).toBe('');
    expect(runWarning(b)).toMatch(/no readable manifest \(half written or damaged\)/);
  });

  it('says why there is nothing to show, and how to save a snapshot', () => {
    expect(emptyStoreMessage({ store: '/s', exists: true, snapshots: entries })).toBe('');
    expect(emptyStoreMessage({ store: '/s', exists: false, snapshots: [] })).toMatch(
      /^The run store \/s does not exist yet\. .*cap\.save\(run, "name"\)/
    );
    expect(emptyStoreMessage({ store: '/s', exists: false, snapshots: [] }, true)).toMatch(
      /^The run store \/s is gone: it was deleted or moved while this panel showed it\./
    );
    expect(emptyStoreMessage({ store: '/s', exists: true, snapshots: [] })).toMatch(
      /^No attention snapshots in the run store \/s\./
    );
  });
});
