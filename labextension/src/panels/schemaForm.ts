/**
 * A form generated from a JSON Schema object (the ModelConfig schema from
 * `GET configs/schema`): enums become selects, booleans checkboxes, integers and
 * numbers number inputs with their minimum, nullable fields get an "auto" box,
 * and each description becomes help text.
 *
 *   const form = new SchemaForm(schema, field => validateSoon(field));
 *   form.fill(preset);                   // put a config into the inputs
 *   const { config, problems } = form.read();
 *   form.showError('n_head', message);
 */
import type { Config, IConfigSchema, ISchemaProperty } from '../api';
import { h } from './dom';

/** What one field reads from its inputs: a value, or why there is none. */
type Reading = { value: unknown } | { problem: string };

/** One generated input row. */
interface IField {
  row: HTMLElement;
  error: HTMLElement;
  read(): Reading;
  write(value: unknown): void;
}

/** The result of reading the whole form. */
export interface IFormReading {
  /** The edited config; keys the schema does not know are kept as they came. */
  config: Config;
  /** Inputs that hold no usable value, by field name. */
  problems: Record<string, string>;
}

export class SchemaForm {
  readonly node: HTMLElement;
  private readonly _fields = new Map<string, IField>();
  private _base: Config = {};

  /** `onChange(field)` runs after every edit a user makes. */
  constructor(
    schema: IConfigSchema,
    private readonly _onChange: (field: string) => void
  ) {
    this.node = h('div', { class: 'llmlab-SchemaForm' });
    for (const [name, property] of Object.entries(schema.properties)) {
      const field = makeField(name, property, () => this._onChange(name));
      this._fields.set(name, field);
      this.node.append(field.row);
    }
  }

  /** Field names in schema order. */
  get names(): string[] {
    return [...this._fields.keys()];
  }

  /** Fill the inputs from a config; fields it lacks get their schema default. */
  fill(config: Config): void {
    this._base = { ...config };
    for (const [name, field] of this._fields) {
      field.write(name in config ? config[name] : undefined);
    }
    this.clearErrors();
  }

  /** Set one field's input, as if the user had typed `value`. */
  set(field: string, value: unknown): void {
    this._fields.get(field)?.write(value);
  }

  /** The config as edited, and the inputs that cannot be read as their type. */
  read(): IFormReading {
    const config: Config = { ...this._base };
    const problems: Record<string, string> = {};
    for (const [name, field] of this._fields) {
      const reading = field.read();
      if ('problem' in reading) {
        problems[name] = reading.problem;
      } else {
        config[name] = reading.value;
      }
    }
    return { config, problems };
  }

  /** Show `message` under `field`; false when the form has no such field. */
  showError(field: string, message: string): boolean {
    const target = this._fields.get(field);
    if (!target) {
      return false;
    }
    target.error.textContent = message;
    target.error.hidden = false;
    target.row.classList.add('llmlab-mod-invalid');
    return true;
  }

  clearErrors(): void {
    for (const field of this._fields.values()) {
      field.error.hidden = true;
      field.error.textContent = '';
      field.row.classList.remove('llmlab-mod-invalid');
    }
  }
}

/** The types a property allows, and whether null is one of them. */
function typesOf(property: ISchemaProperty): {
  type: string;
  nullable: boolean;
} {
  const types = Array.isArray(property.type) ? property.type : [property.type];
  const nonNull = types.filter(t => t !== 'null');
  return {
    type: nonNull[0] ?? 'string',
    nullable: nonNull.length < types.length
  };
}

function makeField(
  name: string,
  property: ISchemaProperty,
  changed: () => void
): IField {
  const id = `llmlab-field-${name}`;
  const { type, nullable } = typesOf(property);
  const control = property.enum
    ? enumControl(id, property.enum)
    : type === 'boolean'
      ? booleanControl(id)
      : type === 'integer' || type === 'number'
        ? numberControl(id, name, type, property)
        : textControl(id, type);
  const auto = nullable ? autoBox(control, changed) : null;

  const help = property.description
    ? h('div', { class: 'llmlab-Field-help' }, helpText(property))
    : null;
  const error = h('div', { class: 'llmlab-Field-error', role: 'alert' });
  error.hidden = true;
  const row = h(
    'div',
    { class: 'llmlab-Field', 'data-field': name },
    h('label', { class: 'llmlab-Field-name', for: id }, name),
    h('div', { class: 'llmlab-Field-control' }, control.input, auto?.label),
    help,
    error
  );
  const event =
    control.input instanceof HTMLSelectElement || type === 'boolean'
      ? 'change'
      : 'input';
  control.input.addEventListener(event, changed);

  return {
    row,
    error,
    read: () => (auto?.box.checked ? { value: null } : control.read()),
    write: value => {
      const v = value === undefined ? property.default : value;
      if (auto) {
        auto.set(v === null);
      }
      control.write(v === null ? undefined : v);
    }
  };
}

/** One input element and how to move a value in and out of it. */
interface IControl {
  input: HTMLInputElement | HTMLSelectElement;
  read(): Reading;
  write(value: unknown): void;
}

function enumControl(id: string, choices: unknown[]): IControl {
  const select = h('select', { id, class: 'llmlab-Input' });
  const add = (choice: unknown) =>
    select.append(
      h('option', { value: JSON.stringify(choice) }, String(choice))
    );
  choices.forEach(add);
  return {
    input: select,
    read: () => ({ value: JSON.parse(select.value) }),
    write: value => {
      const key = JSON.stringify(value ?? choices[0]);
      if (![...select.options].some(o => o.value === key)) {
        add(value); // an unknown choice from a saved config: keep it, the server will say why
      }
      select.value = key;
    }
  };
}

function booleanControl(id: string): IControl {
  const box = h('input', { id, type: 'checkbox' });
  return {
    input: box,
    read: () => ({ value: box.checked }),
    write: value => {
      box.checked = Boolean(value);
    }
  };
}

function numberControl(
  id: string,
  name: string,
  type: string,
  property: ISchemaProperty
): IControl {
  const input = h('input', {
    id,
    class: 'llmlab-Input',
    type: 'number',
    min: property.minimum ?? property.exclusiveMinimum,
    max: property.maximum,
    step: type === 'integer' ? 1 : 'any'
  });
  return {
    input,
    read: () => {
      if (input.validity.badInput || input.value.trim() === '') {
        return {
          problem: `${name}: enter a ${type === 'integer' ? 'whole ' : ''}number.`
        };
      }
      return { value: Number(input.value) };
    },
    write: value => {
      input.value = value === undefined ? '' : String(value);
    }
  };
}

/** Strings, and anything else as JSON text (the schema has no such field today). */
function textControl(id: string, type: string): IControl {
  const input = h('input', { id, class: 'llmlab-Input', type: 'text' });
  const json = type !== 'string';
  return {
    input,
    read: () => {
      if (!json) {
        return { value: input.value };
      }
      try {
        return { value: JSON.parse(input.value) };
      } catch {
        return { problem: 'enter a JSON value.' };
      }
    },
    write: value => {
      input.value =
        value === undefined ? '' : json ? JSON.stringify(value) : String(value);
    }
  };
}

/** The "auto" checkbox of a nullable field: ticked means null (the library's default). */
function autoBox(
  control: IControl,
  changed: () => void
): { label: HTMLElement; box: HTMLInputElement; set(auto: boolean): void } {
  const box = h('input', { type: 'checkbox', class: 'llmlab-Field-auto' });
  const set = (auto: boolean) => {
    box.checked = auto;
    control.input.disabled = auto;
    if (control.input instanceof HTMLInputElement) {
      control.input.placeholder = auto ? 'auto' : '';
    }
  };
  box.addEventListener('change', () => {
    set(box.checked);
    if (!box.checked) {
      control.input.focus();
    }
    changed();
  });
  const label = h(
    'label',
    { title: 'Use the default computed from the other fields' },
    box,
    'auto'
  );
  return { label, box, set };
}

function helpText(property: ISchemaProperty): string {
  const fallback =
    property.default === null ? 'auto' : JSON.stringify(property.default);
  return property.default === undefined
    ? (property.description ?? '')
    : `${property.description} (default: ${fallback})`;
}
