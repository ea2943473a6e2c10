/* The archive's offline search: no network, no library. search-index.js has set
   window.BRIEFBOT_SEARCH = {t2s, items}; this folds the query and every item the same way
   (NFKC, lower case, traditional → simplified character by character) and keeps the items
   that contain every word of the query. Item text only ever reaches the page through
   textContent and text nodes, never as HTML. */
(function () {
  "use strict";

  const MAX_RESULTS = 50;
  const SNIPPET_LENGTH = 110;
  const SNIPPET_BEFORE = 24;
  const ITEM_URL = /^items\/[0-9A-Za-z._-]+\.html$/;

  const data = window.BRIEFBOT_SEARCH;
  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const status = document.getElementById("search-status");
  const list = document.getElementById("results");
  if (!data || !form || !input || !status || !list) {
    return;
  }

  // the table is a string of (traditional, simplified) pairs; Array.from splits it by code
  // point, so characters outside the BMP stay whole
  const t2s = new Map();
  const pairs = Array.from(data.t2s);
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    t2s.set(pairs[i], pairs[i + 1]);
  }

  const foldedChars = new Map();
  function foldChar(ch) {
    let out = foldedChars.get(ch);
    if (out === undefined) {
      out = "";
      for (const c of ch.normalize("NFKC").toLowerCase()) {
        out += t2s.get(c) || c;
      }
      foldedChars.set(ch, out);
    }
    return out;
  }

  function fold(text) {
    let out = "";
    for (const ch of text) {
      out += foldChar(ch);
    }
    return out;
  }

  // ``text`` folded, with the span of ``text`` each folded code unit came from: a match in
  // the folded form maps back onto the text as written, for highlighting
  function foldMapped(text) {
    let out = "";
    const start = [];
    const end = [];
    let offset = 0;
    for (const ch of text) {
      const folded = foldChar(ch);
      for (let k = 0; k < folded.length; k++) {
        start.push(offset);
        end.push(offset + ch.length);
      }
      out += folded;
      offset += ch.length;
    }
    return { text: out, start: start, end: end };
  }

  let prepared = null;
  function items() {
    if (prepared === null) {
      prepared = data.items.map(function (item) {
        return {
          item: item,
          title: foldMapped(item.title),
          summary: foldMapped(item.summary),
          tags: fold(item.tags.join(" ")),
          section: fold(item.section || ""),
        };
      });
    }
    return prepared;
  }

  function termsOf(query) {
    const terms = new Set();
    for (const term of fold(query).split(/\s+/)) {
      if (term) {
        terms.add(term);
      }
    }
    return Array.from(terms);
  }

  // every item holding all ``terms``: title hits first, then newer first
  function search(terms) {
    const found = [];
    for (const entry of items()) {
      let score = 0;
      let all = true;
      for (const term of terms) {
        const inTitle = entry.title.text.includes(term);
        const inTags = entry.tags.includes(term);
        const inSection = entry.section.includes(term);
        const inSummary = entry.summary.text.includes(term);
        if (!(inTitle || inTags || inSection || inSummary)) {
          all = false;
          break;
        }
        score += (inTitle ? 4 : 0) + (inTags ? 2 : 0) + (inSection ? 1 : 0) + (inSummary ? 1 : 0);
      }
      if (all) {
        found.push({ entry: entry, score: score });
      }
    }
    found.sort(function (a, b) {
      if (a.score !== b.score) {
        return b.score - a.score;
      }
      const da = a.entry.item.date;
      const db = b.entry.item.date;
      return da < db ? 1 : da > db ? -1 : 0;
    });
    return found;
  }

  // where ``terms`` occur in the text ``mapped`` was folded from: sorted, merged spans
  function hitSpans(mapped, terms) {
    const spans = [];
    for (const term of terms) {
      let at = mapped.text.indexOf(term);
      while (at >= 0) {
        spans.push([mapped.start[at], mapped.end[at + term.length - 1]]);
        at = mapped.text.indexOf(term, at + term.length);
      }
    }
    spans.sort(function (a, b) {
      return a[0] - b[0];
    });
    const merged = [];
    for (const span of spans) {
      const last = merged[merged.length - 1];
      if (last && span[0] <= last[1]) {
        last[1] = Math.max(last[1], span[1]);
      } else {
        merged.push([span[0], span[1]]);
      }
    }
    return merged;
  }

  // text[from:to] as text nodes, the hits inside <mark> elements (set by textContent)
  function appendMarked(parent, text, from, to, spans) {
    let at = from;
    for (const span of spans) {
      const start = Math.max(span[0], at);
      const end = Math.min(span[1], to);
      if (end <= start) {
        continue;
      }
      if (start > at) {
        parent.appendChild(document.createTextNode(text.slice(at, start)));
      }
      const mark = document.createElement("mark");
      mark.textContent = text.slice(start, end);
      parent.appendChild(mark);
      at = end;
    }
    if (at < to) {
      parent.appendChild(document.createTextNode(text.slice(at, to)));
    }
  }

  function isLowSurrogate(code) {
    return code >= 0xdc00 && code <= 0xdfff;
  }

  // a window of the summary around its first hit
  function snippetWindow(text, spans) {
    if (text.length <= SNIPPET_LENGTH) {
      return [0, text.length];
    }
    let start = spans.length ? Math.max(0, spans[0][0] - SNIPPET_BEFORE) : 0;
    let end = Math.min(text.length, start + SNIPPET_LENGTH);
    start = Math.max(0, Math.min(start, end - SNIPPET_LENGTH));
    if (start > 0 && isLowSurrogate(text.charCodeAt(start))) {
      start -= 1;
    }
    if (end < text.length && isLowSurrogate(text.charCodeAt(end))) {
      end += 1;
    }
    return [start, end];
  }

  function words(name, values) {
    let text = status.dataset[name] || "";
    for (const key of Object.keys(values)) {
      text = text.split("{" + key + "}").join(String(values[key]));
    }
    return text;
  }

  function resultOf(entry, terms) {
    const item = entry.item;
    const li = document.createElement("li");

    const heading = document.createElement("p");
    heading.className = "result-title";
    const link = document.createElement("a");
    if (ITEM_URL.test(item.url)) {
      link.href = item.url;
    }
    appendMarked(link, item.title, 0, item.title.length, hitSpans(entry.title, terms));
    heading.appendChild(link);
    li.appendChild(heading);

    const meta = document.createElement("p");
    meta.className = "meta";
    const tags = item.tags.map(function (tag) {
      return "#" + tag;
    });
    meta.textContent = [item.date, item.section, tags.join(" ")].filter(Boolean).join(" · ");
    li.appendChild(meta);

    const snippet = document.createElement("p");
    snippet.className = "snippet";
    const spans = hitSpans(entry.summary, terms);
    const range = snippetWindow(item.summary, spans);
    if (range[0] > 0) {
      snippet.appendChild(document.createTextNode("…"));
    }
    appendMarked(snippet, item.summary, range[0], range[1], spans);
    if (range[1] < item.summary.length) {
      snippet.appendChild(document.createTextNode("…"));
    }
    li.appendChild(snippet);
    return li;
  }

  function show(query) {
    const terms = termsOf(query);
    // what the list shows results for (a test, or a script, can wait on it)
    list.setAttribute("data-query", query);
    while (list.firstChild) {
      list.removeChild(list.firstChild);
    }
    if (!terms.length) {
      status.textContent = words("prompt", {});
      return;
    }
    const found = search(terms);
    if (!found.length) {
      status.textContent = words("none", {});
      return;
    }
    status.textContent =
      found.length > MAX_RESULTS
        ? words("more", { n: found.length, shown: MAX_RESULTS })
        : words("count", { n: found.length });
    const fragment = document.createDocumentFragment();
    for (const hit of found.slice(0, MAX_RESULTS)) {
      fragment.appendChild(resultOf(hit.entry, terms));
    }
    list.appendChild(fragment);
  }

  // the query goes into the address (?q=), so a search can be bookmarked and shared
  function remember(query) {
    try {
      const url = new URL(window.location.href);
      if (query) {
        url.searchParams.set("q", query);
      } else {
        url.searchParams.delete("q");
      }
      if (url.href !== window.location.href) {
        window.history.replaceState(null, "", url.href);
      }
    } catch (error) {
      // a page opened from file:// may not rewrite its address; the results still show
    }
  }

  let pending = 0;
  function update() {
    show(input.value);
    window.clearTimeout(pending);
    pending = window.setTimeout(function () {
      remember(input.value.trim());
    }, 300);
  }

  input.addEventListener("input", function (event) {
    if (!event.isComposing) {
      update();
    }
  });
  input.addEventListener("compositionend", update);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(input.value);
    remember(input.value.trim());
  });

  const initial = new URLSearchParams(window.location.search).get("q") || "";
  input.value = initial;
  show(initial);
})();
