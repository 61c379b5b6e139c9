/* Live task progress for every page: a WebSocket to /ws/notifications/ (docs/protocol.md), with
 * reconnection and backoff, and polling of /api/tasks/ when WebSockets cannot connect at all.
 * Any element with data-task-id="<uuid>" is kept up to date; see templates/exports/_task_progress.html. */
(function () {
  "use strict";
  var script = document.currentScript;
  var wsPath = script.dataset.wsPath;
  var apiUrl = script.dataset.apiUrl;
  var scope = script.dataset.scope || "";          // "all": staff feed for the admin
  var POLL_MS = 4000;
  var MAX_BACKOFF_MS = 30000;
  var FAILURES_BEFORE_POLLING = 2;

  var tasks = {};                                   // id -> newest Task seen (highest seq)
  var shownInBar = {};                              // ids shown in the running-tasks bar
  var socket = null, backoff = 1000, failures = 0, pollTimer = null, stopped = false;

  var LABELS = {queued: "Queued", running: "Running", succeeded: "Succeeded", failed: "Failed", cancelled: "Cancelled"};

  function isFinished(task) { return task.status !== "queued" && task.status !== "running"; }

  /* Keep a task only if it is newer than what we show: progress never goes backwards. */
  function accept(task) {
    var known = tasks[task.id];
    if (known && known.seq >= task.seq) return false;
    tasks[task.id] = task;
    return true;
  }

  function formatSeconds(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    return m + " min " + (s % 60) + " s";
  }

  function timingText(task) {
    if (!task.started_at) return task.status === "queued" ? "Waiting for a worker…" : "";
    var start = Date.parse(task.started_at);
    var end = task.finished_at ? Date.parse(task.finished_at) : Date.now();
    var elapsed = (end - start) / 1000;
    var text = (isFinished(task) ? "Took " : "Elapsed ") + formatSeconds(elapsed);
    if (task.status === "running" && task.progress > 0 && task.progress < 100) {
      text += " · about " + formatSeconds(elapsed * (100 - task.progress) / task.progress) + " left";
    }
    return text;
  }

  function setField(root, name, fn) {
    var nodes = root.querySelectorAll('[data-field="' + name + '"]');
    for (var i = 0; i < nodes.length; i++) fn(nodes[i]);
  }

  function renderInto(root, task) {
    root.dataset.status = task.status;
    root.dataset.seq = task.seq;
    setField(root, "status", function (n) { n.textContent = LABELS[task.status] || task.status; });
    setField(root, "percent", function (n) { n.textContent = task.progress + "%"; });
    setField(root, "bar", function (n) {
      n.setAttribute("aria-valuenow", String(task.progress));
      if (n.tagName === "PROGRESS") n.value = task.progress;
      var fill = n.querySelector(".bar-fill");
      if (fill) fill.style.width = task.progress + "%";
    });
    setField(root, "detail", function (n) { n.textContent = task.detail; });
    setField(root, "timing", function (n) { n.textContent = timingText(task); });
    setField(root, "error", function (n) { n.textContent = task.error; n.hidden = !task.error; });
    setField(root, "cancel", function (n) { n.hidden = isFinished(task); });
    setField(root, "download", function (n) {
      n.hidden = !task.download_url;
      var link = n.querySelector("a");
      if (link && task.download_url) link.href = task.download_url;
    });
  }

  function renderBar() {
    var bar = document.getElementById("running-tasks");
    if (!bar) return;
    var ids = Object.keys(tasks).filter(function (id) {
      return !isFinished(tasks[id]) || shownInBar[id];
    });
    bar.hidden = ids.length === 0;
    ids.forEach(function (id) {
      var task = tasks[id];
      shownInBar[id] = true;
      var item = bar.querySelector('[data-task-id="' + id + '"]');
      if (!item) {
        item = document.createElement("a");
        item.className = "running-task";
        item.href = "/exports/" + id + "/";
        item.dataset.taskId = id;
        item.innerHTML = '<span data-field="status"></span> export ' +
          '<span class="mini-bar" role="progressbar" aria-label="Export progress" aria-valuemin="0" ' +
          'aria-valuemax="100" data-field="bar"><span class="bar-fill"></span></span> ' +
          '<span data-field="percent"></span>';
        bar.appendChild(item);
      }
    });
  }

  function render(task) {
    renderBar();
    var roots = document.querySelectorAll('[data-task-id="' + task.id + '"]');
    for (var i = 0; i < roots.length; i++) renderInto(roots[i], task);
  }

  function receiveTasks(list) {
    list.forEach(function (task) { if (accept(task)) render(task); });
  }

  /* ---- WebSocket, with backoff ---- */
  function connect() {
    if (stopped) return;
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var opened = false;
    try {
      socket = new WebSocket(proto + location.host + wsPath + (scope ? "?scope=" + scope : ""));
    } catch (e) {
      return scheduleReconnect(false);
    }
    socket.onmessage = function (event) {
      var msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (msg.type === "snapshot") {
        // Connected only once the snapshot (always the first message) is here: a socket that
        // opens and drops before it counts as a failed attempt, so backoff and polling still apply.
        opened = true; failures = 0; backoff = 1000;
        stopPolling();
        receiveTasks(msg.tasks);
      } else if (msg.type === "task") {
        receiveTasks([msg.task]);
      }
    };
    socket.onclose = function (event) {
      socket = null;
      if (event.code === 4401) { stopped = true; return; }   // signed out: nothing to follow
      scheduleReconnect(opened);
    };
  }

  function scheduleReconnect(wasOpen) {
    if (!wasOpen) failures += 1;
    if (failures >= FAILURES_BEFORE_POLLING) startPolling();
    var delay = backoff * (0.5 + Math.random());      // jitter: a restarted server is not stampeded
    backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
    setTimeout(connect, delay);
  }

  /* ---- Polling fallback ---- */
  function poll() {
    fetch(apiUrl + (scope ? "?scope=" + scope : ""), {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) receiveTasks(data.tasks); })
      .catch(function () {});
  }
  function startPolling() {
    if (pollTimer) return;
    poll();
    pollTimer = setInterval(poll, POLL_MS);
  }
  function stopPolling() {
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  /* Elapsed time and the estimate move every second even between messages. */
  setInterval(function () {
    Object.keys(tasks).forEach(function (id) {
      if (!isFinished(tasks[id])) {
        var roots = document.querySelectorAll('[data-task-id="' + id + '"]');
        for (var i = 0; i < roots.length; i++) {
          setField(roots[i], "timing", function (n) { n.textContent = timingText(tasks[id]); });
        }
      }
    });
  }, 1000);

  connect();
})();
