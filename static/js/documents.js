// Drag and drop onto the upload form: the dropped file fills the file input and the form submits.
// Listeners sit on the document, so they work however the page arrived (full load or hx-boost swap).
(() => {
  const zoneOf = (event) => event.target instanceof Element ? event.target.closest("#upload-form") : null;
  ["dragenter", "dragover"].forEach((type) => document.addEventListener(type, (event) => {
    const zone = zoneOf(event);
    if (!zone) return;
    event.preventDefault();
    zone.classList.add("dragging");
  }));
  document.addEventListener("dragleave", (event) => {
    const zone = zoneOf(event);
    if (zone && !zone.contains(event.relatedTarget)) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", (event) => {
    const zone = zoneOf(event);
    if (!zone) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    const input = zone.querySelector("input[type=file]");
    const files = event.dataTransfer && event.dataTransfer.files;
    if (!input || !files || files.length === 0) return;
    input.files = files;
    zone.requestSubmit();
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    if (event.target instanceof Element && event.target.id === "upload-form") {
      const input = event.target.querySelector("input[type=file]");
      if (input) input.value = "";
    }
  });
})();
