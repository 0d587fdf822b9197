// The home page: submit links and follow them, through the links API with the session cookie.
// Plain JavaScript with no build step; data is inserted with textContent only, never as HTML.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("home-config").textContent);
  const resultBox = document.getElementById("submit-result");

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // The API answers errors as {"error": code, "detail": message or {field: [messages]}}.
  function errorText(body, status) {
    if (!body) return "HTTP " + status;
    const detail = body.detail;
    if (typeof detail === "string") return detail;
    if (detail && typeof detail === "object") {
      return Object.entries(detail)
        .map(([field, messages]) => field + ": " + [].concat(messages).join(" "))
        .join("; ");
    }
    return body.error || "HTTP " + status;
  }

  async function api(method, url, body) {
    const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") options.headers["X-CSRFToken"] = csrfToken();
    if (body instanceof FormData) {
      options.body = body;
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(url, options);
    let data = null;
    try {
      data = await response.json();
    } catch (e) {
      data = null;
    }
    if (!response.ok) throw new Error(errorText(data, response.status));
    return data;
  }

  function showResult(text, isError) {
    if (!resultBox) return;
    resultBox.textContent = text;
    resultBox.className = "result " + (isError ? "error" : "ok");
  }

  // --- submitting ---------------------------------------------------------------------

  const submitForm = document.getElementById("submit-form");
  if (submitForm) {
    submitForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const textarea = document.getElementById("urls");
      const urls = textarea.value.split(/\r?\n/).map((line) => line.trim()).filter(Boolean);
      if (!urls.length) return showResult("Paste at least one URL.", true);
      const button = document.getElementById("submit-button");
      button.disabled = true;
      try {
        const data = await api("POST", "/api/links/", { urls });
        let text = `${data.created} added, ${data.duplicate} already known, ${data.invalid} invalid.`;
        const invalid = data.results.filter((r) => r.status === "invalid");
        if (invalid.length) text += " " + invalid.map((r) => `${r.url}: ${r.reason}`).join("; ");
        showResult(text, data.invalid > 0 && data.created === 0);
        if (!invalid.length) textarea.value = "";
        refresh();
      } catch (error) {
        showResult("Could not add the links: " + error.message, true);
      } finally {
        button.disabled = false;
      }
    });
  }

  const importForm = document.getElementById("import-form");
  if (importForm) {
    importForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = document.getElementById("import-file");
      if (!input.files.length) return showResult("Choose a file first.", true);
      const form = new FormData();
      form.append("file", input.files[0]);
      const button = document.getElementById("import-button");
      button.disabled = true;
      showResult("Importing " + input.files[0].name + "…", false);
      try {
        const data = await api("POST", "/api/links/import", form);
        showResult(
          `Imported ${data.format}: ${data.created} added, ${data.duplicate} already known, ${data.invalid} invalid ` +
            `(of ${data.total}).` + (data.errors.length ? " First problems: " + data.errors.slice(0, 3).join("; ") : ""),
          false
        );
        input.value = "";
        refresh();
      } catch (error) {
        showResult("Could not import the file: " + error.message, true);
      } finally {
        button.disabled = false;
      }
    });
  }

  // --- the recent links ---------------------------------------------------------------

  const body = document.getElementById("links-body");
  const state = document.getElementById("refresh-state");

  function cell(row, content) {
    const td = document.createElement("td");
    if (content instanceof Node) td.appendChild(content);
    else td.textContent = content;
    row.appendChild(td);
    return td;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function linkRow(link) {
    const row = el("tr");
    row.dataset.linkId = link.id;
    row.dataset.status = link.status;

    const title = el("div");
    const anchor = el("a", "title", link.title || link.url);
    anchor.href = link.final_url || link.url;
    anchor.target = "_blank";
    anchor.rel = "noopener noreferrer";
    title.appendChild(anchor);
    title.appendChild(el("div", "muted small", link.domain));
    if (link.summary) title.title = link.summary;
    cell(row, title);

    const badge = el("span", "badge status-" + link.status, link.status);
    if (link.last_error) badge.title = link.last_error;
    const stage = cell(row, badge);
    if (link.status === "failed" && link.last_error) stage.appendChild(el("div", "error small", link.last_error));

    cell(row, link.category || "–").className = "category";

    const tags = el("span", "tags");
    for (const name of link.tags) tags.appendChild(el("span", "tag", name));
    cell(row, tags);

    cell(row, new Date(link.created_at).toLocaleString()).className = "muted small";
    return row;
  }

  let timer = null;
  let inFlight = false;

  async function refresh() {
    if (!body || inFlight) return;
    inFlight = true;
    try {
      const data = await api("GET", "/api/links/?page_size=" + config.recentLinks);
      const rows = data.results.map(linkRow);
      if (!rows.length) {
        const empty = el("tr", "empty");
        const td = cell(empty, "No links yet: paste some above.");
        td.colSpan = 5;
        rows.push(empty);
      }
      body.replaceChildren(...rows);
      if (state) state.textContent = "updated " + new Date().toLocaleTimeString();
    } catch (error) {
      if (state) state.textContent = "could not refresh: " + error.message;
    } finally {
      inFlight = false;
    }
  }

  function schedule() {
    clearTimeout(timer);
    // A hidden tab does not need fresh rows; it refreshes when it is shown again.
    timer = setTimeout(async () => {
      if (!document.hidden) await refresh();
      schedule();
    }, config.refreshMs);
  }

  if (config.canView) {
    refresh();
    schedule();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refresh();
    });
  }
})();
