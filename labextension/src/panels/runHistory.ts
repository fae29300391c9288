/** Run history panel (skeleton). */
import { runHistoryIcon } from '../icons';
import { LlmlabPanel } from './panel';

export class RunHistoryPanel extends LlmlabPanel {
  static readonly ID = 'llmlab-run-history';

  constructor() {
    super({
      id: RunHistoryPanel.ID,
      label: 'Run history',
      icon: runHistoryIcon,
      description:
        'Will list the runs in the run store with their configs, loss curves ' +
        'and metrics, to browse, compare and share.'
    });
  }
}
