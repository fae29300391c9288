/**
 * Python source for the cells the panels insert into notebooks.
 *
 *   pythonLiteral({ bias: false, d_ff: null })  // '{\n    "bias": False,\n    "d_ff": None,\n}'
 *   runCode('20261123-071800-3f9a2c')           // 'import llmlab\n\nrun = llmlab.runs.get(...)...'
 *   snapshotCode('20261123-071800-3f9a2c', 'tired-animal')   // '...load_snapshot(run, ...)...'
 */
import type { Config } from '../api';

const INDENT = '    ';

/** A JSON value as a Python literal: true/false/null become True/False/None. */
export function pythonLiteral(value: unknown, indent = ''): string {
  if (value === null || value === undefined) {
    return 'None';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value === 'number') {
    if (Number.isFinite(value)) {
      return String(value);
    }
    return isNaN(value)
      ? 'float("nan")'
      : `float("${value > 0 ? '' : '-'}inf")`;
  }
  if (typeof value === 'string') {
    // JSON string escapes (\" \\ \n \t \uXXXX) are all valid in Python strings.
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(item => pythonLiteral(item, indent)).join(', ')}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>);
  if (!entries.length) {
    return '{}';
  }
  const inner = indent + INDENT;
  const lines = entries.map(
    ([key, item]) =>
      `${inner}${JSON.stringify(key)}: ${pythonLiteral(item, inner)},`
  );
  return `{\n${lines.join('\n')}\n${indent}}`;
}

/** A cell that rebuilds `config` and the model it describes. */
export function configCode(config: Config): string {
  return (
    'import llmlab\n\n' +
    `cfg = llmlab.ModelConfig.from_dict(${pythonLiteral(config)})\n` +
    'model = llmlab.build_model(cfg)'
  );
}

/**
 * A cell that opens run `id` and shows its metrics. `store` is the run store as the
 * kernel should see it; leave it out when it is the default `llmlab-runs` beside the notebook.
 */
export function runCode(id: string, store?: string): string {
  const where = store ? `, store=${pythonLiteral(store)}` : '';
  return (
    'import llmlab\n\n' +
    `run = llmlab.runs.get(${pythonLiteral(id)}${where})\n` +
    'run.metrics'
  );
}

/**
 * A cell that loads attention snapshot `name` of run `id` and shows it in the notebook's
 * inspector widget; `store` as for `runCode`.
 */
export function snapshotCode(id: string, name: string, store?: string): string {
  const where = store ? `, store=${pythonLiteral(store)}` : '';
  return (
    'import llmlab\n\n' +
    `run = llmlab.runs.get(${pythonLiteral(id)}${where})\n` +
    `cap = llmlab.attention.load_snapshot(run, ${pythonLiteral(name)})\n` +
    'cap.show()'
  );
}
