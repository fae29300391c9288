/**
 * The shared shape of an llmlab sidebar panel: an id, a title with icon and
 * caption, a heading, a line saying what the panel is for, and a hook that runs
 * each time the panel comes into view.
 */
import type { JupyterFrontEnd } from '@jupyterlab/application';
import type { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

/** What a panel needs to describe itself. */
export interface IPanelOptions {
  /** DOM id, also used by `app.shell.activateById` and the layout restorer. */
  id: string;
  /** Human name, e.g. "Model configs". */
  label: string;
  icon: LabIcon;
  /** One sentence on what the panel shows. */
  description: string;
}

/** The parts of JupyterLab the panels act on (notebooks are optional in a lab app). */
export interface ILabContext {
  app: JupyterFrontEnd;
  notebooks: INotebookTracker | null;
}

/** A sidebar panel with a header; subclasses fill `body`. */
export class LlmlabPanel extends Widget {
  /** Where a subclass puts its content. */
  readonly body: HTMLElement;

  constructor(options: IPanelOptions) {
    super();
    this.id = options.id;
    this.addClass('llmlab-Panel');
    this.title.icon = options.icon;
    this.title.caption = `llmlab: ${options.label}`;

    const heading = document.createElement('h2');
    heading.className = 'llmlab-Panel-heading';
    heading.textContent = options.label;

    const description = document.createElement('p');
    description.className = 'llmlab-Panel-description';
    description.textContent = options.description;

    this.body = document.createElement('div');
    this.body.className = 'llmlab-Panel-body';

    this.node.append(heading, description, this.body);
  }

  /** Runs whenever the panel becomes visible (subclasses load or refresh here). */
  protected onShown(): void {
    // nothing by default
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.onShown();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.onShown();
    }
  }
}
