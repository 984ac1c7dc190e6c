// Self-consumption of a site or a group: rates and energies over a day, a
// month or a year, with their definitions, and the collective split key.

import { browserZone, get, query } from "../api";
import { Chart, chart } from "../chart";
import { field, fill, h, input, section, select, showError, table } from "../dom";
import { t } from "../i18n";
import { formatNumber, formatPercent, fromLocalInput, startOfDay } from "../time";
import { picker } from "../picker";

interface Totals {
  production: number;
  consumption: number;
  direct: number;
  export: number;
  import: number;
  self_consumption: number | null;
  self_sufficiency: number | null;
}

interface Answer {
  unit: string;
  totals: Totals;
  intervals: { start: string; production: number; consumption: number; direct: number; export: number; import: number }[];
  consumers: { stream: string; consumption: number; allocated: number; self_sufficiency: number | null }[];
}

/** The range and step of a period starting at `date` (YYYY-MM-DD). */
export function period(kind: string, date: string): { from: number; to: number; step: string } | null {
  const start = fromLocalInput(`${date}T00:00`);
  if (start === null) return null;
  const d = new Date(start * 1000);
  if (kind === "year") {
    const from = new Date(d.getFullYear(), 0, 1).getTime() / 1000;
    return { from, to: new Date(d.getFullYear() + 1, 0, 1).getTime() / 1000, step: "month" };
  }
  if (kind === "month") {
    const from = new Date(d.getFullYear(), d.getMonth(), 1).getTime() / 1000;
    return { from, to: new Date(d.getFullYear(), d.getMonth() + 1, 1).getTime() / 1000, step: "day" };
  }
  return { from: start, to: startOfDay(start + 86_400 + 3 * 3600), step: "30m" };
}

export function render(main: HTMLElement, params: URLSearchParams): () => void {
  let plot: Chart | null = null;
  const production = picker(t("self.production"), () => void load(), params.getAll("production"), true);
  const consumption = picker(t("self.consumption"), () => {
    renderShares();
    void load();
  }, params.getAll("consumption"));
  const kind = select("period", [["day", t("self.day")], ["month", t("self.month")], ["year", t("self.year")]], params.get("period") ?? "month");
  const date = input("date", { type: "date", value: params.get("date") ?? new Date(Date.now() - 86_400_000).toISOString().slice(0, 10) });
  const key = select("key", [["proportional", t("self.key.proportional")], ["equal", t("self.key.equal")], ["static", t("self.key.static")]], params.get("key") ?? "proportional");
  const sharesBox = h("div", { class: "numbers" });
  const shares = new Map<string, HTMLInputElement>();
  const form = h(
    "form",
    { class: "range", onsubmit: (e: Event) => (e.preventDefault(), void load()) },
    field(t("self.period"), kind),
    field(t("self.date"), date, t("self.date.hint")),
    field(t("self.key"), key, t("self.key.hint")),
    sharesBox,
    h("button", { type: "submit" }, t("explorer.apply")),
  );
  const out = h("div", { id: "self", "aria-live": "polite" });
  main.append(
    h("h1", {}, t("nav.selfconsumption")),
    h("div", { class: "cols" }, production.element, consumption.element),
    form,
    section(t("self.definitions"), h("dl", { class: "definitions" }, ["direct", "export", "import", "rate", "sufficiency", "key"].flatMap((k) => [h("dt", {}, t(`self.def.${k}.term`)), h("dd", {}, t(`self.def.${k}`))]))),
    out,
  );
  [kind, date, key].forEach((c) =>
    c.addEventListener("change", () => {
      renderShares();
      void load();
    }),
  );

  function renderShares(): void {
    if (key.value !== "static") {
      sharesBox.replaceChildren();
      return;
    }
    sharesBox.replaceChildren(
      ...[...consumption.selected.keys()].map((n) => {
        if (!shares.has(n)) shares.set(n, input(`share-${n}`, { type: "number", min: "0", max: "1", step: "any", inputmode: "decimal" }));
        return field(`${t("self.share")} ${n}`, shares.get(n)!);
      }),
    );
  }

  async function load(): Promise<void> {
    plot?.destroy();
    plot = null;
    const prod = [...production.selected.keys()][0];
    const cons = [...consumption.selected.keys()];
    if (!prod || !cons.length) {
      out.replaceChildren(h("p", {}, t("self.pick")));
      return;
    }
    const p = period(kind.value, date.value);
    if (!p) return;
    const state = new URLSearchParams({ production: prod, period: kind.value, date: date.value, key: key.value });
    cons.forEach((c) => state.append("consumption", c));
    if (location.hash.startsWith("#/selfconsumption")) history.replaceState(null, "", `#/selfconsumption?${state}`);
    const staticShares = key.value === "static" ? cons.map((c) => `${c}:${shares.get(c)?.value || 0}`).join(",") : undefined;
    let a: Answer;
    try {
      a = await get<Answer>(`/api/v1/selfconsumption${query({ production: prod, consumption: cons, from: p.from, to: p.to, tz: browserZone(), step: p.step, key: key.value, shares: staticShares })}`);
    } catch (e) {
      out.replaceChildren();
      showError(form, e);
      return;
    }
    const u = a.unit;
    const tt = a.totals;
    const plotBox = h("div", { class: "plot", id: "self-chart" });
    fill(out, 
      h(
        "dl",
        { class: "facts", id: "totals" },
        ...(
          [
            ["production", `${formatNumber(tt.production, 2)} ${u}`],
            ["consumption", `${formatNumber(tt.consumption, 2)} ${u}`],
            ["direct", `${formatNumber(tt.direct, 2)} ${u}`],
            ["export", `${formatNumber(tt.export, 2)} ${u}`],
            ["import", `${formatNumber(tt.import, 2)} ${u}`],
            ["self_consumption", formatPercent(tt.self_consumption)],
            ["self_sufficiency", formatPercent(tt.self_sufficiency)],
          ] as [string, string][]
        ).flatMap(([k, v]) => [h("dt", {}, t(`self.total.${k}`)), h("dd", { "data-k": k }, v)]),
      ),
      plotBox,
      a.consumers.length > 1 || key.value !== "proportional"
        ? table(
            t("self.consumers"),
            [t("audit.stream"), `${t("self.total.consumption")} (${u})`, `${t("self.allocated")} (${u})`, t("self.total.self_sufficiency")],
            a.consumers.map((c) => [c.stream, formatNumber(c.consumption, 2), formatNumber(c.allocated, 2), formatPercent(c.self_sufficiency)]),
            "values",
          )
        : null,
    );
    const xs = a.intervals.map((i) => Date.parse(i.start) / 1000);
    plot = chart(
      plotBox,
      xs,
      [
        { label: t("self.total.production"), unit: u, values: a.intervals.map((i) => i.production) },
        { label: t("self.total.consumption"), unit: u, values: a.intervals.map((i) => i.consumption) },
        { label: t("self.total.direct"), unit: u, values: a.intervals.map((i) => i.direct), fill: true },
      ],
      { title: t("nav.selfconsumption") },
    );
  }

  void Promise.all([production.ready, consumption.ready]).then(() => {
    renderShares();
    void load();
  });
  return () => plot?.destroy();
}
