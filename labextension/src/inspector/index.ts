/**
 * The attention inspector's front end, framework-free, shared by the notebook widget
 * (widget.ts, bundled into llmlab/attention/static/inspector.js) and the lab's Attention
 * inspector panel: give `InspectorView` a host (see `IInspectorHost`) and append its node.
 *
 *   import { InspectorView } from './inspector';
 *   const view = new InspectorView(host, { kind: 'decoder', layer: 11 });
 *   panel.body.append(view.node);
 */
export * from './types';
export { InspectorView, DEFAULT_STATE, DRAWN_EVENT } from './view';
export { WidgetHost } from './widget';
