// The parts of a job page drawn from what the page knows (its job record and the trials folded from events):
// the facts, the best trial, its copyable command and the progress charts.

import { barChart, lineChart } from './charts.js';
import { formatDuration, formatTime, formatValue, h, present, progressBar, stateBadge } from './dom.js';

/** The job's state line, trials done and facts (dataset, model, objective, ...). */
export function jobFacts(job, trials, direction) {
  const request = job.request;
  const finished = [...trials.values()].filter((t) => t.state !== 'RUNNING' && !t.interrupted).length;
  const [done, total] = trialsDone(job, finished);
  const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
  const health = request.mode === 'health' ? `, w=${request.health_weight}` : '';
  const search = `${request.trials}, ${request.sampler} sampler, pruner ${request.pruner}`;
  const facts = [
    ['Dataset', request.dataset],
    ['Model', request.model],
    ['Objective', `${request.objective} (${direction}), mode ${request.mode}${health}`],
    ['Trials', request.kind === 'run' ? 'a single run' : search],
    ['Epochs', request.max_epochs ?? "the model's budget"],
    ['Executor', request.executor],
    ['Started', formatTime(job.started_at)],
    ['Duration', job.started_at ? formatDuration((end - Date.parse(job.started_at)) / 1000) : '–'],
  ];
  const stopping = job.stop_requested && job.state === 'running' ? ' (stopping)' : '';
  return [
    h('p', { class: 'state-line' }, stateBadge(job.state), job.message ? ` ${job.message}` : '', stopping),
    h(
      'div',
      { class: 'progress-line' },
      'Trials done ',
      progressBar(done, total, 'trials done'),
    ),
    h('dl', { class: 'facts' }, facts.map(([term, value]) => [h('dt', {}, term), h('dd', {}, String(value))])),
  ];
}

/** [done, total] trials of a job; a single run counts as one trial, done once it completed. */
export function trialsDone(job, finishedSeen = 0) {
  if (job.request.kind === 'run') return [Number(job.state === 'completed'), 1];
  return [Math.max(finishedSeen, job.progress?.done ?? 0), job.progress?.n_trials ?? job.request.trials];
}

/** The best trial (GET /jobs/{id}/best-trial): its value (exact in data-value) and command. */
export function bestTrial(best) {
  if (!best) return [h('h2', { id: 'best-title' }, 'Best trial'), h('p', {}, 'No completed trial yet.')];
  const value = best.value ?? null;
  const shown = value === null ? (best.values || []).map(formatValue).join(', ') : formatValue(value);
  return present([
    h('h2', { id: 'best-title' }, 'Best trial'),
    h(
      'p',
      {},
      'Value ',
      h('strong', { id: 'best-value', 'data-value': value === null ? '' : String(value) }, shown),
      ` (trial #${best.number})`,
    ),
    best.command && commandBox(best.command),
  ]);
}

function commandBox(command) {
  const code = h('code', { id: 'best-command' }, command);
  const said = h('span', { class: 'sub', 'aria-live': 'polite' });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(command);
      said.textContent = ' Copied.';
    } catch {
      const range = document.createRange(); // no clipboard access (permissions): select it for Ctrl+C
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      said.textContent = ' Selected: press Ctrl+C to copy.';
    }
  };
  return h(
    'div',
    { class: 'command-box' },
    h('p', {}, 'Its command (runs the trial again on its own):'),
    h('pre', { class: 'command' }, code),
    h('button', { type: 'button', class: 'secondary', id: 'copy-command', onclick: copy }, 'Copy command'),
    said,
  );
}

/** Best so far, the running (else latest) trial's learning curve, health per trial, importances (at the end). */
export function progressFigures({ trials, direction, objective, importances }, width) {
  const ordered = [...trials.values()].sort((a, b) => a.number - b.number);
  const done = ordered.filter((t) => t.state === 'COMPLETE' && t.value !== null && t.value !== undefined);
  const better = direction === 'minimize' ? Math.min : Math.max;
  let best = null;
  const bestSoFar = done.map((t) => [t.number, (best = best === null ? t.value : better(best, t.value))]);
  const running = ordered.filter((t) => t.state === 'RUNNING').at(-1);
  const shown = running || ordered.filter((t) => t.epochs.length).at(-1);
  const curve = (t, tone, name) => ({ name, tone, style: 'line', points: t.epochs.map((e) => [e.epoch, e.value]) });
  const others = ordered.filter((t) => t !== shown && t.epochs.length).slice(-10); // context, in grey
  const measured = ordered.filter((t) => t.health?.overall !== null && t.health?.overall !== undefined);
  const health = measured.map((t) => [t.number, t.health.overall]);
  const curveTitle = shown ? `Learning curve: trial #${shown.number}${shown === running ? ' (running)' : ''}` : '';
  const figures = [
    lineChart({
      title: `Best so far (${direction})`,
      xLabel: 'trial',
      yLabel: objective,
      width,
      emptyText: 'No completed trial yet.',
      series: [
        { name: 'trial value', tone: 'muted', style: 'dots', points: done.map((t) => [t.number, t.value]) },
        { name: 'best so far', tone: 'main', style: 'step', points: bestSoFar },
      ],
    }),
    lineChart({
      title: curveTitle || 'Learning curve',
      xLabel: 'epoch',
      yLabel: 'reported value',
      width,
      emptyText: 'No epoch reported yet.',
      series: [
        ...others.map((t) => curve(t, 'faint', null)),
        ...(shown ? [curve(shown, 'accent', `trial #${shown.number}`)] : []),
      ],
    }),
    lineChart({
      title: 'Health per trial (overall)',
      xLabel: 'trial',
      yLabel: 'health',
      width,
      yDomain: [0, 1],
      emptyText: 'No health measured yet (the health callback reports it when a trial ends).',
      series: [{ name: 'overall health', tone: 'main', style: 'dots', points: health }],
    }),
  ];
  if (importances === null) {
    const waiting = h('p', { class: 'chart-empty' }, 'Shown when the job ends.');
    figures.push(h('figure', { class: 'chart' }, h('figcaption', {}, 'Parameter importances'), waiting));
  } else {
    const bars = Object.entries(importances)
      .map(([label, value]) => ({ label, value }))
      .sort((a, b) => b.value - a.value);
    const emptyText = 'No importances: they need two or more completed trials.';
    figures.push(barChart({ title: 'Parameter importances', bars, width, emptyText }));
  }
  return figures;
}
