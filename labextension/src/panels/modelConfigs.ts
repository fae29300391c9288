/**
 * Model configs panel: start from a preset or a saved config, edit it in a form
 * built from the ModelConfig JSON Schema, see its size, FLOPs and memory update
 * as you type (the server validates and estimates), save it under a name, or
 * insert the code that builds it into the current notebook.
 */
import {
  Config,
  IConfigSchema,
  CONFIG_NAME,
  configPresets,
  configSchema,
  errorMessage,
  checkConfig,
  fieldAtFault,
  problemAt,
  saveConfig,
  savedConfigs
} from '../api';
import { modelConfigsIcon } from '../icons';
import { button, h, MessageLine } from './dom';
import { EstimateView } from './estimateView';
import { formatBytes, formatCount } from './format';
import { insertCodeCell } from './notebook';
import { ILabContext, LlmlabPanel } from './panel';
import { configCode } from './python';
import { SchemaForm } from './schemaForm';

/** Wait this long after the last keystroke before asking the server for an estimate. */
const ESTIMATE_DELAY_MS = 300;
const DTYPES = ['float32', 'bfloat16', 'float16'];

/** Where an option of the source select comes from. */
type Source = 'preset' | 'saved';

export class ModelConfigsPanel extends LlmlabPanel {
  static readonly ID = 'llmlab-model-configs';

  private _form: SchemaForm | null = null;
  private _presets: Record<string, Config> = {};
  private _saved: Record<string, Config> = {};
  private _timer = 0;
  private _requests = 0;
  private _lastEdited = '';
  private _replaceName = '';
  private _filled = false;
  private _loadFailed = false;
  /** The `name` field of the config the form was filled from. */
  private _startName = '';

  private readonly _source = h('select', {
    class: 'llmlab-Input llmlab-ConfigSource'
  });
  private readonly _formHost = h('div', { class: 'llmlab-FormHost' });
  private readonly _batch = h('input', {
    class: 'llmlab-Input',
    type: 'number',
    min: 1,
    step: 1,
    value: 8
  });
  private readonly _seqLen = h('input', {
    class: 'llmlab-Input',
    type: 'number',
    min: 1,
    step: 1,
    placeholder: 'context'
  });
  private readonly _dtype = h('select', { class: 'llmlab-Input' });
  private readonly _estimateMessage = new MessageLine();
  private _saveButton!: HTMLButtonElement;
  private _insertButton!: HTMLButtonElement;
  /** The buttons' own titles, shown again once the config is valid. */
  private readonly _titles = new Map<HTMLButtonElement, string>();
  private readonly _estimate = new EstimateView();
  private readonly _summary = h('div', {
    class: 'llmlab-ConfigSummary',
    role: 'status'
  });
  private readonly _name = h('input', {
    class: 'llmlab-Input llmlab-ConfigName',
    type: 'text',
    placeholder: 'name, e.g. my-tiny-gpt',
    maxlength: 64
  });
  private readonly _message = new MessageLine();

  constructor(private readonly _lab: ILabContext) {
    super({
      id: ModelConfigsPanel.ID,
      label: 'Model configs',
      icon: modelConfigsIcon,
      description:
        'Edit a ModelConfig, see its parameters, FLOPs and memory as you type, ' +
        'save it or insert it into a notebook.'
    });
    this.addClass('llmlab-ModelConfigs');
    for (const dtype of DTYPES) {
      this._dtype.append(h('option', { value: dtype }, dtype));
    }
    this._source.addEventListener('change', () => this._loadSelected());
    for (const input of [this._batch, this._seqLen]) {
      input.addEventListener('input', () => this._scheduleEstimate('estimate'));
    }
    this._dtype.addEventListener('change', () =>
      this._scheduleEstimate('estimate')
    );
    this._name.addEventListener('input', () => this._checkName());

    const reload = button(
      'Reload',
      { class: 'jp-Button llmlab-Button', title: 'Reload presets and saved configs' },
      () => void this._loadLists()
    );
    const save = button(
      'Save',
      { class: 'jp-Button jp-mod-accept llmlab-Button llmlab-Save' },
      () => void this._save()
    );
    const insert = button(
      'Insert into notebook',
      {
        class: 'jp-Button llmlab-Button llmlab-InsertConfig',
        title:
          'Add a cell that builds this model below the active cell of the current notebook'
      },
      () => void this._insert()
    );
    this._saveButton = save;
    this._insertButton = insert;
    const help = h('input', { type: 'checkbox', checked: true });
    help.addEventListener('change', () =>
      this._formHost.classList.toggle('llmlab-mod-nohelp', !help.checked)
    );

    this.body.append(
      h(
        'div',
        { class: 'llmlab-Row' },
        h('label', {}, 'Start from ', this._source),
        reload
      ),
      h('div', { class: 'llmlab-Row' }, this._name, save),
      h('div', { class: 'llmlab-Row' }, insert),
      this._message.node,
      h('h3', { class: 'llmlab-Section' }, 'Estimate'),
      h(
        'div',
        { class: 'llmlab-Row llmlab-EstimateInputs' },
        h('label', {}, 'batch ', this._batch),
        h('label', {}, 'seq len ', this._seqLen),
        h('label', {}, 'dtype ', this._dtype)
      ),
      this._estimateMessage.node,
      this._estimate.node,
      h(
        'h3',
        { class: 'llmlab-Section' },
        'Architecture',
        h('label', { class: 'llmlab-HelpToggle' }, help, 'help')
      ),
      this._formHost,
      this._summary
    );
  }

  /** Load the schema once, and the preset and saved lists every time the panel shows. */
  protected onShown(): void {
    void this._loadLists();
  }

  private async _loadLists(): Promise<void> {
    try {
      const [schema, presets, saved] = await Promise.all([
        this._form ? null : configSchema(),
        configPresets(),
        savedConfigs()
      ]);
      if (schema) {
        this._buildForm(schema);
      }
      this._presets = presets;
      this._saved = saved;
      this._fillSource();
      if (this._loadFailed) {
        this._loadFailed = false;
        this._message.clear();
      }
    } catch (error) {
      this._loadFailed = true;
      this._message.show(
        `Cannot load model configs from the server: ${errorMessage(error)} ` +
          'Press Reload to try again.',
        'error'
      );
    }
  }

  private _buildForm(schema: IConfigSchema): void {
    this._form = new SchemaForm(schema, field => this._scheduleEstimate(field));
    this._formHost.replaceChildren(this._form.node);
  }

  /** Refill the source select, keeping the current choice (or taking the first preset). */
  private _fillSource(): void {
    const current = this._source.value;
    const group = (label: string, source: Source, names: string[]) =>
      names.length
        ? h(
            'optgroup',
            { label },
            ...names.map(name =>
              h('option', { value: `${source}:${name}` }, name)
            )
          )
        : null;
    this._source.replaceChildren(
      ...[
        group('Presets', 'preset', Object.keys(this._presets)),
        group('Saved', 'saved', Object.keys(this._saved))
      ].filter((g): g is HTMLOptGroupElement => !!g)
    );
    if ([...this._source.options].some(o => o.value === current)) {
      this._source.value = current;
    } else if (!this._filled) {
      this._loadSelected(); // the first time only: never replace a user's edits
    }
  }

  /** Put the chosen preset or saved config into the form. */
  private _loadSelected(): void {
    const [source, ...rest] = this._source.value.split(':');
    const name = rest.join(':');
    const config = (source === 'saved' ? this._saved : this._presets)[name];
    if (!this._form || !config) {
      return;
    }
    this._form.fill(config);
    this._filled = true;
    this._startName = typeof config.name === 'string' ? config.name : '';
    this._name.value = source === 'saved' ? name : '';
    this._replaceName = '';
    this._message.clear();
    this._scheduleEstimate('', 0);
  }

  private _scheduleEstimate(field: string, delay = ESTIMATE_DELAY_MS): void {
    this._lastEdited = field || this._lastEdited;
    this._estimate.stale = true;
    window.clearTimeout(this._timer);
    this._timer = window.setTimeout(() => void this._validate(), delay);
  }

  /**
   * Send the form to `POST configs/estimate`; show the numbers, or the server's
   * message next to the field it names. True when the config is valid.
   */
  private async _validate(): Promise<boolean> {
    window.clearTimeout(this._timer);
    const form = this._form;
    if (!form) {
      return false;
    }
    const request = ++this._requests;
    const { config, problems } = form.read();
    const batch = Number(this._batch.value);
    const seqLen =
      this._seqLen.value.trim() === '' ? null : Number(this._seqLen.value);
    form.clearErrors();
    this._estimateMessage.clear();
    for (const [field, problem] of Object.entries(problems)) {
      form.showError(field, problem);
    }
    if (Object.keys(problems).length) {
      this._showInvalid(Object.values(problems)[0]);
      return false;
    }
    if (!this._batch.value.trim() || this._seqLen.validity.badInput) {
      this._estimateMessage.show(
        'Enter a batch size (and a sequence length, or leave it empty for the context length).',
        'error'
      );
      this._showInvalid('enter the estimate inputs');
      return false;
    }
    try {
      const reply = await checkConfig({
        config,
        batch_size: batch,
        seq_len: seqLen,
        dtype: this._dtype.value
      });
      if (!reply.valid) {
        if (request === this._requests) {
          const problem = problemAt(reply.errors || [], form.names, this._lastEdited);
          if (!problem || !form.showError(problem.field, problem.message)) {
            this._estimateMessage.show(reply.message, 'error');
          }
          this._showInvalid(reply.message);
        }
        return false;
      }
      if (request === this._requests) {
        this._setUsable(true);
        this._estimate.show(reply.estimate);
        const e = reply.estimate;
        this._summary.textContent =
          `${formatCount(e.params)} parameters · ${formatCount(e.flops_per_token_train)} ` +
          `training FLOPs/token · ${formatBytes(e.training_bytes)} to train`;
        this._summary.dataset.kind = 'success';
        this._summary.title = '';
      }
      return true;
    } catch (error) {
      if (request === this._requests) {
        const message = errorMessage(error);
        const problem = fieldAtFault(error, form.names, this._lastEdited);
        if (!problem || !form.showError(problem.field, problem.message)) {
          this._estimateMessage.show(message, 'error');
        }
        this._showInvalid(message);
      }
      return false;
    }
  }

  /** Save and Insert act only on a config that validates; the reason shows on hover. */
  private _setUsable(ok: boolean, why = ''): void {
    for (const b of [this._saveButton, this._insertButton]) {
      if (!this._titles.has(b)) this._titles.set(b, b.title);
      b.disabled = !ok;
      b.title = ok ? this._titles.get(b) || '' : `Fix the config first: ${why}`;
    }
  }

  private _showInvalid(message: string): void {
    this._setUsable(false, message);
    this._estimate.stale = true;
    this._summary.textContent = `Invalid: ${message}`;
    this._summary.title = message;
    this._summary.dataset.kind = 'error';
  }

  /** Flag a bad name while it is typed; true when it is usable. */
  private _checkName(): boolean {
    const name = this._name.value.trim();
    const ok = CONFIG_NAME.test(name);
    this._name.classList.toggle('llmlab-mod-invalid', !ok && name !== '');
    if (!ok) {
      this._message.show(
        name
          ? `"${name}" cannot be a config name: use 1-64 letters, digits, '_', '.' or '-', ` +
              'starting with a letter or digit.'
          : 'Enter a name to save the config under.',
        name ? 'error' : 'info'
      );
    } else {
      this._message.clear();
    }
    return ok;
  }

  private async _save(): Promise<void> {
    const name = this._name.value.trim();
    if (!this._checkName() || !(await this._validate())) {
      if (CONFIG_NAME.test(name)) {
        this._message.show(
          'Fix the config before saving (see the messages below).',
          'error'
        );
      }
      return;
    }
    const exists = Object.prototype.hasOwnProperty.call(this._saved, name);
    if (exists && this._replaceName !== name) {
      this._replaceName = name;
      this._message.show(
        `A saved config named "${name}" exists; press Save again to replace it.`,
        'info'
      );
      return;
    }
    const form = this._form!;
    const { config } = form.read();
    if (!config.name || config.name === this._startName) {
      form.set('name', name); // a config saved as "x" is named "x" unless the user named it
      this._startName = name;
    }
    try {
      await saveConfig(name, form.read().config);
      this._replaceName = '';
      this._saved = await savedConfigs();
      this._fillSource();
      this._source.value = `saved:${name}`;
      this._message.show(
        `Saved as "${name}" (configs/${name}.json in the run store).`,
        'success'
      );
    } catch (error) {
      this._message.show(`Not saved: ${errorMessage(error)}`, 'error');
    }
  }

  private async _insert(): Promise<void> {
    if (!(await this._validate())) {
      this._message.show(
        'Fix the config before inserting it (see the messages below).',
        'error'
      );
      return;
    }
    const { config } = this._form!.read();
    try {
      const path = await insertCodeCell(this._lab, () => configCode(config));
      this._message.show(`Inserted a cell into ${path}.`, 'success');
    } catch (error) {
      this._message.show(errorMessage(error), 'error');
    }
  }
}
