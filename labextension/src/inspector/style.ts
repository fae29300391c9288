/**
 * The inspector's CSS, added once per page. JupyterLab theme variables with plain fallbacks,
 * so it fits light and dark themes and still looks right in a page without JupyterLab.
 */
const CSS = `
.llmlab-insp { font-family: var(--jp-ui-font-family, sans-serif); font-size: 12px;
  color: var(--jp-ui-font-color1, #222); background: var(--jp-layout-color1, transparent);
  padding: 4px 0; }
.llmlab-insp-bar { display: flex; flex-wrap: wrap; gap: 6px 12px; align-items: center;
  margin-bottom: 6px; }
.llmlab-insp-bar label { display: inline-flex; gap: 4px; align-items: center; }
.llmlab-insp-bar select, .llmlab-insp-bar input, .llmlab-insp-bar button {
  font: inherit; color: inherit; background: var(--jp-layout-color2, #f3f3f3);
  border: 1px solid var(--jp-border-color1, #bbb); border-radius: 2px; padding: 1px 4px; }
.llmlab-insp-bar input[type=number] { width: 3.5em; }
.llmlab-insp-bar button { cursor: pointer; }
.llmlab-insp-main { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
.llmlab-insp-grid canvas { display: block; cursor: pointer; outline: none; }
.llmlab-insp-grid canvas:focus-visible { outline: 1px dotted var(--jp-brand-color1, #1976d2); }
.llmlab-insp-heatmap { position: relative; }
.llmlab-insp-heatmap canvas { position: absolute; left: 0; top: 0; }
.llmlab-insp-overlay { cursor: crosshair; }
.llmlab-insp-status { min-height: 1.4em; margin: 4px 0; color: var(--jp-ui-font-color2, #555);
  white-space: pre; overflow: hidden; text-overflow: ellipsis; }
.llmlab-insp-error { color: var(--jp-error-color1, #c62828); }
.llmlab-insp-strip { margin-top: 6px; }
.llmlab-insp-caption { color: var(--jp-ui-font-color2, #555); margin-bottom: 2px; }
.llmlab-insp-tokens { max-height: 9.5em; overflow-y: auto; line-height: 1.75;
  font-family: var(--jp-code-font-family, monospace);
  border: 1px solid var(--jp-border-color2, #ddd); padding: 2px 4px; }
.llmlab-insp-token { padding: 1px 1px; margin: 0 1px 0 0; border-radius: 2px; cursor: pointer;
  box-shadow: inset 0 0 0 1px var(--jp-border-color2, rgba(0,0,0,0.08)); }
.llmlab-insp-selected { box-shadow: inset 0 0 0 2px rgb(230,120,0); }
.llmlab-insp-lens table { border-collapse: collapse; margin-top: 6px; }
.llmlab-insp-lens td, .llmlab-insp-lens th { padding: 1px 6px; text-align: left;
  border-bottom: 1px solid var(--jp-border-color2, #eee); font-weight: normal; }
.llmlab-insp-lens th { color: var(--jp-ui-font-color2, #555); }
`;

export function ensureStyle(doc: Document = document): void {
  if (doc.getElementById('llmlab-inspector-style')) return;
  const style = doc.createElement('style');
  style.id = 'llmlab-inspector-style';
  style.textContent = CSS;
  doc.head.append(style);
}
