// Service worker of the field engineer's pages, served by the app at /field/sw.js?u=<user>
// (scope /field/). It keeps what the engineer needs on site without signal:
//   - static files: cache first (their names change with the app version at most rarely);
//   - the engineer's pages under /field/ and asset telemetry: network first, the saved copy
//     when the network fails, else a short "not saved on this phone" page.
// One cache per signed-in user (the ?u= of the script URL): a new user's worker deletes the
// other caches when it takes over, and logging out deletes them (static/field.js), so one
// engineer's jobs never show for another. Writes (POST) are never cached or replayed here:
// static/field.js queues them in IndexedDB and sends them itself, with a fresh CSRF token.
"use strict";

var USER = new URL(self.location.href).searchParams.get("u") || "anon";
var PREFIX = "aftercare-field-";
var CACHE = PREFIX + "v1-u" + USER;
var cleared = false;  // after log-out nothing more is stored, not even fetches in flight

self.addEventListener("install", function () { self.skipWaiting(); });

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf(PREFIX) === 0 && k !== CACHE; })
      .map(function (k) { return caches.delete(k); }));
  }).then(function () { return self.clients.claim(); }));
});

// Only a plain same-origin 200 that was not a redirect is kept (an expired session answers
// with the login page after a redirect: that must not replace a saved job sheet).
function keepable(response) {
  return response && response.ok && !response.redirected && response.type === "basic";
}

function clearAll() {
  return caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (k) { return k.indexOf(PREFIX) === 0; })
      .map(function (k) { return caches.delete(k); }));
  });
}

function store(request, response) {
  if (cleared || !keepable(response)) { return Promise.resolve(false); }
  var copy = response.clone();
  return caches.open(CACHE).then(function (c) { return c.put(request, copy); })
    .then(function () { return cleared ? clearAll().then(function () { return false; }) : true; });
}

function keep(request, response) { store(request, response); return response; }

function offlinePage() {
  return new Response(
    "<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>" +
    "<title>Offline · Aftercare</title><body style='font:16px system-ui;padding:1rem'>" +
    "<h1>No connection</h1><p>This page was not saved on this phone. Your saved jobs are " +
    "under <a href='/field/'>My jobs</a>.</p>",
    { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
}

function networkFirst(request) {
  return fetch(request).then(function (r) { return keep(request, r); }).catch(function () {
    return caches.open(CACHE).then(function (c) { return c.match(request, { ignoreVary: true }); }).then(function (hit) {
      if (hit) { return hit; }
      if (request.mode === "navigate") { return offlinePage(); }
      return Response.error();
    });
  });
}

function cacheFirst(request) {
  return caches.open(CACHE).then(function (c) { return c.match(request, { ignoreVary: true }); }).then(function (hit) {
    return hit || fetch(request).then(function (r) { return keep(request, r); });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request, url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) { return; }
  if (url.pathname === "/field/sw.js") { return; }
  if (url.pathname.indexOf("/static/") === 0) { event.respondWith(cacheFirst(request)); return; }
  if (url.pathname.indexOf("/field/") === 0 || /^\/api\/v1\/assets\/\d+\/telemetry/.test(url.pathname)) {
    event.respondWith(networkFirst(request));
  }
});

// The job list asks for its job sheets (and the files they use) to be saved ahead, so a job
// never opened before still opens on site; "clear" empties this user's cache (log-out).
self.addEventListener("message", function (event) {
  var msg = event.data || {};
  if (msg.type === "precache" && Array.isArray(msg.urls)) {
    event.waitUntil(Promise.resolve().then(function () {
      return Promise.all(msg.urls.map(function (u) {
        var req = new Request(u, { credentials: "same-origin" });
        return fetch(req).then(function (r) { return store(req, r); }).catch(function () { return false; });
      }));
    }).then(function (saved) {
      var n = saved.filter(Boolean).length;
      if (event.source) { event.source.postMessage({ type: "precached", count: n }); }
    }));
  } else if (msg.type === "clear") {
    cleared = true;
    event.waitUntil(clearAll().then(function () {
      if (event.source) { event.source.postMessage({ type: "cleared" }); }
    }));
  }
});
