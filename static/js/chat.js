// The chat page: Enter sends, Shift+Enter adds a line, copy buttons, keeping the newest message in view.
// Everything here is an enhancement: the forms work without it (CSP: no inline scripts or styles).
(function () {
  "use strict";

  function composer() {
    return document.getElementById("composer");
  }

  function nearEnd() {
    const area = document.getElementById("thread-scroll"); // the thread scrolls inside the full-height page
    if (area && area.scrollHeight > area.clientHeight) {
      return area.scrollTop + area.clientHeight >= area.scrollHeight - 200;
    }
    return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 200;
  }

  function scrollToEnd() {
    const thread = document.getElementById("thread");
    if (thread && thread.lastElementChild) thread.lastElementChild.scrollIntoView({ block: "end" });
  }

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (!(target instanceof HTMLTextAreaElement) || event.key !== "Enter") return;
    if (event.shiftKey || event.isComposing || event.altKey || event.ctrlKey || event.metaKey) return;
    const form = target.form;
    if (!form || !(form.id === "composer" || form.closest(".edit"))) return;
    event.preventDefault();
    if (target.value.trim() === "") return;
    if (form.querySelector("button[type='submit'][disabled]")) return;
    form.requestSubmit();
  });

  document.addEventListener("htmx:afterRequest", (event) => {
    const form = composer();
    if (form && event.detail.elt === form && event.detail.successful) {
      form.reset();
      const input = document.getElementById("composer-input");
      if (input) input.focus();
    }
  });

  document.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest("[data-copy-text]") : null;
    if (!button) return;
    const text = button.getAttribute("data-copy-text") || "";
    const done = (label) => {
      const original = button.dataset.label || button.textContent;
      button.dataset.label = original;
      button.textContent = label;
      window.setTimeout(() => { button.textContent = original; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(() => done("Copied"), () => done("Copy failed"));
    } else {
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      try { done(document.execCommand("copy") ? "Copied" : "Copy failed"); } catch (_) { done("Copy failed"); }
      area.remove();
    }
  });

  // New turns and streamed text stay in view, unless the reader has scrolled up to read.
  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (target && target.id === "thread") scrollToEnd();
  });
  document.addEventListener("htmx:sseBeforeMessage", () => {
    if (nearEnd()) window.requestAnimationFrame(scrollToEnd);
  });
  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("thread")) scrollToEnd();
  });
})();
