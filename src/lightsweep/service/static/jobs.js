// The Jobs list: state, progress (trials done / total), best value, started, duration; newest first. Rows of
// unfinished jobs follow those jobs' event streams (a few at once: a browser keeps about six connections to
// one server, and the page needs some for itself), so they change as the jobs do, without polling.

import { describe, followEvents, getJSON } from './api.js';
import {
  FINISHED,
  formatDuration,
  formatTime,
  formatValue,
  h,
  notice,
  progressBar,
  secondsBetween,
  stateBadge,
} from './dom.js';
import { trialsDone } from './summary.js';

const SHOWN = 50;
const FOLLOWED = 3;

export function jobsView(main) {
  const controller = new AbortController();
  const { signal } = controller;
  const filter = h(
    'select',
    { id: 'state-filter', onchange: () => load() },
    h('option', { value: '' }, 'all'),
    ['queued', 'running', 'completed', 'failed', 'stopped', 'interrupted'].map((s) => h('option', { value: s }, s)),
  );
  const status = h('div');
  const body = h('tbody');
  const table = h(
    'table',
    { class: 'jobs', id: 'jobs' },
    h('caption', { class: 'visually-hidden' }, 'Jobs, newest first'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Job', 'State', 'Trials done', 'Best value', 'Started', 'Duration'].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    body,
  );
  main.append(
    h(
      'div',
      { class: 'title-row' },
      h('h1', { tabindex: '-1' }, 'Jobs'),
      h('a', { class: 'button', href: '#/new' }, 'New job'),
    ),
    h(
      'div',
      { class: 'toolbar' },
      h('label', { for: 'state-filter' }, 'State '),
      filter,
      h('button', { type: 'button', class: 'secondary', onclick: () => load() }, 'Refresh'),
    ),
    status,
    h('div', { class: 'scroll', role: 'region', 'aria-label': 'Jobs table', tabindex: '0' }, table),
  );

  const rows = new Map(); // job id -> {job, row}
  let followers = new AbortController();
  const render = (job) => {
    const entry = rows.get(job.id);
    const cells = jobCells(job);
    entry.row.replaceChildren(...cells);
    entry.job = job;
  };
  const clock = setInterval(() => {
    for (const { job } of rows.values()) if (job.state === 'running') render(job);
  }, 1000);

  async function load() {
    followers.abort();
    followers = new AbortController();
    const state = filter.value ? `&state=${filter.value}` : '';
    try {
      const { total } = await getJSON(`/jobs?limit=1${state}`, { signal });
      const page = await getJSON(`/jobs?offset=${Math.max(0, total - SHOWN)}&limit=${SHOWN}${state}`, { signal });
      const jobs = page.jobs.reverse();
      rows.clear();
      body.replaceChildren(
        ...jobs.map((job) => {
          const row = h('tr', { 'data-job': job.id });
          rows.set(job.id, { job, row });
          render(job);
          return row;
        }),
      );
      const counted = `${total} job${total === 1 ? '' : 's'}${total > SHOWN ? `, the newest ${SHOWN} shown` : ''}.`;
      status.replaceChildren(notice(jobs.length ? counted : 'No jobs yet: start one with New job.'));
      const unfinished = jobs.filter((job) => !FINISHED.has(job.state));
      unfinished.slice(0, FOLLOWED).forEach((job) => follow(job.id, followers.signal));
    } catch (error) {
      if (!signal.aborted) status.replaceChildren(notice(describe(error), 'error'));
    }
  }

  /** Re-read a job when its stream says something happened (at most once per half second). */
  function follow(id, followSignal) {
    let timer = null;
    const reread = () => {
      timer = null;
      getJSON(`/jobs/${id}`, { signal: followSignal })
        .then((job) => rows.has(id) && render(job))
        .catch(() => {}); // the next event reads it again
    };
    followEvents(`/jobs/${id}/events`, {
      onEvent: (event) => {
        if (event.event !== 'epoch' && !timer) timer = setTimeout(reread, 500);
      },
      finished: () => FINISHED.has(rows.get(id)?.job.state),
      signal: followSignal,
    }).catch(() => {});
  }

  load();
  return {
    close: () => {
      controller.abort();
      followers.abort();
      clearInterval(clock);
    },
  };
}

function jobCells(job) {
  const request = job.request;
  const [done, total] = trialsDone(job);
  const ended = job.finished_at;
  const short = job.id.slice(0, 8);
  const message = job.message && h('span', { class: 'sub' }, ` ${job.message}`);
  return [
    h(
      'td',
      { 'data-label': 'Job' },
      h('a', { href: `#/jobs/${job.id}` }, short),
      h('span', { class: 'sub' }, ` ${request.dataset} · ${request.model} · ${request.objective}`),
    ),
    h('td', { 'data-label': 'State' }, stateBadge(job.state), message),
    h('td', { 'data-label': 'Trials done' }, progressBar(done, total, `trials done of ${short}`)),
    h('td', { 'data-label': 'Best value', class: 'num' }, formatValue(job.progress?.best_value)),
    h('td', { 'data-label': 'Started' }, formatTime(job.started_at)),
    h('td', { 'data-label': 'Duration', class: 'num' }, formatDuration(secondsBetween(job.started_at, ended))),
  ];
}
