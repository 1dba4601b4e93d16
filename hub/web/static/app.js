// Kentongan 112 dashboard: deadline timers and live updates over server-sent events.
// The server renders every page; this script only counts timers down and, when the event stream
// says something changed, fetches the changed part of the page from the server and swaps it in.
(function () {
  "use strict";
  var body = document.body;
  var page = body.getAttribute("data-page");
  // The server's clock decides deadlines; a workstation's clock may be minutes off.
  var skew = Date.parse(body.getAttribute("data-server-now")) - Date.now();
  if (isNaN(skew)) skew = 0;
  function now() { return Date.now() + skew; }

  function pad(n) { return n < 10 ? "0" + n : "" + n; }
  // Same format as the server's countdown: [-]h:mm:ss, or [-]mm:ss under an hour.
  function countdown(ms) {
    var sign = ms < 0 ? "-" : "";
    var s = Math.floor(Math.abs(ms) / 1000);
    var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    s = s % 60;
    return h > 0 ? sign + h + ":" + pad(m) + ":" + pad(s) : sign + pad(m) + ":" + pad(s);
  }

  function tick() {
    var timers = document.querySelectorAll(".timer[data-due]");
    for (var i = 0; i < timers.length; i++) {
      var el = timers[i];
      var left = Date.parse(el.getAttribute("data-due")) - now();
      var out = el.querySelector(".left");
      if (out) out.textContent = countdown(left);
      if (left < 0 && !el.classList.contains("late")) {
        el.classList.add("late");
        var row = el.closest("tr");
        if (row) row.classList.add("breached");
      }
    }
  }
  tick();
  setInterval(tick, 1000);

  // Filters submit on change; inline handlers would need the CSP to allow inline script.
  document.addEventListener("change", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-autosubmit")) e.target.form.submit();
  });

  function toast(text) {
    var t = document.getElementById("toast");
    if (!t) return;
    t.textContent = text;
    t.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { t.hidden = true; }, 6000);
  }

  // fetchInto fetches url and replaces the element of each id in ids with the one the answer
  // has. A 401 means the session ended: reload, which leads to the login page.
  function fetchInto(url, ids, done) {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } }).then(function (r) {
      if (r.status === 401) { location.reload(); return null; }
      if (!r.ok) throw new Error(url + ": " + r.status);
      return r.text();
    }).then(function (html) {
      if (html === null) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      ids.forEach(function (id) {
        var fresh = doc.getElementById(id), old = document.getElementById(id);
        if (fresh && old) old.innerHTML = fresh.innerHTML;
      });
      tick();
      if (done) done();
    }).catch(function (err) { console.warn("kentongan: refresh failed", err); });
  }

  // Debounce: a burst of events (a kiosk re-sending, a batch of acks) makes one fetch.
  function debounced(fn, ms) {
    var t = null;
    return function () { clearTimeout(t); t = setTimeout(fn, ms); };
  }

  function rowIDs() {
    var ids = {};
    document.querySelectorAll("#queue-rows tr[data-id]").forEach(function (tr) { ids[tr.getAttribute("data-id")] = true; });
    return ids;
  }
  var refreshQueue = debounced(function () {
    var table = document.getElementById("queue");
    if (!table) return;
    var before = rowIDs();
    fetchInto(table.getAttribute("data-rows-url"), ["queue-rows", "queue-counts"], function () {
      document.querySelectorAll("#queue-rows tr[data-id]").forEach(function (tr) {
        if (!before[tr.getAttribute("data-id")]) tr.classList.add("fresh");
      });
    });
  }, 150);

  var refreshTicket = debounced(function () {
    var sec = document.getElementById("ticket");
    if (!sec) return;
    var before = document.querySelector("#ticket-live [data-status]");
    var was = before ? before.getAttribute("data-status") : "";
    fetchInto(sec.getAttribute("data-live-url"), ["ticket-live"], function () {
      var after = document.querySelector("#ticket-live [data-status]");
      // The actions offered depend on the status; say so rather than swap forms under a typing hand.
      if (after && after.getAttribute("data-status") !== was) {
        document.getElementById("ticket-updated").classList.remove("hidden");
      }
    });
  }, 150);

  var refreshKiosks = debounced(function () {
    var t = document.getElementById("kiosks");
    if (t) fetchInto(t.getAttribute("data-rows-url"), ["kiosk-rows"]);
  }, 300);

  var refreshAlerts = debounced(function () {
    var t = document.getElementById("alerts");
    if (t) fetchInto(t.getAttribute("data-rows-url"), ["alert-rows"]);
  }, 150);

  function refreshAll() {
    refreshQueue(); refreshTicket(); refreshKiosks(); refreshAlerts();
    if (window.kentonganMap) window.kentonganMap.refresh();
  }

  function setAlertCount(n) {
    var b = document.getElementById("alert-count");
    if (!b) return;
    b.textContent = n;
    b.classList.toggle("hidden", !n);
  }

  var live = document.getElementById("live");
  if (live && window.EventSource) {
    var es = new EventSource("/events");
    var wasDown = false;
    es.onopen = function () {
      live.hidden = false;
      live.classList.remove("off");
      live.textContent = live.getAttribute("data-text-up");
      // Events may have been missed while the stream was down.
      if (wasDown) refreshAll();
      wasDown = false;
    };
    es.onerror = function () {
      wasDown = true;
      live.hidden = false;
      live.classList.add("off");
      live.textContent = live.getAttribute("data-text-down");
    };
    function onTicket(e) {
      var d = JSON.parse(e.data);
      if (page === "queue") {
        refreshQueue();
        var sec = document.getElementById("ticket");
        if (sec && sec.getAttribute("data-id") === d.ticket_id) refreshTicket();
      }
      if (page === "map" && window.kentonganMap) window.kentonganMap.refresh();
      if (e.type === "ticket_created" && d.priority === "emergency") {
        var msg = body.getAttribute("data-lang") === "en" ? "New emergency ticket: " : "Tiket darurat baru: ";
        toast(msg + d.number);
      }
    }
    es.addEventListener("ticket_created", onTicket);
    es.addEventListener("ticket_changed", onTicket);
    es.addEventListener("device_changed", function () {
      if (page === "kiosks") refreshKiosks();
      if (page === "map" && window.kentonganMap) window.kentonganMap.refresh();
    });
    function onAlert(e) {
      var d = JSON.parse(e.data);
      if (typeof d.alerts === "number") setAlertCount(d.alerts);
      if (page === "alerts") refreshAlerts();
      if (page === "queue") refreshQueue();
    }
    es.addEventListener("alert_raised", onAlert);
    es.addEventListener("alert_cleared", onAlert);
    window.addEventListener("pagehide", function () { es.close(); });
  }
})();
