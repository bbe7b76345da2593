// The Spaces page: the saved file's summary, and the editor checked as you type through
// POST /api/space/check (the error and its line, or the graph and the decision points).
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const main = document.querySelector("main[data-page=space]");
  if (!main) return;
  const file = main.dataset.file;
  const editor = $("editor");
  let pending = null;
  let latest = 0;
  let graphUrl = null;

  function cell(row, text, className) {
    const td = row.insertCell();
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function showGraph(svg) {
    if (graphUrl) URL.revokeObjectURL(graphUrl);
    graphUrl = svg ? URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" })) : null;
    $("graph").src = graphUrl || "";
    $("graph-state").textContent = svg ? "" : "(Graphviz's dot is not installed: no drawing)";
  }

  function showPoints(points) {
    const body = $("points").tBodies[0];
    body.replaceChildren();
    for (const p of points) {
      const row = body.insertRow();
      cell(row, p.name);
      cell(row, p.kind);
      cell(row, p.choices.join(" | "));
    }
    $("points-count").textContent = "(" + points.length + ")";
  }

  function showCheck(result) {
    const check = $("check");
    const line = $("check-line");
    if (!result.ok) {
      check.className = "check bad";
      check.textContent = result.error;
      editor.classList.add("invalid");
      const lines = editor.value.split("\n");
      line.hidden = !result.line;
      if (result.line) line.textContent = result.line + " | " + (lines[result.line - 1] || "");
      $("launch").disabled = true;
      return;
    }
    check.className = "check ok";
    check.textContent =
      "valid: " + result.name + ", " + result.points.length + " decision points, " +
      result.size + " architectures";
    editor.classList.remove("invalid");
    line.hidden = true;
    $("launch").disabled = false;
    showGraph(result.svg);
    showPoints(result.points);
  }

  async function check() {
    const mine = ++latest;
    const response = await fetch("/api/space/check", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "text/plain" },
      body: editor.value,
    });
    const result = await response.json();
    if (mine === latest) showCheck(result); // an answer to older text is dropped
  }

  async function summary() {
    const response = await fetch("/api/space/" + encodeURIComponent(file), { credentials: "same-origin" });
    const data = await response.json();
    const state = $("summary-state");
    if (!data.ok) {
      state.textContent = "the saved file is not valid: " + data.error;
      state.className = "error";
      return;
    }
    state.textContent = data.description || "";
    const facts = $("summary-facts");
    facts.replaceChildren();
    const input = data.input_shape.join("x");
    for (const [term, value] of [
      ["space", data.name],
      ["decision points", String(data.points.length)],
      ["architectures", data.size_short],
      ["nodes", String(data.nodes)],
      ["input", input + ", " + data.num_classes + " classes"],
    ]) {
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      dd.dataset.term = term;
      facts.append(dt, dd);
    }
    const body = $("costs").tBodies[0];
    body.replaceChildren();
    for (const name of ["cheapest", "base", "largest"]) {
      const c = data.costs[name];
      const row = body.insertRow();
      row.dataset.row = name;
      cell(row, name);
      for (const key of ["ops", "params", "model_bits", "flops", "bops"]) cell(row, c[key], "num");
    }
    $("costs").hidden = false;
  }

  editor.addEventListener("input", () => {
    clearTimeout(pending);
    pending = setTimeout(check, 300);
  });
  check();
  summary();
})();
