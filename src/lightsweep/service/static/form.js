// The New job form: choices from the service (GET /datasets, /objectives, /modes, /health and the request
// schema in /openapi.json), checked by the server itself (POST /optimize?validate_only=true) as the fields
// change and before submitting; each message the server sends is shown beside the field it names.

import { api, ApiError, describe, getJSON } from './api.js';
import { h, notice } from './dom.js';

// The server names some fields by the config key they set (messages from composing the job's config).
const KEY_FIELDS = {
  'objective.name': 'objective',
  'objective.mode': 'mode',
  'objective.health_weight': 'health_weight',
  'trainer.max_epochs': 'max_epochs',
  'hydra.sweeper.n_trials': 'trials',
  'hydra/sweeper/pruner': 'pruner',
  'hydra/sweeper/sampler': 'sampler',
  'hydra.launcher.fallback_local': 'fallback_local',
};
const OVERRIDE_PREFIXES = ['overrides.', 'model.', 'dataset.', 'trainer.'];
const SWEEP_ONLY = ['trials', 'pruner', 'sampler', 'executor']; // a single run takes none of these
const EXECUTOR_PROBE = { local: 'local', submitit_local: 'submitit', slurm: 'slurm' }; // /health's names

export function newJobView(main) {
  const controller = new AbortController();
  const status = h('div', { class: 'form-status' });
  main.append(h('h1', { tabindex: '-1' }, 'New job'), status);
  status.append(notice('Loading the datasets and choices…'));
  catalogue(controller.signal)
    .then((choices) => {
      status.replaceChildren();
      main.append(jobForm(choices, controller.signal));
    })
    .catch((error) => {
      if (!controller.signal.aborted) status.replaceChildren(notice(describe(error), 'error'));
    });
  return { close: () => controller.abort() };
}

async function catalogue(signal) {
  const [datasets, objectives, modes, schema, health] = await Promise.all([
    getJSON('/datasets', { signal }),
    getJSON('/objectives', { signal }),
    getJSON('/modes', { signal }),
    fetch('/openapi.json', { signal }).then((r) => r.json()),
    fetch('/health', { signal }).then((r) => r.json()),
  ]);
  const request = schema.components.schemas.OptimizeRequest.properties;
  return {
    datasets: datasets.datasets,
    objectives: objectives.objectives.filter((o) => request.objective.enum.includes(o.name)),
    modes: modes.modes,
    request,
    executors: health.executors,
  };
}

function jobForm(choices, signal) {
  const { request } = choices;
  const fields = {};
  const errors = {};
  const hints = {};
  const field = (name, label, control, hint = '') => {
    control.id = `field-${name}`;
    control.name = name;
    hints[name] = h('p', { class: 'hint', id: `hint-${name}` }, hint);
    errors[name] = h('p', { class: 'field-error', id: `error-${name}`, 'aria-live': 'polite' });
    control.setAttribute('aria-describedby', `hint-${name} error-${name}`);
    fields[name] = control;
    const caption = h('label', { for: control.id }, label);
    return h('div', { class: 'field', 'data-field': name }, caption, control, hints[name], errors[name]);
  };
  const select = (options, value) =>
    h('select', {}, options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
  const number = (attributes) => h('input', { type: 'number', inputmode: 'decimal', ...attributes });
  const enumOf = (name) => request[name].enum.map((v) => [v, v]);

  const datasetOptions = [['', 'Choose a dataset'], ...choices.datasets.map((d) => [d.name, datasetLabel(d)])];
  const executorOptions = request.executor.enum.map((name) => {
    const probe = choices.executors[EXECUTOR_PROBE[name]];
    return [name, probe && !probe.available ? `${name} (not answering now)` : name];
  });
  const form = h(
    'form',
    { class: 'job-form', novalidate: true, 'aria-label': 'New job' },
    h(
      'div',
      { class: 'columns' },
      field('dataset', 'Dataset', select(datasetOptions, '')),
      field('kind', 'Kind', select([['sweep', 'sweep (an Optuna search)'], ['run', 'a single run']], 'sweep')),
      field('model', 'Model', select(enumOf('model'), request.model.default), request.model.description),
      field('mode', 'Mode', select(choices.modes.map((m) => [m.name, m.name]), request.mode.default)),
      field('objective', 'Objective', select([], request.objective.default)),
      field(
        'health_weight',
        'Health weight',
        number({ min: 0, max: 1, step: 0.05, value: request.health_weight.default }),
        'mode=health: w in (1 − w)·objective + w·health',
      ),
      field('trials', 'Trials', number({ min: 1, step: 1, value: request.trials.default, inputmode: 'numeric' })),
      field(
        'max_epochs',
        'Epochs per trial',
        number({ min: 1, step: 1, placeholder: "the model's budget", inputmode: 'numeric' }),
        "empty: the model's own budget",
      ),
      field('pruner', 'Pruner', select(enumOf('pruner'), request.pruner.default), request.pruner.description),
      field('sampler', 'Sampler', select(enumOf('sampler'), request.sampler.default), request.sampler.description),
      field('executor', 'Executor', select(executorOptions, request.executor.default)),
      field('seed', 'Seed', number({ min: 0, step: 1, value: request.seed.default, inputmode: 'numeric' })),
    ),
    field('fallback_local', 'Run locally when SLURM does not answer', h('input', { type: 'checkbox' })),
    field(
      'overrides',
      'Overrides (optional)',
      h('textarea', { rows: 4, spellcheck: 'false', placeholder: 'model.filters=16\ntrainer.limit_train_batches=8' }),
      'one key=value per line: the model family’s search space and the numeric, boolean and enumerated knobs ' +
        'of model., dataset. and trainer.',
    ),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => check(true) }, 'Check'),
      h('button', { type: 'submit' }, 'Start job'),
    ),
  );
  const formErrors = h('div', { class: 'form-errors', 'aria-live': 'polite' });
  form.append(formErrors);

  const refresh = () => {
    const mode = fields.mode.value;
    const kept = fields.objective.value || request.objective.default;
    const valid = choices.objectives.filter((o) => (mode === 'health' ? o.score : !o.needs_health_mode));
    fields.objective.replaceChildren(
      ...valid.map((o) => h('option', { value: o.name, selected: o.name === kept }, `${o.name} (${o.direction})`)),
    );
    fields.health_weight.disabled = mode !== 'health';
    for (const name of SWEEP_ONLY) fields[name].disabled = fields.kind.value === 'run';
    fields.fallback_local.closest('.field').hidden = fields.executor.value !== 'slurm' || fields.kind.value === 'run';
    const dataset = choices.datasets.find((d) => d.name === fields.dataset.value);
    hints.dataset.textContent = dataset ? dataset.detail : '';
    hints.mode.textContent = choices.modes.find((m) => m.name === mode)?.description || '';
    const probe = choices.executors[EXECUTOR_PROBE[fields.executor.value]];
    hints.executor.textContent = probe ? probe.detail : '';
  };

  // -- the server's check ---------------------------------------------------------------------------
  let pending = null;
  let timer = null;
  const showProblems = (problems) => {
    for (const name of Object.keys(errors)) {
      errors[name].textContent = '';
      fields[name].removeAttribute('aria-invalid');
    }
    formErrors.replaceChildren();
    for (const { field: name, message } of problems) {
      if (name && errors[name]) {
        errors[name].textContent = errors[name].textContent ? `${errors[name].textContent} ${message}` : message;
        fields[name].setAttribute('aria-invalid', 'true');
      } else formErrors.append(notice(message, 'error'));
    }
  };
  /** The request body when the server accepts the form as it is now, else null; its problems are shown. */
  async function check(announce = false) {
    clearTimeout(timer);
    pending?.abort();
    const built = body(fields);
    if (built.problems.length) {
      showProblems(built.problems);
      return null;
    }
    const mine = (pending = new AbortController());
    const abort = () => mine.abort();
    signal.addEventListener('abort', abort);
    try {
      await api('POST', '/optimize?validate_only=true', built.body, { signal: mine.signal });
      showProblems([]);
      if (announce) formErrors.append(notice('The server accepts this job.'));
      return built.body;
    } catch (error) {
      if (mine.signal.aborted) return null;
      if (error instanceof ApiError && error.status === 422) showProblems(problemsOf(error.detail, fields));
      else showProblems([{ field: null, message: describe(error) }]);
      return null;
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  form.addEventListener('change', () => {
    refresh();
    clearTimeout(timer);
    if (fields.dataset.value) timer = setTimeout(check, 400); // before a dataset is chosen there is nothing to check
  });
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const submit = form.querySelector('button[type=submit]');
    submit.disabled = true;
    try {
      const accepted = await check();
      if (!accepted) {
        form.querySelector('[aria-invalid=true]')?.focus();
        return;
      }
      const job = await api('POST', '/optimize', accepted, { signal });
      location.hash = `#/jobs/${job.id}`;
    } catch (error) {
      if (signal.aborted) return;
      const problems = error instanceof ApiError && error.status === 422 ? problemsOf(error.detail, fields) : null;
      showProblems(problems || [{ field: null, message: describe(error) }]);
    } finally {
      submit.disabled = false;
    }
  });
  refresh();
  return form;
}

function datasetLabel(dataset) {
  const files = dataset.present ? 'files present' : 'files missing';
  return `${dataset.name} — ${dataset.modality ?? 'unknown modality'}, ${files}`;
}

/** The request body from the form, or the problems that keep it from being one (an unreadable override). */
function body(fields) {
  const value = (name) => fields[name].value.trim();
  const numberOrNull = (name) => (value(name) === '' ? null : Number(value(name)));
  const request = {
    kind: value('kind'),
    dataset: value('dataset') || null,
    model: value('model'),
    mode: value('mode'),
    objective: value('objective'),
    max_epochs: numberOrNull('max_epochs'),
    seed: numberOrNull('seed'),
  };
  if (request.kind === 'sweep') {
    Object.assign(request, { trials: numberOrNull('trials'), pruner: value('pruner'), sampler: value('sampler') });
    request.executor = value('executor');
    if (request.executor === 'slurm') request.fallback_local = fields.fallback_local.checked;
  }
  if (request.mode === 'health') request.health_weight = numberOrNull('health_weight');
  const problems = [];
  const overrides = {};
  fields.overrides.value.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const equals = line.indexOf('=');
    if (equals < 1) {
      problems.push({ field: 'overrides', message: `line ${index + 1} (${line}) is not key=value.` });
      return;
    }
    overrides[line.slice(0, equals).trim()] = scalar(line.slice(equals + 1).trim());
  });
  if (Object.keys(overrides).length) request.overrides = overrides;
  return { body: request, problems };
}

/** An override's text as the JSON scalar it spells: true/false, a number, else the text (quotes removed). */
function scalar(text) {
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return Number(text);
  const quoted = /^(['"])(.*)\1$/.exec(text);
  return quoted ? quoted[2] : text;
}

/** FastAPI's 422 detail as [{field, message}]: pydantic names the field in `loc` (['body', field, ...]);
 *  the request's own checks name it at the start of the message ("health_weight=0.5 applies to ..."). */
function problemsOf(detail, fields) {
  if (!Array.isArray(detail)) return [{ field: null, message: String(detail) }];
  const problems = [];
  for (const error of detail) {
    const message = String(error.msg).replace(/^Value error, /, '');
    const located = Array.isArray(error.loc) && error.loc[0] === 'body' && typeof error.loc[1] === 'string';
    if (located && fields[error.loc[1]]) {
      problems.push({ field: error.loc[1], message });
      continue;
    }
    // Several problems in one message: each starts with the key it is about ("trials=5 applies ... pruner=...").
    for (const sentence of message.split(/(?<=[.)]) (?=[a-z_][\w./]*=)/)) {
      problems.push({ field: namedField(sentence, fields), message: sentence });
    }
  }
  return problems;
}

function namedField(message, fields) {
  const key = /^([a-z_][\w./]*?)(?==|\s|:|$)/.exec(message)?.[1];
  if (!key) return null;
  if (fields[key]) return key;
  if (KEY_FIELDS[key]) return KEY_FIELDS[key];
  return OVERRIDE_PREFIXES.some((prefix) => key.startsWith(prefix)) ? 'overrides' : null;
}
