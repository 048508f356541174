// The console's only script: live tables and confirmations. No inline scripts anywhere (the
// Content-Security-Policy allows none), so behaviour hangs on data- attributes.
"use strict";

// <section data-refresh="URL" data-every="MS">: replace its content with URL's HTML fragment,
// rendered and escaped by the server. DOMParser never runs scripts of what it parses.
function keepFresh(section) {
  const every = Number(section.dataset.every) || 2000;
  let failures = 0;
  async function refresh() {
    if (!document.hidden) {
      try {
        const response = await fetch(section.dataset.refresh, {
          credentials: "same-origin",
          cache: "no-store",
          headers: { Accept: "text/html" },
        });
        if (!response.ok) {
          throw new Error(String(response.status));
        }
        const fragment = new DOMParser().parseFromString(await response.text(), "text/html");
        section.replaceChildren(...fragment.body.childNodes);
        section.classList.remove("stale");
        failures = 0;
      } catch (error) {
        section.classList.add("stale");
        failures += 1;
      }
    }
    // Back off while the stack does not answer (a stopped `tweetlens up`), up to a minute.
    window.setTimeout(refresh, Math.min(every * 2 ** failures, 60000));
  }
  window.setTimeout(refresh, every);
}

// <form data-confirm="Question?">: ask before posting (sending back many letters at once).
function confirmFirst(form) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh]").forEach(keepFresh);
  document.querySelectorAll("form[data-confirm]").forEach(confirmFirst);
});
