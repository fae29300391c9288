/**
 * One way for every panel to talk to the llmlab server extension.
 *
 *   const { version } = await requestAPI<{ version: string }>('version');
 *
 * Requests go to `<base url>/llmlab/api/<endpoint>` through JupyterLab's
 * `ServerConnection`, which adds the auth token and XSRF header.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** URL prefix of every llmlab REST endpoint, relative to the server's base URL. */
export const API_PREFIX = 'llmlab/api';

/** Reply of `GET llmlab/api/version`. */
export interface IVersionReply {
  version: string;
}

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
