// The chat page's layout and feel: the sidebar collapses on a wide screen (remembered) and is a drawer on a phone;
// each conversation's menu (rename, delete); the composer grows with its text and offers Stop while an answer
// streams; a scroll-to-bottom control; the tab title follows the conversation's title; toasts go away.
// Loaded in <head> without defer, so the first lines set <html>'s classes before the page is drawn; everything
// else waits for events. Every behaviour here is an enhancement: without it the forms and links still work.
// (CSP: no markup is built here, and styles are only set through the CSSOM.)
(function () {
  "use strict";

  const root = document.documentElement;
  const COLLAPSED = "medchat:sidebar-collapsed";
  root.classList.add("js-layout");
  try {
    if (window.localStorage.getItem(COLLAPSED) === "1") root.classList.add("sidebar-collapsed");
  } catch (_) {
    /* storage refused: the sidebar starts open */
  }

  const phone = window.matchMedia("(max-width: 820px)");
  const $ = (selector) => document.querySelector(selector);
  const MENUS = "details.conv-menu[open], .chat-tools details[open]";

  // --- sidebar: collapsed on a wide screen, a drawer on a phone ------------------------------------------------
  function drawerOpen() {
    return root.classList.contains("drawer-open");
  }

  function sidebarShown() {
    return phone.matches ? drawerOpen() : !root.classList.contains("sidebar-collapsed");
  }

  function syncToggle() {
    const button = $(".sidebar-toggle");
    if (!button) return;
    button.hidden = false;
    const shown = String(sidebarShown());
    if (button.getAttribute("aria-expanded") !== shown) button.setAttribute("aria-expanded", shown);
  }

  // While the drawer is open the rest of the page is inert: focus stays in the drawer (a modal, in effect).
  function setInert(on) {
    for (const element of [$(".chat-main"), $(".topbar"), $("#flash"), $(".skip-link")]) {
      if (element) element.inert = on;
    }
  }

  function openDrawer() {
    root.classList.add("drawer-open");
    const backdrop = $(".drawer-backdrop");
    if (backdrop) backdrop.hidden = false;
    setInert(true);
    syncToggle();
    const first = $("#chat-sidebar [aria-current='page']") || $("#chat-sidebar .new-chat");
    if (first) first.focus();
  }

  function closeDrawer(restoreFocus) {
    if (!drawerOpen()) return;
    root.classList.remove("drawer-open");
    const backdrop = $(".drawer-backdrop");
    if (backdrop) backdrop.hidden = true;
    setInert(false);
    syncToggle();
    const button = $(".sidebar-toggle");
    if (restoreFocus && button) button.focus();
  }

  function toggleSidebar() {
    if (phone.matches) {
      if (drawerOpen()) closeDrawer(true);
      else openDrawer();
      return;
    }
    const collapsed = root.classList.toggle("sidebar-collapsed");
    try {
      window.localStorage.setItem(COLLAPSED, collapsed ? "1" : "0");
    } catch (_) {
      /* not remembered */
    }
    syncToggle();
  }

  phone.addEventListener("change", () => {
    closeDrawer(false);
    syncToggle();
  });

  // --- the thread's scroller and the scroll-to-bottom control -------------------------------------------------
  function scroller() {
    return document.getElementById("thread-scroll");
  }

  function syncScrollButton() {
    const area = scroller();
    const button = $(".scroll-bottom");
    if (!area || !button) return;
    const away = area.scrollHeight - area.scrollTop - area.clientHeight;
    const hide = away < 160;
    if (button.hidden !== hide) button.hidden = hide;
  }

  function scrollToBottom() {
    const area = scroller();
    if (!area) return;
    const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    area.scrollTo({ top: area.scrollHeight, behavior: smooth ? "smooth" : "auto" });
  }

  // --- the composer: grows with its text; Stop while an answer streams --------------------------------------
  function grow(area) {
    if (!area) return;
    const max = Math.round(window.innerHeight * 0.4);
    area.style.height = "auto";
    const wanted = area.scrollHeight + (area.offsetHeight - area.clientHeight);
    area.style.height = `${Math.min(wanted, max)}px`;
    area.style.overflowY = wanted > max ? "auto" : "hidden";
  }

  function streamingAnswer() {
    return $("#thread article.message.assistant.streaming");
  }

  function syncComposer() {
    const stop = $(".composer-stop");
    const send = $(".composer-send");
    if (!stop || !send) return;
    const streaming = Boolean(streamingAnswer());
    if (stop.hidden === streaming) stop.hidden = !streaming;
    if (send.hidden !== streaming) send.hidden = streaming;
    if (streaming && !send.disabled) send.disabled = true; // Enter waits for the answer (static/js/chat.js)
    if (!streaming && send.disabled && !$("#composer.htmx-request")) send.disabled = false;
  }

  // --- the conversation's title: the tab follows it (the model's title arrives after the first answer) ------
  function shownId() {
    const match = window.location.pathname.match(/^\/chat\/([0-9a-f]+)\/?$/);
    return match ? match[1] : null;
  }

  function syncTitle() {
    const heading = document.getElementById("chat-title");
    if (!heading || !$(".chat-layout")) return;
    const id = shownId();
    const item = id ? document.getElementById(`conv-${id}`) : null;
    for (const current of document.querySelectorAll("#conversation-list [aria-current='page']")) {
      if (!item || !item.contains(current)) current.removeAttribute("aria-current");
    }
    if (item) {
      const link = item.querySelector("a");
      if (link && link.getAttribute("aria-current") !== "page") link.setAttribute("aria-current", "page");
      const label = item.querySelector(".search-hit-title") || item.querySelector(".conv-link");
      const title = label ? label.textContent.trim() : "";
      if (title && title !== heading.textContent.trim()) {
        heading.textContent = title;
        const input = document.getElementById("rename-title");
        if (input && document.activeElement !== input) input.value = input.defaultValue = title;
      }
    }
    const wanted = `${heading.textContent.trim()} · medchat`;
    if (document.title !== wanted) document.title = wanted;
  }

  // A group whose last conversation was deleted goes with it.
  function dropEmptyGroups() {
    for (const list of document.querySelectorAll("#conversation-list ul.conversation-list")) {
      if (list.querySelector("li")) continue;
      const heading = list.previousElementSibling;
      if (heading && heading.matches("h2.conv-group")) heading.remove();
      list.remove();
    }
  }

  // --- toasts: announced, then gone after a while ------------------------------------------------------------
  const dismissed = new WeakSet();
  function scheduleToasts() {
    for (const toast of document.querySelectorAll("#flash .toast")) {
      if (dismissed.has(toast)) continue;
      dismissed.add(toast);
      window.setTimeout(() => toast.remove(), 6000);
    }
  }

  function refresh() {
    syncToggle();
    syncComposer();
    syncTitle();
    dropEmptyGroups();
    syncScrollButton();
    scheduleToasts();
  }

  let queued = false;
  const observer = new MutationObserver(() => {
    if (queued) return;
    queued = true;
    window.requestAnimationFrame(() => {
      queued = false;
      refresh();
    });
  });

  document.addEventListener("DOMContentLoaded", () => {
    observer.observe(document.body, { childList: true, subtree: true });
    refresh();
    grow(document.getElementById("composer-input"));
    // A toast rendered with the page (after a delete) is put back into the live region so it is announced.
    const flash = document.getElementById("flash");
    const toast = flash && flash.querySelector(".toast");
    if (toast) {
      toast.remove();
      window.setTimeout(() => flash.append(toast), 150);
    }
  });

  // --- events -------------------------------------------------------------------------------------------------
  document.addEventListener("click", (event) => {
    const target = event.target instanceof Element ? event.target : null;
    if (!target) return;
    for (const menu of document.querySelectorAll(MENUS)) {
      if (!menu.contains(target)) menu.open = false; // a click elsewhere closes an open menu
    }
    if (target.closest(".sidebar-toggle")) toggleSidebar();
    else if (target.closest(".drawer-backdrop")) closeDrawer(true);
    else if (target.closest(".scroll-bottom")) scrollToBottom();
    else if (target.closest(".composer-stop")) {
      const answer = streamingAnswer();
      const form = answer && answer.querySelector("form[action$='/stop']");
      if (form) form.requestSubmit();
    } else if (target.closest("#chat-sidebar a[href]") && phone.matches) closeDrawer(false);
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || event.defaultPrevented) return;
    const menu = $(MENUS);
    if (menu) {
      menu.open = false;
      const summary = menu.querySelector("summary");
      if (summary) summary.focus();
      event.preventDefault();
    } else if (drawerOpen()) {
      closeDrawer(true);
      event.preventDefault();
    }
  });

  // A menu opens with its field focused (and selected), and only one is open at a time.
  document.addEventListener(
    "toggle",
    (event) => {
      const menu = event.target;
      if (!(menu instanceof HTMLDetailsElement) || !menu.open || !menu.matches(MENUS)) return;
      for (const other of document.querySelectorAll(MENUS)) {
        if (other !== menu) other.open = false;
      }
      const field = menu.querySelector("input[name='title']");
      if (field) {
        field.focus();
        field.select();
      }
      const panel = menu.querySelector(".conv-menu-panel");
      if (panel) panel.scrollIntoView({ block: "nearest" });
    },
    true,
  );

  document.addEventListener("input", (event) => {
    if (event.target instanceof HTMLTextAreaElement && event.target.id === "composer-input") grow(event.target);
  });
  document.addEventListener("reset", (event) => {
    if (event.target instanceof HTMLFormElement && event.target.id === "composer") {
      window.requestAnimationFrame(() => grow(document.getElementById("composer-input")));
    }
  });
  document.addEventListener("scroll", (event) => {
    if (event.target === scroller()) syncScrollButton();
  }, true);
  window.addEventListener("resize", syncScrollButton);

  // Where focus goes after a sidebar rename (the item is swapped) or delete (the item goes).
  let focusAfter = null;
  document.addEventListener("htmx:beforeRequest", (event) => {
    const form = event.detail.elt;
    if (!(form instanceof HTMLFormElement)) return;
    const item = form.closest(".conv-item");
    if (!item) return;
    if (form.matches(".conv-rename")) focusAfter = () => document.querySelector(`#${item.id} .conv-link`);
    if (form.matches(".conv-delete")) {
      const next = item.nextElementSibling || item.previousElementSibling;
      const link = next && next.querySelector("a");
      focusAfter = () => (link && document.contains(link) ? link : document.getElementById("conversation-search"));
    }
  });
  document.addEventListener("htmx:afterRequest", () => {
    if (!focusAfter) return;
    const find = focusAfter;
    focusAfter = null;
    window.requestAnimationFrame(() => {
      const element = find();
      if (element) element.focus();
    });
  });
  document.addEventListener("htmx:afterSwap", (event) => {
    // A rename from the header: focus goes back to its Rename button.
    if (event.detail.target && event.detail.target.id === "chat-header") {
      const summary = document.querySelector("#chat-header .rename summary");
      if (summary) summary.focus();
    }
  });

  // A new page (boosted link) or a history snapshot never keeps an open drawer or menu.
  function settleForNewPage() {
    for (const menu of document.querySelectorAll(MENUS)) menu.open = false;
    if (drawerOpen()) {
      root.classList.remove("drawer-open");
      setInert(false);
      const backdrop = $(".drawer-backdrop");
      if (backdrop) backdrop.hidden = true;
    }
  }
  document.addEventListener("htmx:beforeHistorySave", settleForNewPage);
  document.addEventListener("htmx:beforeSwap", (event) => {
    if (event.detail.target === document.body) settleForNewPage();
  });
})();
