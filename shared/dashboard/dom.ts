/// <reference lib="dom" />
// Building and filling the dashboard's elements. Every text goes in as a text node, textContent
// or an attribute value, never through anything that parses markup (innerHTML and the like):
// audit messages in the data are user-influenced. Runs in the browser: script.ts embeds this
// factory's source, so it may use no import and no module-level value at run time.

type Attributes = Record<string, string | number | boolean | null | undefined>;
type Children = ReadonlyArray<Node | string>;
/** One row of a facts list: label, data-testid of the value, value, whether to mark it bad. */
type Fact = readonly [label: string, testid: string, value: string, bad?: boolean];

export function dashboardDom() {
  const SVG_NS = 'http://www.w3.org/2000/svg';

  /** The page's element with this data-testid; the markup has every one the client asks for. */
  function byTestId<E extends Element = HTMLElement>(testid: string): E {
    const node = document.querySelector<E>(`[data-testid="${testid}"]`);
    if (!node) throw new Error(`the page has no [data-testid="${testid}"]`);
    return node;
  }
  /** Null, undefined and false leave an attribute out. */
  function setAll(node: Element, attrs: Attributes, children: Children): void {
    for (const [key, value] of Object.entries(attrs)) {
      if (value !== null && value !== undefined && value !== false) {
        node.setAttribute(key, String(value));
      }
    }
    for (const child of children) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }
  function el<K extends keyof HTMLElementTagNameMap>(
    tag: K,
    attrs: Attributes = {},
    children: Children = [],
  ): HTMLElementTagNameMap[K] {
    const node = document.createElement(tag);
    setAll(node, attrs, children);
    return node;
  }
  function svg<K extends keyof SVGElementTagNameMap>(
    tag: K,
    attrs: Attributes = {},
    children: Children = [],
  ): SVGElementTagNameMap[K] {
    const node = document.createElementNS(SVG_NS, tag);
    setAll(node, attrs, children);
    return node;
  }
  function clear<N extends Node>(node: N): N {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }
  function text(testid: string, value: string): void {
    byTestId(testid).textContent = value;
  }
  /** Replaces a table's body with rows, or with one row saying empty when there are none. */
  function rows(testid: string, list: readonly Node[], empty: string, columns: number): void {
    const table = byTestId<HTMLTableElement>(testid);
    const body = clear(table.tBodies[0] ?? table.createTBody());
    if (!list.length) {
      body.appendChild(el('tr', {}, [el('td', { colspan: columns, class: 'empty' }, [empty])]));
    }
    for (const row of list) body.appendChild(row);
  }
  function facts(testid: string, pairs: readonly Fact[]): void {
    const list = clear(byTestId(testid));
    for (const [label, valueTestid, value, bad] of pairs) {
      list.appendChild(el('dt', {}, [label]));
      list.appendChild(
        el('dd', { 'data-testid': valueTestid, class: bad ? 'bad' : null }, [value]),
      );
    }
  }
  return { byTestId, el, svg, clear, text, rows, facts };
}

export type DashboardDom = ReturnType<typeof dashboardDom>;
