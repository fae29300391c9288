/**
 * Model configs panel. For now it proves the round trip to the server
 * extension by showing the llmlab version the server runs.
 */
import type { Message } from '@lumino/messaging';

import { IVersionReply, requestAPI } from '../api';
import { modelConfigsIcon } from '../icons';
import { LlmlabPanel } from './panel';

export class ModelConfigsPanel extends LlmlabPanel {
  static readonly ID = 'llmlab-model-configs';

  private readonly _status: HTMLElement;

  constructor() {
    super({
      id: ModelConfigsPanel.ID,
      label: 'Model configs',
      icon: modelConfigsIcon,
      description:
        'Will list saved ModelConfigs and edit them in a form built from the ' +
        'config JSON schema, with parameter count, FLOPs and memory estimates.'
    });
    this._status = document.createElement('p');
    this._status.className = 'llmlab-ServerVersion';
    this._status.textContent = 'llmlab server: not contacted yet';
    this.body.append(this._status);
  }

  /** Ask the server for its llmlab version and show it (or the error). */
  async refresh(): Promise<void> {
    this._status.textContent = 'llmlab server: contacting…';
    try {
      const reply = await requestAPI<IVersionReply>('version');
      this._status.textContent = `llmlab server version: ${reply.version}`;
      this._status.dataset.version = reply.version;
    } catch (error) {
      this._status.textContent = `llmlab server unreachable: ${String(error)}`;
      delete this._status.dataset.version;
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.refresh();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      void this.refresh();
    }
  }
}
