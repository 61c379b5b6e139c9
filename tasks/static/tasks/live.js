/* Live tasks on every page: one WebSocket to /ws/notifications/ (docs/protocol.md), reconnecting
 * with backoff, and polling /api/tasks/ while WebSockets cannot connect.
 *
 * It knows no kind of task. Every element with data-task-id is filled from the Task JSON; a task
 * that appears while the page is open is added, by cloning <template id="task-template"> (the one
 * task markup, tasks/_task.html), to each [data-task-list] that takes its kind and to the
 * running-tasks bar. Its settings come from its own <script> tag's data attributes. */
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

  const isFinished = (task) => task.status !== "queued" && task.status !== "running";

  const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  /* A <time datetime> in the reader's own zone and locale; the UTC value stays in the attribute. */
  const localizeTime = (node) => {
    const value = node.getAttribute("datetime");
    if (!value) return;
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) {
      node.textContent = dateFormat.format(date);
      node.title = date.toISOString();
    }
  };

  const formatSeconds = (seconds) => {
    const s = Math.max(0, Math.round(seconds));
    return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
  };

  const timingText = (task) => {
    if (!task.started_at) return task.status === "queued" ? "Waiting for a worker…" : "";
    const start = Date.parse(task.started_at);
    const end = task.finished_at ? Date.parse(task.finished_at) : Date.now();
    const elapsed = (end - start) / 1000;
    let text = `${isFinished(task) ? "Took" : "Elapsed"} ${formatSeconds(elapsed)}`;
    if (task.status === "running" && task.progress > 0 && task.progress < 100) {
      text += ` · about ${formatSeconds((elapsed * (100 - task.progress)) / task.progress)} left`;
    }
    return text;
  };

  /* Every field of the one task markup, filled as text or attributes: never as HTML. */
  const FIELDS = {
    link: (node, task) => {
      node.textContent = task.label;
      node.href = task.url;
    },
    created: (node, task) => {
      node.setAttribute("datetime", task.created_at);
      localizeTime(node);
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
    cancel: (node, task) => {
      node.hidden = !task.cancel_url;
      if (task.cancel_url) node.action = task.cancel_url;
    },
  };

  const fill = (root, task) => {
    root.dataset.taskId = task.id;
    root.dataset.kind = task.kind;
    root.dataset.status = task.status;
    root.dataset.seq = task.seq;
    for (const node of root.querySelectorAll("[data-field]")) {
      FIELDS[node.dataset.field]?.(node, task);
    }
  };

  class TaskPage {
    constructor() {
      this.tasks = new Map(); // id -> the newest Task seen (highest seq)
      this.template = document.getElementById("task-template");
      this.bar = document.getElementById("running-tasks");
      for (const node of document.querySelectorAll("time[datetime]")) localizeTime(node);
    }

    /* Keep a task only if it is newer than what we show: progress never goes backwards. What the
     * server rendered into the page counts as shown, so an older message cannot undo it either. */
    accept(task) {
      const known = this.tasks.get(task.id);
      if (known ? known.seq >= task.seq : this.renderedSeq(task.id) > task.seq) return false;
      this.tasks.set(task.id, task);
      return true;
    }

    renderedSeq(id) {
      const shown = document.querySelector(`[data-task-id="${CSS.escape(id)}"]`);
      const seq = shown ? Number.parseInt(shown.dataset.seq, 10) : Number.NaN;
      return Number.isNaN(seq) ? -1 : seq;
    }

    clone(task) {
      const node = this.template.content.firstElementChild.cloneNode(true);
      fill(node, task);
      return node;
    }

    /* A task that is not on the page yet joins every live list that takes its kind. */
    addToLists(task) {
      for (const list of document.querySelectorAll("[data-task-list]")) {
        const kind = list.dataset.kind;
        if ((kind && kind !== task.kind) || list.querySelector(`[data-task-id="${CSS.escape(task.id)}"]`)) continue;
        list.prepend(this.clone(task));
        const empty = list.querySelector("[data-task-list-empty]");
        if (empty) empty.hidden = true;
      }
    }

    /* The bar under the header: unfinished tasks, and those that finished while the page was open. */
    addToBar(task) {
      if (!this.bar || this.bar.querySelector(`[data-task-id="${CSS.escape(task.id)}"]`)) return;
      if (isFinished(task)) return;
      this.bar.append(this.clone(task));
      this.bar.hidden = false;
    }

    render(task) {
      if (this.template) {
        this.addToLists(task);
        this.addToBar(task);
      }
      for (const root of document.querySelectorAll(`[data-task-id="${CSS.escape(task.id)}"]`)) fill(root, task);
    }

    receive(list) {
      for (const task of list) if (this.accept(task)) this.render(task);
    }

    /* Elapsed time and the estimate move every second, even between messages. */
    tick() {
      for (const task of this.tasks.values()) {
        if (isFinished(task)) continue;
        for (const node of document.querySelectorAll(`[data-task-id="${CSS.escape(task.id)}"] [data-field="timing"]`)) {
          node.textContent = timingText(task);
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
          this.page.receive([message.task]);
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
