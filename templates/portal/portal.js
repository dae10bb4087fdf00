// The portal's only script, and only an improvement: every form works without it.
// A "select all" box above a license table checks or clears the table's licenses; the
// form that carries a sign-in request to the identity provider is sent at once.
document.addEventListener("DOMContentLoaded", function () {
  var auto = document.querySelector("form[data-autosubmit]");
  if (auto) { auto.submit(); }
  document.querySelectorAll("input[data-select-all]").forEach(function (all) {
    var table = all.closest("table");
    var boxes = table.querySelectorAll('input[name="license"]:not(:disabled)');
    var sync = function () {
      var checked = Array.prototype.filter.call(boxes, function (b) { return b.checked; }).length;
      all.checked = checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    };
    all.hidden = false;
    sync();
    all.addEventListener("change", function () {
      boxes.forEach(function (b) { b.checked = all.checked; });
    });
    boxes.forEach(function (b) { b.addEventListener("change", sync); });
  });
});

// The online transfer: the page asks the Licentia helper on this computer (licentia container
// serve-local, on 127.0.0.1) for the container's request, sends it with the form as the
// offline transfer would send the file, has the helper import the update and uploads the
// receipt. Everything the helper gives is signed by the container; nothing secret passes.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-online]").forEach(function (box) {
    var form = box.closest("form");
    var helper = box.dataset.helper;
    var base = box.dataset.base;
    var firmCode = Number(box.dataset.firmCode);
    var status = box.querySelector("[data-online-status]");
    var start = box.querySelector("[data-online-start]");
    var steps = box.querySelector("[data-online-steps]");
    var say = function (name, values) {
      var text = box.getAttribute("data-text-" + name) || "";
      Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(values[k]); });
      status.textContent = text;
    };
    var call = function (path, body) {
      var init = body === undefined ? {} : {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body)
      };
      return fetch(helper + path, init).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (!r.ok) throw new Error(j.message || ("the helper answered " + r.status));
          return j;
        });
      });
    };
    // A portal answer: on to the transfer page, or the refusal it shows (taken as it is).
    var portal = function (path, data) {
      return fetch(path, { method: "POST", body: data, credentials: "same-origin" }).then(function (r) {
        if (r.ok && r.redirected && new URL(r.url).pathname === base + "/transfer") return r.url;
        return r.text().then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var alert = page.querySelector(".alert-error");
          if (!alert) throw new Error("the portal answered " + r.status);
          var main = document.querySelector("main");
          main.querySelectorAll(".alert-error").forEach(function (a) { a.remove(); });
          main.prepend(document.importNode(alert, true));
          var e = new Error(alert.textContent.trim());
          e.shown = true;
          throw e;
        });
      });
    };
    var step = function (name) {
      steps.querySelectorAll("li").forEach(function (li) {
        li.classList.remove("online-step-current");
        li.removeAttribute("aria-current");
      });
      var li = steps.querySelector('[data-online-step="' + name + '"]');
      var before = li.previousElementSibling;
      while (before) { before.classList.add("online-step-done"); before = before.previousElementSibling; }
      li.classList.add("online-step-current");
      li.setAttribute("aria-current", "step");
      status.textContent = li.textContent;
    };
    var pending = null;
    box.hidden = false;
    call("/v1/hello").then(function (hello) {
      var c = hello.container;
      var binding = form.querySelector('input[name="binding"]');
      if (c && box.dataset.serial && c.serial !== box.dataset.serial) {
        return say("other-container", { serial: c.serial });
      }
      if (c && binding && c.type !== binding.value) {
        return say("wrong-binding", { serial: c.serial });
      }
      if (c) say("found", { serial: c.serial }); else say("found-new");
      start.hidden = false;
    }, function () {
      say("missing");
      box.querySelector("[data-online-command]").hidden = false;
    });
    start.addEventListener("click", function () {
      // The form's own rules (a box to accept, a license chosen) but not its file.
      var fields = Array.prototype.filter.call(form.elements, function (el) { return el.type !== "file"; });
      for (var i = 0; i < fields.length; i++) {
        if (fields[i].willValidate && !fields[i].checkValidity()) { fields[i].reportValidity(); return; }
      }
      start.disabled = true;
      steps.hidden = false;
      var csrf = form.querySelector('input[name="csrf"]').value;
      var upload = function (receipt) {
        step("receipt");
        var data = new FormData();
        data.set("csrf", csrf);
        data.set("receipt", new Blob([receipt], { type: "application/octet-stream" }), "receipt.lcr");
        return portal(base + "/transfer/receipt", data);
      };
      var done = function (url) {
        pending = null;
        window.location.assign(url);
      };
      var failed = function (e) {
        say(pending ? "failed-receipt" : "failed", { reason: e.message });
        start.disabled = false;
      };
      // The container imported the update already: only its receipt is still to be sent.
      if (pending) {
        upload(pending).then(done).catch(failed);
        return;
      }
      step("template");
      call("/v1/template", { firm_code: firmCode }).then(function () {
        step("request");
        return call("/v1/request", { firm_code: firmCode });
      }).then(function (r) {
        var data = new FormData(form);
        data.set("request", new Blob([r.request], { type: "application/octet-stream" }), "request.lcr");
        if (!box.dataset.salt) return data;
        // A restore also shows this computer's traits, hashed with the old container's salt.
        return call("/v1/traits", { salt: box.dataset.salt }).then(function (traits) {
          data.set("traits", new Blob([JSON.stringify(traits)], { type: "application/json" }), "traits.json");
          return data;
        });
      }).then(function (data) {
        return portal(form.action, data);
      }).then(function () {
        step("update");
        return fetch(base + "/transfer/update", { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) throw new Error("the portal answered " + r.status);
          return r.text();
        });
      }).then(function (update) {
        return call("/v1/apply", { update: update });
      }).then(function (imported) {
        pending = imported.receipt;
        return upload(imported.receipt);
      }).then(done).catch(failed);
    });
  });
});
