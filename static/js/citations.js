// Citations: each [n] of an answer opens a side panel with that source's passage, the part that matched the
// question highlighted, and a link to the original at its page. Without this file [n] is a link to the
// source's entry in the list under the answer, which holds the same passage.
// The panel is built here with DOM calls (never innerHTML), so passage text can never become markup.
(function () {
  "use strict";

  const PANEL_ID = "citation-panel";
  let opener = null;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function panel() {
    let aside = document.getElementById(PANEL_ID);
    if (aside) return aside;
    aside = element("aside", "citation-panel");
    aside.id = PANEL_ID;
    aside.setAttribute("role", "dialog");
    aside.setAttribute("aria-modal", "false");
    aside.setAttribute("aria-labelledby", "citation-panel-title");
    aside.tabIndex = -1;
    aside.hidden = true;

    const header = element("header", "citation-panel-header");
    const heading = element("div", "citation-panel-heading");
    heading.append(element("p", "citation-panel-number"));
    const title = element("h2", "citation-panel-title");
    title.id = "citation-panel-title";
    heading.append(title);
    const close = element("button", "citation-panel-close tool");
    close.type = "button";
    close.setAttribute("aria-label", "Close the source");
    close.append(element("span", "", "×"));
    close.firstChild.setAttribute("aria-hidden", "true");
    header.append(heading, close);

    const body = element("div", "citation-panel-body");
    // A long passage scrolls inside the panel: focusable, so the keyboard scrolls it too.
    body.tabIndex = 0;
    body.setAttribute("role", "region");
    body.setAttribute("aria-label", "Passage");
    body.append(element("p", "citation-panel-meta"), element("div", "citation-panel-passage"));
    const footer = element("footer", "citation-panel-footer");
    const link = element("a", "button primary citation-panel-original");
    link.target = "_blank";
    link.rel = "noopener";
    link.setAttribute("hx-boost", "false");
    footer.append(link);
    aside.append(header, body, footer);
    document.body.append(aside);
    return aside;
  }

  // Paragraphs with whitespace collapsed, so the snippet (built from the same text, sentences joined by one
  // space) can be found in them. Returns [{text, start}] with offsets into the paragraphs joined by one space.
  function paragraphs(text) {
    let offset = 0;
    return text
      .split(/\n\s*\n/)
      .map((part) => part.replace(/\s+/g, " ").trim())
      .filter(Boolean)
      .map((part) => {
        const entry = { text: part, start: offset };
        offset += part.length + 1;
        return entry;
      });
  }

  function snippetRange(parts, snippet) {
    const core = (snippet || "").replace(/^…\s*/, "").replace(/\s*…$/, "").replace(/\s+/g, " ").trim();
    if (!core) return null;
    const joined = parts.map((part) => part.text).join(" ");
    // The passage may have lost its last (cut) word to endAtWord, and the snippet with it.
    for (const wanted of [core, core.replace(/\s*\S+$/, "")]) {
      if (!wanted) break;
      let start = joined.indexOf(wanted);
      if (start < 0) start = joined.toLowerCase().indexOf(wanted.toLowerCase());
      if (start >= 0) return { start, end: start + wanted.length };
    }
    return null;
  }

  // A passage is a piece of a longer text and may stop mid-sentence, even mid-word: unless it ends a sentence,
  // end it at the last word boundary with "…" (the original has the rest).
  function endAtWord(text) {
    const trimmed = text.replace(/\s+$/, "");
    if (!trimmed || /[.!?…:;)\]"'”’»]$/.test(trimmed)) return trimmed;
    const lastSpace = trimmed.search(/\s\S*$/);
    const kept = lastSpace > trimmed.length / 2 ? trimmed.slice(0, lastSpace) : trimmed;
    return `${kept.replace(/[\s,;:–—-]+$/, "")} …`;
  }

  function renderPassage(container, text, snippet) {
    container.replaceChildren();
    const parts = paragraphs(endAtWord(text));
    const range = snippetRange(parts, snippet);
    for (const part of parts) {
      const p = element("p");
      const from = range ? Math.max(range.start - part.start, 0) : 0;
      const to = range ? Math.min(range.end - part.start, part.text.length) : 0;
      if (range && from < to) {
        const mark = element("mark", "", part.text.slice(from, to));
        p.append(part.text.slice(0, from), mark, part.text.slice(to));
      } else {
        p.textContent = part.text;
      }
      container.append(p);
    }
    return container.querySelector("mark");
  }

  function sourceOf(link) {
    const target = (link.getAttribute("href") || "").slice(1);
    const item = target ? document.getElementById(target) : null;
    return item && item.matches(".sources li") ? item : null;
  }

  function open(link) {
    const item = sourceOf(link);
    if (!item) return false;
    const data = item.dataset;
    const aside = panel();
    const page = data.page ? `page ${data.page}` : "";
    aside.querySelector(".citation-panel-number").textContent = `Source [${data.number}]`;
    aside.querySelector(".citation-panel-title").textContent = data.title || "Untitled document";
    const meta = [page ? page.charAt(0).toUpperCase() + page.slice(1) : "", data.section || ""].filter(Boolean);
    aside.querySelector(".citation-panel-meta").textContent = meta.join(" · ");

    const full = item.querySelector(".source-text");
    const text = full ? full.textContent : data.snippet || "";
    const container = aside.querySelector(".citation-panel-passage");
    const mark = renderPassage(container, text, full ? data.snippet : "");
    if (!full) {
      container.append(element("p", "muted small", "Only this excerpt was kept with the answer; open the original to read more."));
    }

    const original = aside.querySelector(".citation-panel-original");
    original.href = data.href;
    original.replaceChildren(
      page ? `Open the original at ${page}` : "Open the original",
      element("span", "visually-hidden", " (opens in a new tab)")
    );

    if (opener && opener !== link) opener.setAttribute("aria-expanded", "false");
    opener = link;
    link.setAttribute("aria-expanded", "true");
    aside.hidden = false;
    document.body.classList.add("citation-open");
    aside.querySelector(".citation-panel-body").scrollTop = 0;
    aside.focus({ preventScroll: true });
    if (mark) mark.scrollIntoView({ block: "nearest" });
    link.scrollIntoView({ block: "nearest" }); // a docked panel narrows the page: keep the citation in view
    return true;
  }

  function close() {
    const aside = document.getElementById(PANEL_ID);
    if (!aside || aside.hidden) return;
    // Focus goes back to the citation only if it was in the panel (not if the reader moved on meanwhile).
    const focusWasInside = aside.contains(document.activeElement) || document.activeElement === document.body;
    aside.hidden = true;
    document.body.classList.remove("citation-open");
    const back = opener;
    opener = null;
    if (back) {
      back.setAttribute("aria-expanded", "false");
      if (back.isConnected && focusWasInside) back.focus();
    }
  }

  // Give every citation an informative name and say that it opens a panel.
  function enhance(root) {
    const scope = root && root.querySelectorAll ? root : document;
    for (const link of scope.querySelectorAll("a.cite")) {
      if (link.dataset.enhanced) continue;
      const item = sourceOf(link);
      if (!item) continue;
      const page = item.dataset.page ? `, page ${item.dataset.page}` : "";
      link.setAttribute("aria-label", `Source ${item.dataset.number}: ${item.dataset.title}${page}`);
      link.setAttribute("aria-haspopup", "dialog");
      link.setAttribute("aria-controls", PANEL_ID);
      link.setAttribute("aria-expanded", "false");
      link.dataset.enhanced = "true";
    }
  }

  document.addEventListener("click", (event) => {
    if (!(event.target instanceof Element)) return;
    if (event.target.closest(".citation-panel-close")) {
      close();
      return;
    }
    const link = event.target.closest("a.cite");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    if (open(link)) event.preventDefault();
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const aside = document.getElementById(PANEL_ID);
    if (!aside || aside.hidden) return;
    event.preventDefault();
    close();
  });

  // Swapped content (a finished answer, a branch switch, boosted navigation) gets enhanced; a panel whose
  // answer left the page closes.
  document.addEventListener("htmx:load", (event) => enhance(event.detail && event.detail.elt));
  document.addEventListener("htmx:afterSwap", () => {
    if (!document.getElementById(PANEL_ID)) {
      document.body.classList.remove("citation-open"); // boosted navigation replaced the body's content
      opener = null;
    } else if (opener && !opener.isConnected) {
      opener = null;
      close();
    }
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => enhance(document));
  else enhance(document);
})();
