/**
 * The size, compute and memory of a config (`POST configs/estimate`), as a table
 * and a bar that splits the training memory into its parts.
 *
 *   const view = new EstimateView();
 *   view.show(reply.estimate);
 *   view.stale = true;   // greyed out while the inputs are invalid
 */
import type { IEstimate } from '../api';
import { h } from './dom';
import { formatBytes, formatCount } from './format';

/** The parts of one training step's memory, in the order the bar draws them. */
const MEMORY_PARTS: [keyof IEstimate, string][] = [
  ['weights_bytes', 'weights'],
  ['gradients_bytes', 'gradients'],
  ['optimizer_bytes', 'AdamW state'],
  ['activations_bytes', 'activations']
];

export class EstimateView {
  readonly node = h('div', { class: 'llmlab-Estimate' });

  /** Mark the numbers as not matching the inputs any more (or matching again). */
  set stale(stale: boolean) {
    this.node.classList.toggle('llmlab-mod-stale', stale);
  }

  show(e: IEstimate): void {
    this.stale = false;
    const row = (label: string, value: string, key: string, swatch?: number) =>
      h(
        'tr',
        { 'data-key': key },
        h(
          'th',
          {},
          swatch === undefined
            ? null
            : h('span', { class: `llmlab-Swatch llmlab-Part-${swatch}` }),
          label
        ),
        h('td', {}, value)
      );
    const memory = MEMORY_PARTS.map(([key, label], i) =>
      row(
        i === 0 ? `${label} (${e.dtype})` : label,
        formatBytes(e[key] as number),
        key,
        i
      )
    );
    const table = h(
      'table',
      { class: 'llmlab-Estimate-table' },
      h(
        'tbody',
        {},
        row('parameters', formatCount(e.params), 'params'),
        row(
          'FLOPs/token (forward)',
          formatCount(e.flops_per_token_forward),
          'flops_forward'
        ),
        row(
          'FLOPs/token (training)',
          formatCount(e.flops_per_token_train),
          'flops_train'
        ),
        ...memory,
        row(
          `training total (batch ${e.batch_size} x ${e.seq_len})`,
          formatBytes(e.training_bytes),
          'training_bytes'
        ),
        row(
          'KV cache per token',
          formatBytes(e.kv_cache_bytes_per_token),
          'kv_cache'
        )
      )
    );
    this.node.replaceChildren(table, this._bar(e));
    this.node.dataset.params = String(e.params);
  }

  /** A stacked bar: each part's share of the training total. */
  private _bar(e: IEstimate): HTMLElement {
    const total = e.training_bytes || 1;
    const segments = MEMORY_PARTS.map(([key, label], i) => {
      const share = ((e[key] as number) / total) * 100;
      return h('span', {
        class: `llmlab-Part-${i}`,
        style: `width: ${share.toFixed(2)}%`,
        title: `${label}: ${share.toFixed(1)}%`
      });
    });
    return h(
      'div',
      { class: 'llmlab-MemoryBar', 'aria-hidden': 'true' },
      ...segments
    );
  }
}
