// Streaming answers: an htmx extension ("medchat-morph") whose "morph" swap patches an element in place instead
// of replacing it. The answer stream sends the whole answer so far, rendered and sanitised by the server as the
// stored answer is; patching keeps every node that did not change (the paragraphs already written, a selection,
// a focused link) and only touches the tail, so Markdown appears as it is written without flicker, and the
// answer body stays the same element from the first token to the finished answer (morphed in the same way).
// The content is the server's sanitised HTML, parsed by htmx into a fragment; nothing here builds markup.
(function () {
  "use strict";

  let api = null;

  // Two nodes are "the same" (patched, not replaced) when they are the same kind of element with the same id,
  // first class and form action, or both text (or both comments).
  function key(node) {
    if (node.nodeType !== Node.ELEMENT_NODE) return `#${node.nodeType}`;
    const form = node.tagName === "FORM" ? node.getAttribute("action") || "" : "";
    return `${node.tagName}|${node.id}|${node.classList[0] || ""}|${form}`;
  }

  // What the page's scripts or the reader set, which the server's HTML never has: an opened <details>, and a
  // citation's accessible name and panel state (static/js/citations.js).
  function clientOwned(element, name) {
    if (element.tagName === "DETAILS") return name === "open";
    return element.matches("a.cite") && (name.startsWith("aria-") || name === "data-enhanced");
  }

  function syncAttributes(from, to) {
    for (const { name } of Array.from(from.attributes)) {
      if (!to.hasAttribute(name) && !clientOwned(from, name)) from.removeAttribute(name);
    }
    for (const { name, value } of Array.from(to.attributes)) {
      if (from.getAttribute(name) !== value) from.setAttribute(name, value);
    }
    // A form control keeps what the reader typed unless the server changed its value.
    if (from instanceof HTMLTextAreaElement && to instanceof HTMLTextAreaElement && from.defaultValue !== to.defaultValue) {
      from.value = to.value;
    }
  }

  // Make ``from`` look like ``to`` (a node not in the document), changing as few nodes as possible.
  function morphNode(from, to) {
    if (from.nodeType !== Node.ELEMENT_NODE) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    syncAttributes(from, to);
    morphChildren(from, to);
  }

  // The children of ``parent`` made like ``source``'s children: each wanted child reuses the next old child
  // with its key (old children skipped on the way are removed), or a new node is inserted.
  function morphChildren(parent, source) {
    const wanted = Array.from(source.childNodes);
    let cursor = parent.firstChild;
    for (const node of wanted) {
      let match = cursor;
      while (match && key(match) !== key(node)) match = match.nextSibling;
      if (match) {
        while (cursor !== match) {
          const gone = cursor;
          cursor = cursor.nextSibling;
          gone.remove();
        }
        morphNode(match, node);
        cursor = match.nextSibling;
      } else {
        parent.insertBefore(node, cursor); // moves it out of ``source``: ``wanted`` is a copy of the list
      }
    }
    while (cursor) {
      const gone = cursor;
      cursor = cursor.nextSibling;
      gone.remove();
    }
  }

  // The stream ends when the streaming answer becomes the finished one (or stopped): its EventSource goes
  // with the attribute, as it would have if the element had been replaced.
  function closeStreamIfGone(target) {
    if (!api || target.hasAttribute("sse-connect")) return;
    const data = api.getInternalData(target);
    if (data && data.sseEventSource) {
      data.sseEventSource.close();
      data.sseEventSource = null;
    }
  }

  function fragmentRoot(fragment) {
    const elements = Array.from(fragment.childNodes).filter((node) => node.nodeType === Node.ELEMENT_NODE);
    return elements.length === 1 ? elements[0] : null;
  }

  htmx.defineExtension("medchat-morph", {
    init(internalApi) {
      api = internalApi;
    },
    handleSwap(swapStyle, target, fragment) {
      if (swapStyle !== "morph") return false;
      // The finished message (or the stopped one): morph the element itself when the fragment is one element
      // with the target's id; otherwise (an answer body's new HTML) morph the target's children.
      const root = fragmentRoot(fragment);
      if (root && target.id && root.id === target.id) {
        morphNode(target, root);
        closeStreamIfGone(target);
      } else {
        const holder = document.createElement("div");
        holder.append(fragment);
        morphChildren(target, holder);
      }
      return [target]; // htmx processes it (new hx- attributes) and fires htmx:load on it
    },
  });
})();
