/**
 * Tokens (or words) as text, each coloured by how much attention it gets from the selected
 * tokens ("from") or gives to them ("to"). Hovering previews, clicking selects, shift-click
 * adds to the selection.
 */
import { cssColor, normalise } from './data';

/**
 * What a token looks like on screen: byte-level BPE's markers become spaces, newlines and
 * tabs become arrows, and a token that is only whitespace shows as ␣ (so it can be seen).
 */
export function displayToken(token: string): string {
  const t = token
    .replace(/^Ġ/, ' ')
    .replace(/^▁/, ' ')
    .replace(/Ċ/g, '\n')
    .replace(/ĉ/g, '\t');
  const arrows = (s: string) => s.replace(/\n/g, '↵').replace(/\t/g, '⇥');
  if (t.trim() === '') return arrows(t.replace(/ /g, '␣')) || '∅';
  return arrows(t).replace(/ /g, '\u00a0');
}

export class TokenStrip {
  readonly node: HTMLDivElement;
  private readonly caption: HTMLDivElement;
  private readonly body: HTMLDivElement;
  private spans: HTMLSpanElement[] = [];
  private painted: Float32Array | null = null;
  onHover: (index: number) => void = () => undefined;
  onClick: (index: number, add: boolean, ev: MouseEvent) => void = () => undefined;

  constructor() {
    this.node = document.createElement('div');
    this.node.className = 'llmlab-insp-strip';
    this.caption = document.createElement('div');
    this.caption.className = 'llmlab-insp-caption';
    this.body = document.createElement('div');
    this.body.className = 'llmlab-insp-tokens';
    this.node.append(this.caption, this.body);
    // one listener for all tokens: cheap at thousands of tokens
    this.body.addEventListener('mouseover', ev => {
      const i = this.indexOf(ev.target);
      if (i >= 0) this.onHover(i);
    });
    this.body.addEventListener('mouseleave', () => this.onHover(-1));
    this.body.addEventListener('click', ev => {
      const i = this.indexOf(ev.target);
      if (i >= 0) this.onClick(i, ev.shiftKey || ev.metaKey || ev.ctrlKey, ev);
    });
  }

  private indexOf(target: EventTarget | null): number {
    const el = target as HTMLElement | null;
    return el && el.dataset && el.dataset.i !== undefined ? Number(el.dataset.i) : -1;
  }

  /** Replace the tokens shown. */
  setTokens(tokens: string[], caption: string): void {
    this.caption.textContent = caption;
    const frag = document.createDocumentFragment();
    this.spans = tokens.map((t, i) => {
      const s = document.createElement('span');
      s.className = 'llmlab-insp-token';
      s.dataset.i = String(i);
      s.textContent = displayToken(t) || '\u00a0';
      s.title = `${i}: ${JSON.stringify(t)}`;
      frag.append(s);
      return s;
    });
    this.body.replaceChildren(frag);
    this.painted = null;
  }

  /** Colour each token by `weights` (null clears); outline the selected ones. */
  paint(weights: Float32Array | null, vmax: number, sqrt: boolean, selected: number[]): void {
    const sel = new Set(selected);
    const clear = weights === null && this.painted === null;
    for (let i = 0; i < this.spans.length; i++) {
      const s = this.spans[i];
      const w = weights ? weights[i] : 0;
      const old = this.painted ? this.painted[i] : -1;
      if (!clear && w !== old) {
        const t = normalise(w, vmax, sqrt);
        s.style.background = weights && w > 0 ? cssColor(t) : '';
        s.style.color = t > 0.55 ? '#fff' : '';
        s.title = `${i}: ${JSON.stringify(this.spans[i].textContent)}` +
          (weights ? ` — ${w.toFixed(4)}` : '');
      }
      const on = sel.has(i);
      if (on !== s.classList.contains('llmlab-insp-selected')) {
        s.classList.toggle('llmlab-insp-selected', on);
      }
    }
    this.painted = weights ? weights.slice() : null;
  }

  /** Scroll a token into view (e.g. when it is selected from the heatmap). */
  reveal(index: number): void {
    const s = this.spans[index];
    if (s && typeof s.scrollIntoView === 'function') s.scrollIntoView({ block: 'nearest' });
  }

  set visible(on: boolean) {
    this.node.style.display = on ? '' : 'none';
  }
}
