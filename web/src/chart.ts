// Charts with uPlot: one time axis, one y axis per unit, drag to zoom,
// values of the hovered time in the legend.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { locale } from "./i18n";

/** Colours with at least 4.5:1 contrast on white. */
export const COLOURS = ["#1f5fa8", "#b3261e", "#1b6e3a", "#7a3fa0", "#8a5300", "#00707a", "#a3195b", "#4a4a4a"];

export interface Line {
  label: string;
  unit: string | null;
  values: (number | null)[];
  /** Draw as bars (energies per interval) rather than a line. */
  bars?: boolean;
  /** Fill under the line. */
  fill?: boolean;
}

export interface ChartOptions {
  title: string;
  height?: number;
  /** Called with the range a drag selected, in epoch seconds. */
  onZoom?: (from: number, to: number) => void;
  /** x values are not times but slot numbers (profiles). */
  xLabels?: (v: number) => string;
  decimals?: number;
}

export interface Chart {
  plot: uPlot;
  destroy(): void;
  /** Milliseconds the last setData and draw took. */
  drawMs: number;
}

const fmt = (decimals: number) => (_u: uPlot, v: number | null) =>
  v === null || v === undefined ? "–" : v.toLocaleString(locale(), { maximumFractionDigits: decimals });

export function chart(container: HTMLElement, xs: number[], lines: Line[], options: ChartOptions): Chart {
  const units = [...new Set(lines.map((l) => l.unit ?? ""))];
  const decimals = options.decimals ?? 2;
  const width = Math.max(280, container.clientWidth || 600);
  const bars = uPlot.paths.bars?.({ size: [0.8, 40] });
  const opts: uPlot.Options = {
    title: options.title,
    width,
    height: options.height ?? Math.min(420, Math.max(220, Math.round(width * 0.45))),
    scales: {
      x: {
        time: !options.xLabels,
        // Bars are centred on their time: half a bar of room at each end.
        range: lines.some((l) => l.bars)
          ? (_u, min, max) => {
              const half = xs.length > 1 ? (max - min) / (xs.length - 1) / 2 : 1800;
              return [min - half, max + half];
            }
          : undefined,
      },
    },
    cursor: { drag: { x: Boolean(options.onZoom), y: false }, focus: { prox: 24 } },
    legend: { live: true },
    series: [
      options.xLabels ? { label: "", value: (_u, v) => (v === null ? "–" : options.xLabels!(v)) } : { label: "" },
      ...lines.map((l, i) => ({
        label: l.unit ? `${l.label} (${l.unit})` : l.label,
        scale: l.unit ?? "",
        stroke: COLOURS[i % COLOURS.length],
        width: 1.5,
        fill: l.bars || l.fill ? `${COLOURS[i % COLOURS.length]}33` : undefined,
        paths: l.bars ? bars : undefined,
        spanGaps: false,
        points: { show: false },
        value: fmt(decimals),
      })),
    ],
    axes: [
      options.xLabels ? { values: (_u, vals) => vals.map((v) => options.xLabels!(v)) } : {},
      ...units.slice(0, 2).map((unit, i) => ({
        scale: unit,
        side: i === 0 ? 3 : 1,
        label: unit,
        grid: { show: i === 0 },
        size: 60,
      })),
    ] as uPlot.Axis[],
    hooks: {
      draw: [
        () => {
          if (!timing) return;
          timing = false;
          result.drawMs = performance.now() - started;
          container.dataset.drawMs = result.drawMs.toFixed(1);
        },
      ],
      setSelect: [
        (u: uPlot) => {
          if (!options.onZoom || u.select.width < 5) return;
          const from = u.posToVal(u.select.left, "x");
          const to = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          options.onZoom(from, to);
        },
      ],
    },
  };
  const data = [xs, ...lines.map((l) => l.values)] as uPlot.AlignedData;
  // From the data to the pixels: uPlot draws in a microtask after its
  // constructor, so the time is taken in its draw hook.
  let timing = true;
  delete container.dataset.drawMs;
  const started = performance.now();
  const result: Chart = { plot: null as unknown as uPlot, drawMs: 0, destroy: () => {} };
  const plot = new uPlot(opts, data, container);
  result.plot = plot;
  container.dataset.points = String(xs.length * lines.length);
  const observer = new ResizeObserver(() => {
    const w = container.clientWidth;
    if (w > 0 && Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height: plot.height });
  });
  observer.observe(container);
  result.destroy = () => {
    observer.disconnect();
    plot.destroy();
  };
  return result;
}

/** Several series of (time, value) merged on one x array, nulls where a
 * series has no value at a time. */
export function join(series: { t: number[]; v: (number | null)[] }[]): [number[], (number | null)[][]] {
  if (series.length === 1) return [series[0].t, [series[0].v]];
  const joined = uPlot.join(series.map((s) => [s.t, s.v] as uPlot.AlignedData));
  return [joined[0] as number[], joined.slice(1) as (number | null)[][]];
}
