/**
 * One way for every panel to talk to the llmlab server extension.
 *
 *   const page = await listRuns({ status: 'running' });
 *   const { estimate } = await estimateConfig({ config, batch_size: 8 });
 *
 * Requests go to `<base url>/llmlab/api/<path>` through JupyterLab's
 * `ServerConnection`, which adds the auth token and XSRF header. Every call
 * names its route in `ROUTES`; `tests/test_server_contract.py` holds that
 * table to the server's declared routes (`llmlab/server/handlers.py` ROUTES,
 * also served at `GET llmlab/api/routes`), whose reply and body names are the
 * types below.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { decodeFloat16 } from './inspector/data';
import type { ILensRows, IMatrix, IMatrixRequest, IMeta } from './inspector/types';

/** URL prefix of every llmlab REST endpoint, relative to the server's base URL. */
export const API_PREFIX = 'llmlab/api';

/**
 * Every route this client calls: method and path, `{part}` filled in (escaped)
 * by `endpoint`. One entry per line, as the contract test reads it.
 */
export const ROUTES = {
  runs: 'GET runs',
  metrics: 'GET runs/{id}/metrics',
  presets: 'GET configs/presets',
  schema: 'GET configs/schema',
  estimate: 'POST configs/estimate',
  savedConfigs: 'GET configs/saved',
  saveConfig: 'PUT configs/saved/{name}',
  snapshots: 'GET attention',
  snapshot: 'GET runs/{id}/attention/{name}',
  thumbs: 'GET runs/{id}/attention/{name}/thumbs',
  matrix: 'GET runs/{id}/attention/{name}/matrix',
  lens: 'GET runs/{id}/attention/{name}/lens',
  plotlyBundle: 'GET plotly/bundle'
} as const;

/** The name of a route in `ROUTES`. */
export type RouteName = keyof typeof ROUTES;

/** What a call fills in: its path parts, its query, its JSON body. */
export interface ICall {
  parts?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
  body?: unknown;
}

/** A ModelConfig as JSON (`ModelConfig.to_dict()`). */
export type Config = Record<string, unknown>;

/** Configs by name (`GET configs/presets`, `GET configs/saved`). */
export type ConfigsByName = Record<string, Config>;

/** Reply of `PUT configs/saved/<name>`: the name and the normalised config. */
export interface ISavedConfigReply {
  name: string;
  config: Config;
}

/**
 * One problem of a refused request (the `errors` of a 400 reply): the field at
 * fault, the message, and the other fields the problem is about.
 */
export interface IFieldError {
  field: string;
  message: string;
  related: string[];
}

/** A non-2xx reply: the server's message and, for a bad config, its field errors. */
export class APIError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly errors: IFieldError[] = []
  ) {
    super(response, message);
  }
}

/** Reply of `GET version`. */
export interface IVersionReply {
  version: string;
}

/** Statuses a run can have; "corrupt" marks an unreadable run. */
export type RunStatus =
  'running' | 'finished' | 'failed' | 'interrupted' | 'corrupt';

/** One row of the run listing (`RunStore.list()` without its `path`). */
export interface IRunRow {
  id: string;
  name: string;
  kind: string | null;
  status: RunStatus;
  created_at: string | null;
  updated_at: string | null;
  ended_at: string | null;
  family: string | null;
  params: number | null;
  steps: number | null;
  train_loss: number | null;
  val_loss: number | null;
  /** Training throughput at the last logging interval. */
  tokens_per_s: number | null;
  /** Model-FLOPs utilisation (0-1) at the last logging interval; null where no peak was known. */
  mfu: number | null;
  error: string | null;
  tags: string[];
}

/** Reply of `GET runs`: one page of the listing and the store folder on the server. */
export interface IRunsPage {
  total: number;
  offset: number;
  limit: number;
  store: string;
  /** False when the store folder is not there (not created yet, or deleted or moved). */
  exists: boolean;
  runs: IRunRow[];
}

/** Filters and page of `GET runs`; empty strings mean "no filter". */
export interface IRunsQuery {
  offset?: number;
  limit?: number;
  status?: string;
  kind?: string;
  q?: string;
}

/** Reply of `GET runs/<id>/metrics?format=json`: one array per column, `step` first. */
export interface IMetricsReply {
  id: string;
  columns: Record<string, (number | null)[]>;
}

/** The parts of the ModelConfig JSON Schema the form reads. */
export interface ISchemaProperty {
  type: string | string[];
  enum?: unknown[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
}

/** Reply of `GET configs/schema` (JSON Schema draft 2020-12). */
export interface IConfigSchema {
  title?: string;
  description?: string;
  properties: Record<string, ISchemaProperty>;
}

/** Body of `POST configs/estimate`; `seq_len` null means the config's context length. */
export interface IEstimateRequest {
  config: Config;
  batch_size?: number;
  seq_len?: number | null;
  dtype?: string;
  /** A form's check: an invalid config is answered (valid false), not refused with a 400. */
  check?: boolean;
}

/** Reply of `POST configs/estimate` with `check: true`. */
export type IEstimateCheck =
  | (IEstimateReply & { valid: true })
  | { valid: false; message: string; status: number; errors?: IFieldError[] };

/** `Estimate.to_dict()`: sizes in parameters, FLOPs and bytes. */
export interface IEstimate {
  params: number;
  matmul_params: number;
  flops_per_token_forward: number;
  flops_per_token_train: number;
  flops_per_step: number;
  batch_size: number;
  seq_len: number;
  dtype: string;
  weights_bytes: number;
  gradients_bytes: number;
  optimizer_bytes: number;
  activations_bytes: number;
  training_bytes: number;
  kv_cache_bytes_per_token: number;
}

/** Reply of `POST configs/estimate`: the normalised config, its estimate and as text. */
export interface IEstimateReply {
  config: Config;
  estimate: IEstimate;
  text: string;
}

/** Names a saved config may have (the server checks the same pattern). */
export const CONFIG_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * The method and path of a call to `route`: its `{part}`s filled in (escaped),
 * then the query arguments that are given (not undefined or '').
 *
 *   endpoint('metrics', { parts: { id }, query: { format: 'json' } })
 *   // { method: 'GET', path: 'runs/<id>/metrics?format=json' }
 */
export function endpoint(
  route: RouteName,
  call: ICall = {}
): { method: string; path: string } {
  const [method, pattern] = ROUTES[route].split(' ');
  const path = pattern.replace(/\{(\w+)\}/g, (_, part: string) => {
    const value = call.parts?.[part];
    if (value === undefined) {
      throw new Error(`The ${route} route needs its ${part} (${pattern}).`);
    }
    return encodeURIComponent(value);
  });
  const query = Object.entries(call.query ?? {})
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${key}=${encodeURIComponent(String(value))}`);
  return { method, path: query.length ? `${path}?${query.join('&')}` : path };
}

/**
 * Call an llmlab route and return its JSON body.
 *
 * Throws `ServerConnection.NetworkError` when the server cannot be reached and
 * `APIError` (a `ServerConnection.ResponseError` with the server's message and
 * field errors) on a non-2xx reply.
 */
export async function requestAPI<T>(
  route: RouteName,
  call: ICall = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const response = await fetchAPI(route, call, settings);
  return parseJSON(await response.text()) as T;
}

/** A binary reply: its bytes and headers. */
export interface IBinaryReply {
  body: ArrayBuffer;
  headers: Headers;
}

/** Call an llmlab route that answers with bytes; errors as `requestAPI`. */
export async function requestBinary(
  route: RouteName,
  call: ICall = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<IBinaryReply> {
  const response = await fetchAPI(route, call, settings);
  return { body: await response.arrayBuffer(), headers: response.headers };
}

async function fetchAPI(
  route: RouteName,
  call: ICall,
  settings: ServerConnection.ISettings
): Promise<Response> {
  const { method, path } = endpoint(route, call);
  const url = URLExt.join(settings.baseUrl, API_PREFIX, path);
  const init: RequestInit = { method };
  if (call.body !== undefined) {
    init.body = JSON.stringify(call.body);
  }
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok) {
    const text = await response.text();
    const body = parseJSON(text);
    const reply = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
    const message = 'message' in reply ? String(reply.message) : text;
    throw new APIError(response, message, fieldErrors(reply.errors));
  }
  return response;
}

/** The well-formed `{field, message, related}` entries of a reply's `errors`. */
export function fieldErrors(errors: unknown): IFieldError[] {
  if (!Array.isArray(errors)) {
    return [];
  }
  return errors
    .filter(
      (e): e is Record<string, unknown> =>
        !!e && typeof e === 'object' && typeof e.field === 'string' &&
        typeof e.message === 'string'
    )
    .map(e => ({
      field: e.field as string,
      message: e.message as string,
      related: Array.isArray(e.related) ? e.related.filter(r => typeof r === 'string') : []
    }));
}

/**
 * The form field a refused request is about, with the message to show there:
 * of the first field error naming a form field, the field edited last when the
 * problem is about it, otherwise the field at fault. Null when the error is not
 * a 400 or names no form field (an estimate input such as seq_len).
 */
export function fieldAtFault(
  error: unknown,
  fields: string[],
  lastEdited: string
): { field: string; message: string } | null {
  if (!(error instanceof APIError) || error.response.status !== 400) {
    return null;
  }
  return problemAt(error.errors, fields, lastEdited);
}

/** `fieldAtFault` for the errors of a refused config (a 400's, or a form check's). */
export function problemAt(
  errors: IFieldError[],
  fields: string[],
  lastEdited: string
): { field: string; message: string } | null {
  for (const problem of errors) {
    const about = [problem.field, ...problem.related];
    if (about.includes(lastEdited) && fields.includes(lastEdited)) {
      return { field: lastEdited, message: problem.message };
    }
    if (fields.includes(problem.field)) {
      return { field: problem.field, message: problem.message };
    }
  }
  return null;
}

/** The message of anything a request threw, for showing to the user. */
export function errorMessage(error: unknown): string {
  if (error instanceof ServerConnection.NetworkError) {
    return 'Cannot reach the Jupyter server; check that it is still running.';
  }
  return error instanceof Error ? error.message : String(error);
}

/** One page of runs, newest first. */
export function listRuns(query: IRunsQuery = {}): Promise<IRunsPage> {
  return requestAPI('runs', { query: { ...query } });
}

/** A run's metrics as columns (all of them, or only `names` and `step`). */
export async function runMetrics(
  id: string,
  names?: string[]
): Promise<IMetricsReply> {
  const reply = await requestAPI<IMetricsReply | string>('metrics', {
    parts: { id },
    query: { format: 'json', names: names?.join(',') }
  });
  if (typeof reply !== 'object' || !reply?.columns) {
    throw new Error(
      `The metrics of run ${id} did not arrive as JSON (a NaN or infinite ` +
        'value?); read them in a notebook with llmlab.runs.get(id).metrics.'
    );
  }
  return reply;
}

/** The built-in presets, by name. */
export function configPresets(): Promise<ConfigsByName> {
  return requestAPI('presets');
}

/** Configs saved in the run store's `configs/` folder, by name. */
export function savedConfigs(): Promise<ConfigsByName> {
  return requestAPI('savedConfigs');
}

/** The ModelConfig JSON Schema the config form is built from. */
export function configSchema(): Promise<IConfigSchema> {
  return requestAPI('schema');
}

/** Validate a config and estimate it; a 400 carries the message and its field errors. */
export function estimateConfig(
  request: IEstimateRequest
): Promise<IEstimateReply> {
  return requestAPI('estimate', { body: request });
}

/** Validate and estimate as a form does while the user types: an invalid config is an
 * answer (`valid: false` with the message and field errors), not a 400. */
export function checkConfig(request: IEstimateRequest): Promise<IEstimateCheck> {
  return requestAPI('estimate', { body: { ...request, check: true } });
}

/** Save `config` as `<store>/configs/<name>.json`; a 400 says what is invalid. */
export function saveConfig(
  name: string,
  config: Config
): Promise<ISavedConfigReply> {
  return requestAPI('saveConfig', { parts: { name }, body: config });
}

/** One attention snapshot folder of a run, readable (`error` null) or not. */
export interface ISnapshotEntry {
  run_id: string;
  run_name: string;
  run_status: RunStatus;
  name: string;
  error: string | null;
  created_at?: string | null;
  family?: string;
  format_version?: number;
  /** kind -> [query tokens, key tokens] */
  kinds?: Record<string, [number, number]>;
}

/** Reply of `GET attention` and `GET runs/<id>/attention`. */
export interface ISnapshotList {
  store: string;
  /** False when the run store folder does not exist (yet). */
  exists: boolean;
  snapshots: ISnapshotEntry[];
}

/** Reply of `GET runs/<id>/attention/<name>`: the snapshot and the inspector's meta. */
export interface ISnapshotInfo {
  run_id: string;
  name: string;
  format_version: number;
  created_at: string | null;
  family: string;
  heads: number[];
  n_heads: number;
  sides: Record<string, { text: string | null; tokens: string[] }>;
  kinds: Record<string, { layers: number[]; shape: [number, number] }>;
  inspector: IMeta;
}

/** Every attention snapshot of the run store, newest run first. */
export function listSnapshots(): Promise<ISnapshotList> {
  return requestAPI('snapshots');
}

/** A snapshot's metadata; a 422 says why it cannot be read (format version, half written). */
export function snapshotInfo(runId: string, name: string): Promise<ISnapshotInfo> {
  return requestAPI('snapshot', { parts: { id: runId, name } });
}

/** All thumbnails of a snapshot, uint8, laid out as its inspector meta says. */
export async function snapshotThumbs(runId: string, name: string): Promise<Uint8Array> {
  const reply = await requestBinary('thumbs', { parts: { id: runId, name } });
  return new Uint8Array(reply.body);
}

/** plotly's widget bundle as the Jupyter server's plotly has it, and that plotly's version. */
export async function plotlyBundle(): Promise<{ version: string; body: ArrayBuffer }> {
  const reply = await requestBinary('plotlyBundle');
  return { version: reply.headers.get('X-Llmlab-Version') ?? '', body: reply.body };
}

/** The saved logit lens at one token position (a 404 when the snapshot has none). */
export function snapshotLens(
  runId: string,
  name: string,
  position: number
): Promise<ILensRows> {
  return requestAPI('lens', { parts: { id: runId, name }, query: { position } });
}

/** The query of a matrix request (`agg` "head" sends the head number). */
export function matrixQuery(request: IMatrixRequest): Record<string, string | number> {
  return {
    kind: request.kind,
    layer: request.layer,
    head: request.agg === 'head' ? request.head : request.agg,
    hide_first: request.hide_first ? 1 : 0,
    merge_words: request.merge_words ? 1 : 0
  };
}

/** One matrix of a snapshot, decoded from the server's little-endian float16. */
export async function snapshotMatrix(
  runId: string,
  name: string,
  request: IMatrixRequest
): Promise<IMatrix> {
  const reply = await requestBinary('matrix', {
    parts: { id: runId, name },
    query: matrixQuery(request)
  });
  const [rows, cols] = (reply.headers.get('X-Llmlab-Shape') || '').split(',').map(Number);
  if (!(rows > 0 && cols > 0)) {
    throw new Error('The matrix answer has no X-Llmlab-Shape header; is the server llmlab?');
  }
  return { request, rows, cols, values: decodeFloat16(new Uint8Array(reply.body), rows, cols) };
}

/** Parse a reply body; an empty or non-JSON body comes back as the raw text. */
function parseJSON(text: string): unknown {
  if (!text) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
