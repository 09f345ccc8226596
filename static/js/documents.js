// The knowledge-base page: drag and drop onto the upload form (the dropped file fills the file input and the
// form submits), and spoken announcements of status changes the live poll brings (the list is replaced whole,
// so it cannot be a live region itself). Listeners sit on the document, so they work however the page arrived.
(() => {
  const zoneOf = (event) => event.target instanceof Element ? event.target.closest("#upload-form") : null;
  const onKnowledgeBase = () => document.getElementById("upload-form") !== null;
  ["dragenter", "dragover"].forEach((type) => document.addEventListener(type, (event) => {
    const zone = zoneOf(event);
    if (!zone) {
      if (onKnowledgeBase()) event.preventDefault(); // a near miss must not open the file in place of the page
      return;
    }
    event.preventDefault();
    zone.classList.add("dragging");
  }));
  document.addEventListener("dragleave", (event) => {
    const zone = zoneOf(event);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    const zone = zoneOf(event);
    if (!zone) {
      if (onKnowledgeBase()) event.preventDefault();
      return;
    }
    event.preventDefault();
    zone.classList.remove("dragging");
    const input = zone.querySelector("input[type=file]");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!input || !files || files.length === 0) return;
    const first = new DataTransfer();
    first.items.add(files[0]); // the form uploads one file
    input.files = first.files;
    showChosen(input);
    zone.requestSubmit();
  });

  // The styled file picker: with this script the browser's control is hidden (still focused and used with the
  // keyboard) and the label shows our button and the chosen file's name (see static/css/pages.css).
  const showChosen = (input) => {
    const pick = input.closest(".file-pick");
    const name = pick && pick.querySelector(".file-pick-name");
    if (!name) return;
    const file = input.files && input.files[0];
    name.textContent = file ? file.name : name.dataset.empty || "No file chosen";
    name.classList.toggle("chosen", Boolean(file));
    name.title = file ? file.name : "";
  };
  const enhance = (root) => {
    if (!(root instanceof Element)) return;
    const picks = root.matches(".file-pick") ? [root] : root.querySelectorAll(".file-pick");
    picks.forEach((pick) => {
      pick.classList.add("js-file");
      const input = pick.querySelector("input[type=file]");
      if (input) showChosen(input); // a file kept by the browser's back/forward cache is named too
    });
  };
  document.addEventListener("change", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.matches(".file-pick input[type=file]")) {
      showChosen(event.target);
    }
  });
  document.addEventListener("click", (event) => {
    const part = event.target instanceof Element ? event.target.closest(".js-file .file-pick-button, .js-file .file-pick-name") : null;
    const input = part && part.closest(".file-pick").querySelector("input[type=file]");
    if (input && !input.disabled) input.click();
  });
  document.addEventListener("htmx:load", (event) => enhance(event.target));
  document.addEventListener("DOMContentLoaded", () => enhance(document.body));

  const announce = (text) => {
    const region = document.getElementById("document-announcer");
    if (region && text) region.textContent = text;
  };
  let known = null; // document id -> status, from the last list seen
  const statuses = () => {
    const found = new Map();
    document.querySelectorAll("#document-list tr[data-status]").forEach((row) => {
      found.set(row.id, { status: row.dataset.status, title: row.dataset.title || "A document" });
    });
    return found;
  };
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.target instanceof Element && event.target.id === "upload-form") {
      const input = event.target.querySelector("input[type=file]");
      const name = input && input.files && input.files[0] ? input.files[0].name : "the file";
      announce(`Uploading ${name}…`);
    }
  });
  document.addEventListener("htmx:afterSettle", () => {
    if (!document.getElementById("document-list")) {
      known = null;
      return;
    }
    const now = statuses();
    if (known) {
      const changes = [];
      now.forEach((entry, id) => {
        const before = known.get(id);
        if (!before) changes.push(`${entry.title} added, ${entry.status}.`);
        else if (before.status !== entry.status) changes.push(`${entry.title} is ${entry.status}.`);
      });
      known.forEach((entry, id) => { if (!now.has(id)) changes.push(`${entry.title} deleted.`); });
      announce(changes.join(" "));
    }
    known = now;
  });
  document.addEventListener("DOMContentLoaded", () => { if (document.getElementById("document-list")) known = statuses(); });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.target instanceof Element && event.target.id === "upload-form") {
      const input = event.target.querySelector("input[type=file]");
      if (input) {
        input.value = "";
        showChosen(input);
      }
    }
  });
})();
