// Compare buildings: load curves of a day or a week on one axis, typical
// days and weeks (/profile), per m² or per occupant with numbers the user
// enters; a full-screen workshop mode.

import { Aggregate, Profile, browserZone, get, query } from "../api";
import { Chart, chart } from "../chart";
import { field, h, input, select, showError, table } from "../dom";
import { t, weekday } from "../i18n";
import { DAY, formatNumber, fromLocalInput, iso, startOfDay } from "../time";
import { picker } from "../picker";

const hh = (h_: number) => `${String(h_).padStart(2, "0")}:00`;

export function render(main: HTMLElement, params: URLSearchParams): () => void {
  let current: Chart | null = null;
  const today = startOfDay(Date.now() / 1000);
  const dateOf = (s: number) => new Date(s * 1000).toISOString().slice(0, 10);
  const view = select(
    "view",
    [
      ["day", t("compare.view.day")],
      ["week", t("compare.view.week")],
      ["hour-of-day", t("compare.view.typicalday")],
      ["hour-of-week", t("compare.view.typicalweek")],
      ["day-of-week", t("compare.view.weekdays")],
    ],
    params.get("view") ?? "hour-of-day",
  );
  const date = input("date", { type: "date", value: params.get("date") ?? dateOf(today - DAY) });
  const from = input("from", { type: "date", value: params.get("from") ?? dateOf(today - 30 * DAY) });
  const to = input("to", { type: "date", value: params.get("to") ?? dateOf(today) });
  const norm = select("normalise", [["none", t("compare.norm.none")], ["area", t("compare.norm.area")], ["occupants", t("compare.norm.occupants")]], params.get("norm") ?? "none");
  const numbers = h("div", { class: "numbers" });
  const area = new Map<string, HTMLInputElement>();
  const occupants = new Map<string, HTMLInputElement>();
  const pick = picker(t("compare.pick"), () => {
    renderNumbers();
    void draw();
  }, params.getAll("s"));
  const plotBox = h("div", { class: "plot", id: "compare-chart" });
  const tableBox = h("div", { class: "table-box" });
  const info = h("p", { class: "info", "aria-live": "polite" });
  const controls = h(
    "form",
    { class: "range", onsubmit: (e: Event) => (e.preventDefault(), void draw()) },
    field(t("compare.view"), view),
    field(t("compare.date"), date, t("compare.date.hint")),
    field(t("compare.from"), from),
    field(t("compare.to"), to),
    field(t("compare.norm"), norm),
    h("button", { type: "submit" }, t("explorer.apply")),
  );
  const workshop = h("button", { type: "button", "aria-pressed": "false", onclick: () => toggleWorkshop() }, t("compare.workshop"));
  const stage = h("section", { class: "stage", "aria-label": t("compare.chart") }, h("div", { class: "toolbar" }, workshop), info, plotBox, tableBox);
  main.append(h("h1", {}, t("nav.compare")), h("div", { class: "cols" }, h("div", {}, pick.element, numbers), h("div", {}, controls)), stage);
  const showDates = () => {
    const profile = view.value.includes("-of-");
    date.closest(".field")!.toggleAttribute("hidden", profile);
    from.closest(".field")!.toggleAttribute("hidden", !profile);
    to.closest(".field")!.toggleAttribute("hidden", !profile);
  };
  [view, norm, date, from, to].forEach((c) =>
    c.addEventListener("change", () => {
      showDates();
      void draw();
    }),
  );
  showDates();

  function renderNumbers(): void {
    const rows = [...pick.selected.keys()].map((n) => {
      if (!area.has(n)) area.set(n, input(`area-${n}`, { type: "number", min: "0", step: "any", inputmode: "decimal" }));
      if (!occupants.has(n)) occupants.set(n, input(`occupants-${n}`, { type: "number", min: "0", step: "1", inputmode: "numeric" }));
      area.get(n)!.onchange = () => void draw();
      occupants.get(n)!.onchange = () => void draw();
      return h("fieldset", { class: "inline" }, h("legend", {}, n), field(t("compare.area"), area.get(n)!), field(t("compare.occupants"), occupants.get(n)!));
    });
    numbers.replaceChildren(...rows);
  }

  /** The divisor of a stream's values, or null when the user gave none. */
  function divisor(name: string): number | null {
    if (norm.value === "none") return 1;
    const v = Number((norm.value === "area" ? area : occupants).get(name)?.value);
    return v > 0 ? v : null;
  }

  function remember(): void {
    const p = new URLSearchParams();
    pick.selected.forEach((_, n) => p.append("s", n));
    p.set("view", view.value);
    p.set("date", date.value);
    p.set("from", from.value);
    p.set("to", to.value);
    if (norm.value !== "none") p.set("norm", norm.value);
    if (location.hash.startsWith("#/compare")) history.replaceState(null, "", `#/compare?${p}`);
  }

  async function draw(): Promise<void> {
    remember();
    current?.destroy();
    current = null;
    plotBox.replaceChildren();
    tableBox.replaceChildren();
    const names = [...pick.selected.keys()];
    if (!names.length) {
      info.textContent = t("explorer.pick");
      return;
    }
    const missing = names.filter((n) => divisor(n) === null);
    if (missing.length) {
      info.textContent = `${t("compare.need")} ${missing.join(", ")}`;
      return;
    }
    const tz = browserZone();
    const suffix = norm.value === "area" ? t("compare.perm2") : norm.value === "occupants" ? t("compare.perocc") : "";
    let xs: number[];
    let labels: ((v: number) => string) | undefined;
    let series: { name: string; unit: string | null; values: (number | null)[] }[];
    try {
      if (view.value.includes("-of-")) {
        const f = fromLocalInput(`${from.value}T00:00`);
        const tt = fromLocalInput(`${to.value}T00:00`);
        if (f === null || tt === null || tt <= f) throw new Error(t("explorer.range.invalid"));
        const p = await get<Profile>(`/api/v1/profile${query({ stream: names, from: f, to: tt + DAY, by: view.value, fn: "mean", tz })}`);
        xs = Array.from({ length: p.slots }, (_, i) => i);
        labels =
          view.value === "hour-of-day" ? hh : view.value === "day-of-week" ? (v) => weekday(v) : (v) => `${weekday(Math.floor(v / 24))} ${hh(v % 24)}`;
        series = p.streams.map((s) => ({ name: s.name, unit: s.unit, values: s.values.mean }));
        info.textContent = `${t("compare.profile")} ${from.value} → ${to.value}`;
      } else {
        const start = fromLocalInput(`${date.value}T00:00`);
        if (start === null) throw new Error(t("explorer.range.invalid"));
        const days = view.value === "week" ? 7 : 1;
        const end = startOfDay(start + days * DAY + 3 * 3600);
        const a = await get<Aggregate>(`/api/v1/aggregate${query({ stream: names, from: start, to: end, every: days === 1 ? "PT30M" : "PT1H", fn: "mean", tz })}`);
        xs = a.buckets.map((b) => Date.parse(b.start) / 1000);
        series = a.streams.map((s) => ({ name: s.name, unit: s.unit, values: s.values.mean }));
        info.textContent = `${t("compare.curve")} ${iso(start)} → ${iso(end)}`;
      }
    } catch (e) {
      info.textContent = "";
      showError(controls, e);
      return;
    }
    const lines = series.map((s) => {
      const d = divisor(s.name) ?? 1;
      return { label: s.name, unit: s.unit ? `${s.unit}${suffix}` : suffix || null, values: s.values.map((v) => (v === null ? null : v / d)) };
    });
    current = chart(plotBox, xs, lines, { title: t("nav.compare"), xLabels: labels });
    const fmtX = labels ?? ((v: number) => iso(v));
    tableBox.replaceChildren(
      table(info.textContent ?? "", [t("time"), ...lines.map((l) => (l.unit ? `${l.label} (${l.unit})` : l.label))], xs.map((x, i) => [fmtX(x), ...lines.map((l) => formatNumber(l.values[i], 3))]), "values"),
    );
  }

  function toggleWorkshop(): void {
    const on = !document.body.classList.contains("workshop");
    document.body.classList.toggle("workshop", on);
    workshop.setAttribute("aria-pressed", String(on));
    if (on && stage.requestFullscreen) stage.requestFullscreen().catch(() => {});
    else if (!on && document.fullscreenElement) void document.exitFullscreen();
    setTimeout(() => void draw(), 50);
  }
  const onFullscreen = () => {
    if (!document.fullscreenElement && document.body.classList.contains("workshop")) toggleWorkshop();
  };
  document.addEventListener("fullscreenchange", onFullscreen);

  void pick.ready.then(() => {
    renderNumbers();
    void draw();
  });
  return () => {
    current?.destroy();
    document.body.classList.remove("workshop");
    document.removeEventListener("fullscreenchange", onFullscreen);
  };
}
