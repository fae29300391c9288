import { describe, expect, it } from 'vitest';

import { configCode, pythonLiteral, runCode, snapshotCode } from '../src/panels/python';

describe('pythonLiteral', () => {
  it('writes JSON values as Python', () => {
    expect(pythonLiteral(null)).toBe('None');
    expect(pythonLiteral(true)).toBe('True');
    expect(pythonLiteral([1, false, 'a"b'])).toBe('[1, False, "a\\"b"]');
    expect(pythonLiteral(NaN)).toBe('float("nan")');
    expect(pythonLiteral(-Infinity)).toBe('float("-inf")');
    expect(pythonLiteral({})).toBe('{}');
    expect(pythonLiteral({ bias: false, d_ff: null })).toBe('{\n    "bias": False,\n    "d_ff": None,\n}');
  });

  it('indents nested objects', () => {
    expect(pythonLiteral({ a: { b: 1 } })).toBe('{\n    "a": {\n        "b": 1,\n    },\n}');
  });
});

describe('cells', () => {
  it('builds a config and its model', () => {
    expect(configCode({ n_layer: 2 })).toBe(
      'import llmlab\n\ncfg = llmlab.ModelConfig.from_dict({\n    "n_layer": 2,\n})\n' +
        'model = llmlab.build_model(cfg)'
    );
  });

  it('opens a run, naming the store only when it is not the default', () => {
    expect(runCode('20261123-071800-3f9a2c')).toContain('llmlab.runs.get("20261123-071800-3f9a2c")\n');
    expect(runCode('20261123-071800-3f9a2c', '../runs')).toContain(
      'llmlab.runs.get("20261123-071800-3f9a2c", store="../runs")'
    );
  });

  it('loads a snapshot and shows it in the inspector widget', () => {
    expect(snapshotCode('20261123-071800-3f9a2c', 'tired-animal', '/data/runs')).toBe(
      'import llmlab\n\n' +
        'run = llmlab.runs.get("20261123-071800-3f9a2c", store="/data/runs")\n' +
        'cap = llmlab.attention.load_snapshot(run, "tired-animal")\n' +
        'cap.show()'
    );
  });
});
