// Sharing: the grants on the signed-in owner's streams (revoked in one
// click), the transfers of their data, and a download of all of it.

import { call, current, get, json } from "../api";
import { announce, download, h, section, showError, table } from "../dom";
import { t } from "../i18n";
import { iso } from "../time";
import { auditTable } from "./status";

/** A grant as the API gives it: times in µs since the epoch. */
interface Grant {
  id: number;
  grantee: string;
  streams: string[] | string;
  purpose: string | null;
  from: number | null;
  until: number | null;
  revoked: number | null;
  [k: string]: unknown;
}

const when = (us: number | null) => (us === null || us === undefined ? "…" : iso(us / 1e6));

export function render(main: HTMLElement): void {
  const grants = h("div", { id: "grants" }, h("p", {}, t("loading")));
  const transfers = h("div", { id: "transfers" }, h("p", {}, t("loading")));
  const exportButton = h("button", { type: "button", class: "primary", onclick: () => void exportAll() }, t("sharing.download"));
  main.append(
    h("h1", {}, t("nav.sharing")),
    section(t("sharing.grants"), h("p", { class: "hint" }, t("sharing.grants.hint")), grants),
    section(t("sharing.transfers"), transfers),
    section(t("sharing.export"), h("p", { class: "hint" }, t("sharing.export.hint")), exportButton),
  );
  void loadGrants(grants);
  void get<unknown>("/api/v1/me/transfers?limit=200")
    .then((rows) => transfers.replaceChildren(auditTable(t("sharing.transfers"), rows as Parameters<typeof auditTable>[1])))
    .catch((e) => {
      transfers.replaceChildren(h("p", { class: "form-error" }, (e as Error).message));
      showError(null, e);
    });

  async function exportAll(): Promise<void> {
    try {
      const response = await call("GET", "/api/v1/me/export", { accept: "application/senml+json" });
      const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") ?? "")?.[1] ?? `fedwatt-${current()?.account ?? "export"}.json`;
      download(name, "application/senml+json", await response.blob());
    } catch (e) {
      showError(null, e);
    }
  }
}

async function loadGrants(box: HTMLElement): Promise<void> {
  let list: Grant[];
  try {
    const answer = await get<Grant[] | { grants: Grant[] }>("/api/v1/me/grants");
    list = Array.isArray(answer) ? answer : answer.grants;
  } catch (e) {
    box.replaceChildren(h("p", { class: "form-error" }, (e as Error).message));
    showError(null, e);
    return;
  }
  if (!list.length) {
    box.replaceChildren(h("p", {}, t("sharing.nogrants")));
    return;
  }
  box.replaceChildren(
    table(
      t("sharing.grants"),
      [t("sharing.to"), t("sharing.streams"), t("sharing.purpose"), t("sharing.period"), ""],
      list.map((g) => [
        g.grantee,
        Array.isArray(g.streams) ? g.streams.join(", ") : g.streams,
        g.purpose ?? "",
        `${when(g.from)} → ${when(g.until)}`,
        g.revoked
          ? `${t("sharing.revoked")} ${when(g.revoked)}`
          : h(
              "button",
              {
                type: "button",
                class: "danger",
                "aria-label": `${t("sharing.revoke")} ${g.grantee}`,
                onclick: async () => {
                  try {
                    await json("DELETE", `/api/v1/grants/${g.id}`);
                    announce(`${t("sharing.revoked")}: ${g.grantee}`);
                    await loadGrants(box);
                  } catch (e) {
                    showError(null, e);
                  }
                },
              },
              t("sharing.revoke"),
            ),
      ]),
    ),
  );
}
