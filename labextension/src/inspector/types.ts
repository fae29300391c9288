/**
 * Shapes shared by the inspector's parts. The view never talks to Jupyter itself: a host
 * (the anywidget adapter in widget.ts, later the lab's Attention inspector panel) gives it
 * the description of a capture, thumbnails and matrices.
 */

/** One kind of attention in a capture ("encoder", "decoder", "cross"). */
export interface IKindInfo {
  name: string;
  /** Token side of the queries (rows) and keys (columns): "encoder" or "decoder". */
  query_side: string;
  key_side: string;
  /** Model layer and head numbers that were captured. */
  layers: number[];
  heads: number[];
  /** Matrix size in tokens. */
  rows: number;
  cols: number;
  /** Whether attention rollout is available (self-attention, all layers captured). */
  rollout: boolean;
  /** Where this kind's thumbnails start in the thumbnail buffer, and their size. */
  thumb_offset: number;
  thumb_rows: number;
  thumb_cols: number;
}

/** One token sequence. */
export interface ISideInfo {
  tokens: string[];
  /** Word of each token, and the words' display strings. */
  word_of: number[];
  words: string[];
}

/** Everything static about a capture. */
export interface IMeta {
  title: string;
  family: string;
  kinds: IKindInfo[];
  sides: { [side: string]: ISideInfo };
  /** Side whose positions have logit-lens predictions, or "" when there is no lens. */
  lens_side: string;
}

export type Agg = 'head' | 'mean' | 'max' | 'rollout';
export type Direction = 'from' | 'to';
export type Mode = 'heatmap' | 'lines';
/** A colour scale: by the matrix maximum, its square root, or each row's own maximum. */
export type DrawnScale = 'linear' | 'sqrt' | 'row';
/** The scale picked in the view: one of those, or "auto" (chosen per matrix, `chooseScale`). */
export type Scale = 'auto' | DrawnScale;

/** What picks the matrix (these fields make its cache key). */
export interface IMatrixRequest {
  kind: string;
  /** Model layer number. */
  layer: number;
  /** Model head number (ignored unless agg is "head"). */
  head: number;
  agg: Agg;
  hide_first: boolean;
  merge_words: boolean;
}

/** The view's whole state: the matrix request plus how it is shown. */
export interface IViewState extends IMatrixRequest {
  /** Selected rows ("from") or columns ("to"), in displayed units (tokens or words). */
  selected: number[];
  direction: Direction;
  view: Mode;
  top_k: number;
  scale: Scale;
}

/** A full-resolution matrix, row-major. */
export interface IMatrix {
  request: IMatrixRequest;
  rows: number;
  cols: number;
  values: Float32Array;
}

/** Per-layer top-k predictions at one position. */
export interface ILensRows {
  position: number;
  what: string;
  layers: string[];
  tokens: string[][];
  probs: number[][];
}

/** What a view needs from whoever hosts it. */
export interface IInspectorHost {
  meta(): IMeta;
  /** All kinds' thumbnails, uint8, laid out as the kinds' thumb_offset says. */
  thumbs(): Uint8Array;
  /** The matrix for a request (the host may cache; the view drops stale answers). */
  matrix(request: IMatrixRequest): Promise<IMatrix>;
  /** Predictions per layer at a position of meta().lens_side (optional). */
  lens?(position: number): Promise<ILensRows>;
  /** Told whenever the user changes the state (a widget syncs it to Python). */
  stateChanged?(state: IViewState): void;
}

/** The cache key of a matrix request. */
export function requestKey(r: IMatrixRequest): string {
  const head = r.agg === 'head' ? String(r.head) : r.agg;
  return `${r.kind}|${r.layer}|${head}|${r.hide_first ? 1 : 0}|${r.merge_words ? 1 : 0}`;
}
