// The admin page, live: the request log and the topology follow the
// replicas through Server-Sent Events (GET /api/admin/events), the load
// chart is fetched again every few seconds, and the controls post JSON.
// No framework, no build step.
(function () {
  "use strict";

  var rows = document.getElementById("log-rows");
  var view = document.getElementById("topology-view");
  var svg = document.getElementById("topology");
  var dots = document.getElementById("dots");
  var live = document.querySelector("[data-testid=live-state]");
  var result = document.querySelector("[data-testid=control-result]");
  if (!rows || !svg) return;

  var maxRows = 200;
  var seen = new Set();
  var byRequest = new Map();
  var svgNS = "http://www.w3.org/2000/svg";

  function text(tag, value, cls) {
    var el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  }

  function timeOf(iso) {
    var d = new Date(iso);
    var pad = function (n, w) { return String(n).padStart(w || 2, "0"); };
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) + "." + pad(d.getMilliseconds(), 3);
  }

  function statusClass(s) {
    if (s >= 500) return "status-5xx";
    if (s >= 400) return "status-4xx";
    if (s >= 300) return "status-3xx";
    return "status-2xx";
  }

  // A replica's colour class is the server's (replicaClass in
  // templates/replica.go): every replica box of the picture carries it in
  // data-replica-class, and this page only looks it up. The picture shows
  // every replica the log can name, drawn again when one joins; a row from
  // a replica it does not show yet stays neutral until the new picture
  // names it (learnColours).
  var colours = new Map();
  function replicaClass(name) {
    return colours.get(name) || "replica-unknown";
  }

  // learnColours reads the classes of the replicas in the picture, then
  // colours the rows that waited for one.
  function learnColours() {
    svg.querySelectorAll("[data-replica-class]").forEach(function (g) {
      colours.set(g.dataset.node, g.dataset.replicaClass);
    });
    rows.querySelectorAll("tr[data-colour=pending]").forEach(function (tr) {
      var c = colours.get(tr.dataset.replica);
      if (!c) return;
      tr.classList.replace("replica-unknown", c);
      tr.querySelector(".chip").classList.replace("replica-unknown", c);
      delete tr.dataset.colour;
    });
  }
  learnColours();

  function addRow(e) {
    var empty = rows.querySelector(".log-empty");
    if (empty) empty.remove();
    var tr = document.createElement("tr");
    tr.className = replicaClass(e.replica);
    tr.dataset.testid = "log-row";
    tr.dataset.requestId = e.request_id;
    tr.dataset.replica = e.replica;
    if (e.replica && !colours.has(e.replica)) tr.dataset.colour = "pending";
    tr.appendChild(text("td", timeOf(e.time), "mono"));
    var rep = text("td", "");
    rep.appendChild(text("span", e.replica, "chip " + replicaClass(e.replica)));
    tr.appendChild(rep);
    tr.appendChild(text("td", e.lb || "–"));
    tr.appendChild(text("td", e.mode + (e.mode === "sticky" ? " · " + e.affinity : "")));
    tr.appendChild(text("td", e.method + " " + e.path, "mono"));
    tr.appendChild(text("td", String(e.status), "mono " + statusClass(e.status)));
    tr.appendChild(text("td", e.duration_ms.toFixed(1), "mono num"));
    var sess = text("td", "");
    if (e.session) sess.appendChild(text("code", e.session));
    if (e.session_event) sess.appendChild(text("span", e.session_event, "event event-" + e.session_event));
    tr.appendChild(sess);
    tr.appendChild(text("td", e.request_id.slice(0, 8), "mono muted"));
    rows.insertBefore(tr, rows.firstChild);
    var same = byRequest.get(e.request_id) || [];
    same.push(tr);
    byRequest.set(e.request_id, same);
    if (same.length > 1) {
      same.forEach(function (r) {
        r.classList.add("is-retry");
        r.title = "nginx tried this request on " + same.length + " replicas";
      });
    }
    while (rows.children.length > maxRows) {
      var last = rows.lastElementChild;
      byRequest.delete(last.dataset.requestId);
      last.remove();
    }
  }

  function nodeXY(name) {
    var g = svg.querySelector('[data-node="' + name + '"]');
    return g ? [Number(g.dataset.x), Number(g.dataset.y)] : null;
  }

  // animate draws a dot along the path a request took.
  function animate(e) {
    if (document.hidden || dots.children.length > 40) return;
    var b = nodeXY("browser");
    // Start under the "browsers" pill, not on its label.
    var stops = [b && [b[0], b[1] + 16], nodeXY(e.lb || "lb"), nodeXY(e.replica)];
    if (e.mode === "redis" && e.status < 500) stops.push(nodeXY("redis"));
    if (stops.some(function (p) { return !p; })) return;
    var c = document.createElementNS(svgNS, "circle");
    c.setAttribute("r", "7");
    c.setAttribute("class", "dot " + replicaClass(e.replica) + (e.status >= 500 ? " dot-error" : ""));
    c.setAttribute("cx", stops[0][0]);
    c.setAttribute("cy", stops[0][1]);
    dots.appendChild(c);
    var legs = stops.length - 1, per = 420, start = performance.now();
    function step(now) {
      var t = (now - start) / per;
      if (t >= legs) { c.remove(); return; }
      var i = Math.floor(t), f = t - i;
      c.setAttribute("cx", stops[i][0] + (stops[i + 1][0] - stops[i][0]) * f);
      c.setAttribute("cy", stops[i][1] + (stops[i + 1][1] - stops[i][1]) * f);
      requestAnimationFrame(step);
    }
    requestAnimationFrame(step);
  }

  function setState(el, state, detail) {
    if (!el) return;
    el.dataset.state = state;
    el.classList.remove("state-up", "state-down", "state-hung");
    el.classList.add(state === "up" ? "state-up" : state === "not answering" ? "state-hung" : "state-down");
    var s = el.querySelector(".node-state, [data-role=state]");
    if (s && el.classList.contains("node-redis-node")) {
      s.textContent = el.dataset.role + (state === "up" ? "" : " · " + state);
    } else if (s) {
      s.textContent = (el.classList.contains("node-lb") ? "nginx · " : "") + state +
        (el.classList.contains("node-replica") && el.dataset.change ? " · " + el.dataset.change : "");
    }
    var title = el.querySelector("title");
    if (title) title.textContent = el.dataset.node + ": " + state + (detail ? " (" + detail + ")" : "");
  }

  // membership is the replicas a status lists; drawn the ones the picture
  // on the page has. The joined/left marks are painted from each status.
  // membership is what the picture is drawn from: the replicas, and the
  // Redis nodes with their roles, so a failover redraws it.
  function membership(st) {
    return (st.replicas || []).map(function (r) { return r.name; }).join(",") + "|" +
      (st.redis_nodes || []).map(function (n) { return n.name + ":" + n.role; }).join(",");
  }
  function drawn() {
    return Array.prototype.map.call(svg.querySelectorAll(".node-replica"), function (g) {
      return g.dataset.node;
    }).join(",") + "|" + Array.prototype.map.call(svg.querySelectorAll(".node-redis-node"), function (g) {
      return g.dataset.node + ":" + g.dataset.role;
    }).join(",");
  }

  // setChange shows a replica's joined/left mark on its box and its card.
  function setChange(g, card, change) {
    if (g) g.dataset.change = change;
    if (!card) return;
    card.dataset.change = change;
    var pill = card.querySelector("[data-role=change]");
    if (!change) {
      if (pill) pill.remove();
      return;
    }
    if (!pill) {
      pill = text("span", "");
      pill.dataset.role = "change";
      card.querySelector(".node-card-head").appendChild(pill);
    }
    pill.className = "change-pill change-" + change;
    pill.textContent = change;
  }

  // redraw fetches the picture and the cards again when replicas joined or
  // left (scaling, a rolling deploy), then applies the status to them.
  var redrawing = false;
  function redraw(st) {
    if (redrawing) return;
    redrawing = true;
    fetch("/admin/topology", { headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) return;
        view.innerHTML = html;
        svg = document.getElementById("topology");
        dots = document.getElementById("dots");
        learnColours();
        paint(st);
      })
      .catch(function () {})
      .then(function () { redrawing = false; });
  }

  function applyStatus(st) {
    if (view && membership(st) !== drawn()) redraw(st);
    paint(st);
  }

  function paint(st) {
    (st.replicas || []).forEach(function (r) {
      var g = svg.querySelector('[data-node="' + r.name + '"]');
      var card = document.querySelector('.node-card[data-node="' + r.name + '"]');
      setChange(g, card, r.change || "");
      setState(g, r.state, r.detail);
      setState(card, r.state, r.detail);
      if (card) {
        var d = card.querySelector("[data-role=detail]");
        if (r.state === "up") {
          d.textContent = r.sessions + " sticky sessions in memory" + (r.hung_for ? " · hangs " + r.hung_for + " s more" : "");
        } else {
          d.textContent = r.detail || r.state;
        }
      }
    });
    if (st.redis) {
      setState(svg.querySelector('[data-node="redis"]'), st.redis.state, st.redis.detail);
      setState(document.querySelector('.node-card[data-node="redis"]'), st.redis.state, st.redis.detail);
    }
    (st.load_balancers || []).forEach(function (lb) {
      setState(svg.querySelector('[data-node="' + lb.name + '"]'), lb.state, lb.detail);
    });
    (st.redis_nodes || []).concat(st.sentinels || []).forEach(function (n) {
      setState(svg.querySelector('[data-node="' + n.name + '"]'), n.state, n.detail);
    });
    live.dataset.state = "live";
    live.textContent = "live via " + st.served_by;
  }

  function connect() {
    var es = new EventSource("/api/admin/events");
    es.addEventListener("status", function (m) { applyStatus(JSON.parse(m.data)); });
    es.addEventListener("requests", function (m) {
      JSON.parse(m.data).forEach(function (e) {
        if (seen.has(e.id)) return;
        seen.add(e.id);
        addRow(e);
        animate(e);
      });
    });
    es.onerror = function () {
      live.dataset.state = "reconnecting";
      live.textContent = "reconnecting…";
    };
  }
  connect();

  // The load chart, server-rendered, fetched again every 3 seconds.
  var chart = document.getElementById("load-chart");
  setInterval(function () {
    if (document.hidden) return;
    fetch("/admin/load", { headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html) chart.innerHTML = html; })
      .catch(function () {});
  }, 3000);

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body || {}),
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.error || "The server answered " + r.status + ".");
        return j;
      });
    });
  }

  function say(msg, kind) {
    if (!result) return;
    result.textContent = msg;
    result.dataset.kind = kind || "info";
  }

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-action]");
    if (!b) return;
    var url;
    var body = {};
    switch (b.dataset.action) {
      case "crash": url = "/api/admin/replicas/" + b.dataset.replica + "/crash"; break;
      case "stop": url = "/api/admin/replicas/" + b.dataset.replica + "/stop"; break;
      case "hang": url = "/api/admin/replicas/" + b.dataset.replica + "/hang"; body = { seconds: Number(b.dataset.seconds) }; break;
      case "redis": url = "/api/admin/redis/" + b.dataset.node + "/" + b.dataset.verb; break;
      case "memcached-fill": url = "/api/admin/memcached/fill"; break;
      default: return;
    }
    b.disabled = true;
    say("Asking…");
    post(url, body)
      .then(function (j) { say(j.message, "success"); })
      .catch(function (err) { say(err.message, "error"); })
      .finally(function () { setTimeout(function () { b.disabled = false; }, 1500); });
  });

  // The traffic simulator: start, then poll its server-rendered progress.
  var sim = document.getElementById("sim-form");
  if (sim) {
    sim.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = new FormData(sim);
      var out = document.getElementById("sim-output");
      var run = sim.querySelector("[data-testid=sim-run]");
      run.disabled = true;
      out.textContent = "Starting…";
      post("/api/admin/simulations", {
        clients: Number(f.get("clients")), mode: f.get("mode"), affinity: f.get("affinity"),
        sessions: f.get("sessions"), seconds: Number(f.get("seconds")),
        one_address: f.get("one_address") === "on", naive: f.get("naive") === "on",
      }).then(function (j) {
        var tries = 0;
        function poll() {
          // Bounded: 600 polls, about five minutes, errors included.
          if (++tries > 600) { run.disabled = false; return; }
          fetch("/admin/simulations/" + encodeURIComponent(j.id), { headers: { Accept: "text/html" } })
            .then(function (r) { return r.text().then(function (html) { return { ok: r.ok, html: html }; }); })
            .then(function (res) {
              out.innerHTML = res.html;
              if (!res.ok || out.querySelector("[data-done=true]")) { run.disabled = false; return; }
              setTimeout(poll, 500);
            })
            .catch(function () { setTimeout(poll, 1000); });
        }
        poll();
      }).catch(function (err) { out.textContent = err.message; run.disabled = false; });
    });
  }

  // The concurrency experiment.
  var conc = document.getElementById("conc-form");
  if (conc) {
    conc.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = new FormData(conc);
      var out = document.getElementById("conc-output");
      var run = conc.querySelector("[data-testid=conc-run]");
      run.disabled = true;
      out.textContent = "Firing…";
      post("/api/admin/concurrent-adds", { mode: f.get("mode"), naive: f.get("naive") === "on" })
        .then(function (j) {
          out.textContent = "";
          var p = text("p", j.summary, "conc-summary");
          p.dataset.testid = "conc-summary";
          out.appendChild(p);
        })
        .catch(function (err) { out.textContent = err.message; })
        .finally(function () { run.disabled = false; });
    });
  }

  // End every session of a user: the answer's message says what was
  // ended, also when Redis could not record it (a 503 with a message).
  var endUser = document.getElementById("end-user-form");
  if (endUser) {
    endUser.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var user = new FormData(endUser).get("user");
      var out = document.getElementById("end-user-output");
      var run = endUser.querySelector("[data-testid=end-user-run]");
      run.disabled = true;
      delete out.dataset.done;
      out.textContent = "Ending " + user + "'s sessions…";
      fetch("/api/admin/users/" + encodeURIComponent(user) + "/end-sessions", {
        method: "POST",
        headers: { Accept: "application/json" },
      })
        .then(function (r) { return r.json().catch(function () { return {}; }); })
        .then(function (j) { out.textContent = j.message || j.error || "No answer."; })
        .catch(function (err) { out.textContent = err.message; })
        .finally(function () { run.disabled = false; out.dataset.done = "true"; });
    });
  }

  // The failover experiment: the Redis primary is killed under writes.
  var failover = document.getElementById("failover-form");
  if (failover) {
    failover.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var f = new FormData(failover);
      var out = document.getElementById("failover-output");
      var run = failover.querySelector("[data-testid=failover-run]");
      run.disabled = true;
      out.textContent = "Writing, then killing the primary… (about 10 s)";
      post("/api/admin/redis/failover", { async: f.get("async") === "on" })
        .then(function (j) {
          out.textContent = "";
          var p = text("p", j.summary, "conc-summary");
          p.dataset.testid = "failover-summary";
          out.appendChild(p);
        })
        .catch(function (err) { out.textContent = err.message; })
        .finally(function () { run.disabled = false; });
    });
  }

  // What scorecard.js, loaded after this file, shares.
  window.adminPage = { text: text, post: post, replicaClass: replicaClass };
})();
