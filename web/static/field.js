// The field engineer's pages, usable without signal.
//
// 1. Progress as the engineer goes: every checklist tick (and the notes, after a short pause
//    in typing) is posted to the work order's progress URL, so nothing recorded on site is lost
//    if the phone is put away before the job is completed. Without JavaScript the "Save
//    checklist and notes" button does the same with a page load.
// 2. Offline: a service worker (static/field-sw.js, registered for /field/) keeps the job list,
//    the job sheets and their files. With no connection, starting a job, saving progress and
//    completing are queued in IndexedDB ("outbox") and sent, oldest first, when the phone is
//    back online (the "online" event, each page load, and every 20 s while something waits),
//    with the current CSRF token and asking for JSON. The server's refusal (work order
//    reassigned, cancelled or completed meanwhile, checklist changed) is shown to the engineer
//    and that item is dropped; a lost connection or an expired sign-in keeps it for later.
// 3. Log-out deletes this phone's copies: the caches, the outbox and the service worker.
(function () {
  "use strict";
  var root = document.getElementById("field-offline");
  if (!root) { return; }
  var USER = root.dataset.user || "";
  var DB_NAME = "aftercare-field", STORE = "outbox", LOG_KEY = "aftercare-field-log";
  var stateEl = root.querySelector(".offline-state"), logEl = root.querySelector(".outbox-log");

  // --- IndexedDB outbox ---------------------------------------------------------------------
  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () {
        req.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode), out = work(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(out && "result" in out ? out.result : out); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function outbox() { return withStore("readonly", function (s) { return s.getAll(); }); }
  function drop(id) { return withStore("readwrite", function (s) { return s.delete(id); }); }

  // A newer progress save of the same work order replaces the one still waiting.
  function enqueue(item) {
    item.user = USER; item.queued_at = new Date().toISOString();
    return withStore("readwrite", function (s) {
      if (item.kind === "progress") {
        var cur = s.openCursor();
        cur.onsuccess = function () {
          var c = cur.result; if (!c) { s.add(item); return; }
          if (c.value.kind === "progress" && c.value.wo === item.wo) { c.delete(); }
          c.continue();
        };
        return null;
      }
      return s.add(item);
    }).then(showState);
  }

  // --- what the engineer sees ---------------------------------------------------------------
  function log(text, kind) {
    var entries = JSON.parse(sessionStorage.getItem(LOG_KEY) || "[]");
    entries.unshift({ text: text, kind: kind || "ok", at: new Date().toISOString() });
    sessionStorage.setItem(LOG_KEY, JSON.stringify(entries.slice(0, 10)));
    renderLog();
  }

  function renderLog() {
    if (!logEl) { return; }
    logEl.innerHTML = "";
    JSON.parse(sessionStorage.getItem(LOG_KEY) || "[]").forEach(function (e) {
      var li = document.createElement("li"); li.className = e.kind; li.textContent = e.text;
      logEl.appendChild(li);
    });
  }

  function showState() {
    return outbox().then(function (items) {
      var mine = items.filter(function (i) { return i.user === USER; });
      root.dataset.pending = String(mine.length);
      var text = "";
      if (!navigator.onLine) {
        text = "Offline. " + (mine.length ? mine.length + " change(s) saved on this phone, sent when you are back online."
                                          : "Saved jobs open from this phone.");
      } else if (mine.length) {
        text = mine.length + " change(s) waiting to be sent…";
      }
      if (stateEl) { stateEl.textContent = text; }
      root.classList.toggle("offline", !navigator.onLine);
      root.hidden = !text && !(logEl && logEl.children.length);
      document.querySelectorAll("a.job[data-wo]").forEach(function (a) {
        a.classList.toggle("pending", mine.some(function (i) { return String(i.wo) === a.dataset.wo; }));
      });
      return mine;
    }).catch(function () { return []; });
  }

  // --- sending --------------------------------------------------------------------------------
  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (m) { return decodeURIComponent(m[1]); }
    var input = document.querySelector("[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function send(item) {
    var body = new FormData();
    item.fields.forEach(function (kv) { body.append(kv[0], kv[1]); });
    body.append("csrfmiddlewaretoken", csrfToken());
    return fetch(item.url, { method: "POST", body: body, credentials: "same-origin",
                             headers: { Accept: "application/json", "X-Requested-With": "fetch" } })
      .then(function (r) {
        var json = (r.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (r.redirected || !json || r.status >= 500) {
          // Signed out (the login page), CSRF refused, or a server fault: keep it for later.
          var e = new Error(r.redirected ? "sign in again to send the changes saved on this phone"
                                         : "the server did not take it (HTTP " + r.status + "); will retry");
          e.keep = true; throw e;
        }
        return r.json().then(function (j) { return { status: r.status, body: j }; });
      })
      .then(function (res) {
        return drop(item.id).then(function () {
          if (res.status < 300) {
            if (item.kind !== "progress") { log(res.body.message || item.label + " sent", "ok"); }
            return;
          }
          var why = res.body.conflict;
          if (!why) {
            var errs = res.body.errors || {}, msgs = [];
            Object.keys(errs).forEach(function (k) { errs[k].forEach(function (e) { msgs.push(e.message); }); });
            why = msgs.join(" ") || "refused (HTTP " + res.status + ")";
          }
          log(item.label + " not applied: " + why, "bad");
        });
      });
  }

  var flushing = null, retryTimer = null, touchedHere = false;
  function flush() {
    if (flushing) { return flushing; }
    if (!navigator.onLine) { return showState(); }
    flushing = outbox().then(function (items) {
      var chain = Promise.resolve();
      items.forEach(function (item) {
        chain = chain.then(function () {
          if (item.user !== USER) { return drop(item.id); }  // another engineer's leftovers
          if (stateEl) { stateEl.textContent = "Sending " + item.label + "…"; }
          return send(item).then(function () {
            if (sheet && String(item.wo) === String(sheet.dataset.wo)) { touchedHere = true; }
            return showState();
          });
        });
      });
      return chain;
    }).catch(function (e) {
      if (stateEl) { stateEl.textContent = "Not sent yet: " + (e && e.message ? e.message : "no connection") + "."; }
    }).then(function () {
      flushing = null;
      return showState().then(function (mine) {
        clearTimeout(retryTimer);
        if (mine.length) { retryTimer = setTimeout(flush, 20000); }
        root.dataset.flushed = String(Number(root.dataset.flushed || 0) + 1);
        // This sheet's queued changes were answered: show the work order as the server has it.
        if (touchedHere && !mine.some(function (i) { return String(i.wo) === String(sheet.dataset.wo); })) {
          touchedHere = false; location.reload();
        }
      });
    });
    return flushing;
  }

  window.addEventListener("online", flush);
  window.addEventListener("offline", showState);

  // --- the service worker and the saved pages -------------------------------------------------
  function precache(reg) {
    var urls = Array.prototype.map.call(document.querySelectorAll("a.job[href]"), function (a) { return a.href; });
    urls = urls.concat((root.dataset.assets || "").split(" ").filter(Boolean));
    urls.push(location.href);
    var worker = reg.active || navigator.serviceWorker.controller;
    if (worker) { worker.postMessage({ type: "precache", urls: urls }); }
  }

  if ("serviceWorker" in navigator && root.dataset.swUrl) {
    navigator.serviceWorker.addEventListener("message", function (ev) {
      if (ev.data && ev.data.type === "precached") { root.dataset.precached = String(ev.data.count); }
    });
    navigator.serviceWorker.register(root.dataset.swUrl, { scope: root.dataset.swScope || "/field/" })
      .then(function () { return navigator.serviceWorker.ready; })
      .then(function (reg) { if (navigator.onLine) { precache(reg); } })
      .catch(function (e) { root.dataset.swError = String(e && e.message); });
  }

  // --- log-out: nothing of this engineer stays on the phone -----------------------------------
  // The worker is told first (it stops saving fetches still in flight), then the page deletes
  // the caches and the outbox too and unregisters the worker.
  function askWorkerToClear() {
    var worker = "serviceWorker" in navigator && navigator.serviceWorker.controller;
    if (!worker) { return Promise.resolve(); }
    return new Promise(function (resolve) {
      var done = function (ev) {
        if (ev.data && ev.data.type === "cleared") { navigator.serviceWorker.removeEventListener("message", done); resolve(); }
      };
      navigator.serviceWorker.addEventListener("message", done);
      worker.postMessage({ type: "clear" });
      setTimeout(resolve, 1500);
    });
  }

  var logout = document.querySelector("header form[action$='/logout/']");
  if (logout) {
    logout.addEventListener("submit", function (ev) {
      ev.preventDefault();
      outbox().catch(function () { return []; }).then(function (items) {
        var mine = items.filter(function (i) { return i.user === USER; });
        if (mine.length && !window.confirm(mine.length + " change(s) made offline have not been sent yet and will be lost. Log out anyway?")) {
          throw new Error("cancelled");
        }
        var steps = [askWorkerToClear(), new Promise(function (resolve) {
          var del = indexedDB.deleteDatabase(DB_NAME);
          del.onsuccess = del.onerror = del.onblocked = function () { resolve(); };
        })];
        if (window.caches) {
          steps.push(steps[0].then(function () { return caches.keys(); }).then(function (keys) {
            return Promise.all(keys.filter(function (k) { return k.indexOf("aftercare-field-") === 0; })
              .map(function (k) { return caches.delete(k); }));
          }));
        }
        if ("serviceWorker" in navigator) {
          steps.push(steps[0].then(function () { return navigator.serviceWorker.getRegistrations(); }).then(function (regs) {
            return Promise.all(regs.map(function (r) { return r.unregister(); }));
          }));
        }
        sessionStorage.removeItem(LOG_KEY);
        return Promise.all(steps);
      }).then(function () { logout.submit(); }, function (e) {
        if (!e || e.message !== "cancelled") { logout.submit(); }
      });
    });
  }

  // --- the job sheet ----------------------------------------------------------------------
  function fields(form, only) {
    var out = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.disabled || el.name === "csrfmiddlewaretoken") { return; }
      if (only && !only(el)) { return; }
      if ((el.type === "checkbox" || el.type === "radio") && !el.checked) { return; }
      if (el.type === "submit" || el.type === "button") { return; }
      out.push([el.name, el.type === "checkbox" ? "on" : el.value]);
    });
    return out;
  }

  var sheet = document.getElementById("job-sheet");
  var form = document.getElementById("complete");
  var startForm = document.querySelector("form[data-offline-kind=start]");
  var wo = sheet ? sheet.dataset.wo : null, woLabel = sheet ? sheet.dataset.label : "";
  var state = form ? form.querySelector(".saved-state") : null;
  function show(text) { if (state) { state.textContent = text; } }

  function pendingHere() {
    return outbox().then(function (items) {
      return items.some(function (i) { return i.user === USER && String(i.wo) === String(wo); });
    }).catch(function () { return false; });
  }

  if (startForm) {
    startForm.addEventListener("submit", function (ev) {
      if (navigator.onLine) { return; }
      ev.preventDefault();
      enqueue({ kind: "start", wo: wo, url: startForm.action, label: woLabel + " start",
                fields: fields(startForm) }).then(function () {
        startForm.hidden = true;
        if (form) { form.hidden = false; }
        var badge = document.querySelector("[data-testid=wo-status]");
        if (badge) { badge.textContent = "Started on this phone (not sent yet)"; }
      });
    });
  }

  if (form && form.dataset.progressUrl) {
    var timer = null, inFlight = false, again = false, sealed = false;
    var progressFields = function () {
      return fields(form, function (el) { return el.hasAttribute("data-progress") || el.name === "offline_base"; });
    };
    var queueProgress = function () {
      return enqueue({ kind: "progress", wo: wo, url: form.dataset.progressUrl,
                       label: woLabel + " checklist and notes", fields: progressFields() })
        .then(function () { show("Saved on this phone; sent when you are back online."); });
    };
    var save = function () {
      if (sealed) { return; }  // the completion (with the ticks and notes) is queued
      if (inFlight) { again = true; return; }
      inFlight = true; show("Saving…");
      pendingHere().then(function (pending) {
        if (!navigator.onLine || pending) { return queueProgress(); }
        var body = new FormData();
        progressFields().forEach(function (kv) { body.append(kv[0], kv[1]); });
        body.append("csrfmiddlewaretoken", csrfToken());
        return fetch(form.dataset.progressUrl, { method: "POST", body: body, credentials: "same-origin",
                                                 headers: { Accept: "application/json" } })
          .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
          .then(function (res) {
            if (res.ok) { show("Saved " + new Date(res.j.saved_at).toLocaleTimeString()); return; }
            var errs = res.j.errors || {}, msgs = [res.j.conflict || ""];
            Object.keys(errs).forEach(function (k) { errs[k].forEach(function (e) { msgs.push(e.message); }); });
            show("Not saved: " + (msgs.join(" ").trim() || "try again"));
          }, queueProgress);  // the connection dropped on the way: keep it on the phone
      }).then(function () { inFlight = false; if (again) { again = false; save(); } });
    };

    form.addEventListener("change", function (ev) {
      if (ev.target.matches("input[type=checkbox][data-progress]")) { save(); }
    });
    form.addEventListener("input", function (ev) {
      if (!ev.target.matches("textarea[data-progress]")) { return; }
      clearTimeout(timer); timer = setTimeout(save, 800);
    });
    form.addEventListener("submit", function (ev) {
      if (navigator.onLine) { return; }
      ev.preventDefault();
      var saveOnly = ev.submitter && ev.submitter.getAttribute("formaction");
      if (saveOnly) { queueProgress(); return; }
      clearTimeout(timer); sealed = true;
      enqueue({ kind: "complete", wo: wo, url: form.action, label: woLabel + " completion",
                fields: fields(form) }).then(function () {
        Array.prototype.forEach.call(form.elements, function (el) { el.disabled = true; });
        var done = document.createElement("p");
        done.className = "queued"; done.dataset.testid = "queued-completion";
        done.textContent = "Completion saved on this phone. It will be sent when you are back online.";
        form.parentNode.insertBefore(done, form);
        done.scrollIntoView();
      });
    });
  }

  renderLog();
  showState().then(function () { if (navigator.onLine) { flush(); } });
}());
