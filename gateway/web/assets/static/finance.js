// The finance page's one change: reversing an allocation posting, with a
// reason asked in a dialog and sent as JSON with the session's CSRF token
// (the dialog's form carries it). The report links and the preview are
// plain links and a GET form: the page works without this script.
(function () {
  "use strict";
  var dialog = document.querySelector("dialog#reverse-posting");
  if (!dialog) { return; }
  var W = window.mallgridWords || {};
  var form = dialog.querySelector("form");
  var problem = dialog.querySelector(".problem");
  var submit = form.querySelector("button[type=submit]");
  var posting = "";

  function close() { if (dialog.close) { dialog.close(); } else { dialog.removeAttribute("open"); } }
  function show(msg) {
    problem.textContent = (W["form.failed"] || "Not done: {reason}").split("{reason}").join(msg);
    problem.hidden = false;
  }

  Array.prototype.forEach.call(document.querySelectorAll("button.reverse-posting"), function (b) {
    b.addEventListener("click", function () {
      if (posting !== b.getAttribute("data-posting")) { form.reason.value = ""; }
      posting = b.getAttribute("data-posting");
      dialog.querySelector(".title").textContent = b.getAttribute("data-title");
      problem.hidden = true;
      submit.disabled = false;
      if (dialog.showModal) { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
    });
  });
  dialog.querySelector(".no").addEventListener("click", close);
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    // A reversal is once per posting: the store refuses a second with
    // 409, so a retry after a lost answer cannot reverse twice.
    submit.disabled = true;
    fetch("/api/v1/allocations/" + encodeURIComponent(posting) + "/reverse", {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.csrf.value },
      body: JSON.stringify({ reason: form.reason.value.trim() })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) { return Promise.reject(j.error || String(r.status)); }
        location.reload();
      });
    }).catch(function (msg) { submit.disabled = false; show(String(msg)); });
  });
})();
