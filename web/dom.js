// Building the page's DOM from data, always as text: strings become text nodes, never HTML,
// because much of what the page shows comes from files, models and the visitor (task files,
// corpora, tokens, checkpoint configs). The page's scripts use this instead of innerHTML.

/** A DOM element with attributes and children (strings and numbers become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'style') e.style.cssText = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children.filter((c) => c !== null && c !== undefined).map((c) => (typeof c === 'number' ? String(c) : c)));
  return e;
}

/** `<option>`s for a select, one per label. */
export const options = (labels) => labels.map((l) => el('option', {}, String(l)));
