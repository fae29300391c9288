import { PageConfig } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { describe, expect, it } from 'vitest';

import {
  APIError,
  configPresets,
  configSchema,
  endpoint,
  estimateConfig,
  fieldAtFault,
  fieldErrors,
  listRuns,
  listSnapshots,
  matrixQuery,
  plotlyBundle,
  requestAPI,
  ROUTES,
  RouteName,
  runMetrics,
  saveConfig,
  savedConfigs,
  snapshotInfo,
  snapshotLens,
  snapshotMatrix,
  snapshotThumbs
} from '../src/api';

const RUN = '20261123-101010-aaaaaa';

/** Settings whose fetch records each request and answers `reply(url)`. */
function recording(reply: (url: string) => Response = () => Response.json({ columns: {} })) {
  const seen: { method: string; path: string; body: string | null }[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const url = new URL(request.url);
    seen.push({
      method: request.method,
      path: url.pathname.replace('/lab/llmlab/api/', '') + url.search,
      body: request.method === 'GET' ? null : await request.text()
    });
    return reply(request.url);
  };
  const settings = ServerConnection.makeSettings({
    baseUrl: 'http://localhost/lab/',
    fetch,
    Request,
    Headers
  });
  return { seen, settings };
}

describe('endpoint', () => {
  it('fills and escapes path parts, then adds the given query arguments', () => {
    expect(endpoint('snapshot', { parts: { id: RUN, name: 'a b/..' } })).toEqual({
      method: 'GET',
      path: `runs/${RUN}/attention/a%20b%2F..`
    });
    expect(endpoint('runs', { query: { status: 'running', kind: '', q: undefined, limit: 5 } }))
      .toEqual({ method: 'GET', path: 'runs?status=running&limit=5' });
    expect(endpoint('saveConfig', { parts: { name: 'tiny' } }).method).toBe('PUT');
  });

  it('refuses a route whose path part is missing', () => {
    expect(() => endpoint('metrics')).toThrow('The metrics route needs its id');
  });

  it('asks for a matrix head by number and an aggregate by name', () => {
    const base = { kind: 'decoder', layer: 3, head: 5, hide_first: false, merge_words: true };
    const parts = { id: RUN, name: 's' };
    expect(endpoint('matrix', { parts, query: matrixQuery({ ...base, agg: 'head' }) }).path)
      .toBe(`runs/${RUN}/attention/s/matrix?kind=decoder&layer=3&head=5&hide_first=0&merge_words=1`);
    const rollout = matrixQuery({ ...base, agg: 'rollout', hide_first: true });
    expect(endpoint('matrix', { parts, query: rollout }).path).toBe(
      `runs/${RUN}/attention/s/matrix?kind=decoder&layer=3&head=rollout&hide_first=1&merge_words=1`
    );
  });
});

describe('every call goes to its declared route', () => {
  it('sends the method and path that ROUTES names', async () => {
    const calls: [RouteName, () => Promise<unknown>][] = [];
    calls.push(['runs', () => listRuns({ status: 'finished' })]);
    calls.push(['metrics', () => runMetrics(RUN, ['train/loss'])]);
    calls.push(['presets', () => configPresets()]);
    calls.push(['schema', () => configSchema()]);
    calls.push(['estimate', () => estimateConfig({ config: {}, batch_size: 2 })]);
    calls.push(['savedConfigs', () => savedConfigs()]);
    calls.push(['saveConfig', () => saveConfig('tiny', { n_layer: 2 })]);
    calls.push(['snapshots', () => listSnapshots()]);
    calls.push(['snapshot', () => snapshotInfo(RUN, 'snap')]);
    calls.push(['thumbs', () => snapshotThumbs(RUN, 'snap')]);
    calls.push(['lens', () => snapshotLens(RUN, 'snap', 4)]);
    calls.push(['plotlyBundle', () => plotlyBundle()]);
    calls.push(['matrix', () => snapshotMatrix(RUN, 'snap', {
      kind: 'decoder', layer: 0, head: 1, agg: 'head', hide_first: false, merge_words: false
    })]);
    expect(calls.map(([route]) => route).sort()).toEqual(Object.keys(ROUTES).sort());
    // The call functions use the default settings: point them at a recording fetch.
    PageConfig.setOption('baseUrl', 'http://localhost/lab/');
    const original = globalThis.fetch;
    const recorded = recording(url =>
      url.includes('/matrix')
        ? new Response(new Uint8Array(4), { headers: { 'X-Llmlab-Shape': '1,2' } })
        : Response.json({ columns: {} })
    );
    globalThis.fetch = recorded.settings.fetch as typeof fetch;
    try {
      for (const [route, call] of calls) {
        await call();
        const sent = recorded.seen[recorded.seen.length - 1];
        const [method, pattern] = ROUTES[route].split(' ');
        const path = new RegExp('^' + pattern.replace(/\{\w+\}/g, '[^/?]+') + '(\\?|$)');
        expect(sent.method, route).toBe(method);
        expect(sent.path, route).toMatch(path);
      }
    } finally {
      globalThis.fetch = original;
    }
    const save = recorded.seen.find(r => r.method === 'PUT');
    expect(JSON.parse(save!.body!)).toEqual({ n_layer: 2 });
  });
});

describe('a refused request', () => {
  const refusal = {
    message: 'ModelConfig.d_model=100 is not divisible by n_head=12; pick a width...',
    status: 400,
    errors: [{ field: 'd_model', message: 'ModelConfig.d_model=100 is not...', related: ['n_head'] }]
  };

  async function refused(body: unknown, status = 400): Promise<unknown> {
    const { settings } = recording(() => Response.json(body, { status }));
    try {
      await requestAPI('estimate', { body: {} }, settings);
    } catch (error) {
      return error;
    }
    throw new Error('the request was not refused');
  }

  it('carries the message and the field errors of the reply', async () => {
    const error = await refused(refusal);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toBeInstanceOf(ServerConnection.ResponseError);
    expect((error as APIError).message).toBe(refusal.message);
    expect((error as APIError).errors).toEqual(refusal.errors);
  });

  it('puts the message by the field edited last when the problem is about it', async () => {
    const error = await refused(refusal);
    const form = ['d_model', 'n_head', 'n_layer'];
    expect(fieldAtFault(error, form, 'n_head')).toEqual({
      field: 'n_head', message: refusal.errors[0].message
    });
    expect(fieldAtFault(error, form, 'n_layer')?.field).toBe('d_model');
    expect(fieldAtFault(error, ['n_layer'], 'n_layer')).toBeNull();
  });

  it('names no field for an estimate input, another status, or a reply without errors', async () => {
    const seqLen = await refused({
      message: 'seq_len=99 exceeds...',
      errors: [{ field: 'seq_len', message: 'seq_len=99 exceeds...', related: ['context_length'] }]
    });
    expect(fieldAtFault(seqLen, ['context_length', 'd_model'], 'd_model')).toBeNull();
    expect(fieldAtFault(seqLen, ['context_length', 'd_model'], 'context_length')?.field)
      .toBe('context_length');
    expect(fieldAtFault(await refused(refusal, 422), ['d_model'], 'd_model')).toBeNull();
    const plain = await refused({ message: 'send {"config": ...}' });
    expect((plain as APIError).errors).toEqual([]);
    expect(fieldAtFault(new Error('x'), ['d_model'], 'd_model')).toBeNull();
  });

  it('keeps only well-formed field errors', () => {
    expect(fieldErrors('nope')).toEqual([]);
    expect(fieldErrors([{ field: 'a', message: 'm' }, { field: 3 }, null, 'x'])).toEqual([
      { field: 'a', message: 'm', related: [] }
    ]);
  });
});
