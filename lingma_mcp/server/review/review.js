// The review of one agent-mode call: an MCP App View (io.modelcontextprotocol/ui, 2026-01-26).
//
// The host renders this page for a result of ask_lingma or review_changes and speaks to it
// in JSON-RPC 2.0 over postMessage: the page asks ui/initialize, says
// ui/notifications/initialized, then receives the call's arguments (tool-input) and result
// (tool-result). A result of ask_lingma names the call; the page asks the server for its
// diff through the host (tools/call review_changes). The revert buttons send tools/call
// revert_changes, which the host forwards to the server. Every text from the call (paths,
// commands, reasons) is put in with textContent, never parsed as HTML; diff2html escapes the
// diff it draws.
"use strict";

(() => {
  const PROTOCOL_VERSION = "2026-01-26";
  const APP_INFO = { name: "lingma-review", version: "1" };
  const REVIEW_TOOL = "review_changes";
  const REVERT_TOOL = "revert_changes";
  const METHOD_NOT_FOUND = -32601;

  // -- the host: JSON-RPC over postMessage ----------------------------------------------

  class Host {
    constructor(peer) {
      this.peer = peer;
      this.nextId = 1;
      this.pending = new Map();
      this.onNotification = () => {};
      this.onRequest = () => undefined;
      window.addEventListener("message", (event) => this.receive(event));
    }

    request(method, params) {
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.peer.postMessage({ jsonrpc: "2.0", id, method, params }, "*");
      });
    }

    notify(method, params) {
      this.peer.postMessage({ jsonrpc: "2.0", method, params }, "*");
    }

    receive(event) {
      // Only the frame that holds this page speaks for the host.
      if (event.source !== this.peer) return;
      const message = event.data;
      if (!message || message.jsonrpc !== "2.0") return;
      if (typeof message.method === "string") {
        if ("id" in message) this.answer(message);
        else this.onNotification(message.method, message.params || {});
        return;
      }
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (message.error) {
        waiting.reject(new Error(message.error.message || "the host refused the request"));
      } else {
        waiting.resolve(message.result);
      }
    }

    answer(message) {
      const result = this.onRequest(message.method, message.params || {});
      const reply = { jsonrpc: "2.0", id: message.id };
      if (result === undefined) {
        reply.error = { code: METHOD_NOT_FOUND, message: `not served here: ${message.method}` };
      } else {
        reply.result = result;
      }
      this.peer.postMessage(reply, "*");
    }
  }

  // -- the page's state -----------------------------------------------------------------

  const page = document.getElementById("review");
  const $ = (id) => document.getElementById(id);
  const host = new Host(window.parent);

  const state = {
    context: {}, // the host's context (theme, styles, display mode)
    capabilities: {}, // what the host offers (serverTools: it forwards tools/call)
    review: null, // a review_changes result (structured)
    requestId: null,
    outcomes: new Map(), // path -> {restored: true} | {reason}
    format: "line-by-line",
    busy: false,
  };

  function show(stateName) {
    page.dataset.state = stateName;
    page.hidden = stateName === "empty" || stateName === "waiting";
    // Before there is a review (reading it, or an error instead) only the status shows.
    for (const part of page.querySelectorAll("section, .actions")) part.hidden = !state.review;
  }

  function setStatus(text, isError) {
    const status = $("status");
    status.textContent = text || "";
    status.classList.toggle("error", Boolean(isError));
  }

  function setNotice(text) {
    $("notice").textContent = text || "";
    $("notice").hidden = !text;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function resultText(result) {
    const texts = (result && result.content) || [];
    return texts
      .filter((block) => block.type === "text")
      .map((block) => block.text)
      .join("\n");
  }

  // -- theme and size -------------------------------------------------------------------

  function applyContext(context) {
    state.context = Object.assign({}, state.context, context);
    const theme = state.context.theme === "dark" ? "dark" : "light";
    const changed = document.documentElement.dataset.theme !== theme;
    document.documentElement.dataset.theme = theme;
    const variables = (state.context.styles && state.context.styles.variables) || {};
    for (const [name, value] of Object.entries(variables)) {
      if (name.startsWith("--") && typeof value === "string") {
        document.documentElement.style.setProperty(name, value);
      }
    }
    const fonts = state.context.styles && state.context.styles.css && state.context.styles.css.fonts;
    if (typeof fonts === "string" && !$("host-fonts")) {
      const style = element("style");
      style.id = "host-fonts";
      style.textContent = fonts;
      document.head.appendChild(style);
    }
    const modes = state.context.availableDisplayModes || [];
    $("fullscreen").hidden = !modes.includes("fullscreen");
    $("fullscreen").textContent =
      state.context.displayMode === "fullscreen" ? "Exit full screen" : "Full screen";
    if (changed && state.review) drawDiff();
  }

  let lastSize = "";
  let started = false; // nothing goes to the host before ui/notifications/initialized
  function reportSize() {
    if (!started) return;
    // The page's own height (0 when it shows nothing), so an inline frame fits it.
    const box = page.hidden ? { width: 0, height: 0 } : page.getBoundingClientRect();
    const size = { width: Math.ceil(box.width), height: Math.ceil(box.height) };
    const key = `${size.width}x${size.height}`;
    if (key === lastSize) return;
    lastSize = key;
    host.notify("ui/notifications/size-changed", size);
  }

  // -- drawing --------------------------------------------------------------------------

  function actionBadge(action) {
    return element("span", `badge ${action}`, action);
  }

  function drawFiles(changes) {
    const body = $("files");
    body.replaceChildren();
    for (const change of changes) {
      const row = element("tr");
      row.dataset.path = change.path;
      row.appendChild(element("td", "path", change.path));
      const kind = element("td");
      kind.appendChild(actionBadge(change.action));
      if (change.binary) kind.append(" ", element("span", "badge", "binary"));
      if (change.skipped) kind.append(" ", element("span", "badge", "too large to keep"));
      row.appendChild(kind);
      const lines = element("td", "lines");
      lines.append(
        element("span", "added", `+${change.lines_added}`),
        " ",
        element("span", "removed", `\u2212${change.lines_removed}`),
      );
      row.appendChild(lines);
      row.appendChild(element("td", "by", change.by || "\u2014"));
      const cell = element("td", "revert");
      const outcome = state.outcomes.get(change.path);
      if (outcome && outcome.restored) {
        cell.appendChild(element("span", "outcome restored", "restored"));
      } else {
        if (outcome) cell.appendChild(element("div", "outcome refused", outcome.reason));
        const button = element("button", "danger revert-file", "Revert");
        button.type = "button";
        button.title = `Put ${change.path} back as it was before this call`;
        button.disabled = !canRevert();
        button.addEventListener("click", () => revert([change.path]));
        cell.appendChild(button);
      }
      row.appendChild(cell);
      body.appendChild(row);
    }
    $("no-files").hidden = changes.length > 0;
    // A record that names no author for any file (the journal's) gets no empty column.
    document.querySelector("table.files").classList.toggle("no-by", !changes.some((c) => c.by));
  }

  function drawApprovals(approvals) {
    const list = $("approvals");
    list.replaceChildren();
    const none = $("no-approvals");
    if (approvals === null || approvals === undefined) {
      none.textContent =
        "Not known to this server any more (approvals are kept in memory while it runs); " +
        "the ask_lingma result listed them.";
      none.hidden = false;
      return;
    }
    none.textContent = "Nothing needed an approval.";
    none.hidden = approvals.length > 0;
    for (const approval of approvals) {
      const item = element("li");
      item.dataset.decision = approval.decision;
      item.append(
        element("span", approval.decision, approval.decision === "allowed" ? "\u2713 allowed" : "\u2717 denied"),
        " ",
        element("strong", "", approval.tool),
        " ",
        element("span", "target", approval.target),
        " ",
        element("span", "muted", `by ${approval.by}`),
      );
      list.appendChild(item);
    }
  }

  function drawDiff() {
    const target = $("diff");
    const review = state.review;
    const notes = $("notes");
    notes.replaceChildren(...((review && review.notes) || []).map((note) => element("li", "", note)));
    notes.hidden = notes.childElementCount === 0;
    if (!review || !review.diff) {
      let text = "No diff to show.";
      if (!review || (review.fromAsk && canAskServer())) text = "Loading the diff\u2026";
      else if (review.fromAsk) text = `The diff is in lingma://changes/${review.request_id}.`;
      target.replaceChildren(element("p", "muted", text));
      return;
    }
    const ui = new Diff2HtmlUI(target, review.diff, {
      outputFormat: state.format,
      drawFileList: false,
      matching: "lines",
      highlight: true,
      colorScheme: document.documentElement.dataset.theme === "dark" ? "dark" : "light",
      synchronisedScroll: true,
      fileContentToggle: false,
      stickyFileHeaders: false,
    });
    ui.draw();
  }

  function drawSummary(changes) {
    const added = changes.reduce((sum, c) => sum + c.lines_added, 0);
    const removed = changes.reduce((sum, c) => sum + c.lines_removed, 0);
    const files = `${changes.length} file${changes.length === 1 ? "" : "s"}`;
    $("summary").textContent =
      `Call ${state.requestId} \u00b7 ${files} \u00b7 +${added} \u2212${removed}`;
  }

  function draw() {
    const review = state.review;
    drawSummary(review.changes);
    drawFiles(review.changes);
    drawApprovals(review.approvals);
    drawDiff();
    setNotice(
      review.running
        ? "This call is still running: the list shows its changes so far, and it can be " +
            "reverted once it has ended."
        : canAskServer()
          ? ""
          : "This host does not pass the page's requests to the server: to revert, ask for " +
            `revert_changes with request_id ${state.requestId}.`,
    );
    updateButtons();
  }

  function pending() {
    return state.review
      ? state.review.changes.filter((c) => !(state.outcomes.get(c.path) || {}).restored)
      : [];
  }

  function canAskServer() {
    return Boolean(state.capabilities.serverTools);
  }

  function canRevert() {
    return canAskServer() && !state.busy && Boolean(state.review) && !state.review.running;
  }

  function updateButtons() {
    const all = $("revert-all");
    all.disabled = !canRevert() || pending().length === 0;
    if (all.disabled) disarm(all);
    for (const button of document.querySelectorAll(".revert-file")) button.disabled = !canRevert();
  }

  // -- what the host sends --------------------------------------------------------------

  function takeResult(result) {
    if (result.isError) {
      show("ready");
      $("summary").textContent = "";
      setStatus(resultText(result) || "The call failed.", true);
      return;
    }
    const data = result.structuredContent || {};
    if (typeof data.diff === "string" && Array.isArray(data.changes)) {
      takeReview(data);
      return;
    }
    // An ask_lingma result (or a job's, which carries it): reviewed only when an agent-mode
    // call that ended changed files or decided on approvals. Anything else shows nothing.
    const ask = data.result && typeof data.result === "object" ? data.result : data;
    const changes = ask.changes || [];
    const approvals = ask.approvals || [];
    if (ask.mode !== "agent" || ask.status !== "done" || !ask.request_id) {
      show("empty");
      return;
    }
    if (changes.length === 0 && approvals.length === 0) {
      show("empty");
      return;
    }
    // Shown at once from the result; the diff and who made each change follow where the
    // host passes the page's requests on.
    const provisional = { request_id: ask.request_id, running: false, changes, approvals };
    takeReview(Object.assign(provisional, { diff: "", notes: [], fromAsk: true }), canAskServer());
    if (!canAskServer()) return;
    host
      .request("tools/call", { name: REVIEW_TOOL, arguments: { request_id: ask.request_id } })
      .then((review) => {
        if (review.isError) {
          setStatus(resultText(review), true);
          return;
        }
        const data = review.structuredContent || {};
        // The ask's own list of approvals is complete; the server's may be gone.
        if (data.approvals === null || data.approvals === undefined) data.approvals = approvals;
        takeReview(data);
      })
      .catch((error) => setStatus(`The diff could not be read: ${error.message}`, true));
  }

  function takeReview(review, partial) {
    state.review = review;
    state.requestId = review.request_id;
    show(partial ? "loading" : "ready");
    draw();
  }

  host.onNotification = (method, params) => {
    if (method === "ui/notifications/tool-input") {
      const requestId = params.arguments && params.arguments.request_id;
      if (typeof requestId === "string" && !state.review) {
        state.requestId = requestId;
        $("summary").textContent = `Call ${requestId}`;
        setStatus("Reading the changes\u2026");
        show("loading");
      }
    } else if (method === "ui/notifications/tool-result") {
      setStatus("");
      takeResult(params);
    } else if (method === "ui/notifications/tool-cancelled") {
      if (!state.review) show("empty");
    } else if (method === "ui/notifications/host-context-changed") {
      applyContext(params);
    }
  };

  host.onRequest = (method) => {
    if (method === "ui/resource-teardown" || method === "ping") return {};
    return undefined;
  };

  // -- reverting ------------------------------------------------------------------------

  function disarm(button) {
    button.classList.remove("confirm");
    button.textContent = "Revert all";
    delete button.dataset.armed;
  }

  $("revert-all").addEventListener("click", (event) => {
    // Two clicks: the first says what will happen, the second does it.
    const button = event.currentTarget;
    if (!button.dataset.armed) {
      const count = pending().length;
      button.dataset.armed = "1";
      button.classList.add("confirm");
      button.textContent = `Revert ${count} file${count === 1 ? "" : "s"}?`;
      return;
    }
    disarm(button);
    revert(null);
  });

  async function revert(paths) {
    const args = { request_id: state.requestId };
    if (paths) args.paths = paths;
    state.busy = true;
    updateButtons();
    setStatus(paths ? `Reverting ${paths.join(", ")}\u2026` : "Reverting every file\u2026");
    try {
      const result = await host.request("tools/call", { name: REVERT_TOOL, arguments: args });
      const outcome = result.structuredContent;
      if (result.isError || !outcome) {
        setStatus(resultText(result) || "The revert failed.", true);
      } else {
        for (const path of outcome.restored) state.outcomes.set(path, { restored: true });
        for (const refusal of outcome.refused) {
          // "already reverted" by an earlier click of this page stays shown as restored.
          const earlier = state.outcomes.get(refusal.path);
          if (!(earlier && earlier.restored)) state.outcomes.set(refusal.path, { reason: refusal.reason });
        }
        setStatus(resultText(result), outcome.refused.length > 0);
      }
    } catch (error) {
      setStatus(`The revert could not be sent: ${error.message}`, true);
    } finally {
      state.busy = false;
      drawFiles(state.review.changes);
      updateButtons();
    }
  }

  // -- layout buttons -------------------------------------------------------------------

  function setFormat(format) {
    state.format = format;
    $("unified").setAttribute("aria-pressed", String(format === "line-by-line"));
    $("split").setAttribute("aria-pressed", String(format === "side-by-side"));
    if (state.review) drawDiff();
  }
  $("unified").addEventListener("click", () => setFormat("line-by-line"));
  $("split").addEventListener("click", () => setFormat("side-by-side"));

  $("fullscreen").addEventListener("click", async () => {
    const mode = state.context.displayMode === "fullscreen" ? "inline" : "fullscreen";
    try {
      const result = await host.request("ui/request-display-mode", { mode });
      applyContext({ displayMode: result && result.mode });
    } catch (error) {
      setStatus(`The host kept the display as it is: ${error.message}`, true);
    }
  });

  // -- start ----------------------------------------------------------------------------

  new ResizeObserver(reportSize).observe(page);
  new MutationObserver(reportSize).observe(page, { attributes: true, attributeFilter: ["hidden"] });

  host
    .request("ui/initialize", {
      appInfo: APP_INFO,
      appCapabilities: { availableDisplayModes: ["inline", "fullscreen"] },
      protocolVersion: PROTOCOL_VERSION,
    })
    .then((result) => {
      state.capabilities = (result && result.hostCapabilities) || {};
      applyContext((result && result.hostContext) || {});
      host.notify("ui/notifications/initialized", {});
      started = true;
      reportSize();
    })
    .catch((error) => {
      show("ready");
      setStatus(`The host did not start this page: ${error.message}`, true);
    });
})();
