/** Attention inspector panel (skeleton). */
import { attentionIcon } from '../icons';
import { LlmlabPanel } from './panel';

export class AttentionInspectorPanel extends LlmlabPanel {
  static readonly ID = 'llmlab-attention-inspector';

  constructor() {
    super({
      id: AttentionInspectorPanel.ID,
      label: 'Attention inspector',
      icon: attentionIcon,
      description:
        'Will show attention maps captured from a run, per layer and head, ' +
        'with attention rollout and the logit lens.'
    });
  }
}
