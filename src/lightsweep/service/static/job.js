// A job's page, live from its event stream (no polling): the page folds the job's events (job states, trials
// started, each epoch, trials finished/pruned/failed) into its trial table and charts. A few reads are made
// when an event says something changed: the job's record, the best trial, the importances at the end.

import { api, describe, followEvents, getBlob, getJSON } from './api.js';
import { FINISHED, RESUMABLE, formatDuration, formatValue, h, notice, present, stateBadge } from './dom.js';
import { bestTrial, jobFacts, progressFigures } from './summary.js';
import { trialPanel } from './trial.js';

const FINAL_STATES = { trial_finished: 'COMPLETE', trial_pruned: 'PRUNED', trial_failed: 'FAIL' };
const COLUMNS = ['state', 'value', 'health', 'epochs', 'duration'];
// Seconds from the service storing an epoch event to this page showing it (read by the browser test).
window.__epochDelays = window.__epochDelays || [];
let objectives = null; // GET /objectives, read once: the direction of a job's objective

export function jobView(main, id) {
  const controller = new AbortController();
  const { signal } = controller;
  // What the page knows: the job's record, its trials (number -> record with epochs), best trial, importances.
  const page = { job: null, direction: 'maximize', trials: new Map(), best: null, importances: null };
  const since = Date.now() / 1000; // events stored from now on arrive live (earlier ones are replayed)
  let unshown = []; // the `at` of live epoch events not yet drawn
  let lastEventId = null;
  let streaming = false;

  const header = h('div', { class: 'job-header' });
  const commandDetails = h('details', {}, h('summary', {}, 'Command'), h('pre', { class: 'command' }, h('code')));
  const actionStatus = h('div', { class: 'action-status', 'aria-live': 'polite' });
  const live = h('p', { class: 'live', role: 'status' }, 'Connecting to the event stream…');
  const button = (id, text, onclick, style = '') => h('button', { type: 'button', id, class: style, onclick }, text);
  const buttons = {
    stop: button('stop-job', 'Stop', () => act('stop')),
    resume: button('resume-job', 'Resume', () => act('resume')),
    download: button('download-job', 'Download ZIP', download, 'secondary'),
    dashboard: button('optuna-dashboard', 'optuna-dashboard', dashboard, 'secondary'),
  };
  const bestBox = h('section', { class: 'best', 'aria-labelledby': 'best-title' });
  const charts = h('div', { class: 'charts' });
  const trialsBody = h('tbody');
  const rows = new Map(); // trial number -> {row, select, cells}: kept, so focus stays on a row's button
  const panel = trialPanel(id, signal);
  const heads = ['Trial', 'State', 'Value', 'Health', 'Epochs', 'Duration'].map((t) => h('th', { scope: 'col' }, t));
  const sweepParts = [
    bestBox,
    h('section', { 'aria-labelledby': 'charts-title' }, h('h2', { id: 'charts-title' }, 'Progress'), charts),
    h(
      'section',
      { 'aria-labelledby': 'trials-title' },
      h('h2', { id: 'trials-title' }, 'Trials'),
      h(
        'div',
        { class: 'scroll', role: 'region', 'aria-label': 'Trials table', tabindex: '0' },
        h('table', { class: 'trials', id: 'trials' }, h('thead', {}, h('tr', {}, heads)), trialsBody),
      ),
    ),
  ]; // a single run has none of these: its panel shows the run
  main.append(
    h('h1', { tabindex: '-1' }, `Job ${id.slice(0, 8)}`),
    header,
    h('div', { class: 'actions' }, Object.values(buttons)),
    actionStatus,
    live,
    ...sweepParts,
    panel.element,
  );

  // -- events -----------------------------------------------------------------------------------------
  const trial = (number) => {
    if (!page.trials.has(number)) page.trials.set(number, { number, state: 'RUNNING', epochs: [] });
    return page.trials.get(number);
  };
  function onEvent(event) {
    lastEventId = event.id;
    const data = JSON.parse(event.data);
    if (event.event === 'job') {
      page.job.state = data.state;
      page.job.message = data.message;
      later(rereadJob, 200);
      if (FINISHED.has(data.state)) later(ended, 300);
    } else if (event.event === 'trial_started') {
      Object.assign(trial(data.number), { state: 'RUNNING', startedAt: data.at });
    } else if (event.event === 'epoch') {
      trial(data.number).epochs.push({ epoch: data.epoch, value: data.value });
      if (data.at >= since) unshown.push(data.at);
    } else if (FINAL_STATES[event.event]) {
      const record = trial(data.number);
      Object.assign(record, data, { epochs: record.epochs });
      later(rereadBest, 300);
      panel.changed(record);
    }
    later(render, 30);
  }
  const showStatus = (status) => {
    live.textContent = status === 'live' ? 'Live: updates as the job runs.' : 'Connection lost: reconnecting…';
  };
  async function stream() {
    if (streaming) return;
    streaming = true;
    try {
      const finished = () => FINISHED.has(page.job.state);
      await followEvents(`/jobs/${id}/events`, { onEvent, onStatus: showStatus, finished, signal, lastEventId });
      if (!signal.aborted) live.textContent = `The job is ${page.job.state}: no more updates.`;
    } catch (error) {
      if (!signal.aborted) live.replaceChildren(notice(describe(error), 'error'));
    } finally {
      streaming = false;
    }
  }

  // -- reads an event asks for (each at most once per burst of events) ---------------------------------
  const timers = {};
  function later(task, ms) {
    if (!timers[task.name]) timers[task.name] = setTimeout(() => ((timers[task.name] = null), task()), ms);
  }
  const failed = (error) => signal.aborted || actionStatus.replaceChildren(notice(describe(error), 'error'));
  function rereadJob() {
    getJSON(`/jobs/${id}`, { signal })
      .then((job) => ((page.job = job), render()))
      .catch(failed);
  }
  function rereadBest() {
    getJSON(`/jobs/${id}/best-trial`, { signal })
      .then((answer) => ((page.best = answer.trial), render()))
      .catch(failed);
  }
  async function ended() {
    if (page.job.request.kind === 'run') return panel.showRun(page.job);
    rereadBest();
    // study.json gets the parameter importances from the sweep's report, written as the sweep ends
    try {
      const { files } = await getJSON(`/jobs/${id}/files`, { signal });
      const study = files.some((f) => f.name === 'sweep/study.json')
        ? await getJSON(`/jobs/${id}/files/sweep/study.json`, { signal })
        : {}; // a sweep that failed before it began
      const all = study.importances || {};
      page.importances = all[study.objective?.name] || Object.values(all)[0] || {};
      render();
    } catch (error) {
      failed(error);
    }
  }

  // -- actions ----------------------------------------------------------------------------------------
  const say = (text, kind) => actionStatus.replaceChildren(notice(text, kind));
  async function act(what) {
    buttons[what].disabled = true;
    say(what === 'stop' ? 'Stopping the job…' : 'Resuming the job…');
    try {
      page.job = await api('POST', `/jobs/${id}/${what}`, undefined, { signal });
      say(what === 'stop' ? 'Stop requested.' : 'Resumed: the job is queued.');
      if (what === 'resume') stream(); // the stream ended with the job; its events go on from the last one
    } catch (error) {
      if (!signal.aborted) say(describe(error), 'error');
    }
    render();
  }
  async function download() {
    buttons.download.disabled = true;
    say('Preparing the ZIP…');
    try {
      const url = URL.createObjectURL(await getBlob(`/jobs/${id}/download`, { signal }));
      const name = `lightsweep-${id}.zip`;
      const link = h('a', { href: url, download: name, hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      say(`Downloaded ${name}.`);
    } catch (error) {
      if (!signal.aborted) say(describe(error), 'error');
    } finally {
      buttons.download.disabled = false;
    }
  }
  async function dashboard() {
    buttons.dashboard.disabled = true;
    try {
      const { url } = await api('POST', `/jobs/${id}/optuna-dashboard`, undefined, { signal });
      const attributes = { href: url, target: '_blank', rel: 'noopener noreferrer', class: 'button secondary' };
      const link = h('a', { ...attributes, id: 'optuna-dashboard-link' }, 'Open optuna-dashboard ↗');
      buttons.dashboard.replaceWith(link);
      link.focus();
    } catch (error) {
      buttons.dashboard.disabled = false;
      if (!signal.aborted) say(describe(error), 'error');
    }
  }

  // -- drawing ----------------------------------------------------------------------------------------
  let drawnBest;
  function render() {
    if (!page.job) return;
    const job = page.job;
    buttons.stop.disabled = !['queued', 'running'].includes(job.state) || job.stop_requested;
    buttons.resume.disabled = !RESUMABLE.has(job.state);
    for (const part of [buttons.dashboard, ...sweepParts]) part.hidden = job.request.kind === 'run';
    commandDetails.querySelector('code').textContent = job.command;
    renderClock();
    if (drawnBest !== page.best) bestBox.replaceChildren(...bestTrial((drawnBest = page.best)));
    const wide = charts.clientWidth >= 760;
    const width = Math.max(260, wide ? Math.floor((charts.clientWidth - 16) / 2) : charts.clientWidth) - 2;
    const objective = job.request.objective;
    charts.replaceChildren(...progressFigures({ ...page, objective }, width));
    const now = Date.now() / 1000;
    for (const at of unshown) window.__epochDelays.push(now - at);
    unshown = [];
  }
  /** What changes with time alone: the facts (the job's duration) and the trial rows (running durations). */
  function renderClock() {
    header.replaceChildren(...jobFacts(page.job, page.trials, page.direction), commandDetails);
    const end = FINISHED.has(page.job.state) ? Date.parse(page.job.finished_at) / 1000 : Date.now() / 1000;
    for (const record of [...page.trials.values()].sort((a, b) => a.number - b.number)) {
      const { row, select, cells } = rows.get(record.number) || addRow(record.number);
      row.dataset.state = record.state;
      select.setAttribute('aria-pressed', String(panel.selected === record.number));
      const running = record.state === 'RUNNING' && record.startedAt;
      const error = record.error && h('span', { class: 'sub' }, ` ${record.error}`);
      cells[0].replaceChildren(...present([stateBadge(record.state), error]));
      cells[1].textContent = formatValue(record.value);
      cells[1].dataset.value = record.value ?? '';
      cells[2].textContent = formatValue(record.health?.overall);
      cells[3].textContent = String(record.epochs.length);
      cells[4].textContent = formatDuration(record.duration_s ?? (running ? end - record.startedAt : null));
    }
  }
  function addRow(number) {
    const label = `Trial ${number}: show its plots and parameters`;
    const choose = () => {
      panel.select(page.trials.get(number));
      render();
    };
    const select = h('button', { type: 'button', class: 'link', 'aria-label': label, onclick: choose }, `#${number}`);
    const cells = COLUMNS.map((name) => h('td', { 'data-label': name, 'data-col': name }));
    const row = h('tr', { 'data-number': number }, h('td', { 'data-label': 'trial' }, select), cells);
    rows.set(number, { row, select, cells });
    trialsBody.append(row);
    return rows.get(number);
  }

  // -- start ------------------------------------------------------------------------------------------
  const resized = new ResizeObserver(() => page.job && later(render, 100));
  resized.observe(charts);
  const clock = setInterval(() => page.job && !FINISHED.has(page.job.state) && renderClock(), 1000);
  Promise.all([getJSON(`/jobs/${id}`, { signal }), objectives || getJSON('/objectives', { signal })])
    .then(([job, known]) => {
      objectives = known;
      page.job = job;
      page.direction = known.objectives.find((o) => o.name === job.request.objective)?.direction || 'maximize';
      if (job.request.kind === 'run') panel.showRun(job);
      render();
      stream();
      rereadBest(); // before the replayed events ask for it: a finished job shows its best at once
    })
    .catch((error) => signal.aborted || header.replaceChildren(notice(describe(error), 'error')));

  return {
    close: () => {
      controller.abort();
      clearInterval(clock);
      resized.disconnect();
      Object.values(timers).forEach(clearTimeout);
      panel.close();
    },
  };
}
