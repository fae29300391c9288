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
  const url = URLExt.join(settings.baseUrl, API_PREFIX, endpoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  const body = parseJSON(text);
  if (!response.ok) {
    const message =
      body && typeof body === 'object' && 'message' in body
        ? String((body as { message: unknown }).message)
        : text;
    throw new ServerConnection.ResponseError(response, message);
  }
  return body as T;
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
