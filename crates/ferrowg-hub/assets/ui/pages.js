// The ferrowg hub dashboard's pages: devices (filtered, sorted and paged by the server), one
// device (routes, rotate, revoke), groups, enrolment tokens (with a QR code), the policy editor
// (checked before saving, errors at their line) and the hub nodes. Each is registered with
// core.js's `definePage` and built from its helpers; the same rules hold: API data as text only.
'use strict';

(function () {
  const {
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
  } = window.ferrowgDash;

  // ---- devices -----------------------------------------------------------------------------
  /** The list's filter, sort and page; kept while the user visits other pages. */
  const devQuery = { q: '', group: '', status: '', sort: 'name', order: 'asc', offset: 0 };

  const DEVICE_COLUMNS = [
    ['name', 'Name', true], ['group', 'Group', true], ['addresses', 'Addresses', false],
    ['status', 'Status', false], ['last_handshake', 'Last handshake', true],
    ['endpoint', 'Endpoint', true], ['rx_bytes', 'rx', true], ['tx_bytes', 'tx', true],
  ];

  function buildDeviceRow(d) {
    const link = el('a', { href: '#/devices/' + encodeURIComponent(d.name) });
    return el('tr', null, el('td', null, link), el('td'), el('td', { class: 'mono' }),
      el('td', { class: 'status' }), el('td'), el('td', { class: 'mono' }),
      el('td', { class: 'num' }), el('td', { class: 'num' }));
  }

  function updateDeviceRow(tr, d) {
    const c = tr.cells;
    const status = deviceStatus(d);
    setText(c[0].firstChild, d.name);
    setText(c[1], d.group);
    setText(c[2], d.addresses.join(', '));
    setText(c[3], status);
    setAttr(c[3], 'data-status', status);
    setAgo(c[4], d.last_handshake);
    setText(c[5], d.endpoint || '—');
    setText(c[6], bytes(d.rx_bytes));
    setText(c[7], bytes(d.tx_bytes));
  }

  /** The devices list; `params` from the hash may set the group filter
   *  (`#/devices?group=NAME`, from the groups page), which clears the other filters. */
  function devicesPage(view, root, params) {
    const wanted = params.get('group');
    if (wanted !== null) {
      Object.assign(devQuery, { q: '', group: wanted.trim().slice(0, 256), status: '', offset: 0 });
    }
    const filter = el('input', {
      id: 'devices-filter', type: 'search', placeholder: 'name, group, address, endpoint or key',
      'aria-label': 'filter', value: devQuery.q,
    });
    const group = el('input', { id: 'devices-group', placeholder: 'group', 'aria-label': 'group', value: devQuery.group });
    const status = el('select', { id: 'devices-status', 'aria-label': 'status' },
      el('option', { value: '', text: 'any status' }),
      ...STATUSES.map((s) => el('option', { value: s, text: s })));
    status.value = devQuery.status;
    const heads = DEVICE_COLUMNS.map(([key, label, sortable]) => el('th', {
      scope: 'col', 'data-sort': sortable ? key : null, tabindex: sortable ? '0' : null, text: label,
      title: key === 'rx_bytes' ? 'bytes the hub received from the device'
        : key === 'tx_bytes' ? 'bytes the hub sent to the device' : null,
    }));
    const tbody = el('tbody');
    const table = el('table', { id: 'devices-table', class: 'grid' },
      el('thead', null, el('tr', null, ...heads)), tbody);
    const empty = el('p', { class: 'muted', hidden: true, text: 'No device matches.' });
    const count = el('span', { id: 'devices-count', class: 'count' });
    const prev = el('button', { id: 'devices-prev', type: 'button', text: '‹ Previous' });
    const next = el('button', { id: 'devices-next', type: 'button', text: 'Next ›' });
    root.append(el('h1', { text: 'Devices' }),
      el('div', { class: 'toolbar' }, filter, group, status, el('div', { class: 'pager' }, prev, count, next)),
      el('div', { class: 'table-wrap' }, table), empty);

    let seq = 0;
    async function load() {
      const mine = ++seq;
      const params = new URLSearchParams({
        limit: String(PAGE_SIZE), offset: String(devQuery.offset), sort: devQuery.sort, order: devQuery.order,
      });
      for (const k of ['q', 'group', 'status']) if (devQuery[k]) params.set(k, devQuery[k]);
      const res = await request('GET', '/api/v1/devices?' + params.toString());
      const list = await res.json();
      if (!view.alive || mine !== seq) return;
      // The server filters, sorts and pages; the header counts every match.
      const total = Number(res.headers.get('X-Total-Count')) || 0;
      if (devQuery.offset > 0 && devQuery.offset >= total) {
        devQuery.offset = Math.max(0, Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE);
        return load();
      }
      syncRows(tbody, list, (d) => d.name, 'data-device', buildDeviceRow, updateDeviceRow);
      empty.hidden = list.length > 0;
      const first = list.length ? devQuery.offset + 1 : 0;
      setText(count, list.length
        ? first + '–' + (devQuery.offset + list.length) + ' of ' + total : '0 of ' + total);
      prev.disabled = devQuery.offset === 0;
      next.disabled = devQuery.offset + PAGE_SIZE >= total;
      for (const th of heads) {
        const on = th.dataset.sort === devQuery.sort;
        th.classList.toggle('sorted-asc', on && devQuery.order === 'asc');
        th.classList.toggle('sorted-desc', on && devQuery.order === 'desc');
        setAttr(th, 'aria-sort', on ? (devQuery.order === 'asc' ? 'ascending' : 'descending') : null);
      }
    }
    const reload = () => load().then(() => clearError(true), (e) => report(e, true));

    let typing = null;
    const onFilter = () => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        devQuery.q = filter.value.trim();
        devQuery.group = group.value.trim();
        devQuery.offset = 0;
        reload();
      }, FILTER_DELAY_MS);
    };
    filter.addEventListener('input', onFilter);
    group.addEventListener('input', onFilter);
    status.addEventListener('change', () => {
      devQuery.status = status.value;
      devQuery.offset = 0;
      reload();
    });
    for (const th of heads) {
      if (!th.dataset.sort) continue;
      const sort = () => {
        const key = th.dataset.sort;
        devQuery.order = devQuery.sort === key && devQuery.order === 'asc' ? 'desc' : 'asc';
        devQuery.sort = key;
        devQuery.offset = 0;
        reload();
      };
      th.addEventListener('click', sort);
      th.addEventListener('keydown', (ev) => (ev.key === 'Enter' || ev.key === ' ') && (ev.preventDefault(), sort()));
    }
    const page = (delta) => {
      devQuery.offset = Math.max(0, devQuery.offset + delta);
      reload();
    };
    prev.addEventListener('click', () => page(-PAGE_SIZE));
    next.addEventListener('click', () => page(PAGE_SIZE));
    every(view, load);
  }

  // ---- one device --------------------------------------------------------------------------
  const DEVICE_FIELDS = [
    ['Group', (d) => d.group],
    ['Addresses', (d) => d.addresses.join(', '), 'mono'],
    ['State', (d) => d.state],
    ['Last handshake', (d) => (d.last_handshake ? ago(d.last_handshake) + ' (' + localTime(d.last_handshake) + ')' : 'never')],
    ['Endpoint', (d) => d.endpoint || '—', 'mono'],
    ['Received from it (rx)', (d) => bytes(d.rx_bytes)],
    ['Sent to it (tx)', (d) => bytes(d.tx_bytes)],
    ['Public key', (d) => d.public_key, 'mono'],
    ['Next public key', (d) => d.next_public_key || '—', 'mono'],
    ['Key known since', (d) => localTime(d.key_since)],
    ['Key rotation due', (d) => (d.rotation_due ? 'yes' : 'no')],
    ['Enrolled', (d) => localTime(d.created_at)],
    ['Enrolment token', (d) => d.token_id || 'none (added by an admin)', 'mono'],
    ['Revoked', (d) => localTime(d.revoked_at)],
  ];

  function devicePage(view, root, name) {
    const path = '/api/v1/devices/' + encodeURIComponent(name);
    const status = el('span', { id: 'device-status', class: 'status' });
    const values = DEVICE_FIELDS.map(([, , cls]) => el('dd', { class: cls }));
    const fields = el('dl', { class: 'fields' });
    DEVICE_FIELDS.forEach(([label], i) => fields.append(el('dt', { text: label }), values[i]));
    const rotate = el('button', { id: 'device-rotate', type: 'button', text: 'Rotate key' });
    const revoke = el('button', { id: 'device-revoke', type: 'button', class: 'danger', text: 'Revoke' });
    const routes = el('tbody');
    const noRoutes = el('p', { class: 'muted', hidden: true, text: 'It advertises no routes.' });
    root.append(
      el('p', { class: 'crumbs' }, el('a', { href: '#/devices', text: 'Devices' })),
      el('h1', null, el('span', { id: 'device-name', text: name }), ' ', status),
      el('div', { class: 'actions' }, rotate, revoke), fields,
      el('h2', { text: 'Routes' }),
      el('table', { id: 'device-routes', class: 'grid' },
        el('thead', null, el('tr', null, el('th', { text: 'Prefix' }), el('th', { text: 'Approved' }),
          el('th', { text: 'Reached through' }), el('th', { text: '' }))), routes),
      noRoutes);

    let seq = 0;
    function show(d) {
      const s = deviceStatus(d);
      setText(status, s);
      setAttr(status, 'data-status', s);
      DEVICE_FIELDS.forEach(([, get], i) => setText(values[i], get(d)));
      rotate.hidden = d.state === 'revoked';
      revoke.hidden = d.state === 'revoked';
      noRoutes.hidden = d.routes.length > 0;
      syncRows(routes, d.routes, (r) => r.prefix, 'data-route', buildRouteRow, updateRouteRow);
    }
    async function load() {
      const mine = ++seq;
      const d = await getJson(path);
      if (view.alive && mine === seq) show(d);
    }
    async function post(suffix, json) {
      const res = await request('POST', path + suffix, { json });
      const d = await res.json();
      seq += 1;
      if (view.alive) show(d);
    }
    function buildRouteRow() {
      const button = el('button', { type: 'button', class: 'approve' });
      const tr = el('tr', null, el('td', { class: 'mono' }), el('td'), el('td', { class: 'mono' }), el('td', null, button));
      button.addEventListener('click', () => act(button, () => post('/routes', {
        prefix: tr.getAttribute('data-route'), approved: tr.dataset.approved !== 'true',
      })));
      return tr;
    }
    function updateRouteRow(tr, r) {
      tr.dataset.approved = r.approved ? 'true' : 'false';
      setText(tr.cells[0], r.prefix);
      setText(tr.cells[1], r.approved ? 'yes' : 'no');
      setText(tr.cells[2], r.mapped || '—');
      const button = tr.cells[3].firstChild;
      setText(button, r.approved ? 'Unapprove' : 'Approve');
      setAttr(button, 'aria-pressed', r.approved ? 'true' : 'false');
    }
    rotate.addEventListener('click', async () => {
      const ok = await confirmAction('Ask ' + name + ' to rotate its key? It stays connected; '
        + 'the old key stops working once the new one has completed a handshake.', 'Rotate');
      if (ok) act(rotate, () => post('/rotate'));
    });
    revoke.addEventListener('click', async () => {
      const ok = await confirmAction('Revoke ' + name + '? The hub drops its sessions and key at '
        + 'once and it cannot connect again.', 'Revoke');
      if (ok) act(revoke, () => post('/revoke'));
    });
    every(view, load);
  }

  // ---- groups ------------------------------------------------------------------------------
  const GROUP_COUNTS = [['devices', 'Devices'], ['online', 'Online'], ['pending', 'Pending'],
    ['revoked', 'Revoked'], ['tokens', 'Usable tokens']];

  /** Every group a device or an enrolment token names, with its counts; a group's name opens
   *  the devices list filtered by it. */
  function groupsPage(view, root) {
    const tbody = el('tbody');
    const empty = el('p', { class: 'muted', hidden: true, text: 'No group yet: create an enrolment token.' });
    root.append(el('h1', { text: 'Groups' }),
      el('table', { id: 'groups-table', class: 'grid' },
        el('thead', null, el('tr', null, el('th', { scope: 'col', text: 'Group' }),
          ...GROUP_COUNTS.map(([, h]) => el('th', { scope: 'col', text: h })))),
        tbody), empty);
    const build = (g) => el('tr', null,
      el('td', null, el('a', { href: '#/devices?' + new URLSearchParams({ group: g.name }).toString() })),
      ...GROUP_COUNTS.map(([key]) => el('td', { class: 'num ' + key })));
    function update(tr, g) {
      setText(tr.cells[0].firstChild, g.name);
      GROUP_COUNTS.forEach(([key], i) => setText(tr.cells[i + 1], g[key]));
    }
    let seq = 0;
    every(view, async () => {
      const mine = ++seq;
      const list = await getJson('/api/v1/groups');
      if (!view.alive || mine !== seq) return;
      syncRows(tbody, list, (g) => g.name, 'data-group', build, update);
      empty.hidden = list.length > 0;
    });
  }

  // ---- enrolment tokens --------------------------------------------------------------------
  /** A string's bytes in base64 (btoa takes Latin-1 only). */
  function base64(text) {
    return btoa(Array.from(new TextEncoder().encode(text), (b) => String.fromCharCode(b)).join(''));
  }

  function tokenState(t) {
    if (t.revoked_at !== null && t.revoked_at !== undefined) return 'revoked';
    if (t.expires_at !== null && t.expires_at !== undefined && t.expires_at * 1000 <= Date.now()) return 'expired';
    if (t.uses_left === 0) return 'used up';
    return 'usable';
  }

  function tokensPage(view, root) {
    const group = el('input', { id: 'token-group', required: true, placeholder: 'sensor', autocomplete: 'off' });
    const uses = el('input', { id: 'token-uses', type: 'number', min: '0', step: '1', value: '1' });
    const expires = el('input', { id: 'token-expires', placeholder: '7d', autocomplete: 'off' });
    const create = el('button', { id: 'token-create', type: 'submit', text: 'Create token' });
    const form = el('form', { class: 'form-row', novalidate: true },
      el('label', null, 'Group ', group),
      el('label', null, 'Uses (0: unlimited) ', uses),
      el('label', null, 'Expires in (24h, 7d, never) ', expires), create);
    const result = el('div', { class: 'secret', hidden: true });
    const tbody = el('tbody');
    root.append(el('h1', { text: 'Enrolment tokens' }), form, result,
      el('h2', { text: 'Tokens' }),
      el('table', { id: 'tokens-table', class: 'grid' },
        el('thead', null, el('tr', null, ...['ID', 'Group', 'Uses left', 'Expires', 'Created', 'State', '']
          .map((h) => el('th', { scope: 'col', text: h })))), tbody));

    async function showCreated(created) {
      const qrHolder = el('div', { class: 'qr' });
      result.replaceChildren(
        el('p', { text: 'Token for group ' + created.info.group + '. It is shown only now: copy it or scan the code.' }),
        el('code', { id: 'token-value', text: created.token }), qrHolder,
        el('p', { class: 'muted', text: 'On the device: ferrowg enroll TOKEN (see the README).' }));
      result.hidden = false;
      const res = await request('POST', '/ui/qr', { text: created.token });
      const svg = await res.text();
      if (!view.alive) return;
      qrHolder.append(el('img', {
        id: 'token-qr', alt: 'QR code of the enrolment token', src: 'data:image/svg+xml;base64,' + base64(svg),
      }));
    }
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const body = { group: group.value.trim() };
      if (uses.value !== '') body.uses = Number(uses.value);
      if (expires.value.trim()) body.expires = expires.value.trim();
      act(create, async () => {
        result.hidden = true;
        result.replaceChildren();
        const res = await request('POST', '/api/v1/tokens', { json: body });
        const created = await res.json();
        if (!view.alive) return;
        await showCreated(created);
        await load();
      });
    });

    function build() {
      const button = el('button', { type: 'button', class: 'revoke danger', text: 'Revoke' });
      const tr = el('tr', null, el('td', { class: 'mono' }), el('td'), el('td', { class: 'num' }), el('td'),
        el('td'), el('td'), el('td', null, button));
      button.addEventListener('click', async () => {
        const id = tr.getAttribute('data-token');
        const ok = await confirmAction('Revoke enrolment token ' + id + '? Devices enrolled with it '
          + 'stay; no new device can enrol with it.', 'Revoke');
        if (!ok) return;
        act(button, async () => {
          await request('DELETE', '/api/v1/tokens/' + encodeURIComponent(id));
          await load();
        });
      });
      return tr;
    }
    function update(tr, t) {
      const c = tr.cells;
      const state = tokenState(t);
      setText(c[0], t.id);
      setText(c[1], t.group);
      setText(c[2], t.uses_left === null || t.uses_left === undefined ? 'unlimited' : t.uses_left);
      setText(c[3], t.expires_at === null || t.expires_at === undefined ? 'never' : localTime(t.expires_at));
      setText(c[4], localTime(t.created_at));
      setText(c[5], state);
      setAttr(c[5], 'data-state', state);
      c[6].firstChild.hidden = state === 'revoked';
    }
    let seq = 0;
    async function load() {
      const mine = ++seq;
      const list = await getJson('/api/v1/tokens');
      if (!view.alive || mine !== seq) return;
      list.reverse();
      syncRows(tbody, list, (t) => t.id, 'data-token', build, update);
    }
    every(view, load);
    group.focus();
  }

  // ---- policy ------------------------------------------------------------------------------
  function policyPage(view, root) {
    const gutter = el('div', { class: 'gutter', 'aria-hidden': 'true' });
    const text = el('textarea', {
      id: 'policy-text', spellcheck: 'false', wrap: 'off', autocomplete: 'off', 'aria-label': 'policy (HuJSON)',
      placeholder: '{\n  "tagOwners": { "tag:sensor": [] },\n  "grants": [],\n}',
    });
    const check = el('button', { id: 'policy-check', type: 'button', text: 'Check' });
    const save = el('button', { id: 'policy-save', type: 'button', class: 'primary', text: 'Save' });
    const result = el('p', { id: 'policy-result', class: 'ok', role: 'status' });
    const problem = el('p', { id: 'policy-error', class: 'problem', role: 'alert', hidden: true });
    const info = el('p', { class: 'muted', text: 'Loading…' });
    root.append(el('h1', { text: 'Policy' }), info,
      el('div', { class: 'editor' }, gutter, text),
      el('div', { class: 'actions' }, check, save), result, problem);

    let errorLine = 0;
    function renumber() {
      const lines = text.value.split('\n').length;
      while (gutter.childElementCount < lines) {
        gutter.append(el('div', { text: String(gutter.childElementCount + 1) }));
      }
      while (gutter.childElementCount > lines) gutter.lastElementChild.remove();
      for (const mark of gutter.querySelectorAll('.line-error')) mark.classList.remove('line-error');
      const marked = errorLine > 0 ? gutter.children[errorLine - 1] : null;
      if (marked) marked.classList.add('line-error');
      gutter.scrollTop = text.scrollTop;
    }
    function setProblem(message, line) {
      errorLine = line || 0;
      setText(problem, message);
      problem.hidden = !message;
      setAttr(problem, 'data-line', line ? String(line) : null);
      renumber();
      if (line) {
        const height = parseFloat(getComputedStyle(text).lineHeight) || 18;
        text.scrollTop = Math.max(0, (line - 3) * height);
      }
    }
    text.addEventListener('input', renumber);
    text.addEventListener('scroll', () => { gutter.scrollTop = text.scrollTop; });

    function described(p) {
      if (p.version === undefined) return 'No policy has been set yet: every flow between devices is refused.';
      return 'Version ' + p.version + ', saved ' + localTime(p.created_at) + '.';
    }
    /** Runs a check or a save: a refused policy marks its line, other errors go to #error. */
    function submit(button, method, path, done) {
      setText(result, '');
      setProblem('', 0);
      act(button, async () => {
        try {
          const res = await request(method, path, { json: { text: text.value } });
          const body = await res.json();
          if (view.alive) done(body);
        } catch (e) {
          if (e.status === 422 && e.problem && view.alive) setProblem(e.message, Number(e.problem.line) || 0);
          else throw e;
        }
      });
    }
    check.addEventListener('click', () => submit(check, 'POST', '/api/v1/policy/check', (body) => {
      setText(result, 'ok: ' + body.tests + ' tests passed');
    }));
    save.addEventListener('click', () => submit(save, 'PUT', '/api/v1/policy', (body) => {
      setText(result, 'saved: version ' + body.version);
      setText(info, described(body));
    }));

    (async () => {
      try {
        const p = await getJson('/api/v1/policy');
        if (!view.alive) return;
        text.value = p.text;
        setText(info, described(p));
      } catch (e) {
        if (!view.alive) return;
        if (e.status === 404) setText(info, described({}));
        else report(e);
      }
      renumber();
    })();
    renumber();
  }

  // ---- hub nodes ---------------------------------------------------------------------------
  function nodesPage(view, root) {
    const tbody = el('tbody');
    const empty = el('p', { class: 'muted', hidden: true, text: 'No node has reported yet.' });
    root.append(el('h1', { text: 'Hub nodes' }),
      el('table', { id: 'nodes-table', class: 'grid' },
        el('thead', null, el('tr', null, ...['Name', 'API', 'Version', 'Started', 'Last seen',
          'Devices online', 'Handshakes', 'Health'].map((h) => el('th', { scope: 'col', text: h })))),
        tbody), empty);
    const build = () => el('tr', null, el('td'), el('td', { class: 'mono' }), el('td'), el('td'), el('td'),
      el('td', { class: 'num' }), el('td', { class: 'num' }), el('td', { class: 'health' }));
    function update(tr, n) {
      const c = tr.cells;
      const health = n.healthy ? 'ok' : 'stale';
      setAttr(tr, 'data-health', health);
      setText(c[0], n.name);
      setText(c[1], n.api);
      setText(c[2], n.version);
      setText(c[3], localTime(n.started_at));
      setAgo(c[4], n.last_seen);
      setText(c[5], n.devices_online);
      setText(c[6], n.handshakes);
      setText(c[7], health);
      setAttr(c[7], 'data-health', health);
    }
    let seq = 0;
    every(view, async () => {
      const mine = ++seq;
      const list = await getJson('/api/v1/nodes');
      if (!view.alive || mine !== seq) return;
      syncRows(tbody, list, (n) => n.name, 'data-node', build, update);
      empty.hidden = list.length > 0;
    });
  }

  definePage('devices', (view, root, name, params) => (name
    ? devicePage(view, root, name) : devicesPage(view, root, params)));
  definePage('groups', groupsPage);
  definePage('tokens', tokensPage);
  definePage('policy', policyPage);
  definePage('nodes', nodesPage);
}());
