// Live updates of the build and task pages: Server-Sent Events from the controller
// (app/web/live.py). The page names its stream in <body data-live>; log pages resume from the
// byte offsets in each <pre data-end>. No build step: plain browser JavaScript.
(function () {
  "use strict";
  // A log opens at its tail: show the end of each log box.
  document.querySelectorAll("pre[data-command]").forEach(function (pre) {
    if (!window.location.search) { pre.scrollTop = pre.scrollHeight; }
  });
  var base = document.body.dataset.live;
  if (!base || !window.EventSource) { return; }
  var FINAL = ["COMPLETED", "FAILED", "ABORTED", "SKIPPED"];
  var MAX_LOG_NODES = 4000;  // keep a long live tail from growing without bound

  function setStatus(element, text, cls) {
    element.textContent = text;
    element.className = "status " + cls;
  }

  function streamUrl() {
    // After a reconnect the stream starts where the page is, not where it was first opened.
    var url = base.split("?")[0];
    var logs = document.querySelectorAll("pre[data-command][data-end]");
    if (!logs.length || base.indexOf("?") < 0) { return base; }
    var wanted = new URLSearchParams(base.split("?")[1]).getAll("log");
    var query = new URLSearchParams();
    logs.forEach(function (pre) {
      if (wanted.indexOf(pre.dataset.command) >= 0) {
        query.append("log", pre.dataset.command);
        query.append("at", pre.dataset.end);
      }
    });
    return url + "?" + query.toString();
  }

  function onBuild(event) {
    var data = JSON.parse(event.data);
    var build = document.getElementById("build-status");
    if (build) { setStatus(build, data.status, data.statusClass); }
    if (FINAL.indexOf(data.status) >= 0) {
      var actions = document.getElementById("build-actions");
      if (actions) { actions.remove(); }
    }
    Object.keys(data.tasks).forEach(function (id) {
      var task = data.tasks[id];
      document.querySelectorAll('[data-task="' + id + '"]').forEach(function (row) {
        var status = row.querySelector(".status");
        if (status) { setStatus(status, task.status, task.statusClass); }
        var worker = row.querySelector(".worker");
        if (worker && task.worker) { worker.textContent = task.worker; }
        var duration = row.querySelector(".duration");
        if (duration && task.duration) { duration.textContent = task.duration; }
        if (FINAL.indexOf(task.status) >= 0) {
          row.querySelectorAll(".when-running, .reason").forEach(function (e) { e.remove(); });
        }
      });
    });
  }

  function onBuilds(event) {
    // The builds list: each listed build's status.
    var data = JSON.parse(event.data);
    Object.keys(data).forEach(function (id) {
      document.querySelectorAll('[data-build="' + id + '"] .status').forEach(function (e) {
        setStatus(e, data[id].status, data[id].statusClass);
      });
    });
  }

  function onTask(event) {
    var data = JSON.parse(event.data);
    var status = document.getElementById("task-status");
    if (status) { setStatus(status, data.status, data.statusClass); }
    var worker = document.querySelector("dd.worker");
    if (worker && data.worker) { worker.textContent = data.worker; }
    Object.keys(data.commands).forEach(function (name) {
      document.querySelectorAll("[data-command-status]").forEach(function (element) {
        if (element.dataset.commandStatus === name) {
          setStatus(element, data.commands[name][0], data.commands[name][1]);
        }
      });
    });
    if (FINAL.indexOf(data.status) >= 0) {
      document.querySelectorAll(".when-running").forEach(function (e) { e.remove(); });
    }
  }

  function onLog(event) {
    var data = JSON.parse(event.data);
    document.querySelectorAll("pre[data-command]").forEach(function (pre) {
      if (pre.dataset.command !== data.command) { return; }
      var follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 40;
      if (data.skipped) {
        var note = document.createElement("span");
        note.className = "skipped";
        note.textContent = "\n… " + data.skipped + " bytes skipped (see Raw log) …\n";
        pre.appendChild(note);
      }
      pre.insertAdjacentHTML("beforeend", data.html);  // escaped by the server
      pre.dataset.end = data.end;
      while (pre.childNodes.length > MAX_LOG_NODES) { pre.removeChild(pre.firstChild); }
      if (follow) { pre.scrollTop = pre.scrollHeight; }
    });
  }

  function open() {
    var source = new EventSource(streamUrl());
    source.addEventListener("build", onBuild);
    source.addEventListener("builds", onBuilds);
    source.addEventListener("task", onTask);
    source.addEventListener("log", onLog);
    source.addEventListener("end", function () { source.close(); });
    source.onerror = function () {
      // EventSource would reconnect with the first URL's offsets: reopen from the page's.
      source.close();
      window.setTimeout(open, 2000);
    };
  }
  open();
})();
