// The explorer: find streams, chart one or several on one time axis, zoom
// and pan, read the hovered values, export what is shown.

import { Aggregate, ApiError, SenmlRecord, Stream, browserZone, get, query, streams as listStreams } from "../api";
import { Chart, chart, join } from "../chart";
import { announce, download, field, fill, h, input, select, showError, table } from "../dom";
import { t } from "../i18n";
import { MAX_POINTS, STEPS, chooseStep, formatNumber, fromLocalInput, iso, preset, toLocalInput } from "../time";

/** What the chart shows, kept for the table and the exports. */
interface Shown {
  step: string | null;
  xs: number[];
  lines: { name: string; unit: string | null; values: (number | null)[] }[];
}

/** The matching streams of a search: the node filters with `q`; the same
 * filter here keeps the list right on a node that ignores `q`. */
export function matchesQuery(s: Stream, q: string): boolean {
  const needle = q.trim().toLowerCase();
  if (!needle) return true;
  const hay = [s.name, s.owner ?? "", ...Object.values(s.metadata ?? {}).map((v) => (typeof v === "string" ? v : JSON.stringify(v)))];
  return hay.some((x) => x.toLowerCase().includes(needle));
}

export function render(main: HTMLElement, params: URLSearchParams): () => void {
  let [from, to] = preset(params.get("preset") ?? "week");
  if (params.get("from") && params.get("to")) {
    from = Number(params.get("from"));
    to = Number(params.get("to"));
  }
  let resolution = params.get("step") ?? "auto";
  const selected = new Map<string, Stream>();
  let found: Stream[] = [];
  let current: Chart | null = null;
  let shown: Shown | null = null;
  let controller: AbortController | null = null;

  const searchBox = input("q", { type: "search", placeholder: t("explorer.search.placeholder"), autocomplete: "off" });
  const results = h("ul", { class: "results", "aria-label": t("explorer.results") });
  const chosen = h("p", { class: "chosen", "aria-live": "polite" });
  const searchForm = h(
    "form",
    {
      class: "inline",
      role: "search",
      onsubmit: (e: Event) => {
        e.preventDefault();
        void search();
      },
    },
    field(t("explorer.search"), searchBox, t("explorer.search.hint")),
    h("button", { type: "submit" }, t("search")),
  );

  const fromInput = input("from", { type: "datetime-local", value: toLocalInput(from) });
  const toInput = input("to", { type: "datetime-local", value: toLocalInput(to) });
  const stepSelect = select("step", [["auto", t("explorer.step.auto")], ["raw", t("explorer.step.raw")], ...STEPS.map(([s]) => [s, t(`step.${s}`)] as [string, string])], resolution);
  const rangeForm = h(
    "form",
    {
      class: "range",
      onsubmit: (e: Event) => {
        e.preventDefault();
        const f = fromLocalInput(fromInput.value);
        const tt = fromLocalInput(toInput.value);
        if (f === null || tt === null || tt <= f) {
          showError(rangeForm, new ApiError(400, t("explorer.range.invalid"), "to", "", false));
          return;
        }
        setRange(f, tt);
      },
    },
    h(
      "div",
      { class: "presets", role: "group", "aria-label": t("explorer.presets") },
      ["day", "week", "month", "year"].map((p) => h("button", { type: "button", "data-preset": p, onclick: () => setRange(...preset(p)) }, t(`preset.${p}`))),
    ),
    field(t("from"), fromInput),
    field(t("to"), toInput),
    h("button", { type: "submit" }, t("explorer.apply")),
    field(t("explorer.step"), stepSelect),
  );
  stepSelect.addEventListener("change", () => {
    resolution = stepSelect.value;
    void draw();
  });

  const move = (factor: number, zoom: number) => () => {
    const span = to - from;
    const mid = from + span / 2 + factor * span;
    setRange(Math.round(mid - (span * zoom) / 2), Math.round(mid + (span * zoom) / 2));
  };
  const navButtons = h(
    "div",
    { class: "toolbar", role: "group", "aria-label": t("explorer.navigate") },
    h("button", { type: "button", onclick: move(-0.5, 1) }, "← ", t("explorer.earlier")),
    h("button", { type: "button", onclick: move(0, 0.5) }, t("explorer.zoomin")),
    h("button", { type: "button", onclick: move(0, 2) }, t("explorer.zoomout")),
    h("button", { type: "button", onclick: move(0.5, 1) }, t("explorer.later"), " →"),
  );
  const info = h("p", { class: "info", id: "chart-info", "aria-live": "polite" });
  const plotBox = h("div", { class: "plot", id: "explorer-chart" });
  const tableToggle = input("table", { type: "checkbox", id: "show-table" });
  const tableBox = h("div", { class: "table-box" });
  tableToggle.addEventListener("change", () => renderTable());
  const exports = h(
    "div",
    { class: "toolbar", role: "group", "aria-label": t("explorer.export") },
    h("button", { type: "button", onclick: () => exportCsv() }, t("explorer.export.csv")),
    h("button", { type: "button", onclick: () => exportSenml() }, t("explorer.export.senml")),
    h("label", { class: "check" }, tableToggle, " ", t("explorer.table")),
  );

  main.append(
    h("h1", {}, t("nav.explorer")),
    h("section", { "aria-label": t("explorer.streams") }, searchForm, results, chosen),
    h("section", { "aria-label": t("explorer.chart") }, rangeForm, navButtons, info, plotBox, exports, tableBox),
  );

  function remember(): void {
    const p = new URLSearchParams();
    selected.forEach((_, n) => p.append("s", n));
    p.set("from", String(from));
    p.set("to", String(to));
    if (resolution !== "auto") p.set("step", resolution);
    if (location.hash.startsWith("#/explorer")) history.replaceState(null, "", `#/explorer?${p}`);
  }

  function setRange(f: number, tt: number): void {
    from = f;
    to = tt;
    fromInput.value = toLocalInput(from);
    toInput.value = toLocalInput(to);
    void draw();
  }

  function renderResults(): void {
    chosen.textContent = selected.size ? `${t("explorer.selected")}: ${[...selected.keys()].join(", ")}` : t("explorer.none");
    results.replaceChildren(
      ...found.map((s) => {
        const box = input("stream", { type: "checkbox", value: s.name, checked: selected.has(s.name), id: `stream-${s.name}` });
        box.addEventListener("change", () => {
          if (box.checked) selected.set(s.name, s);
          else selected.delete(s.name);
          renderResults();
          void draw();
        });
        const meta = [s.unit, s.owner && `${t("owner")}: ${s.owner}`, `${formatNumber(s.count, 0)} ${t("records")}`, s.open ? t("open") : null].filter(Boolean).join(" · ");
        return h("li", {}, h("label", { for: box.id }, box, " ", h("span", { class: "name" }, s.name), h("span", { class: "meta" }, meta)));
      }),
    );
    if (!found.length) results.append(h("li", {}, t("explorer.nothing")));
  }

  async function search(): Promise<void> {
    try {
      const q = searchBox.value;
      found = (await listStreams(q || undefined)).filter((s) => matchesQuery(s, q)).slice(0, 200);
      renderResults();
      announce(`${found.length} ${t("explorer.found")}`);
    } catch (e) {
      showError(searchForm, e);
    }
  }

  async function fetchShown(list: Stream[], signal: AbortSignal): Promise<Shown> {
    const names = list.map((s) => s.name);
    const step = resolution === "auto" ? chooseStep(list, from, to) : resolution === "raw" ? null : resolution;
    if (step === null) {
      const limit = resolution === "raw" ? 2 * MAX_POINTS : MAX_POINTS;
      const records = await get<SenmlRecord[]>(`/api/v1/records${query({ stream: names, from, to, limit })}`, signal);
      const by = new Map<string, { t: number[]; v: (number | null)[] }>(names.map((n) => [n, { t: [], v: [] }]));
      for (const r of records) {
        const s = by.get(r.n);
        const v = r.v ?? (r.vb === undefined ? null : Number(r.vb));
        if (!s || v === null) continue;
        s.t.push(r.t);
        s.v.push(v);
      }
      const [xs, values] = join(names.map((n) => by.get(n)!));
      return { step: null, xs, lines: list.map((s, i) => ({ name: s.name, unit: s.unit, values: values[i] })) };
    }
    const a = await get<Aggregate>(`/api/v1/aggregate${query({ stream: names, from, to, every: step, fn: "mean", tz: browserZone() })}`, signal);
    return {
      step,
      xs: a.buckets.map((b) => Date.parse(b.start) / 1000),
      lines: a.streams.map((s) => ({ name: s.name, unit: s.unit, values: s.values.mean })),
    };
  }

  async function draw(): Promise<void> {
    remember();
    controller?.abort();
    controller = new AbortController();
    const list = [...selected.values()];
    current?.destroy();
    current = null;
    plotBox.replaceChildren();
    shown = null;
    renderTable();
    if (!list.length) {
      info.textContent = t("explorer.pick");
      return;
    }
    info.textContent = t("loading");
    try {
      shown = await fetchShown(list, controller.signal);
    } catch (e) {
      if ((e as Error).name === "AbortError") return;
      info.textContent = "";
      showError(rangeForm, e);
      return;
    }
    const points = shown.xs.length * shown.lines.length;
    const what = shown.step ? `${t("explorer.means")} ${t(`step.${shown.step}`)}` : t("explorer.raw");
    info.textContent = `${what} · ${formatNumber(shown.xs.length, 0)} ${t("explorer.times")} · ${iso(from)} → ${iso(to)}`;
    info.dataset.step = shown.step ?? "raw";
    info.dataset.points = String(points);
    if (!shown.xs.length) {
      plotBox.replaceChildren(h("p", {}, t("explorer.empty")));
      return;
    }
    current = chart(plotBox, shown.xs, shown.lines.map((l) => ({ label: l.name, unit: l.unit, values: l.values })), {
      title: t("nav.explorer"),
      onZoom: (f, tt) => setRange(Math.floor(f), Math.ceil(tt)),
    });
    renderTable();
  }

  function renderTable(): void {
    if (!tableToggle.checked || !shown) {
      tableBox.replaceChildren();
      return;
    }
    const s = shown;
    const rows = s.xs.slice(0, 2000).map((x, i) => [iso(x), ...s.lines.map((l) => formatNumber(l.values[i], 3))]);
    fill(tableBox, 
      table(
        s.step ? `${t("explorer.means")} ${t(`step.${s.step}`)}` : t("explorer.raw"),
        [t("time"), ...s.lines.map((l) => (l.unit ? `${l.name} (${l.unit})` : l.name))],
        rows,
        "values",
      ),
      s.xs.length > 2000 ? h("p", {}, t("explorer.table.cut")) : null,
    );
  }

  function exportCsv(): void {
    if (!shown) return;
    const s = shown;
    const head = ["time", ...s.lines.map((l) => (l.unit ? `${l.name} (${l.unit})` : l.name))].map((c) => `"${c.replace(/"/g, '""')}"`);
    const lines = s.xs.map((x, i) => [iso(x), ...s.lines.map((l) => l.values[i] ?? "")].join(","));
    download(`fedwatt-${from}-${to}.csv`, "text/csv", [head.join(","), ...lines].join("\n") + "\n");
  }

  function exportSenml(): void {
    if (!shown) return;
    const s = shown;
    const pack: SenmlRecord[] = [];
    s.lines.forEach((l) =>
      s.xs.forEach((x, i) => {
        const v = l.values[i];
        if (v !== null && v !== undefined) pack.push({ n: l.name, ...(l.unit ? { u: l.unit } : {}), t: x, v });
      }),
    );
    download(`fedwatt-${from}-${to}.senml.json`, "application/senml+json", JSON.stringify(pack));
  }

  // Streams named in the address are selected from the start.
  const wanted = params.getAll("s");
  void (async () => {
    try {
      const all = await listStreams();
      found = all.slice(0, 200);
      for (const n of wanted) {
        const s = all.find((x) => x.name === n);
        if (s) selected.set(n, s);
      }
      renderResults();
      if (selected.size) void draw();
      else info.textContent = t("explorer.pick");
    } catch (e) {
      showError(searchForm, e);
    }
  })();

  return () => {
    controller?.abort();
    current?.destroy();
  };
}
