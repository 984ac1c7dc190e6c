// Projects and investors (admin edits; operators read).

import { current, get, json } from "../api";
import { announce, clearErrors, deleteButton, field, h, input, section, showError, table } from "../dom";
import { t } from "../i18n";
import { formatNumber } from "../time";
import type { Project } from "./investment";

interface Investor {
  account: string;
  display_name: string;
  shares: number;
}

const FIELDS: [keyof Project, string, Record<string, string>][] = [
  ["id", "projects.id", { pattern: "[a-z0-9._\\-]{1,64}", autocapitalize: "none" }],
  ["title", "projects.title", {}],
  ["total_shares", "projects.total_shares", { type: "number", min: "1", step: "1" }],
  ["share_price", "projects.share_price", { type: "number", min: "0", step: "any" }],
  ["currency", "projects.currency", { maxlength: "3" }],
  ["panel_area_m2", "projects.area", { type: "number", min: "0", step: "any" }],
  ["production_stream", "projects.stream", { autocapitalize: "none" }],
  ["maintenance_budget", "projects.maintenance", { type: "number", min: "0", step: "any" }],
  ["commissioned", "projects.commissioned", { type: "date" }],
  ["description", "projects.description", {}],
];
const NUMBERS = new Set(["total_shares", "share_price", "panel_area_m2", "maintenance_budget"]);

export function render(main: HTMLElement): void {
  const admin = current()?.role === "admin";
  const list = h("div", { id: "projects" });
  main.append(h("h1", {}, t("nav.projects")), list);
  if (admin) main.append(section(t("projects.new"), projectForm(null, () => void load())));
  void load();

  async function load(): Promise<void> {
    let projects: Project[];
    try {
      projects = await get<Project[]>("/api/v1/projects");
    } catch (e) {
      list.replaceChildren(h("p", { class: "form-error" }, (e as Error).message));
      showError(null, e);
      return;
    }
    list.replaceChildren(
      table(
        t("nav.projects"),
        [t("projects.title"), t("projects.total_shares"), t("projects.share_price"), t("projects.area"), t("projects.stream")],
        projects.map((p) => [p.title, p.total_shares, `${formatNumber(p.share_price)} ${p.currency}`, `${formatNumber(p.panel_area_m2)} m²`, p.production_stream]),
      ),
      ...projects.map((p) => h("details", { class: "card" }, h("summary", {}, p.title), admin ? projectForm(p, () => void load()) : null, investors(p, admin))),
    );
  }
}

function projectForm(project: Project | null, done: () => void): HTMLFormElement {
  const inputs = FIELDS.map(([k, label, attrs]) => {
    const el = input(k, { ...attrs, value: project ? String(project[k] ?? "") : k === "currency" ? "EUR" : "" });
    if (project && k === "id") el.readOnly = true;
    return field(t(label), el);
  });
  const form: HTMLFormElement = h(
    "form",
    {
      class: "grid",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        clearErrors(form);
        const body: Record<string, unknown> = {};
        for (const [k] of FIELDS) {
          const v = (form.elements.namedItem(k) as HTMLInputElement).value.trim();
          body[k] = NUMBERS.has(k) ? (v === "" ? null : Number(v)) : v === "" ? null : v;
        }
        try {
          if (project) {
            delete body.id;
            await json("PATCH", `/api/v1/projects/${encodeURIComponent(project.id)}`, { body });
          } else await json("POST", "/api/v1/projects", { body });
          announce(t("saved"));
          done();
        } catch (err) {
          showError(form, err);
        }
      },
    },
    inputs,
    h("button", { type: "submit", class: "primary" }, project ? t("save") : t("projects.create")),
    project
      ? deleteButton(t("projects.delete"), project.title, `/api/v1/projects/${encodeURIComponent(project.id)}`, done)
      : null,
  );
  return form;
}

function investors(project: Project, admin: boolean): HTMLElement {
  const box = h("div", { class: "investors" }, h("p", {}, t("loading")));
  const account = input("account", { autocapitalize: "none", required: true });
  const shares = input("shares", { type: "number", min: "1", step: "1", required: true });
  const form = h(
    "form",
    {
      class: "inline",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        clearErrors(form);
        try {
          await json("PUT", `/api/v1/projects/${encodeURIComponent(project.id)}/investors/${encodeURIComponent(account.value.trim())}`, { body: { shares: Number(shares.value) } });
          announce(t("saved"));
          void load();
        } catch (err) {
          showError(form, err);
        }
      },
    },
    field(t("projects.investor"), account),
    field(t("invest.shares"), shares),
    h("button", { type: "submit" }, t("projects.setshares")),
  );
  async function load(): Promise<void> {
    try {
      const list = await get<Investor[]>(`/api/v1/projects/${encodeURIComponent(project.id)}/investors`);
      const total = list.reduce((n, i) => n + i.shares, 0);
      box.replaceChildren(
        table(
          `${t("projects.investors")} (${total} / ${project.total_shares})`,
          [t("projects.investor"), t("invest.shares"), t("invest.fraction"), ""],
          list.map((i) => [
            `${i.display_name} (${i.account})`,
            i.shares,
            `${formatNumber((100 * i.shares) / project.total_shares, 2)} %`,
            admin
              ? h(
                  "button",
                  {
                    type: "button",
                    class: "danger",
                    "aria-label": `${t("remove")} ${i.account}`,
                    onclick: async () => {
                      try {
                        await json("DELETE", `/api/v1/projects/${encodeURIComponent(project.id)}/investors/${encodeURIComponent(i.account)}`);
                        void load();
                      } catch (err) {
                        showError(box, err);
                      }
                    },
                  },
                  t("remove"),
                )
              : "",
          ]),
        ),
      );
    } catch (e) {
      box.replaceChildren(h("p", { class: "form-error" }, (e as Error).message));
    }
  }
  void load();
  return h("div", {}, box, admin ? form : null);
}
