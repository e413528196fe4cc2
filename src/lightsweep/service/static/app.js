// The page's entry: asks for the API token once (kept in sessionStorage for this browser session), then
// shows the view the address names: #/jobs (the list), #/new (the New job form) or #/jobs/<id> (a job).

import { ApiError, clearToken, getJSON, setToken, token, whenUnauthorized } from './api.js';
import { jobView } from './job.js';
import { jobsView } from './jobs.js';
import { newJobView } from './form.js';

const main = document.getElementById('main');
const dialog = document.getElementById('token-dialog');
const tokenForm = document.getElementById('token-form');
const tokenInput = document.getElementById('token-input');
const tokenError = document.getElementById('token-error');
let shown = null; // the view on the page: {close()}
let asking = null;

function route() {
  shown?.close();
  main.replaceChildren();
  const hash = location.hash || '#/jobs';
  const job = /^#\/jobs\/([0-9a-f-]{36})$/.exec(hash);
  if (job) shown = jobView(main, job[1]);
  else if (hash === '#/new') shown = newJobView(main);
  else shown = jobsView(main);
  for (const link of document.querySelectorAll('nav a')) {
    if (link.getAttribute('href') === (job ? '#/jobs' : hash)) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  main.querySelector('h1')?.focus({ preventScroll: true });
}

/** Show the token dialog until the server accepts a token; resolves then. */
function askForToken(message = '') {
  if (asking) return asking;
  tokenError.textContent = message;
  asking = new Promise((resolve) => {
    const submit = async (event) => {
      event.preventDefault();
      setToken(tokenInput.value.trim());
      try {
        await getJSON('/jobs?limit=1');
      } catch (error) {
        tokenError.textContent =
          error instanceof ApiError && error.status === 401
            ? 'The server refused this token. It is in LIGHTSWEEP_API_TOKEN or <home>/api_token of the server.'
            : `The server did not answer: ${error.message}`;
        tokenInput.select();
        return;
      }
      tokenForm.removeEventListener('submit', submit);
      dialog.close();
      tokenInput.value = '';
      asking = null;
      resolve();
    };
    tokenForm.addEventListener('submit', submit);
  });
  if (!dialog.open) dialog.showModal();
  tokenInput.focus();
  return asking;
}

dialog.addEventListener('cancel', (event) => event.preventDefault()); // the page cannot work without a token
whenUnauthorized(() => {
  if (asking) return; // several requests refused at once: one dialog
  shown?.close();
  askForToken('The server refused the token: enter it again.').then(route);
});
document.getElementById('forget-token').addEventListener('click', () => {
  clearToken();
  shown?.close();
  main.replaceChildren();
  askForToken().then(route);
});
window.addEventListener('hashchange', route);
if (token()) route();
else askForToken().then(route);
