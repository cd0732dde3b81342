/* kgedit console: the one script, served from /ui/static (the CSP admits scripts from the
   console's own origin only). It only adds to pages that work without it:
   - entity fields (data-suggest) fill their <datalist> with the server's prefix matches as
     the curator types, so any entity of a large graph can be picked (without the script the
     list holds the first entities and the server resolves whatever name is typed);
   - the jobs table (data-poll) follows its jobs' state and progress while any is active
     (without the script the page reloads itself). */
(function () {
  "use strict";

  var SUGGEST_DELAY_MS = 150;
  var POLL_MS = 1500;

  function getJson(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        var json = (r.headers.get("content-type") || "").indexOf("application/json") === 0;
        return r.ok && json ? r.json() : null;
      })
      .catch(function () { return null; });
  }

  function suggest(input) {
    var list = document.getElementById(input.getAttribute("list"));
    var timer = null;
    var asked = 0;
    if (!list) return;
    input.addEventListener("input", function () {
      clearTimeout(timer);
      var text = input.value.trim();
      if (!text) return;
      timer = setTimeout(function () {
        var mine = ++asked;
        getJson(input.dataset.suggest + "?q=" + encodeURIComponent(text)).then(function (found) {
          if (!found || mine !== asked) return; // a later keystroke's answer wins
          list.replaceChildren.apply(list, found.map(function (o) {
            var option = document.createElement("option");
            option.value = o.value;
            if (o.label !== o.value) option.label = o.label;
            return option;
          }));
        });
      }, SUGGEST_DELAY_MS);
    });
  }

  function showJob(row, job) {
    var state = row.querySelector('[data-field="state"]');
    state.textContent = job.state;
    state.className = "state state-" + job.state;
    var pct = Math.round(job.progress * 100) + "%";
    var bar = row.querySelector("progress");
    bar.value = job.progress;
    bar.textContent = pct;
    row.querySelector('[data-field="percent"]').textContent = pct;
    row.querySelector('[data-field="version"]').textContent = job.version || "";
    row.querySelector('[data-field="message"]').textContent = job.message || "";
  }

  function follow(table) {
    var note = document.getElementById("jobs-live");
    function tick() {
      getJson(table.dataset.poll).then(function (data) {
        if (!data) return setTimeout(tick, POLL_MS * 4);
        var unseen = 0;
        data.jobs.forEach(function (job) {
          var row = document.getElementById("job-" + job.id);
          if (row) showJob(row, job); else unseen += 1;
        });
        if (note) {
          note.textContent = data.active
            ? "Jobs are running; their progress updates on this page as they go."
            : "No job is running now.";
          if (unseen) note.textContent += " " + unseen + " new since this page was loaded: reload to see them.";
        }
        if (data.active) setTimeout(tick, POLL_MS);
      });
    }
    setTimeout(tick, POLL_MS);
  }

  document.querySelectorAll("input[data-suggest][list]").forEach(suggest);
  document.querySelectorAll("table[data-poll]").forEach(follow);
})();
