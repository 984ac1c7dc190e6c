// Node status (operators and admins): peers, outbox, exchanges, the
// equipments and devices that fail to communicate; and the manual reading
// form, which posts one SenML record to /api/v1/data.

import { Stream, call, current, get, mayWrite, streams as listStreams } from "../api";
import { announce, clearErrors, field, h, input, section, select, showError, table } from "../dom";
import { t } from "../i18n";
import { fromLocalInput, iso, toLocalInput } from "../time";

interface Audit {
  seq: number;
  time: string;
  kind: string;
  peer: string | null;
  stream: string | null;
  records: number | null;
  /** What the trail holds: an object (a grant, a command…) or text. */
  detail: unknown;
}

interface Status {
  node: { name: string; version: string; started: string };
  health: { status: string; [k: string]: unknown };
  peers: { jid: string; state: string; last_exchange: string | null }[];
  outbox: { backlog: number };
  control: { equipments: { name: string; kind: string; state: string; devices: { name: string; online: boolean; error: string | null }[] }[] } | null;
  exchanges: Audit[];
}

/** An audit entry's detail as one line of text. */
function detailText(detail: unknown): string {
  if (detail === null || detail === undefined) return "";
  return typeof detail === "string" ? detail : JSON.stringify(detail);
}

export function auditTable(caption: string, rows: Audit[]): HTMLElement {
  return table(
    caption,
    [t("time"), t("audit.kind"), t("audit.peer"), t("audit.stream"), t("records"), t("audit.detail")],
    rows.map((a) => [a.time, a.kind, a.peer ?? "", a.stream ?? "", a.records ?? "", detailText(a.detail)]),
  );
}

export function render(main: HTMLElement): void {
  const s = current();
  main.append(h("h1", {}, t("nav.status")));
  const statusBox = h("div", { id: "status" }, h("p", {}, t("loading")));
  if (s && s.role !== "member") main.append(statusBox);
  main.append(readingForm());
  if (s && s.role !== "member") void loadStatus(statusBox);
}

async function loadStatus(box: HTMLElement): Promise<void> {
  let st: Status;
  try {
    st = await get<Status>("/api/v1/status");
  } catch (e) {
    box.replaceChildren(h("p", { class: "form-error" }, (e as Error).message));
    showError(null, e);
    return;
  }
  const devices = (st.control?.equipments ?? []).flatMap((e) => e.devices.map((d) => ({ e, d })));
  const failing = devices.filter(({ d }) => !d.online || d.error);
  box.replaceChildren(
    section(
      t("status.node"),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, t("status.name")),
        h("dd", {}, st.node.name),
        h("dt", {}, t("status.version")),
        h("dd", {}, st.node.version),
        h("dt", {}, t("status.started")),
        h("dd", {}, st.node.started),
        h("dt", {}, t("status.health")),
        h("dd", { class: st.health.status === "ok" ? "ok" : "bad" }, st.health.status),
        h("dt", {}, t("status.backlog")),
        h("dd", { id: "backlog" }, String(st.outbox.backlog)),
      ),
    ),
    section(t("status.peers"), table(t("status.peers"), [t("status.peer"), t("status.state"), t("status.last")], st.peers.map((p) => [p.jid, p.state, p.last_exchange ?? "–"]))),
    section(
      t("status.equipments"),
      st.control
        ? table(
            t("status.equipments"),
            [t("status.equipment"), t("status.kind"), t("status.state"), t("status.devices")],
            st.control.equipments.map((e) => [e.name, e.kind, e.state, e.devices.map((d) => `${d.name}: ${d.online ? t("status.online") : t("status.offline")}${d.error ? ` (${d.error})` : ""}`).join("; ")]),
          )
        : h("p", {}, t("status.nocontrol")),
      st.control
        ? h(
            "p",
            { class: failing.length ? "bad" : "ok", id: "failing" },
            failing.length ? `${t("status.failing")}: ${failing.map(({ e, d }) => `${e.name}/${d.name}${d.error ? ` (${d.error})` : ""}`).join(", ")}` : t("status.allgood"),
          )
        : null,
    ),
    section(t("status.exchanges"), auditTable(t("status.exchanges"), st.exchanges)),
  );
}

function readingForm(): HTMLElement {
  const stream = select("n", []);
  const value = input("v", { type: "number", step: "any", required: true, inputmode: "decimal" });
  const unit = input("u", { autocomplete: "off" });
  const time = input("t", { type: "datetime-local", value: toLocalInput(Date.now() / 1000), required: true });
  let writable: Stream[] = [];
  const result = h("p", { class: "ok", "aria-live": "polite" });
  const form = h(
    "form",
    {
      class: "card",
      id: "reading",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        clearErrors(form);
        result.textContent = "";
        const at = fromLocalInput(time.value);
        const v = Number(value.value);
        if (at === null) return showError(form, new Error(t("reading.time.invalid")));
        if (!value.value || !Number.isFinite(v)) return showError(form, new Error(t("reading.value.invalid")));
        const record: Record<string, unknown> = { n: stream.value, v, t: at };
        if (unit.value.trim()) record.u = unit.value.trim();
        try {
          await call("POST", "/api/v1/data", { raw: JSON.stringify([record]), contentType: "application/senml+json" });
          result.textContent = `${t("reading.saved")}: ${stream.value} = ${v}${record.u ? ` ${record.u}` : ""} (${iso(at)})`;
          announce(result.textContent);
        } catch (err) {
          showError(form, err);
        }
      },
    },
    h("h2", {}, t("reading.title")),
    h("p", { class: "hint" }, t("reading.hint")),
    field(t("reading.stream"), stream),
    field(t("reading.value"), value),
    field(t("reading.unit"), unit, t("reading.unit.hint")),
    field(t("reading.time"), time),
    h("button", { type: "submit", class: "primary" }, t("reading.submit")),
    result,
  );
  stream.addEventListener("change", () => {
    unit.value = writable.find((s) => s.name === stream.value)?.unit ?? "";
  });
  void listStreams()
    .then((all) => {
      writable = all.filter(mayWrite);
      stream.replaceChildren(...writable.map((s) => h("option", { value: s.name }, s.name)));
      unit.value = writable[0]?.unit ?? "";
      if (!writable.length) result.textContent = t("reading.none");
    })
    .catch((e) => showError(form, e));
  return form;
}
