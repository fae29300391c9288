import { describe, expect, it } from 'vitest';

import { MatrixQueue } from '../src/inspector/requests';
import { IMatrix, IMatrixRequest, requestKey } from '../src/inspector/types';

function request(head: number, agg: IMatrixRequest['agg'] = 'head'): IMatrixRequest {
  return { kind: 'decoder', layer: 1, head, agg, hide_first: false, merge_words: false };
}

/** A source whose answers the test releases by hand. */
function source() {
  const asked: string[] = [];
  const pending = new Map<string, (m: IMatrix) => void>();
  const fetch = (r: IMatrixRequest) =>
    new Promise<IMatrix>(resolve => {
      asked.push(requestKey(r));
      pending.set(requestKey(r), resolve);
    });
  const answer = (r: IMatrixRequest) =>
    pending.get(requestKey(r))?.({ request: r, rows: 1, cols: 1, values: new Float32Array([r.head]) });
  return { asked, fetch, answer };
}

const tick = () => new Promise(resolve => setTimeout(resolve, 0));

describe('MatrixQueue', () => {
  it('asks once for a matrix requested twice while in flight, then serves it from the cache', async () => {
    const s = source();
    const queue = new MatrixQueue(s.fetch, 2);
    const a = queue.get(request(0));
    const b = queue.get(request(0));
    s.answer(request(0));
    expect((await a).values[0]).toBe(0);
    expect(await b).toBe(await a);
    expect(await queue.get(request(0))).toBe(await a);
    expect(s.asked).toEqual(['decoder|1|0|0|0']);
  });

  it('keeps one request waiting; a newer one replaces it', async () => {
    const s = source();
    const queue = new MatrixQueue(s.fetch, 4);
    const first = queue.get(request(0));
    const second = queue.get(request(1));
    const third = queue.get(request(2));
    await expect(second).rejects.toThrow('superseded');
    s.answer(request(0));
    await first;
    await tick();
    expect(s.asked).toEqual(['decoder|1|0|0|0', 'decoder|1|2|0|0']);
    s.answer(request(2));
    expect((await third).values[0]).toBe(2);
  });

  it('forgets the least recently used answer beyond its size', async () => {
    const s = source();
    const queue = new MatrixQueue(s.fetch, 2);
    for (const head of [0, 1]) {
      const m = queue.get(request(head));
      s.answer(request(head));
      await m;
      await tick();
    }
    await queue.get(request(0)); // 0 is now the most recent
    const m = queue.get(request(3, 'mean'));
    s.answer(request(3, 'mean'));
    await m;
    expect(queue.cachedKeys()).toEqual(['decoder|1|0|0|0', 'decoder|1|mean|0|0']);
  });
});
