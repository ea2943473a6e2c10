/* The console's one script (no framework, nothing fetched from elsewhere): the live preview
   of a day's brief, the self-refreshing delivery report, confirmations. Every page works
   without it; text from the server is put into the page as text, never as markup. */
(function () {
  "use strict";

  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function number(n) {
    return Number(n).toLocaleString("en-US");
  }

  // forms that ask first (deactivating a subscriber)
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) event.preventDefault();
  });

  // -- the live preview ------------------------------------------------------------------
  var preview = document.getElementById("preview");
  if (preview) {
    var select = document.getElementById("platform");
    var parts = document.getElementById("preview-parts");
    var note = document.getElementById("preview-note");
    var error = document.getElementById("preview-error");
    var units = { bytes: "bytes", utf16: "UTF-16 units", chars: "characters" };
    var asked = 0;
    var shown = 0;
    var draftForm = null;

    var show = function (data, ticket) {
      if (ticket < shown) return; // an older answer arriving late
      shown = ticket;
      parts.textContent = "";
      data.parts.forEach(function (part) {
        var article = el("article", "part" + (part.size > part.limit ? " over" : ""));
        article.appendChild(
          el(
            "header",
            "",
            "Part " + part.number + "/" + part.total + " · " + number(part.size) + " / " +
              number(part.limit) + " " + (units[part.unit] || part.unit)
          )
        );
        article.appendChild(el("pre", "", part.text));
        parts.appendChild(article);
      });
      error.textContent = data.error;
      error.hidden = !data.error;
      note.textContent = data.parts.length
        ? data.parts.length + " message(s) as " + data.platform + " gets them" +
          (data.draft ? " · with your unsaved changes" : "")
        : "";
      preview.classList.toggle("draft", Boolean(data.draft));
      preview.setAttribute("data-version", String(ticket));
      preview.setAttribute("data-draft", data.draft ? "true" : "false");
    };

    var refresh = function () {
      var body = new URLSearchParams();
      body.set("platform", select.value);
      if (draftForm) {
        new FormData(draftForm).forEach(function (value, key) {
          if (key !== "csrf_token" && key !== "platform") body.set(key, value);
        });
        body.set("item", draftForm.getAttribute("data-item") || "");
      }
      var ticket = ++asked;
      fetch(preview.getAttribute("data-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
        body: body,
      })
        .then(function (response) {
          if (!response.ok) throw new Error("the preview answered " + response.status);
          return response.json();
        })
        .then(function (data) {
          show(data, ticket);
        })
        .catch(function (problem) {
          error.textContent = String(problem.message || problem);
          error.hidden = false;
        });
    };

    var timer = null;
    var later = function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 250);
    };

    select.addEventListener("change", function () {
      document.querySelectorAll("input.keep-platform").forEach(function (input) {
        input.value = select.value;
      });
      var url = new URL(window.location.href);
      url.searchParams.set("platform", select.value);
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
      refresh();
    });
    document.querySelectorAll("form.item-form").forEach(function (form) {
      form.addEventListener("input", function () {
        draftForm = form;
        later();
      });
    });
  }

  // -- the delivery report ---------------------------------------------------------------
  var report = document.getElementById("report");
  if (report) {
    var list = document.getElementById("deliveries");
    var counts = document.getElementById("delivery-counts");
    var live = document.getElementById("live");

    var render = function (data) {
      counts.textContent = "";
      var statuses = Object.keys(data.counts).sort();
      if (!statuses.length) counts.textContent = "No delivery yet for this day.";
      statuses.forEach(function (status) {
        counts.appendChild(el("span", "badge status-" + status, status + " " + data.counts[status]));
        counts.appendChild(document.createTextNode(" "));
      });
      list.textContent = "";
      data.rows.forEach(function (row) {
        var item = el("li", "delivery status-" + row.status);
        item.setAttribute("data-target", row.platform + ":" + row.chat_id);
        var target = el("span", "target", row.platform + ":" + row.chat_id + " ");
        target.appendChild(el("small", "", row.kind));
        item.appendChild(target);
        item.appendChild(el("span", "status", row.status));
        var detail = row.parts_sent + "/" + row.parts_total + " parts";
        if (row.attempts > 1) detail += " · " + row.attempts + " attempts";
        if (row.sent_at) detail += " · " + row.sent_at;
        item.appendChild(el("span", "parts", detail));
        if (row.error) item.appendChild(el("span", "error", row.error));
        list.appendChild(item);
      });
      live.textContent = data.active ? "Sending: this page follows it." : "";
      report.setAttribute("data-active", data.active ? "true" : "false");
    };

    var poll = function () {
      fetch(report.getAttribute("data-url"), {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (data) {
          render(data);
          // every second while a send runs, then now and then to notice the next one
          window.setTimeout(poll, data.active ? 1000 : 5000);
        })
        .catch(function () {
          window.setTimeout(poll, 5000);
        });
    };
    window.setTimeout(poll, report.getAttribute("data-active") === "true" ? 1000 : 5000);
  }
})();
