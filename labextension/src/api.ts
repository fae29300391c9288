/**
 * One way for every panel to talk to the llmlab server extension.
 *
 *   const page = await listRuns({ status: 'running' });
 *   const { estimate } = await estimateConfig({ config, batch_size: 8 });
 *
 * Requests go to `<base url>/llmlab/api/<endpoint>` through JupyterLab's
 * `ServerConnection`, which adds the auth token and XSRF header. The reply
 * shapes below mirror `llmlab/server/handlers.py`.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { decodeFloat16 } from './inspector/data';
import type { ILensRows, IMatrix, IMatrixRequest, IMeta } from './inspector/types';

/** URL prefix of every llmlab REST endpoint, relative to the server's base URL. */
export const API_PREFIX = 'llmlab/api';

/** A ModelConfig as JSON (`ModelConfig.to_dict()`). */
export type Config = Record<string, unknown>;

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
}

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
 * Call an llmlab REST endpoint and return its JSON body.
 *
 * Throws `ServerConnection.NetworkError` when the server cannot be reached and
 * `ServerConnection.ResponseError` (with the server's message) on a non-2xx reply.
 */
export async function requestAPI<T>(
  endpoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const response = await fetchAPI(endpoint, init, settings);
  return parseJSON(await response.text()) as T;
}

/** A binary reply: its bytes and headers. */
export interface IBinaryReply {
  body: ArrayBuffer;
  headers: Headers;
}

/** Call an llmlab REST endpoint that answers with bytes; errors as `requestAPI`. */
export async function requestBinary(
  endpoint: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<IBinaryReply> {
  const response = await fetchAPI(endpoint, {}, settings);
  return { body: await response.arrayBuffer(), headers: response.headers };
}

async function fetchAPI(
  endpoint: string,
  init: RequestInit,
  settings: ServerConnection.ISettings
): Promise<Response> {
  const url = URLExt.join(settings.baseUrl, API_PREFIX, endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok) {
    const text = await response.text();
    const body = parseJSON(text);
    const message =
      body && typeof body === 'object' && 'message' in body
        ? String((body as { message: unknown }).message)
        : text;
    throw new ServerConnection.ResponseError(response, message);
  }
  return response;
}

/** The message of anything a request threw, for showing to the user. */
export function errorMessage(error: unknown): string {
  if (error instanceof ServerConnection.NetworkError) {
    return 'Cannot reach the Jupyter server; check that it is still running.';
  }
  return error instanceof Error ? error.message : String(error);
}

/** True when `error` is the server refusing bad input (a 400 with a message). */
export function isBadRequest(error: unknown): boolean {
  return (
    error instanceof ServerConnection.ResponseError &&
    error.response.status === 400
  );
}

/** One page of runs, newest first. */
export function listRuns(query: IRunsQuery = {}): Promise<IRunsPage> {
  const params = Object.entries(query)
    .filter(([, value]) => value !== undefined && value !== '')
    .map(([key, value]) => `${key}=${encodeURIComponent(String(value))}`);
  return requestAPI<IRunsPage>(
    params.length ? `runs?${params.join('&')}` : 'runs'
  );
}

/** A run's metrics as columns (all of them, or only `names` and `step`). */
export async function runMetrics(
  id: string,
  names?: string[]
): Promise<IMetricsReply> {
  const only = names?.length
    ? `&names=${encodeURIComponent(names.join(','))}`
    : '';
  const reply = await requestAPI<IMetricsReply | string>(
    `runs/${encodeURIComponent(id)}/metrics?format=json${only}`
  );
  if (typeof reply !== 'object' || !reply?.columns) {
    throw new Error(
      `The metrics of run ${id} did not arrive as JSON (a NaN or infinite ` +
        'value?); read them in a notebook with llmlab.runs.get(id).metrics.'
    );
  }
  return reply;
}

/** The built-in presets, by name. */
export function configPresets(): Promise<Record<string, Config>> {
  return requestAPI('configs/presets');
}

/** Configs saved in the run store's `configs/` folder, by name. */
export function savedConfigs(): Promise<Record<string, Config>> {
  return requestAPI('configs/saved');
}

/** The ModelConfig JSON Schema the config form is built from. */
export function configSchema(): Promise<IConfigSchema> {
  return requestAPI('configs/schema');
}

/** Validate a config and estimate it; a 400 carries the message naming the field. */
export function estimateConfig(
  request: IEstimateRequest
): Promise<IEstimateReply> {
  return requestAPI('configs/estimate', {
    method: 'POST',
    body: JSON.stringify(request)
  });
}

/** Save `config` as `<store>/configs/<name>.json`; a 400 says what is invalid. */
export function saveConfig(
  name: string,
  config: Config
): Promise<{ name: string; config: Config }> {
  return requestAPI(`configs/saved/${encodeURIComponent(name)}`, {
    method: 'PUT',
    body: JSON.stringify(config)
  });
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
  return requestAPI('attention');
}

/** The path of a snapshot's endpoints under the API prefix. */
export function snapshotPath(runId: string, name: string): string {
  return `runs/${encodeURIComponent(runId)}/attention/${encodeURIComponent(name)}`;
}

/** A snapshot's metadata; a 422 says why it cannot be read (format version, half written). */
export function snapshotInfo(runId: string, name: string): Promise<ISnapshotInfo> {
  return requestAPI(snapshotPath(runId, name));
}

/** All thumbnails of a snapshot, uint8, laid out as its inspector meta says. */
export async function snapshotThumbs(runId: string, name: string): Promise<Uint8Array> {
  return new Uint8Array((await requestBinary(`${snapshotPath(runId, name)}/thumbs`)).body);
}

/** The saved logit lens at one token position (a 404 when the snapshot has none). */
export function snapshotLens(
  runId: string,
  name: string,
  position: number
): Promise<ILensRows> {
  return requestAPI(`${snapshotPath(runId, name)}/lens?position=${position}`);
}

/** The query of a matrix request (`agg` "head" sends the head number). */
export function matrixQuery(request: IMatrixRequest): string {
  const head = request.agg === 'head' ? String(request.head) : request.agg;
  return (
    `matrix?kind=${encodeURIComponent(request.kind)}&layer=${request.layer}` +
    `&head=${head}&hide_first=${request.hide_first ? 1 : 0}` +
    `&merge_words=${request.merge_words ? 1 : 0}`
  );
}

/** One matrix of a snapshot, decoded from the server's little-endian float16. */
export async function snapshotMatrix(
  runId: string,
  name: string,
  request: IMatrixRequest
): Promise<IMatrix> {
  const reply = await requestBinary(`${snapshotPath(runId, name)}/${matrixQuery(request)}`);
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
