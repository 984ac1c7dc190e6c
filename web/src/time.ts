// Time ranges and the choice between raw records and aggregates.

import type { Stream } from "./api";
import { locale } from "./i18n";

/** Most points a chart fetches, over all its streams. */
export const MAX_POINTS = 50_000;

export const DAY = 86_400;

/** The aggregate steps, finest first, with their (nominal) seconds. */
export const STEPS: [string, number][] = [
  ["PT15M", 900],
  ["PT30M", 1800],
  ["PT1H", 3600],
  ["PT3H", 10_800],
  ["P1D", DAY],
  ["P1W", 7 * DAY],
  ["P1M", 30.44 * DAY],
  ["P1Y", 365.25 * DAY],
];

/** Records a stream has per second, from its count, first and last. */
function rate(s: Stream): number {
  if (!s.first || !s.last || s.count < 2) return 0;
  const span = (Date.parse(s.last) - Date.parse(s.first)) / 1000;
  return span > 0 ? (s.count - 1) / span : s.count;
}

/** How many raw records [from, to) holds, at most, over `streams`. */
export function rawEstimate(streams: Stream[], from: number, to: number): number {
  return streams.reduce((n, s) => {
    if (!s.first || !s.last) return n;
    const lo = Math.max(from, Date.parse(s.first) / 1000);
    const hi = Math.min(to, Date.parse(s.last) / 1000 + 1);
    return n + (hi > lo ? Math.ceil((hi - lo) * rate(s)) + 1 : 0);
  }, 0);
}

/** `null` for raw records when they fit in MAX_POINTS; else the finest
 * aggregate step whose buckets fit. */
export function chooseStep(streams: Stream[], from: number, to: number): string | null {
  if (rawEstimate(streams, from, to) <= MAX_POINTS) return null;
  const n = Math.max(1, streams.length);
  for (const [step, seconds] of STEPS) if (Math.ceil((to - from) / seconds) * n <= MAX_POINTS) return step;
  return "P1Y";
}

export function stepSeconds(step: string): number {
  return STEPS.find(([s]) => s === step)?.[1] ?? 3600;
}

/** `datetime-local` value of an epoch second, in the browser's zone. */
export function toLocalInput(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function fromLocalInput(value: string): number | null {
  const ms = new Date(value).getTime();
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

/** RFC 3339 with the browser's offset, for display and CSV. */
export function iso(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number) => String(n).padStart(2, "0");
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? "+" : "-";
  return `${toLocalInput(seconds)}:${p(d.getSeconds())}${sign}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
}

export function startOfDay(seconds: number): number {
  const d = new Date(seconds * 1000);
  d.setHours(0, 0, 0, 0);
  return d.getTime() / 1000;
}

/** The presets: the last day, week, month or year up to the next hour. */
export function preset(name: string, now = Date.now() / 1000): [number, number] {
  const to = Math.ceil(now / 3600) * 3600;
  const span = { day: DAY, week: 7 * DAY, month: 30 * DAY, year: 365 * DAY }[name] ?? 7 * DAY;
  return [to - span, to];
}

export function formatNumber(v: number | null | undefined, decimals = 2): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return v.toLocaleString(locale(), { maximumFractionDigits: decimals });
}

export function formatPercent(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  return v.toLocaleString(locale(), { style: "percent", maximumFractionDigits: 1 });
}
