/// <reference lib="dom" />
// The dashboard page's own behaviour: it takes the health token from the URL fragment (#token=…,
// which browsers never send to servers) or from its form (kept in sessionStorage), fetches the
// same function as JSON with x-health-token, redraws on a window button, on Refresh and every
// minute, and asks for a token again when one is refused. Runs in the browser: script.ts embeds
// this function's source, so it may use no import and no module-level value at run time.
import type { DashboardDom } from './dom.ts';
import type { DashboardBody, DashboardPanels } from './panels.ts';

export function dashboardClient(dom: DashboardDom, render: DashboardPanels): void {
  const { byTestId } = dom;
  const STORE = 'profile-health-token';
  const WINDOWS = ['1h', '24h', '7d'];
  // profile_operations_stats' finest bucket is a minute: redrawing more often shows the same figures.
  const REFRESH_MS = 60_000;
  const state: { window: string; token: string | null; loading: boolean } = {
    window: '24h',
    token: null,
    loading: false,
  };

  // sessionStorage throws where storage is off (some privacy modes): the page then asks for the
  // token on every load instead of failing.
  function remember(token: string | null): void {
    try {
      if (token === null) sessionStorage.removeItem(STORE);
      else sessionStorage.setItem(STORE, token);
    } catch {
      // storage is off
    }
  }

  function readFragment(): void {
    const params = new URLSearchParams(location.hash.replace(/^#/, ''));
    const token = params.get('token');
    const win = params.get('window');
    if (win && WINDOWS.includes(win)) state.window = win;
    if (token) {
      remember(token);
      state.token = token;
    }
    // The token leaves the address bar (and the history entry) at once.
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    if (!state.token) {
      try {
        state.token = sessionStorage.getItem(STORE);
      } catch {
        state.token = null;
      }
    }
  }

  function askForToken(message: string): void {
    document.body.setAttribute('data-state', 'need-token');
    byTestId('dashboard').hidden = true;
    byTestId('token-form').hidden = false;
    const error = byTestId('token-error');
    error.hidden = !message;
    error.textContent = message;
    byTestId('token-input').focus();
  }

  function showError(message: string): void {
    byTestId('token-form').hidden = true;
    byTestId('dashboard').hidden = false;
    const banner = byTestId('load-error');
    banner.hidden = false;
    banner.textContent = message;
    document.body.setAttribute('data-state', 'error');
  }

  function healthBody(data: unknown): DashboardBody | null {
    return typeof data === 'object' && data !== null && 'status' in data && data.status
      ? (data as DashboardBody)
      : null;
  }

  function load(): void {
    if (!state.token) {
      askForToken('');
      return;
    }
    if (state.loading) return;
    state.loading = true;
    document.body.setAttribute('data-state', 'loading');
    const url = new URL(location.href);
    url.hash = '';
    url.search = `?format=json&include=operations&window=${encodeURIComponent(state.window)}`;
    fetch(url.toString(), {
      headers: { 'x-health-token': state.token, accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
    })
      .then((response) =>
        response.text().then((text) => {
          let data: unknown = null;
          try {
            data = JSON.parse(text);
          } catch {
            data = null;
          }
          return { status: response.status, body: healthBody(data) };
        })
      )
      .then((answer) => {
        state.loading = false;
        if (answer.status === 401 || answer.status === 403) {
          remember(null);
          state.token = null;
          askForToken(`That token was not accepted (HTTP ${answer.status}).`);
          return;
        }
        if (!answer.body) {
          showError(`profile-health answered HTTP ${answer.status} without a health body.`);
          return;
        }
        render(answer.body, answer.status, state.window);
      })
      .catch((error: unknown) => {
        state.loading = false;
        showError(
          `Could not reach profile-health: ${
            error instanceof Error && error.message ? error.message : String(error)
          }`,
        );
      });
  }

  function selectWindow(win: string): void {
    state.window = win;
    document.querySelectorAll('[data-window]').forEach((button) => {
      button.setAttribute('aria-pressed', String(button.getAttribute('data-window') === win));
    });
  }

  document.querySelectorAll('[data-window]').forEach((button) => {
    button.addEventListener('click', () => {
      selectWindow(button.getAttribute('data-window') ?? state.window);
      load();
    });
  });
  byTestId('refresh').addEventListener('click', load);
  byTestId('forget-token').addEventListener('click', () => {
    remember(null);
    state.token = null;
    askForToken('');
  });
  byTestId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byTestId<HTMLInputElement>('token-input');
    const value = input.value.trim();
    if (!value) return;
    remember(value);
    state.token = value;
    input.value = '';
    load();
  });

  readFragment();
  selectWindow(state.window);
  load();
  setInterval(() => {
    if (!document.hidden && state.token) load();
  }, REFRESH_MS);
}
