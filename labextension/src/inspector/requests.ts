/**
 * Matrix requests as every inspector host makes them: answers cached (the last few, most
 * recently used kept), at most one request in flight and one waiting; a newer request
 * replaces the waiting one, whose caller only wanted the latest anyway.
 *
 *   const queue = new MatrixQueue(request => fetchMatrixSomehow(request), 6);
 *   const m = await queue.get({ kind: 'decoder', layer: 3, head: 5, agg: 'head', ... });
 */
import { IMatrix, IMatrixRequest, requestKey } from './types';

interface IWaiting {
  request: IMatrixRequest;
  resolve: (m: IMatrix) => void;
  reject: (e: Error) => void;
}

export class MatrixQueue {
  private readonly cache = new Map<string, IMatrix>();
  private inFlight: { key: string; promise: Promise<IMatrix> } | null = null;
  private waiting: IWaiting | null = null;

  /** `fetch` asks the host's source for one matrix; `size` answers are kept. */
  constructor(
    private readonly fetch: (request: IMatrixRequest) => Promise<IMatrix>,
    private readonly size = 6
  ) {}

  /** The matrix for `request`: from the cache, the request in flight, or a new one. */
  get(request: IMatrixRequest): Promise<IMatrix> {
    const key = requestKey(request);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key); // most recently used last
      this.cache.set(key, hit);
      return Promise.resolve(hit);
    }
    if (this.inFlight && this.inFlight.key === key) return this.inFlight.promise;
    if (!this.inFlight) return this.start(request);
    if (this.waiting) this.waiting.reject(new Error('superseded'));
    return new Promise((resolve, reject) => {
      this.waiting = { request, resolve, reject };
    });
  }

  /** Keys of the cached answers, least recently used first (for tests). */
  cachedKeys(): string[] {
    return [...this.cache.keys()];
  }

  private start(request: IMatrixRequest): Promise<IMatrix> {
    const key = requestKey(request);
    const promise = this.fetch(request).then(m => {
      this.cache.set(key, m);
      while (this.cache.size > this.size) this.cache.delete(this.cache.keys().next().value as string);
      return m;
    });
    this.inFlight = { key, promise };
    const next = () => {
      this.inFlight = null;
      const w = this.waiting;
      this.waiting = null;
      if (w) this.get(w.request).then(w.resolve, w.reject);
    };
    promise.then(next, next);
    return promise;
  }
}
