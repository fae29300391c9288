/**
 * Small DOM helpers shared by the panels: an element builder and a message line.
 *
 *   const row = h('div', { class: 'llmlab-Row' }, 'Name');
 *   const save = button('Save', { class: 'jp-Button' }, () => void store());
 *   status.show('Saved.', 'success');
 */

/** What `h` accepts as children: nodes, text, or nothing. */
export type Child = Node | string | null | undefined | false;

/** Attribute values: `true` sets an empty attribute, `false`/`undefined` leaves it out. */
export type Attributes = Record<string, string | number | boolean | undefined>;

/** Create an HTML element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === true) {
      element.setAttribute(name, '');
    } else if (value !== false && value !== undefined) {
      element.setAttribute(name, String(value));
    }
  }
  element.append(...children.filter((c): c is Node | string => !!c));
  return element;
}

/** A button with a label and attributes that calls `onClick` when clicked. */
export function button(
  label: string,
  attributes: Attributes,
  onClick: () => void
): HTMLButtonElement {
  const element = h('button', attributes, label);
  element.addEventListener('click', onClick);
  return element;
}

/** How a message reads: plain, good news, or a problem to fix. */
export type MessageKind = 'info' | 'success' | 'error';

/** One line of feedback under a panel's controls; `show('')` hides it. */
export class MessageLine {
  readonly node = h('p', { class: 'llmlab-Message', role: 'status' });

  constructor() {
    this.node.hidden = true;
  }

  show(text: string, kind: MessageKind = 'info'): void {
    this.node.textContent = text;
    this.node.dataset.kind = kind;
    this.node.hidden = !text;
  }

  clear(): void {
    this.show('');
  }
}
