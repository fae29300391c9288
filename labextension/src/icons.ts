/**
 * Sidebar icons, drawn inline so nothing is fetched at run time.
 * `jp-icon3` lets JupyterLab's theme recolour them.
 */
import { LabIcon } from '@jupyterlab/ui-components';

function svg(body: string): string {
  return (
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    `<g class="jp-icon3" fill="#616161">${body}</g></svg>`
  );
}

/** Three stacked blocks: a model's layers. */
export const modelConfigsIcon = new LabIcon({
  name: 'llmlab:model-configs',
  svgstr: svg(
    '<rect x="4" y="3" width="16" height="4" rx="1"/>' +
      '<rect x="4" y="10" width="16" height="4" rx="1"/>' +
      '<rect x="4" y="17" width="16" height="4" rx="1"/>'
  )
});

/** A 3x3 grid of cells in three shades: an attention map. */
export const attentionIcon = new LabIcon({
  name: 'llmlab:attention-inspector',
  svgstr: svg(
    '<rect x="3" y="3" width="5" height="5"/>' +
      '<rect x="3" y="10" width="5" height="5" opacity="0.6"/>' +
      '<rect x="10" y="10" width="5" height="5"/>' +
      '<rect x="3" y="17" width="5" height="5" opacity="0.3"/>' +
      '<rect x="10" y="17" width="5" height="5" opacity="0.6"/>' +
      '<rect x="17" y="17" width="5" height="5"/>'
  )
});

/** A falling loss curve on axes: a run's history. */
export const runHistoryIcon = new LabIcon({
  name: 'llmlab:run-history',
  svgstr: svg(
    '<path d="M3 3h2v16h16v2H3z"/>' +
      '<path d="M7 6c2 7 5 10 13 11v2C11 18 7 14 5.1 6.5z"/>'
  )
});
