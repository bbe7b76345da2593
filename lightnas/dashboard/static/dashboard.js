// LightNAS dashboard: draws the JSON endpoints' data with Plotly and polls while runs are live.
// Plain browser JavaScript, no framework: each page's <main data-page="..."> picks its function.
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const LIVE = ["running", "starting"];
  const PLOT_CONFIG = { displaylogo: false, responsive: true };

  function urlPath(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }

  function layout(title, yTitle, xTitle, extra) {
    return Object.assign(
      {
        title: { text: title, font: { size: 15 } },
        margin: { l: 60, r: 20, t: 40, b: 45 },
        xaxis: { title: { text: xTitle || "epoch" } },
        yaxis: { title: { text: yTitle } },
        legend: { orientation: "h", y: -0.25 },
        height: 320,
      },
      extra || {}
    );
  }

  function si(value) {
    if (value === null || value === undefined) return "–";
    for (const [factor, unit] of [[1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
      if (Math.abs(value) >= factor) return Number((value / factor).toPrecision(3)) + " " + unit;
    }
    return String(Number(value.toPrecision(3)));
  }

  function num(value) {
    if (typeof value !== "number") return value === null || value === undefined ? "–" : String(value);
    return Math.abs(value) >= 1e4 ? si(value) : String(Number(value.toPrecision(4)));
  }

  function percent(value) {
    return value === null || value === undefined ? "–" : (100 * value).toFixed(1) + " %";
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds);
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + String(s % 60).padStart(2, "0") + " s";
    return Math.floor(s / 3600) + " h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + " min";
  }

  function kib(bits) {
    return bits === null || bits === undefined ? "–" : (bits / 8192).toFixed(1) + " KiB";
  }

  // ---- charts ----------------------------------------------------------------------------
  function drawChart(el, chart) {
    const traces = chart.traces.map((t) => ({
      name: t.name, x: t.x, y: t.y, type: "scatter", mode: "lines+markers",
    }));
    Plotly.react(el, traces, layout(chart.title, chart.yaxis), PLOT_CONFIG);
  }

  function drawHeatmap(el, heat) {
    const trace = {
      type: "heatmap", x: heat.epochs, y: heat.labels, z: heat.z,
      zmin: 0, zmax: 1, colorscale: "Viridis", colorbar: { title: { text: "p" } },
      hovertemplate: "epoch %{x}<br>%{y}<br>p = %{z:.3f}<extra></extra>",
    };
    const height = Math.max(320, 60 + 16 * heat.labels.length);
    const extra = { height: height, margin: { l: 230, r: 20, t: 40, b: 45 }, legend: {} };
    const title = heat.labels.length
      ? "Controller's choice probabilities"
      : "Controller's choice probabilities (none: this strategy has no controller)";
    Plotly.react(el, [trace], layout(title, "", "epoch", extra), PLOT_CONFIG);
  }

  function pointText(p) {
    return "epoch " + p.epoch + " (" + p.label + ")";
  }

  function drawScatter(el, sc) {
    const pts = sc.points;
    const traces = [
      {
        name: "evaluated", type: "scatter", mode: "markers",
        x: pts.map((p) => p.ops), y: pts.map((p) => p.val_acc), text: pts.map(pointText),
        customdata: pts.map((p) => p.epoch), marker: { size: 8, opacity: 0.75 },
        hovertemplate: "%{text}<br>acc %{y:.3f}<br>OPs %{x:.4s}<extra></extra>",
      },
      {
        name: "Pareto front", type: "scatter", mode: "lines+markers",
        x: sc.front.ops, y: sc.front.val_acc, line: { shape: "hv", color: "#d62728" },
        marker: { size: 6, color: "#d62728" },
      },
    ];
    const base = sc.base || {};
    if (base.points && base.points.length) {
      traces.push({
        name: "base network", type: "scatter", mode: "markers",
        x: base.points.map((p) => p.ops), y: base.points.map((p) => p.val_acc),
        text: base.points.map(pointText), marker: { symbol: "star", size: 15, color: "#000" },
      });
    } else if (base.ops !== null && base.ops !== undefined && pts.length) {
      const accs = pts.map((p) => p.val_acc);
      traces.push({
        name: "base network (its OPs)", type: "scatter", mode: "lines",
        x: [base.ops, base.ops], y: [Math.min(...accs), Math.max(...accs)],
        line: { dash: "dash", color: "#000" }, hoverinfo: "name+x",
      });
    }
    const title = "Every validated architecture: accuracy vs OPs";
    Plotly.react(el, traces, layout(title, "validation accuracy", "OPs"), PLOT_CONFIG);
    if (!el.dataset.clickBound) {
      el.dataset.clickBound = "1";
      el.on("plotly_click", (ev) => {
        const epoch = ev.points[0] && ev.points[0].customdata;
        if (!epoch) return;
        $("arch-epoch").dataset.touched = "1"; // the user's pick: kept while the run goes on
        showArchitecture(el.dataset.path, epoch, true);
      });
    }
  }

  // ---- a run ---------------------------------------------------------------------------
  function setState(state) {
    const badge = $("state");
    badge.textContent = state;
    badge.className = "badge " + state;
  }

  // the run's result (best_architecture.json): the final selection's winner, or the latest
  // epoch's architecture (while a search runs: its result so far)
  function resultLabel(result, state) {
    if (!result) return "–";
    const soFar = LIVE.includes(state) && !result.final ? ", so far" : "";
    return "epoch " + result.epoch + " (" + result.selected_by + soFar + ")";
  }

  function drawSummary(s, result) {
    const items = [
      ["Epoch", s.epoch === undefined ? "–" : s.epoch + (s.epochs ? " / " + s.epochs : "")],
      ["ETA", s.state === "running" ? duration(s.eta_s) : "–"],
      ["Result", resultLabel(result, s.state)],
      ["Val acc (result)", percent(s.val_acc)],
    ];
    if (s.test_acc !== null && s.test_acc !== undefined) items.push(["Test acc (result)", percent(s.test_acc)]);
    items.push(
      ["OPs (result)", si(s.ops)],
      ["Model size (result)", kib(s.model_bits)],
      ["Model", (s.model || "–") + (s.dataset ? " · " + s.dataset : "")],
      ["Started", s.started ? new Date(s.started).toLocaleString() : "–"],
    );
    if (s.error) items.push(["Error", s.error]);
    const dl = $("summary");
    dl.replaceChildren();
    for (const [k, v] of items) {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = k;
      dd.textContent = v;
      dl.append(dt, dd);
    }
  }

  function drawDownloads(list, files) {
    list.replaceChildren();
    for (const f of files) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = "/download/" + urlPath(f.path);
      a.textContent = f.name;
      a.setAttribute("download", f.name);
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = f.kind + " · " + (f.size / 1024).toFixed(1) + " KiB";
      li.append(a, " ", kind);
      list.append(li);
    }
  }

  // epoch "" is the run's result
  async function showArchitecture(path, epoch, select) {
    const select_ = $("arch-epoch");
    if (select) select_.value = String(epoch);
    const url = "/api/architecture/" + urlPath(path) + (epoch ? "?epoch=" + epoch : "");
    const response = await fetch(url, { credentials: "same-origin" });
    const img = $("arch-img");
    const text = $("arch-text");
    if (!response.ok) {
      img.hidden = true;
      text.hidden = false;
      text.textContent = epoch ? "no architecture saved for epoch " + epoch : "no result yet";
      return;
    }
    const type = response.headers.get("content-type") || "";
    if (type.startsWith("image/svg")) {
      const blob = await response.blob();
      if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
      img.dataset.url = URL.createObjectURL(blob);
      img.src = img.dataset.url;
      img.dataset.epoch = String(epoch);
      img.hidden = false;
      text.hidden = true;
    } else {
      text.textContent = await response.text();
      text.hidden = false;
      img.hidden = true;
    }
  }

  // the result first (shown until the user picks an epoch), then every epoch, newest first
  function updateEpochs(path, epochs, result, state) {
    const select = $("arch-epoch");
    const key = JSON.stringify([epochs, state, result && [result.epoch, result.selected_by, result.architecture]]);
    if (select.dataset.key === key) return;
    select.dataset.key = key;
    const picked = select.value;
    select.replaceChildren();
    const options = (result ? [["", "result: " + resultLabel(result, state)]] : []).concat(
      epochs.slice().reverse().map((e) => [String(e), "epoch " + e]));
    for (const [value, label] of options) {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label;
      select.append(option);
    }
    if (select.dataset.touched) select.value = picked;
    else if (result) showArchitecture(path, "", true);
  }

  function drawRun(path, data) {
    const s = data.summary;
    setState(s.state);
    $("stop-form").hidden = s.state !== "running";
    $("resume-form").hidden = LIVE.includes(s.state) || s.kind === undefined;
    const launch = data.launch;
    $("launch").hidden = !launch;
    if (launch) {
      $("launch-details").open = !data.charts;
      $("launch-log").textContent = (launch.log || []).join("\n");
    }
    if (!data.charts) return;
    drawSummary(s, data.result);
    for (const chart of data.charts) drawChart($("chart-" + chart.id), chart);
    drawHeatmap($("heatmap"), data.heatmap);
    $("scatter").dataset.path = path;
    drawScatter($("scatter"), data.scatter);
    updateEpochs(path, data.architecture_epochs, data.result, s.state);
    $("log").textContent = data.log.join("\n");
    drawDownloads($("downloads"), data.downloads);
  }

  async function runPage(main) {
    const path = main.dataset.path;
    const poll = Number(main.dataset.poll) || 2000;
    $("arch-epoch").addEventListener("change", (ev) => {
      ev.target.dataset.touched = ev.target.value ? "1" : ""; // the result: follow it again
      showArchitecture(path, ev.target.value, false);
    });
    let state = "running";
    try {
      const data = await getJSON("/api/run/" + urlPath(path));
      drawRun(path, data);
      state = data.summary.state;
      main.dataset.loaded = String(Date.now());
    } catch (err) {
      console.error(err);
    }
    setTimeout(() => runPage(main), LIVE.includes(state) ? poll : poll * 5);
  }

  // ---- the runs list -------------------------------------------------------------------
  async function runsPage() {
    const body = $("runs-body");
    const checked = new Set([...body.querySelectorAll("input:checked")].map((i) => i.value));
    try {
      const response = await fetch("/runs-table" + window.location.search, { credentials: "same-origin" });
      if (response.ok) {
        body.innerHTML = await response.text();
        for (const input of body.querySelectorAll("input[name=run]")) {
          input.checked = checked.has(input.value);
        }
      }
    } catch (err) {
      console.error(err);
    }
    setTimeout(runsPage, 3000);
  }

  // ---- compare -------------------------------------------------------------------------
  function choicesTable(table, runs, choices) {
    const head = document.createElement("tr");
    for (const label of ["decision point", ...runs.map((r) => r.summary.path)]) {
      const th = document.createElement("th");
      th.textContent = label;
      head.append(th);
    }
    table.tHead.replaceChildren(head);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const row of choices) {
      const tr = document.createElement("tr");
      if (row.differs) tr.className = "differs";
      for (const value of [row.point, ...row.choices]) {
        const td = document.createElement("td");
        td.textContent = value === null ? "–" : value;
        tr.append(td);
      }
      body.append(tr);
    }
  }

  function compareArchitectures(holder, runs) {
    holder.replaceChildren();
    for (const r of runs) {
      const figure = document.createElement("figure");
      const caption = document.createElement("figcaption");
      const s = r.summary;
      caption.textContent = s.path + " · result: " + resultLabel(r.result, s.state) + " · acc " +
        percent(s.val_acc) + " · OPs " + si(s.ops);
      figure.append(caption);
      if (r.result) {
        const img = document.createElement("img");
        img.alt = "the result's architecture of " + s.path;
        img.src = "/api/architecture/" + urlPath(s.path);
        figure.append(img);
      }
      holder.append(figure);
    }
  }

  async function comparePage() {
    const holder = $("compare");
    if (!holder) return;
    const runs = JSON.parse(holder.dataset.runs);
    const query = runs.map((r) => "run=" + encodeURIComponent(r)).join("&");
    const data = await getJSON("/api/compare?" + query);
    const charts = $("compare-charts");
    // every chart's box first, so that each is drawn at its final width
    charts.replaceChildren(...data.charts.map((chart) => {
      const div = document.createElement("div");
      div.className = "chart";
      div.id = chart.id;
      return div;
    }));
    for (const chart of data.charts) drawChart($(chart.id), chart);
    compareArchitectures($("compare-archs"), data.runs);
    choicesTable($("choices"), data.runs, data.choices);
    holder.dataset.loaded = "1";
  }

  // ---- sweeps --------------------------------------------------------------------------
  function cell(tr, value, tag) {
    const td = document.createElement(tag || "td");
    if (value instanceof Node) td.append(value);
    else td.textContent = value === null || value === undefined ? "–" : value;
    tr.append(td);
  }

  function runLink(path, label) {
    const a = document.createElement("a");
    a.href = "/run/" + urlPath(path);
    a.textContent = label;
    return a;
  }

  function studyTable(study) {
    const section = document.createElement("section");
    const title = document.createElement("h3");
    title.textContent = study.name + " (" + study.objectives.map((o, i) => o + ": " + study.directions[i]).join(", ") + ")";
    const table = document.createElement("table");
    table.className = "trials";
    const params = [...new Set(study.trials.flatMap((t) => Object.keys(t.params)))];
    const head = document.createElement("tr");
    for (const h of ["trial", "state", ...study.objectives, ...params, "duration", "folder"]) cell(head, h, "th");
    table.append(head);
    for (const t of study.trials) {
      const tr = document.createElement("tr");
      cell(tr, t.number);
      cell(tr, t.state);
      for (const o of study.objectives) cell(tr, num(t.values[o]));
      for (const p of params) cell(tr, num(t.params[p]));
      cell(tr, duration(t.duration_s));
      cell(tr, t.run ? runLink(t.run, t.run.split("/").pop()) : "–");
      table.append(tr);
    }
    section.append(title, table);
    return section;
  }

  function drawImportances(holder, studies) {
    const charts = studies.flatMap((study) => Object.entries(study.importances));
    const divs = charts.map(() => {
      const div = document.createElement("div");
      div.className = "chart importance";
      return div;
    });
    holder.replaceChildren(...divs); // the boxes first: each chart is drawn at its final width
    charts.forEach(([objective, scores], i) => {
      const names = Object.keys(scores).reverse();
      const trace = { type: "bar", orientation: "h", x: names.map((n) => scores[n]), y: names };
      const extra = { margin: { l: 200, r: 20, t: 40, b: 45 } };
      const title = "Parameter importance for " + objective + " (fANOVA)";
      Plotly.react(divs[i], [trace], layout(title, "", "importance", extra), PLOT_CONFIG);
    });
  }

  function pointsTrace(name, points, marker) {
    return {
      name: name, type: "scatter", mode: "markers", x: points.map((p) => p.ops),
      y: points.map((p) => p.val_acc), text: points.map((p) => p.path), marker: marker,
    };
  }

  // each trial's result; the front is over the finished trials (Optuna's complete ones)
  function drawSweepFronts(data) {
    const acc = data.accuracy_front;
    const finished = acc.points.filter((p) => p.state === "finished");
    const unfinished = acc.points.filter((p) => p.state !== "finished");
    const traces = [pointsTrace("trials", finished, { size: 9 })];
    if (unfinished.length) {
      traces.push(pointsTrace("unfinished trials (result so far)", unfinished, { size: 9, symbol: "circle-open" }));
    }
    traces.push({
      name: "Pareto front", type: "scatter", mode: "lines+markers", x: acc.front.ops,
      y: acc.front.val_acc, text: acc.front.paths, line: { shape: "hv", color: "#d62728" },
    });
    const title = "Trials' results: validation accuracy vs OPs";
    Plotly.react($("sweep-front"), traces, layout(title, "validation accuracy", "OPs"), PLOT_CONFIG);
    const study = data.studies.find((s) => s.objective_front);
    const el = $("sweep-objectives");
    el.hidden = !study;
    if (!study) return;
    const of = study.objective_front;
    const onFront = of.trials.filter((t) => of.front.includes(t.number));
    const objTraces = [
      { name: "trials", type: "scatter", mode: "markers", x: of.trials.map((t) => t.values[0]), y: of.trials.map((t) => t.values[1]) },
      { name: "Pareto front (Optuna)", type: "scatter", mode: "markers", x: onFront.map((t) => t.values[0]), y: onFront.map((t) => t.values[1]), marker: { size: 12, color: "#d62728" } },
    ];
    Plotly.react(el, objTraces, layout("Objectives", of.names[1], of.names[0]), PLOT_CONFIG);
  }

  function trialFolders(body, trials) {
    body.replaceChildren();
    for (const t of trials) {
      const tr = document.createElement("tr");
      cell(tr, runLink(t.path, t.name));
      const badge = document.createElement("span");
      badge.className = "badge " + t.state;
      badge.textContent = t.state;
      cell(tr, badge);
      cell(tr, t.epoch + (t.epochs ? " / " + t.epochs : ""));
      cell(tr, percent(t.val_acc));
      cell(tr, si(t.ops));
      cell(tr, kib(t.model_bits));
      body.append(tr);
    }
  }

  async function sweepPage(main) {
    const path = main.dataset.path;
    let state = "running";
    try {
      const data = await getJSON("/api/sweep/" + urlPath(path));
      state = data.summary.state;
      setState(state);
      $("sweep-finished").textContent = data.summary.epoch + " of " + data.summary.epochs;
      $("sweep-best").textContent = percent(data.summary.val_acc);
      $("sweep-error").hidden = !data.error;
      $("sweep-error").textContent = data.error || "";
      drawSweepFronts(data);
      drawImportances($("importances"), data.studies);
      $("studies").replaceChildren(...data.studies.map(studyTable));
      trialFolders($("trial-folders").tBodies[0], data.trials);
      drawDownloads($("report"), data.report);
      main.dataset.loaded = String(Date.now());
    } catch (err) {
      console.error(err);
    }
    const poll = Number(main.dataset.poll) || 10000;
    setTimeout(() => sweepPage(main), state === "running" ? poll : poll * 3);
  }

  const PAGES = { run: runPage, runs: () => setTimeout(runsPage, 3000), compare: comparePage, sweep: sweepPage };

  document.addEventListener("DOMContentLoaded", () => {
    const main = document.querySelector("main");
    const page = PAGES[main.dataset.page];
    if (page) page(main);
  });
})();
