// The selected trial of a job page (or a single-run job's run): its parameters or metrics, health and the plots
// its run wrote (PNG files of the job's listing, fetched with the token and shown through blob: URLs).

import { describe, getBlob, getJSON } from './api.js';
import { FINISHED, formatValue, h, notice, stateBadge } from './dom.js';

export function trialPanel(jobId, signal) {
  const title = h('h2', { id: 'trial-title', tabindex: '-1' }, 'Trial');
  const body = h('div');
  const element = h('section', { class: 'trial-panel', 'aria-labelledby': 'trial-title', hidden: true }, title, body);
  let selected = null;
  let urls = [];
  let drawing = 0; // the latest draw: an older one's images are dropped

  const revoke = () => {
    urls.forEach((url) => URL.revokeObjectURL(url));
    urls = [];
  };

  /** Draw `heading`, the facts (a promise of [term, value] rows) and the PNGs in `folder` of the listing. */
  async function draw(heading, rows, folder, running) {
    const mine = ++drawing;
    element.hidden = false;
    title.textContent = heading;
    const plots = h('div', { class: 'plots' }, notice(running ? 'The run writes its plots when it ends.' : 'Loading…'));
    const table = h('dl', { class: 'facts' });
    body.replaceChildren(table, h('h3', {}, 'Run plots'), plots);
    try {
      const shown = await rows;
      if (mine !== drawing) return;
      table.replaceChildren(...shown.flatMap(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
      if (running) return;
      const { files } = await getJSON(`/jobs/${jobId}/files`, { signal });
      const inFolder = (name) => name.startsWith(folder) && !name.slice(folder.length).includes('/');
      const names = files.map((f) => f.name).filter((name) => inFolder(name) && name.endsWith('.png'));
      const blobs = await Promise.all(names.map((name) => getBlob(`/jobs/${jobId}/files/${name}`, { signal })));
      if (mine !== drawing) return;
      revoke();
      urls = blobs.map((blob) => URL.createObjectURL(blob));
      plots.replaceChildren(
        ...(names.length ? [] : [notice('This run wrote no plots.')]),
        ...names.map((name, index) => {
          const label = name.slice(folder.length, -4).replaceAll('_', ' ');
          const image = h('img', { src: urls[index], alt: `${label} of ${heading.toLowerCase()}` });
          return h('figure', { class: 'run-plot' }, image, h('figcaption', {}, label));
        }),
      );
    } catch (error) {
      if (!signal.aborted && mine === drawing) plots.replaceChildren(notice(describe(error), 'error'));
    }
  }
  const drawTrial = (record) =>
    draw(`Trial #${record.number}`, trialFacts(record), `sweep/${record.number}/plots/`, record.state === 'RUNNING');

  return {
    element,
    get selected() {
      return selected;
    },
    select(record) {
      selected = record.number;
      drawTrial(record);
      title.focus();
      element.scrollIntoView({ block: 'start', behavior: 'smooth' });
    },
    /** The trial ended: its record and plots are final now. */
    changed(record) {
      if (record.number === selected) drawTrial(record);
    },
    /** A single-run job has no trials: its run's metrics, health and plots (written in sweep/ as it ends). */
    showRun(job) {
      const running = !FINISHED.has(job.state);
      const rows = running ? Promise.resolve([['State', stateBadge(job.state)]]) : runFacts(jobId, signal);
      draw('The run', rows, 'sweep/plots/', running);
    },
    close: () => {
      drawing += 1;
      revoke();
    },
  };
}

async function trialFacts(record) {
  return [
    ['State', stateBadge(record.state)],
    ['Value', formatValue(record.value)],
    ['Epochs', String(record.epochs.length)],
    ...(record.error ? [['Error', record.error]] : []),
    ...Object.entries(record.params || {}).map(([name, value]) => [name, formatValue(value)]),
    ...Object.entries(record.health?.components || {}).map(([name, value]) => [`health: ${name}`, formatValue(value)]),
  ];
}

/** The run's record (sweep/run.json): status, objective, epochs, health, metrics; none when it wrote none. */
async function runFacts(jobId, signal) {
  const { files } = await getJSON(`/jobs/${jobId}/files`, { signal });
  if (!files.some((f) => f.name === 'sweep/run.json')) return [['Record', 'the run wrote no run.json (see job.log)']];
  const run = await getJSON(`/jobs/${jobId}/files/sweep/run.json`, { signal });
  return [
    ['Status', String(run.status)],
    ['Objective', formatValue(run.objective)],
    ['Epochs', formatValue(run.epochs_trained)],
    ['Health', formatValue(run.health?.overall)],
    ...Object.entries(run.metrics || {}).map(([name, value]) => [name, formatValue(value)]),
  ];
}
