/**
 * The shared shape of an llmlab sidebar panel: an id, a title with icon and
 * caption, a heading and a line saying what the panel is for.
 */
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

/** What a panel needs to describe itself. */
export interface IPanelOptions {
  /** DOM id, also used by `app.shell.activateById` and the layout restorer. */
  id: string;
  /** Human name, e.g. "Model configs". */
  label: string;
  icon: LabIcon;
  /** One sentence on what the panel will show. */
  description: string;
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
}
