// Small helpers shared by the views: building elements (text is always set as text, never parsed as HTML),
// the job states, and how numbers, times and durations read on the page.

export const FINISHED = new Set(['completed', 'failed', 'stopped', 'interrupted']);
export const RESUMABLE = new Set(['failed', 'stopped', 'interrupted']);

/** h('button', {type: 'button', onclick: f, class: 'x'}, 'text', child, ...) */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else if (name === 'for') element.htmlFor = value;
    else if (name === 'value') element.value = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  element.append(...present(children));
  return element;
}

/** Children as append() takes them: nested lists flattened, null/undefined/false left out. */
export function present(children) {
  return children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false);
}

/** A value as it reads in a table: 4 significant digits; '–' for none. */
export function formatValue(value) {
  if (value === null || value === undefined) return '–';
  if (typeof value !== 'number') return String(value);
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  return magnitude !== 0 && (magnitude < 1e-3 || magnitude >= 1e5) ? value.toExponential(3) : value.toPrecision(4);
}

export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function formatTime(iso) {
  if (!iso) return '–';
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

/** Seconds between two ISO times, or from `start` until now while `end` is null. */
export function secondsBetween(start, end) {
  if (!start) return null;
  return ((end ? Date.parse(end) : Date.now()) - Date.parse(start)) / 1000;
}

export function stateBadge(state) {
  return h('span', { class: `badge state-${state}` }, state);
}

export function progressBar(done, total, label) {
  const bar = h('progress', { max: total || 1, value: total ? Math.min(done, total) : 0, 'aria-label': label });
  return h('span', { class: 'progress' }, bar, h('span', { class: 'progress-text' }, `${done} / ${total ?? '?'}`));
}

/** A short, labelled message for an area of the page (role=alert for errors). */
export function notice(text, kind = 'info') {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, text);
}
