// My investment: a project's summary for the signed-in investor — shares
// and fraction, amount, equivalent panel area, the share of production by
// day, month or year with the account's own consumption on the same chart,
// the part of it covered, and the year's summary.

import { browserZone, current, get, query } from "../api";
import { Chart, chart } from "../chart";
import { field, fill, h, input, section, select, showError, table } from "../dom";
import { locale, monthName, t } from "../i18n";
import { formatNumber, formatPercent } from "../time";

export interface Project {
  id: string;
  title: string;
  total_shares: number;
  share_price: number;
  currency: string;
  panel_area_m2: number;
  production_stream: string;
  maintenance_budget: number | null;
  commissioned: string | null;
  description: string | null;
}

interface Energy {
  start: string;
  kwh: number | null;
}

interface Summary {
  project: Project;
  account: string;
  shares: number;
  fraction: number;
  invested: number;
  panel_area_m2: number;
  year: number;
  tz: string;
  unit: string;
  production: { year: number; months: Energy[]; days: Energy[] };
  consumption: { stream: string; year: number; months: Energy[]; days: Energy[] } | null;
  covered: { year: number | null; months: (number | null)[] } | null;
}

export function render(main: HTMLElement, params: URLSearchParams): () => void {
  let current_: Chart | null = null;
  const s = current();
  const projectSelect = select("project", []);
  const year = input("year", { type: "number", min: "2000", max: "2100", step: "1", value: params.get("year") ?? String(new Date().getFullYear()) });
  const account = input("account", { autocomplete: "off", value: params.get("account") ?? "" });
  const by = select("by", [["months", t("invest.by.month")], ["days", t("invest.by.day")]], params.get("by") ?? "months");
  const form = h(
    "form",
    { class: "range", onsubmit: (e: Event) => (e.preventDefault(), void load()) },
    field(t("invest.project"), projectSelect),
    field(t("invest.year"), year),
    s && s.role !== "member" ? field(t("invest.account"), account, t("invest.account.hint")) : null,
    field(t("invest.by"), by),
    h("button", { type: "submit" }, t("explorer.apply")),
  );
  const out = h("div", { id: "summary", "aria-live": "polite" });
  main.append(h("h1", {}, t("nav.investment")), form, out);
  [projectSelect, by].forEach((c) => c.addEventListener("change", () => void load()));

  async function load(): Promise<void> {
    current_?.destroy();
    current_ = null;
    if (!projectSelect.value) return;
    const p = new URLSearchParams({ project: projectSelect.value, year: year.value, by: by.value });
    if (account.value) p.set("account", account.value);
    if (location.hash.startsWith("#/investment")) history.replaceState(null, "", `#/investment?${p}`);
    let sum: Summary;
    try {
      sum = await get<Summary>(
        `/api/v1/projects/${encodeURIComponent(projectSelect.value)}/summary${query({ account: account.value || undefined, year: year.value, tz: browserZone() })}`,
      );
    } catch (e) {
      out.replaceChildren();
      showError(form, e);
      return;
    }
    const money = (v: number) => v.toLocaleString(locale(), { style: "currency", currency: sum.project.currency || "EUR" });
    const facts = h(
      "dl",
      { class: "facts", id: "facts" },
      h("dt", {}, t("invest.shares")),
      h("dd", { "data-k": "shares" }, `${sum.shares} / ${sum.project.total_shares}`),
      h("dt", {}, t("invest.fraction")),
      h("dd", { "data-k": "fraction" }, formatPercent(sum.fraction)),
      h("dt", {}, t("invest.invested")),
      h("dd", { "data-k": "invested" }, money(sum.invested)),
      h("dt", {}, t("invest.area")),
      h("dd", { "data-k": "area" }, `${formatNumber(sum.panel_area_m2, 2)} m²`),
      h("dt", {}, t("invest.production.year")),
      h("dd", { "data-k": "production" }, `${formatNumber(sum.production.year, 1)} ${sum.unit}`),
      sum.consumption ? h("dt", {}, t("invest.consumption.year")) : null,
      sum.consumption ? h("dd", { "data-k": "consumption" }, `${formatNumber(sum.consumption.year, 1)} ${sum.unit}`) : null,
      sum.covered ? h("dt", {}, t("invest.covered.year")) : null,
      sum.covered ? h("dd", { "data-k": "covered" }, formatPercent(sum.covered.year)) : null,
    );
    const key = by.value as "months" | "days";
    const prod = sum.production[key];
    const xs = prod.map((e) => Date.parse(e.start) / 1000);
    const cons = sum.consumption ? sum.consumption[key] : null;
    const plotBox = h("div", { class: "plot", id: "invest-chart" });
    fill(out, 
      h("h2", {}, sum.project.title),
      sum.project.description ? h("p", {}, sum.project.description) : null,
      facts,
      h("p", { class: "hint" }, t("invest.definitions")),
      plotBox,
      section(
        t("invest.yearly"),
        table(
          `${t("invest.yearly")} ${sum.year}`,
          [t("invest.month"), `${t("invest.production")} (${sum.unit})`, `${t("invest.consumption")} (${sum.unit})`, t("invest.covered")],
          sum.production.months.map((m, i) => [
            monthName(new Date(Date.parse(m.start) + 86_400_000).getMonth()),
            formatNumber(m.kwh, 1),
            formatNumber(sum.consumption?.months[i]?.kwh, 1),
            formatPercent(sum.covered?.months[i]),
          ]),
          "values",
        ),
      ),
    );
    current_ = chart(
      plotBox,
      xs,
      [
        { label: t("invest.production"), unit: sum.unit, values: prod.map((e) => e.kwh), bars: true },
        ...(cons ? [{ label: t("invest.consumption"), unit: sum.unit, values: cons.map((e) => e.kwh) }] : []),
      ],
      { title: `${t("invest.production")} · ${sum.year}`, decimals: 2 },
    );
  }

  void get<Project[]>("/api/v1/projects")
    .then((list) => {
      projectSelect.replaceChildren(...list.map((p) => h("option", { value: p.id, selected: p.id === params.get("project") }, p.title)));
      if (!list.length) out.replaceChildren(h("p", {}, t("invest.none")));
      else void load();
    })
    .catch((e) => showError(form, e));
  return () => current_?.destroy();
}
