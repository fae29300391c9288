import { describe, expect, it } from 'vitest';

import { matrixQuery, snapshotPath } from '../src/api';

describe('snapshot endpoints', () => {
  it('escapes run ids and names into the path', () => {
    expect(snapshotPath('20261123-101010-aaaaaa', 'a b/..')).toBe(
      'runs/20261123-101010-aaaaaa/attention/a%20b%2F..'
    );
  });

  it('asks for a head by number and an aggregate by name', () => {
    const base = { kind: 'decoder', layer: 3, head: 5, hide_first: false, merge_words: true };
    expect(matrixQuery({ ...base, agg: 'head' })).toBe(
      'matrix?kind=decoder&layer=3&head=5&hide_first=0&merge_words=1'
    );
    expect(matrixQuery({ ...base, agg: 'rollout', hide_first: true })).toBe(
      'matrix?kind=decoder&layer=3&head=rollout&hide_first=1&merge_words=1'
    );
  });
});
