// The selected trial of a job page: its parameters, health components and the plots its run wrote (PNG
// files of the job's listing, fetched with the token and shown through blob: URLs).

import { describe, getBlob, getJSON } from './api.js';
import { formatValue, h, notice, stateBadge } from './dom.js';

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

  async function draw(record, plotsFolder, heading) {
    const mine = ++drawing;
    element.hidden = false;
    title.textContent = heading;
    const plots = h('div', { class: 'plots' }, notice('Loading the plots…'));
    body.replaceChildren(...(record ? facts(record) : []), h('h3', {}, 'Run plots'), plots);
    if (record?.state === 'RUNNING') {
      plots.replaceChildren(notice('The run writes its plots when it ends.'));
      return;
    }
    try {
      const { files } = await getJSON(`/jobs/${jobId}/files`, { signal });
      const inFolder = (name) => name.startsWith(plotsFolder) && !name.slice(plotsFolder.length).includes('/');
      const names = files.map((f) => f.name).filter((name) => inFolder(name) && name.endsWith('.png'));
      const blobs = await Promise.all(names.map((name) => getBlob(`/jobs/${jobId}/files/${name}`, { signal })));
      if (mine !== drawing) return;
      revoke();
      urls = blobs.map((blob) => URL.createObjectURL(blob));
      plots.replaceChildren(
        ...(names.length ? [] : [notice('This run wrote no plots.')]),
        ...names.map((name, index) => {
          const label = name.slice(plotsFolder.length, -4).replaceAll('_', ' ');
          const image = h('img', { src: urls[index], alt: `${label} of ${heading.toLowerCase()}` });
          return h('figure', { class: 'run-plot' }, image, h('figcaption', {}, label));
        }),
      );
    } catch (error) {
      if (!signal.aborted && mine === drawing) plots.replaceChildren(notice(describe(error), 'error'));
    }
  }

  return {
    element,
    get selected() {
      return selected;
    },
    /** A single run has no trials: its own plots are shown. */
    job(job) {
      if (job.request.kind === 'run') draw(null, 'sweep/plots/', 'The run');
    },
    select(record) {
      selected = record.number;
      draw(record, `sweep/${record.number}/plots/`, `Trial #${record.number}`);
      title.focus();
      element.scrollIntoView({ block: 'start', behavior: 'smooth' });
    },
    /** The trial ended: its record and plots are final now. */
    changed(record) {
      if (record.number === selected) draw(record, `sweep/${record.number}/plots/`, `Trial #${record.number}`);
    },
    close: () => {
      drawing += 1;
      revoke();
    },
  };
}

function facts(record) {
  const rows = [
    ['State', stateBadge(record.state)],
    ['Value', formatValue(record.value)],
    ['Epochs', String(record.epochs.length)],
    ...(record.error ? [['Error', record.error]] : []),
    ...Object.entries(record.params || {}).map(([name, value]) => [name, formatValue(value)]),
    ...Object.entries(record.health?.components || {}).map(([name, value]) => [`health: ${name}`, formatValue(value)]),
  ];
  return [h('dl', { class: 'facts' }, rows.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]))];
}
