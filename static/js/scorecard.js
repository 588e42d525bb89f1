// The admin page's scorecard panel (templates/admin.templ): it starts a
// run, polls it and draws the matrix. It uses the helpers admin.js shares
// (window.adminPage), so it is loaded after admin.js.
(function () {
  "use strict";

  var page = window.adminPage;
  if (!page) return;
  var text = page.text, post = page.post, replicaClass = page.replicaClass;

  // The scorecard: every fault × every mode. A run lives in the replica
  // that started it, and any replica fetches it from there. The page polls
  // the run it shows every second while it runs and fills the cells as they
  // come; a measured cell never changes, so it is drawn once and left alone
  // (its <details> stays as the reader left it). The columns' headers are
  // the page's, rendered from the modes table; the faults' labels come from
  // the panel's data-fault-labels.
  var scorecardPanel = document.getElementById("scorecard");
  if (scorecardPanel) scorecard(scorecardPanel);

  function scorecard(panel) {
    var runBtn = document.getElementById("scorecard-run");
    var cancelBtn = document.getElementById("scorecard-cancel");
    var message = document.getElementById("scorecard-message");
    var output = document.getElementById("scorecard-output");
    var stateLine = document.getElementById("scorecard-state");
    var progress = document.getElementById("scorecard-progress");
    var bar = progress.querySelector("rect");
    var progressText = progress.querySelector(".scorecard-progress-text");
    var resultBox = document.getElementById("scorecard-result");
    var summary = resultBox.querySelector("[data-testid=scorecard-summary]");
    var jsonLink = resultBox.querySelector("[data-testid=scorecard-json]");
    var mdLink = resultBox.querySelector("[data-testid=scorecard-md]");
    var table = document.getElementById("scorecard-matrix");
    var thead = table.tHead;
    var tbody = table.tBodies[0];
    var runsList = document.getElementById("scorecard-runs");

    var faultLabels = {};
    try { faultLabels = JSON.parse(panel.dataset.faultLabels || "{}"); } catch (e) { faultLabels = {}; }
    var modeHeads = new Map();
    thead.querySelectorAll("th[data-mode]").forEach(function (th) { modeHeads.set(th.dataset.mode, th); });

    var shown = "";      // the ID of the run shown
    var gen = 0;         // bumped when another run is shown: older answers are dropped
    var timer = null;
    var lastState = "";
    var canceling = false;
    var cells = new Map(); // fault|mode → its <td>
    var estimate = { value: -1, at: 0 };

    function apiURL(id) { return "/api/admin/scorecard/" + encodeURIComponent(id); }

    function getJSON(url) {
      return fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" }).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          return { ok: r.ok, status: r.status, body: j || {} };
        });
      });
    }

    function tell(msg, kind) {
      message.textContent = msg;
      message.dataset.kind = kind || "info";
    }

    function faultLabel(f) { return (faultLabels[f] && faultLabels[f].label) || f; }

    // dur says a number of seconds the way people do: "40 s", "1 min 40 s".
    function dur(s) {
      s = Math.max(0, Math.round(s));
      if (s < 60) return s + " s";
      s = Math.round(s / 5) * 5;
      var m = Math.floor(s / 60), r = s % 60;
      return m + " min" + (r ? " " + r + " s" : "");
    }

    function ms(n) {
      return n < 1000 ? n + " ms" : (n / 1000).toFixed(1) + " s";
    }

    function when(iso) {
      var d = new Date(iso);
      if (isNaN(d.getTime())) return "";
      var hm = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
      if (d.toDateString() === new Date().toDateString()) return "today " + hm;
      return d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) + " " + hm;
    }

    function setControls(running) {
      if (runBtn) runBtn.disabled = running;
      if (cancelBtn) {
        cancelBtn.hidden = !running;
        cancelBtn.disabled = !running || canceling;
      }
    }

    // show displays run id and follows it while it runs.
    function show(id) {
      gen++;
      clearTimeout(timer);
      shown = id;
      lastState = "";
      canceling = false;
      estimate = { value: -1, at: 0 };
      markShown();
      poll(gen, 0);
    }

    function poll(g, failures) {
      getJSON(apiURL(shown)).then(function (res) {
        if (g !== gen) return;
        if (res.ok) {
          render(res.body);
          if (res.body.state === "running") timer = setTimeout(function () { poll(g, 0); }, 1000);
          return;
        }
        // 404: the run is gone (its replica restarted and forgot it). Else
        // the replica that runs it is out of reach for now: ask again.
        if (res.status === 404) { lost("Run " + shown + " is gone: " + (res.body.error || "the server does not know it.")); return; }
        again(g, failures, res.body.error);
      }).catch(function () {
        // The replica that answered may be one the scorecard broke on
        // purpose: the next request goes to another.
        if (g === gen) again(g, failures, "");
      });
    }

    function again(g, failures, why) {
      if (failures >= 120) { lost("Lost touch with run " + shown + ": no answer about it for two minutes. Pick it from the recent runs to look again."); return; }
      if (failures >= 2 && lastState === "running") {
        progressText.textContent = progressText.textContent.replace(/ · waiting for an answer…$/, "") + " · waiting for an answer…";
      } else if (failures >= 1 && lastState === "") {
        stateLine.textContent = "Asking for run " + shown + "… " + (why || "No answer yet.");
        stateLine.dataset.kind = "warn";
      }
      timer = setTimeout(function () { poll(g, failures + 1); }, 1000);
    }

    function lost(msg) {
      if (output.dataset.runId !== shown) {
        // Another run's matrix is on show: it is not this one's.
        delete output.dataset.runId;
        delete table.dataset.key;
        cells.clear();
        tbody.replaceChildren();
        progress.hidden = true;
        resultBox.hidden = true;
      }
      output.dataset.state = "lost";
      stateLine.textContent = msg;
      stateLine.dataset.kind = "error";
      table.removeAttribute("aria-busy");
      setControls(false);
    }

    function render(run) {
      var running = run.state === "running";
      output.dataset.state = run.state;
      output.dataset.runId = run.id;
      buildTable(run);
      fillCells(run);
      paintProgress(run);
      paintState(run);
      if (running) {
        table.setAttribute("aria-busy", "true");
        resultBox.hidden = true;
      } else {
        table.removeAttribute("aria-busy");
        paintResult(run);
        canceling = false;
      }
      setControls(running);
      if (!running && lastState === "running") {
        tell("");
        loadRuns(false);
      }
      lastState = run.state;
    }

    // buildTable draws the run's rows and columns, every cell pending,
    // unless the table shows them already.
    function buildTable(run) {
      var faults = run.faults || [], modes = run.modes || [];
      var key = run.id + "|" + faults.join(",") + "|" + modes.join(",");
      if (table.dataset.key === key) return;
      table.dataset.key = key;
      cells.clear();
      var head = document.createElement("tr");
      var corner = text("th", "Fault");
      corner.scope = "col";
      head.appendChild(corner);
      modes.forEach(function (m) {
        var th = modeHeads.has(m) ? modeHeads.get(m).cloneNode(true) : text("th", m);
        th.scope = "col";
        th.dataset.mode = m;
        head.appendChild(th);
      });
      thead.replaceChildren(head);
      tbody.replaceChildren();
      faults.forEach(function (f) {
        var tr = document.createElement("tr");
        tr.dataset.fault = f;
        var th = document.createElement("th");
        th.scope = "row";
        th.className = "sc-fault";
        th.appendChild(text("span", faultLabel(f), "sc-fault-label"));
        var info = faultLabels[f];
        if (info && info.description) th.appendChild(text("span", info.description, "sc-fault-desc"));
        th.appendChild(text("code", f, "sc-fault-name"));
        tr.appendChild(th);
        modes.forEach(function (m) {
          var td = document.createElement("td");
          td.dataset.testid = "scorecard-cell";
          td.dataset.fault = f;
          td.dataset.mode = m;
          cells.set(f + "|" + m, td);
          tr.appendChild(td);
        });
        tbody.appendChild(tr);
      });
    }

    function fillCells(run) {
      var got = new Set();
      (run.cells || []).forEach(function (c) {
        var key = c.fault + "|" + c.mode;
        got.add(key);
        var td = cells.get(key);
        if (td && td.dataset.filled !== "true") fillCell(td, c);
      });
      // The row being measured: the first with a cell missing.
      var current = "";
      if (run.state === "running") {
        current = (run.faults || []).find(function (f) {
          return (run.modes || []).some(function (m) { return !got.has(f + "|" + m); });
        }) || "";
      }
      cells.forEach(function (td, key) {
        if (got.has(key)) return;
        if (run.state !== "running") unmeasured(td, "not-run", "not run");
        else if (td.dataset.fault === current) unmeasured(td, "pending", "measuring…", "is-measuring");
        else unmeasured(td, "pending", "pending");
      });
      tbody.querySelectorAll("tr[data-fault]").forEach(function (tr) {
        tr.classList.toggle("is-current", tr.dataset.fault === current);
      });
      return current;
    }

    function unmeasured(td, verdict, label, cls) {
      var className = "sc-cell is-" + verdict + (cls ? " " + cls : "");
      if (td.dataset.verdict === verdict && td.className === className) return;
      td.dataset.verdict = verdict;
      td.className = className;
      td.replaceChildren(text("span", label, "sc-pending"));
    }

    function fillCell(td, c) {
      var unexpected = c.verdict !== "expected";
      td.dataset.filled = "true";
      td.dataset.verdict = c.verdict;
      td.className = "sc-cell " + (unexpected ? "is-unexpected" : "is-expected") + (c.error ? " is-error" : "");
      if (c.error) td.dataset.error = "true";
      td.replaceChildren();
      var v = document.createElement("p");
      v.className = "sc-verdict";
      var mark = text("span", unexpected ? "✗" : "✓", "sc-mark");
      mark.setAttribute("aria-hidden", "true");
      v.appendChild(mark);
      v.appendChild(text("span", c.error ? "not measured" : unexpected ? "unexpected" : "as expected", "sc-verdict-text"));
      td.appendChild(v);
      if (c.error) {
        td.appendChild(text("p", c.error, "sc-error"));
      } else {
        var facts = document.createElement("ul");
        facts.className = "sc-facts";
        var fact = function (s, title, cls) {
          var li = text("li", s, cls);
          li.title = title;
          facts.appendChild(li);
        };
        var kept = c.adds_acked - c.adds_lost;
        fact(kept + "/" + c.adds_acked + " adds kept", kept + " of " + c.adds_acked + " acknowledged adds were in the carts at the end", c.adds_lost > 0 ? "is-loss" : "");
        if (c.sessions_lost > 0) fact(c.sessions_lost + "/" + c.sessions + " sessions lost", c.sessions_lost + " of " + c.sessions + " shoppers' sessions were lost (" + c.sessions_on_victim + " lived on the replica the fault hit)", "is-loss");
        fact(c.failed + "/" + c.requests + " failed", c.failed + " of " + c.requests + " requests failed or got no answer", c.failed > 0 ? "is-warn" : "");
        fact("longest " + ms(c.longest_ms), "the longest request took " + ms(c.longest_ms));
        if (c.recovery_ms > 0) fact("back in " + ms(c.recovery_ms), "answering normally again " + ms(c.recovery_ms) + " after the fault began");
        if (c.adds_duplicated > 0) fact(c.adds_duplicated + " applied twice", c.adds_duplicated + " acknowledged adds were applied twice", "is-loss");
        td.appendChild(facts);
      }
      var more = document.createElement("details");
      more.className = "sc-more";
      more.open = unexpected && !c.error;
      more.appendChild(text("summary", "Promise and why"));
      var promise = document.createElement("p");
      promise.appendChild(text("span", "Promise: ", "sc-label"));
      promise.appendChild(document.createTextNode(c.expected || "–"));
      more.appendChild(promise);
      var why = document.createElement("p");
      why.appendChild(text("span", "Measured: ", "sc-label"));
      why.appendChild(document.createTextNode(c.why || "–"));
      more.appendChild(why);
      td.appendChild(more);
    }

    function rowsDone(run) {
      var n = (run.modes || []).length;
      return n ? Math.floor((run.cells || []).length / n) : 0;
    }

    function paintProgress(run) {
      var total = (run.faults || []).length, done = rowsDone(run);
      var pct = total ? Math.round(100 * done / total) : Math.round(100 * (run.progress || 0));
      if (run.state === "done") pct = 100;
      var s = pct + "% · " + done + " of " + total + " faults";
      if (run.state === "running") {
        if (estimate.value !== run.remaining_s) estimate = { value: run.remaining_s, at: Date.now() };
        var left = estimate.value - Math.floor((Date.now() - estimate.at) / 1000);
        s += left > 0 ? " · about " + dur(left) + " left" : " · taking a little longer than estimated";
      } else if (run.finished) {
        s += " · took " + dur((new Date(run.finished) - new Date(run.started)) / 1000);
      }
      progress.hidden = false;
      bar.setAttribute("width", String(pct));
      progress.setAttribute("aria-valuenow", String(pct));
      progress.setAttribute("aria-valuetext", s);
      progressText.textContent = s;
    }

    function paintState(run) {
      var where = "run " + run.id + " on " + run.replica + ", started " + when(run.started);
      var s, kind = "info";
      switch (run.state) {
        case "running":
          var current = tbody.querySelector("tr.is-current");
          s = "Running (" + where + "): " + (current ? "measuring " + faultLabel(current.dataset.fault) + "." : "letting the stack settle.");
          break;
        case "done":
          s = "Done (" + where + ").";
          kind = "success";
          break;
        case "canceled":
          s = "Canceled (" + where + "): the faults it did not reach show as not run.";
          kind = "warn";
          break;
        default:
          s = "Failed (" + where + ")" + (run.error ? ": " + run.error : ".");
          kind = "error";
      }
      if (run.state !== "failed" && run.error) s += " " + run.error;
      if (stateLine.textContent !== s) stateLine.textContent = s;
      stateLine.dataset.kind = kind;
    }

    function paintResult(run) {
      var list = run.cells || [];
      var faults = (run.faults || []).length, modes = (run.modes || []).length;
      var expected = list.filter(function (c) { return c.verdict === "expected"; }).length;
      var unexpected = list.length - expected;
      var notMeasured = list.filter(function (c) { return c.error; }).length;
      var s = faults + " faults × " + modes + " modes: " + expected + " as expected, " + unexpected + " unexpected";
      if (notMeasured) s += " (" + notMeasured + " of them not measured)";
      if (list.length < faults * modes) s += "; " + (faults * modes - list.length) + " not run";
      summary.textContent = s + ".";
      summary.classList.toggle("is-bad", unexpected > 0);
      jsonLink.href = apiURL(run.id) + "?format=json";
      mdLink.href = apiURL(run.id) + "?format=markdown";
      resultBox.hidden = false;
    }

    // loadRuns lists the recent runs; with follow, it shows one that is
    // running (someone may have started it elsewhere).
    function loadRuns(follow) {
      getJSON("/api/admin/scorecards").then(function (res) {
        if (!res.ok || !Array.isArray(res.body)) {
          runsList.replaceChildren(text("li", "The recent runs could not be loaded: " + (res.body.error || "the server answered " + res.status + "."), "scorecard-runs-empty"));
          return;
        }
        paintRuns(res.body.slice(0, 8));
        var running = res.body.find(function (r) { return r.state === "running"; });
        if (follow && running && running.id !== shown) show(running.id);
      }).catch(function () {
        runsList.replaceChildren(text("li", "The recent runs could not be loaded: no answer.", "scorecard-runs-empty"));
      });
    }

    function paintRuns(list) {
      runsList.replaceChildren();
      if (!list.length) {
        runsList.appendChild(text("li", "No runs yet (a replica forgets its runs when it restarts).", "scorecard-runs-empty"));
        return;
      }
      list.forEach(function (r) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "scorecard-run-item is-" + r.state;
        b.dataset.testid = "scorecard-recent-run";
        b.dataset.id = r.id;
        b.dataset.state = r.state;
        b.appendChild(text("span", r.state === "running" ? "running · " + Math.round(100 * (r.progress || 0)) + "%" : r.state, "sc-run-state"));
        b.appendChild(text("span", when(r.started), "sc-run-when"));
        b.appendChild(text("span", r.unexpected + " unexpected", "sc-run-unexpected" + (r.unexpected > 0 ? " is-bad" : "")));
        var on = text("span", "on ", "sc-run-replica");
        on.appendChild(text("span", r.replica, "chip sc-chip " + replicaClass(r.replica)));
        b.appendChild(on);
        var li = document.createElement("li");
        li.appendChild(b);
        runsList.appendChild(li);
      });
      markShown();
    }

    function markShown() {
      runsList.querySelectorAll("button[data-id]").forEach(function (b) {
        if (b.dataset.id === shown) b.setAttribute("aria-current", "true");
        else b.removeAttribute("aria-current");
      });
    }

    runsList.addEventListener("click", function (ev) {
      var b = ev.target.closest("button[data-id]");
      if (b) show(b.dataset.id);
    });

    if (runBtn) {
      runBtn.addEventListener("click", function () {
        var before = output.dataset.state;
        runBtn.disabled = true;
        output.dataset.state = "starting";
        tell("Starting the scorecard…");
        post("/api/admin/scorecard", {})
          .then(function (j) {
            tell(j.message, "success");
            show(j.id);
            loadRuns(false);
          })
          .catch(function (err) {
            // 409: a run is going on, perhaps started elsewhere: show it.
            output.dataset.state = before;
            tell(err.message, "error");
            runBtn.disabled = false;
            loadRuns(true);
          });
      });
    }

    if (cancelBtn) {
      cancelBtn.addEventListener("click", function () {
        if (!shown) return;
        canceling = true;
        cancelBtn.disabled = true;
        tell("Asking the run to stop…");
        post(apiURL(shown) + "/cancel", {})
          .then(function (j) { tell(j.message, "success"); })
          .catch(function (err) {
            canceling = false;
            cancelBtn.disabled = false;
            tell(err.message, "error");
          });
      });
    }

    loadRuns(true);
  }
})();
