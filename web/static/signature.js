// The customer's signature on the job sheet: drawn with a finger (or mouse) on the canvas,
// kept in the form's hidden `signature` field as a PNG data URL after every stroke, so the
// completion form (also when queued offline) carries it. No inline script (CSP).
(function () {
  "use strict";
  document.querySelectorAll("fieldset.signature").forEach(function (box) {
    var canvas = box.querySelector("canvas.signature-pad");
    var field = box.querySelector("input[name=signature]");
    if (!canvas || !field) return;
    var ctx = canvas.getContext("2d");
    var drawing = false, last = null;
    function reset() {
      ctx.fillStyle = "#fff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = "#111";
      ctx.lineWidth = 3;
      ctx.lineCap = "round";
      ctx.lineJoin = "round";
      field.value = "";
    }
    function at(ev) {
      var r = canvas.getBoundingClientRect();
      return {x: (ev.clientX - r.left) * canvas.width / r.width,
              y: (ev.clientY - r.top) * canvas.height / r.height};
    }
    canvas.addEventListener("pointerdown", function (ev) {
      drawing = true;
      last = at(ev);
      canvas.setPointerCapture(ev.pointerId);
      ev.preventDefault();
    });
    canvas.addEventListener("pointermove", function (ev) {
      if (!drawing) return;
      var p = at(ev);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
      ev.preventDefault();
    });
    function end() {
      if (!drawing) return;
      drawing = false;
      field.value = canvas.toDataURL("image/png");
    }
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
    var clear = box.querySelector("[data-signature-clear]");
    if (clear) clear.addEventListener("click", reset);
    reset();
  });
})();
