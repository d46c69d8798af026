// The job sheet saves checklist ticks and notes as the engineer goes: every change is posted
// to the work order's progress URL (notes after a short pause in typing), so nothing recorded
// on site is lost if the phone is put away before the job is completed. Without JavaScript
// the "Save checklist and notes" button does the same with a page load.
(function () {
  "use strict";
  var form = document.getElementById("complete");
  if (!form || !form.dataset.progressUrl) { return; }
  var state = form.querySelector(".saved-state");
  var timer = null, inFlight = false, again = false;

  function show(text) { if (state) { state.textContent = text; } }

  function save() {
    if (inFlight) { again = true; return; }
    inFlight = true; show("Saving…");
    var body = new FormData();
    form.querySelectorAll("[data-progress]").forEach(function (el) {
      if (el.type === "checkbox") { if (el.checked) { body.append(el.name, "on"); } }
      else { body.append(el.name, el.value); }
    });
    body.append("csrfmiddlewaretoken", form.querySelector("[name=csrfmiddlewaretoken]").value);
    fetch(form.dataset.progressUrl, { method: "POST", body: body, credentials: "same-origin",
                                      headers: { Accept: "application/json" } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (res) {
        if (res.ok) { show("Saved " + new Date(res.j.saved_at).toLocaleTimeString()); return; }
        var errs = res.j.errors || {}, msgs = [];
        Object.keys(errs).forEach(function (k) { errs[k].forEach(function (e) { msgs.push(e.message); }); });
        show("Not saved: " + (msgs.join(" ") || "try again"));
      })
      .catch(function () { show("Not saved (no connection); it will be sent with the next change."); })
      .then(function () { inFlight = false; if (again) { again = false; save(); } });
  }

  form.addEventListener("change", function (ev) {
    if (ev.target.matches("input[type=checkbox][data-progress]")) { save(); }
  });
  form.addEventListener("input", function (ev) {
    if (!ev.target.matches("textarea[data-progress]")) { return; }
    clearTimeout(timer); timer = setTimeout(save, 800);
  });
}());
