import { describe, expect, it } from 'vitest';

import type { IRunRow } from '../src/api';
import { compareValues, sharedNames, sortValue } from '../src/panels/runTable';

function run(fields: Partial<IRunRow>): IRunRow {
  return {
    id: '20261205-152941-8d1f2a',
    name: 'run',
    kind: 'train',
    status: 'finished',
    created_at: null,
    updated_at: null,
    ended_at: null,
    family: 'gpt',
    params: null,
    steps: null,
    train_loss: null,
    val_loss: null,
    tokens_per_s: null,
    mfu: null,
    error: null,
    tags: [],
    ...fields
  };
}

describe('run table sorting', () => {
  it('orders numbers by value, not as text', () => {
    const values = [60, 804096, 9].sort(compareValues);
    expect(values).toEqual([9, 60, 804096]);
  });

  it('orders names as a person does: any case, numbers inside by value', () => {
    const names = ['run-10', 'Run-2', 'run-1'].sort(compareValues);
    expect(names).toEqual(['run-1', 'Run-2', 'run-10']);
  });

  it('orders times by the moment, whatever their offset', () => {
    const early = sortValue(run({ created_at: '2026-12-05T16:00:00+02:00' }), 'created_at');
    const late = sortValue(run({ created_at: '2026-12-05T15:00:00+00:00' }), 'created_at');
    expect(early).toBeLessThan(late as number);
    expect(sortValue(run({ created_at: 'garbage' }), 'created_at')).toBeNull();
    expect(sortValue(run({ steps: null }), 'steps')).toBeNull();
  });
});

describe('sharedNames', () => {
  it('finds the names more than one run has', () => {
    const rows = ['03-attention', 'solo', '03-attention'].map(name => run({ name }));
    expect([...sharedNames(rows)]).toEqual(['03-attention']);
  });
});
