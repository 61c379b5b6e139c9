/* Live tasks on every page: one WebSocket to /ws/notifications/ (docs/protocol.md), reconnecting
 * with backoff, and polling /api/tasks/ while WebSockets cannot connect.
 *
 * It knows no kind of task. Every element with data-task-id is filled from the Task JSON; a task
 * that appears while the page is open is added, by cloning <template id="task-template"> (the one
 * task markup, tasks/_task.html), to each [data-task-list] that takes its kind, to the running-tasks
 * bar, and (staff) to the admin's change list; a task deleted anywhere leaves every page. It also
 * shows every <time datetime> in the reader's own time zone and locale. Its settings come from its
 * own <script> tag's data attributes; the pages carry no inline script (Content-Security-Policy). */
"use strict";

(() => {
  const script = document.currentScript;
  const { wsPath, apiUrl } = script.dataset;
  const scope = script.dataset.scope || ""; // "all": the staff feed, for the admin
  const POLL_MS = 4000;
  const MAX_BACKOFF_MS = 30000;
  const FAILURES_BEFORE_POLLING = 2;
  const CLOSE_UNAUTHENTICATED = 4401; // the session ended or changed: retry once, then stop
  const CLOSE_TOO_MANY_SOCKETS = 4429; // newer pages of this user took this one's place: stop

  /* Words a person reads go through Django's JavaScript catalog ({% live_tasks_script %} loads it
   * first): `_("…")`, `ngettext` and `format("…%(name)s…", { name })`, which fills the names as
   * the catalog's interpolate does. A page without the catalog reads English. */
  const _ = (text) => (window.gettext ? window.gettext(text) : text);
  const ngettext = (one, many, count) =>
    window.ngettext ? window.ngettext(one, many, count) : count === 1 ? one : many;
  const format = (text, values) => text.replace(/%\((\w+)\)s/g, (_match, name) => String(values[name]));

  const isFinished = (task) => task.status !== "queued" && task.status !== "running";

  // One format for every time on every page: the reader's locale and zone, to the second.
  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  /* A <time datetime> in the reader's own zone and locale; the UTC value stays in the attribute. */
  const localizeTime = (node) => {
    const value = node.getAttribute("datetime");
    if (!value) return;
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) {
      node.textContent = dateFormat.format(date);
      node.title = `${date.toISOString().replace("T", " ").slice(0, 19)} UTC`;
    }
  };

  const setTime = (node, value) => {
    if (value) {
      node.setAttribute("datetime", value);
      localizeTime(node);
    } else {
      node.removeAttribute("datetime");
      node.textContent = "—";
    }
  };

  /* As Django's filesizeformat, so that a size pushed live reads like one rendered by the server. */
  const formatSize = (bytes) => {
    if (bytes < 1024) return format(ngettext("%(size)s byte", "%(size)s bytes", bytes), { size: bytes });
    const units = [_("%(size)s KB"), _("%(size)s MB"), _("%(size)s GB"), _("%(size)s TB")];
    let value = bytes / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return format(units[unit], { size: value.toFixed(1) });
  };

  /* Durations read the same here as in the server's rendering (live_tasks/templatetags/live_tasks.py,
   * duration_text and task_timing): tenths of a second under 10 s ("Took 0.2 s"), whole seconds
   * under a minute, then minutes and seconds. Both round whole milliseconds the same way. */
  const formatDuration = (ms) => {
    const tenths = Math.round(Math.max(0, ms) / 100);
    if (tenths === 0) return _("under 0.1 s");
    if (tenths < 100) return format(_("%(seconds)s s"), { seconds: `${Math.floor(tenths / 10)}.${tenths % 10}` });
    const s = Math.round(ms / 1000);
    if (s < 60) return format(_("%(seconds)s s"), { seconds: s });
    return format(_("%(minutes)s min %(seconds)s s"), { minutes: Math.floor(s / 60), seconds: s % 60 });
  };

  const elapsedMs = (task) => {
    const end = task.finished_at ? Date.parse(task.finished_at) : Date.now();
    return end - Date.parse(task.started_at);
  };

  const durationText = (task) => (task.started_at ? formatDuration(elapsedMs(task)) : "—");

  const timingText = (task) => {
    if (!task.started_at) return task.status === "queued" ? _("Waiting for a worker…") : "";
    const elapsed = elapsedMs(task);
    let text = format(isFinished(task) ? _("Took %(duration)s") : _("Elapsed %(duration)s"), {
      duration: formatDuration(elapsed),
    });
    if (task.status === "running" && task.progress > 0 && task.progress < 100) {
      const left = Math.round((elapsed * (100 - task.progress)) / task.progress);
      const leftText =
        left < 1000
          ? _("under a second left")
          : format(_("about %(duration)s left"), { duration: formatDuration(left) });
      text += ` · ${leftText}`;
    }
    return text;
  };

  /* Every field of the one task markup, filled as text or attributes: never as HTML. */
  const FIELDS = {
    link: (node, task) => {
      node.textContent = task.label;
      node.href = task.url;
    },
    created: (node, task) => setTime(node, task.created_at),
    finished: (node, task) => setTime(node, task.finished_at),
    duration: (node, task) => {
      node.textContent = durationText(task);
    },
    user: (node, task) => {
      node.textContent = task.user;
    },
    /* The admin's row: its checkbox selects this task for an action, its first cell opens it. */
    select: (node, task) => {
      node.value = task.id;
    },
    change: (node, task) => {
      node.href = node.dataset.hrefPattern.replace("00000000-0000-0000-0000-000000000000", task.id);
    },
    status: (node, task) => {
      node.textContent = task.status_display;
    },
    percent: (node, task) => {
      node.textContent = `${task.progress}%`;
    },
    bar: (node, task) => {
      node.value = task.progress;
      node.setAttribute("aria-label", `${task.label}: ${task.progress}%`);
    },
    detail: (node, task) => {
      node.textContent = task.detail;
    },
    timing: (node, task) => {
      node.textContent = timingText(task);
    },
    error: (node, task) => {
      node.textContent = task.error;
      node.hidden = !task.error;
    },
    download: (node, task) => {
      node.hidden = !task.download_url;
      const link = node.querySelector("a");
      if (link && task.download_url) link.href = task.download_url;
    },
    size: (node, task) => {
      node.textContent = task.file_size == null ? "" : `(${formatSize(task.file_size)})`;
    },
    cancel: (node, task) => {
      node.hidden = !task.cancel_url;
      if (task.cancel_url) node.action = task.cancel_url;
    },
    delete: (node, task) => {
      node.hidden = !task.delete_url;
      if (task.delete_url) node.action = task.delete_url;
    },
  };

  const fill = (root, task) => {
    root.dataset.taskId = task.id;
    root.dataset.kind = task.kind;
    root.dataset.status = task.status;
    root.dataset.seq = task.seq;
    root.toggleAttribute("data-expired", Boolean(task.expired_at));
    for (const node of root.querySelectorAll("[data-field]")) {
      FIELDS[node.dataset.field]?.(node, task);
    }
  };

  const DISMISSED_KEY = "tasks.dismissed";
  const DISMISSED_KEEP = 50;

  /* Chips the reader closed stay closed across reloads (in this browser). */
  const dismissed = {
    load() {
      try {
        return JSON.parse(localStorage.getItem(DISMISSED_KEY)) || [];
      } catch {
        return [];
      }
    },
    has(id) {
      return this.load().includes(id);
    },
    add(id) {
      try {
        localStorage.setItem(DISMISSED_KEY, JSON.stringify([id, ...this.load()].slice(0, DISMISSED_KEEP)));
      } catch {
        // storage refused (private mode): dismissed for this page only
      }
    },
  };

  const byId = (id) => `[data-task-id="${CSS.escape(id)}"]`;

  class TaskPage {
    constructor() {
      this.tasks = new Map(); // id -> the newest Task seen (highest seq)
      this.removed = new Set(); // ids deleted while the page is open: never shown again
      this.template = document.getElementById("task-template");
      this.rowTemplate = document.getElementById("admin-task-row");
      this.adminRows = document.querySelector("[data-admin-task-rows] #result_list tbody");
      this.bar = document.getElementById("running-tasks");
      this.announcer = document.getElementById("task-announcer");
      for (const node of document.querySelectorAll("time[datetime]")) localizeTime(node);
      this.bar?.addEventListener("click", (event) => {
        const button = event.target.closest("[data-dismiss]");
        const chip = button?.closest("[data-task-id]");
        if (!chip) return;
        dismissed.add(chip.dataset.taskId);
        chip.remove();
        this.bar.hidden = !this.bar.querySelector("[data-task-id]");
      });
      // "Delete" asks first; no inline handler (the Content-Security-Policy forbids them).
      document.addEventListener("submit", (event) => {
        const question = event.target.dataset?.confirm;
        if (question && !window.confirm(question)) event.preventDefault();
      });
    }

    /* Keep a task only if it is newer than what we show: progress never goes backwards. What the
     * server rendered into the page counts as shown, so an older message cannot undo it either. */
    accept(task) {
      if (this.removed.has(task.id)) return false;
      const known = this.tasks.get(task.id);
      if (known ? known.seq >= task.seq : this.renderedSeq(task.id) > task.seq) return false;
      this.tasks.set(task.id, task);
      return true;
    }

    renderedSeq(id) {
      const shown = document.querySelector(byId(id));
      const seq = shown ? Number.parseInt(shown.dataset.seq, 10) : Number.NaN;
      return Number.isNaN(seq) ? -1 : seq;
    }

    renderedStatus(id) {
      return document.querySelector(byId(id))?.dataset.status;
    }

    clone(template, task) {
      const node = template.content.firstElementChild.cloneNode(true);
      for (const root of [node, ...node.querySelectorAll("[data-task-id]")]) fill(root, task);
      return node;
    }

    /* A task that is not on the page yet joins every live list that takes its kind (first pages only). */
    addToLists(task) {
      for (const list of document.querySelectorAll("[data-task-list]")) {
        const kind = list.dataset.kind;
        if ("noNew" in list.dataset || (kind && kind !== task.kind) || list.querySelector(byId(task.id))) continue;
        list.prepend(this.clone(this.template, task));
        const size = Number.parseInt(list.dataset.pageSize, 10);
        const rows = list.querySelectorAll(":scope > [data-task-id]");
        if (size > 0 && rows.length > size) rows[rows.length - 1].remove(); // a page stays a page
        this.updateEmpty(list);
      }
    }

    /* The admin's change list (staff feed), when it shows the newest tasks unfiltered. */
    addToAdmin(task) {
      if (!this.adminRows || !this.rowTemplate || this.adminRows.querySelector(byId(task.id))) return;
      this.adminRows.prepend(this.clone(this.rowTemplate, task));
    }

    /* The bar under the header: unfinished tasks, and those that finished while the page was open. */
    addToBar(task) {
      if (!this.bar || this.bar.querySelector(byId(task.id))) return;
      if (isFinished(task) || dismissed.has(task.id)) return;
      this.bar.append(this.clone(this.template, task));
      this.bar.hidden = false;
    }

    updateEmpty(list) {
      const empty = list.querySelector("[data-task-list-empty]");
      if (empty) empty.hidden = Boolean(list.querySelector(":scope > [data-task-id]"));
    }

    /* Screen readers hear changes of state, not every percent step (the bar is not a live region). */
    announce(task, before) {
      if (!this.announcer || before === task.status) return;
      this.announcer.textContent = `${task.label}: ${task.status_display}`;
    }

    render(task, { live }) {
      const before = this.renderedStatus(task.id);
      if (this.template) {
        this.addToLists(task);
        this.addToBar(task);
        this.addToAdmin(task);
      }
      for (const root of document.querySelectorAll(byId(task.id))) fill(root, task);
      if (live || before !== undefined) this.announce(task, before);
    }

    receive(list, { live = false } = {}) {
      for (const task of list) if (this.accept(task)) this.render(task, { live });
    }

    /* A task deleted anywhere (this page, another tab, the account's deletion) leaves this page. */
    remove(id) {
      this.removed.add(id);
      this.tasks.delete(id);
      for (const node of document.querySelectorAll(byId(id))) {
        const card = node.closest(".task-card");
        if (card) {
          card.replaceChildren(
            Object.assign(document.createElement("p"), { textContent: _("This task was deleted.") }),
          );
          continue;
        }
        const row = node.closest("[data-task-row]") || node;
        const list = row.parentElement;
        row.remove();
        if (list?.matches("[data-task-list]")) this.updateEmpty(list);
      }
      if (this.bar) this.bar.hidden = !this.bar.querySelector("[data-task-id]");
    }

    /* Elapsed time and the estimate move every second, even between messages. */
    tick() {
      for (const task of this.tasks.values()) {
        if (isFinished(task)) continue;
        for (const node of document.querySelectorAll(`${byId(task.id)} [data-field="timing"]`)) {
          node.textContent = timingText(task);
        }
        for (const node of document.querySelectorAll(`${byId(task.id)} [data-field="duration"]`)) {
          node.textContent = durationText(task);
        }
      }
    }
  }

  class Feed {
    constructor(page) {
      this.page = page;
      this.backoff = 1000;
      this.failures = 0;
      this.pollTimer = null;
      this.stopped = false;
      this.retriedUnauthenticated = false;
    }

    connect() {
      if (this.stopped) return;
      const proto = location.protocol === "https:" ? "wss://" : "ws://";
      let opened = false;
      let socket;
      try {
        socket = new WebSocket(`${proto}${location.host}${wsPath}${scope ? `?scope=${scope}` : ""}`);
      } catch {
        this.scheduleReconnect(false);
        return;
      }
      socket.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch {
          return;
        }
        if (message.type === "snapshot") {
          // Connected only once the snapshot (always the first message) is here: a socket that
          // opens and drops before it counts as a failed attempt, so backoff and polling apply.
          opened = true;
          this.retriedUnauthenticated = false;
          this.failures = 0;
          this.backoff = 1000;
          this.stopPolling();
          this.page.receive(message.tasks);
        } else if (message.type === "task") {
          this.page.receive([message.task], { live: true });
        } else if (message.type === "task_deleted") {
          this.page.remove(message.id);
        }
      };
      socket.onclose = (event) => {
        if (event.code === CLOSE_UNAUTHENTICATED && !this.retriedUnauthenticated) {
          // Login and a password change re-key the session: the cookie this page now holds may
          // be valid though the one the socket opened with is not. One retry, at once, tells.
          this.retriedUnauthenticated = true;
          this.connect();
          return;
        }
        if (event.code === CLOSE_UNAUTHENTICATED || event.code === CLOSE_TOO_MANY_SOCKETS) {
          this.stopped = true; // signed out, or too many pages open: nothing to follow here
          this.stopPolling();
          return;
        }
        this.scheduleReconnect(opened);
      };
    }

    scheduleReconnect(wasOpen) {
      if (!wasOpen) this.failures += 1;
      if (this.failures >= FAILURES_BEFORE_POLLING) this.startPolling();
      const delay = this.backoff * (0.5 + Math.random()); // jitter: a restarted server is not stampeded
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
      setTimeout(() => this.connect(), delay);
    }

    async poll() {
      try {
        const response = await fetch(`${apiUrl}${scope ? `?scope=${scope}` : ""}`, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        if (response.ok) this.page.receive((await response.json()).tasks);
      } catch {
        // offline: the next poll or the socket will catch up
      }
    }

    startPolling() {
      if (this.pollTimer) return;
      this.poll();
      this.pollTimer = setInterval(() => this.poll(), POLL_MS);
    }

    stopPolling() {
      clearInterval(this.pollTimer);
      this.pollTimer = null;
    }
  }

  const page = new TaskPage();
  setInterval(() => page.tick(), 1000);
  new Feed(page).connect();
})();
