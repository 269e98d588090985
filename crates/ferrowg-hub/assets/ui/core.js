// The ferrowg hub dashboard's core: DOM helpers, formatting, the calls to /api/v1 with the
// admin token, errors and confirmation, the page lifecycle (refresh every 3 s), the login page
// and hash routing. The pages themselves (pages.js) are defined through `definePage`, using the
// helpers this script exports as `window.ferrowgDash`. Hand-written, no framework, no build step;
// classic scripts loaded in order (`defer`): core.js, then pages.js.
//
// Rules: whatever the API returns is inserted with textContent / createElement, never as markup;
// names in URLs go through encodeURIComponent; the admin token lives in sessionStorage only, is
// sent as `Authorization: Bearer`, and never appears in a URL or in the console log. The CSP
// forbids inline script, style and handlers, so every listener is attached here.
'use strict';

(function () {
  const TOKEN_KEY = 'ferrowg-admin-token';
  const PAGE_SIZE = 50;
  const REFRESH_MS = 3000;
  const FILTER_DELAY_MS = 250;
  const STATUSES = ['online', 'offline', 'pending', 'revoked'];

  // ---- DOM helpers -------------------------------------------------------------------------
  /** An element with attributes (`text` sets textContent, `class` the class, `onX` a
   *  listener) and children (nodes or strings, which become text nodes). */
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'class') node.className = value;
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? '' : String(value));
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  /** Sets a node's text if it differs (keeps selections and avoids needless layout). */
  function setText(node, value) {
    const text = value === null || value === undefined ? '' : String(value);
    if (node.textContent !== text) node.textContent = text;
  }

  /** Sets or (for null) removes an attribute if it differs. */
  function setAttr(node, name, value) {
    if (value === null || value === undefined) node.removeAttribute(name);
    else if (node.getAttribute(name) !== String(value)) node.setAttribute(name, String(value));
  }

  const byId = (id) => document.getElementById(id);

  /** Brings `tbody`'s rows in line with `items`, keyed by the row attribute `attr`: existing
   *  rows are updated in place (so links and buttons stay the same elements across refreshes),
   *  new ones built, gone ones removed, and the order made that of `items`. */
  function syncRows(tbody, items, key, attr, build, update) {
    const old = new Map();
    for (const tr of Array.from(tbody.rows)) old.set(tr.getAttribute(attr), tr);
    items.forEach((item, i) => {
      const k = key(item);
      let tr = old.get(k);
      if (tr) old.delete(k);
      else {
        tr = build(item);
        tr.setAttribute(attr, k);
      }
      update(tr, item);
      const at = tbody.rows[i];
      if (at !== tr) tbody.insertBefore(tr, at || null);
    });
    for (const tr of old.values()) tr.remove();
  }

  // ---- formatting --------------------------------------------------------------------------
  /** A Unix time in the browser's local time. */
  function localTime(secs) {
    return secs === null || secs === undefined ? '—' : new Date(secs * 1000).toLocaleString();
  }

  /** How long ago a Unix time was: "12 s ago", "5 min ago", "3 h ago", "2 d ago". */
  function ago(secs) {
    if (secs === null || secs === undefined) return 'never';
    const d = Math.max(0, Math.floor(Date.now() / 1000 - secs));
    if (d < 60) return d + ' s ago';
    if (d < 3600) return Math.floor(d / 60) + ' min ago';
    if (d < 86400) return Math.floor(d / 3600) + ' h ago';
    return Math.floor(d / 86400) + ' d ago';
  }

  /** A cell showing a time as "N s ago", with the local date as its tooltip. */
  function setAgo(td, secs) {
    setText(td, ago(secs));
    setAttr(td, 'title', secs === null || secs === undefined ? null : localTime(secs));
  }

  /** A byte count in binary units. */
  function bytes(n) {
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let v = Number(n) || 0;
    let i = 0;
    for (; v >= 1024 && i < units.length - 1; i += 1) v /= 1024;
    return i === 0 ? v + ' B' : v.toFixed(v < 10 ? 1 : 0) + ' ' + units[i];
  }

  /** online / offline / pending / revoked, as the API's `status` filter names them. */
  function deviceStatus(d) {
    if (d.state !== 'active') return d.state;
    return d.online ? 'online' : 'offline';
  }

  // ---- the API -----------------------------------------------------------------------------
  /** A failed call: `status` (0: no answer), the problem document if any, its detail. */
  class ApiError extends Error {
    constructor(status, problem, message) {
      super(message);
      Object.assign(this, { status, problem });
    }
  }

  const storedToken = () => sessionStorage.getItem(TOKEN_KEY);

  /** Calls the hub. `opts.json` / `opts.text`: the body; `opts.token`: a token to try instead
   *  of the stored one (the login form). A 401 with the stored token ends the session. */
  async function request(method, path, opts) {
    opts = opts || {};
    const headers = {};
    const token = opts.token || storedToken();
    if (token) headers.Authorization = 'Bearer ' + token;
    const body = opts.json !== undefined ? JSON.stringify(opts.json) : opts.text;
    if (opts.json !== undefined) headers['Content-Type'] = 'application/json';
    else if (opts.text !== undefined) headers['Content-Type'] = 'text/plain; charset=utf-8';
    const res = await fetch(path, { method, headers, body, cache: 'no-store', credentials: 'omit' })
      .catch(() => null);
    if (!res) throw new ApiError(0, null, 'the hub cannot be reached');
    if (res.ok) return res;
    const problem = await res.json().catch(() => null);
    const detail = problem && typeof problem.detail === 'string' && problem.detail
      ? problem.detail
      : 'the hub answered ' + res.status + ' ' + res.statusText;
    const err = new ApiError(res.status, problem, detail);
    if (res.status === 401 && !opts.token) {
      err.handled = true;
      endSession('the session ended: ' + detail);
    }
    throw err;
  }

  const getJson = async (path) => (await request('GET', path)).json();

  // ---- errors, confirmation, page lifecycle ------------------------------------------------
  let errorFromRefresh = false;

  /** Shows a message in #error; `fromRefresh`: a periodic reload's, cleared when one succeeds. */
  function showError(message, fromRefresh) {
    const box = byId('error');
    setText(box, message);
    box.hidden = false;
    errorFromRefresh = Boolean(fromRefresh);
  }

  function clearError(onlyRefresh) {
    if (onlyRefresh && !errorFromRefresh) return;
    setText(byId('error'), '');
    byId('error').hidden = true;
  }

  function report(e, fromRefresh) {
    if (e && e.handled) return;
    showError(e && e.message ? e.message : String(e), fromRefresh);
  }

  let closeConfirm = null;

  /** Asks in the page (#confirm-yes / #confirm-no); resolves to the answer. */
  function confirmAction(message, yesLabel) {
    if (closeConfirm) closeConfirm(false);
    return new Promise((resolve) => {
      const yes = el('button', { id: 'confirm-yes', type: 'button', class: 'danger', text: yesLabel });
      const no = el('button', { id: 'confirm-no', type: 'button', text: 'Cancel' });
      const box = el('div', { id: 'confirm', class: 'overlay', role: 'alertdialog', 'aria-modal': 'true' },
        el('div', { class: 'dialog' }, el('p', { text: message }), el('div', { class: 'actions' }, yes, no)));
      const onKey = (ev) => ev.key === 'Escape' && done(false);
      function done(answer) {
        box.remove();
        document.removeEventListener('keydown', onKey);
        closeConfirm = null;
        resolve(answer);
      }
      yes.addEventListener('click', () => done(true));
      no.addEventListener('click', () => done(false));
      document.addEventListener('keydown', onKey);
      closeConfirm = done;
      document.body.append(box);
      no.focus();
    });
  }

  let current = null;

  /** A new page: the previous one stops (its timers, and its late answers are ignored). */
  function newView() {
    if (current) current.stop();
    if (closeConfirm) closeConfirm(false);
    current = { alive: true, timer: null, stop() { this.alive = false; clearTimeout(this.timer); } };
    return current;
  }

  /** Runs `load` now and again REFRESH_MS after each run ends, while the page is shown. */
  function every(view, load) {
    const tick = async () => {
      if (!view.alive) return;
      await load().then(() => view.alive && clearError(true), (e) => view.alive && report(e, true));
      if (view.alive) view.timer = setTimeout(tick, REFRESH_MS);
    };
    tick();
  }

  /** Runs an action started by a click: errors go to #error, the button is disabled meanwhile. */
  async function act(button, action) {
    clearError();
    button.disabled = true;
    try {
      await action();
    } catch (e) {
      report(e);
    } finally {
      button.disabled = false;
    }
  }

  // ---- session and routing -----------------------------------------------------------------
  let loginMessage = '';

  /** Forgets the token and shows the login page with `message` (once, however many calls
   *  failed with 401 at the same time). */
  function endSession(message) {
    if (!storedToken()) return;
    sessionStorage.removeItem(TOKEN_KEY);
    loginMessage = message || '';
    if (location.hash === '#/login') route();
    else location.hash = '#/login';
  }

  function showHub(settings) {
    setText(byId('hub-endpoint'), settings ? 'endpoint ' + settings.endpoint : '');
  }

  /** A name from the URL; a malformed escape is kept as it is (the API then finds no device). */
  function decode(text) {
    try { return decodeURIComponent(text); } catch (_) { return text; }
  }

  /** The pages, by the first part of their hash (`#/NAME`), as the page scripts define them. */
  const pages = new Map();

  /** Defines the page `#/NAME`: `show(view, root, rest, params)` builds it in `root`; `rest` is
   *  the rest of the path (`#/devices/NAME`: the decoded NAME, else ''), `params` the
   *  URLSearchParams after a `?` in the hash (`#/devices?group=NAME`). */
  function definePage(name, show) {
    pages.set(name, show);
  }

  function route() {
    const hash = location.hash || '';
    const mark = hash.indexOf('?');
    const path = mark < 0 ? hash : hash.slice(0, mark);
    const params = new URLSearchParams(mark < 0 ? '' : hash.slice(mark + 1));
    const parts = path.replace(/^#\/?/, '').split('/');
    const page = parts[0] || '';
    if (!storedToken() && page !== 'login') {
      location.hash = '#/login';
      return;
    }
    const view = newView();
    clearError();
    const root = byId('view');
    root.replaceChildren();
    byId('nav').hidden = page === 'login';
    for (const link of byId('nav').querySelectorAll('a')) {
      setAttr(link, 'aria-current', link.id === 'nav-' + page ? 'page' : null);
    }
    const rest = parts.length > 1 ? decode(parts.slice(1).join('/')) : '';
    if (page === 'login') loginPage(view, root);
    else if (pages.has(page)) pages.get(page)(view, root, rest, params);
    else location.hash = '#/devices';
  }

  // ---- login -------------------------------------------------------------------------------
  function loginPage(view, root) {
    const input = el('input', {
      id: 'login-token', type: 'password', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'ID.SECRET', required: true,
    });
    const submit = el('button', { id: 'login-submit', type: 'submit', text: 'Log in' });
    const message = el('p', { id: 'login-error', class: 'problem', role: 'alert', text: loginMessage });
    loginMessage = '';
    const form = el('form', { class: 'login', novalidate: true },
      el('h1', { text: 'ferrowg hub' }),
      el('label', { for: 'login-token', text: 'Admin token' }),
      el('p', { class: 'muted', text: 'ID.SECRET, as in the file admin.token in the hub\'s data directory.' }),
      input, submit, message);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) {
        setText(message, 'enter an admin token (ID.SECRET)');
        return;
      }
      submit.disabled = true;
      try {
        const res = await request('GET', '/api/v1/settings', { token });
        const settings = await res.json();
        sessionStorage.setItem(TOKEN_KEY, token);
        input.value = '';
        showHub(settings);
        location.hash = '#/devices';
      } catch (e) {
        if (view.alive) {
          setText(message, e.status === 401 ? 'the token was refused: ' + e.message : e.message);
        }
      } finally {
        submit.disabled = false;
      }
    });
    root.append(form);
    input.focus();
  }

  window.ferrowgDash = Object.freeze({
    FILTER_DELAY_MS,
    PAGE_SIZE,
    STATUSES,
    act,
    ago,
    bytes,
    clearError,
    confirmAction,
    definePage,
    deviceStatus,
    el,
    every,
    getJson,
    localTime,
    report,
    request,
    setAgo,
    setAttr,
    setText,
    syncRows,
  });

  // ---- start (once every page script has run) ----------------------------------------------
  document.addEventListener('DOMContentLoaded', () => {
    byId('logout').addEventListener('click', () => endSession('logged out'));
    window.addEventListener('hashchange', route);
    if (storedToken()) {
      getJson('/api/v1/settings').then(showHub, (e) => report(e));
    }
    if (!location.hash) location.hash = storedToken() ? '#/devices' : '#/login';
    else route();
  });
}());
