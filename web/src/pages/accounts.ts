// Accounts (admin): who may sign in, with which role and streams.

import { get, json } from "../api";
import { announce, clearErrors, deleteButton, field, h, input, section, select, showError, table } from "../dom";
import { t } from "../i18n";

interface Account {
  account: string;
  display_name: string;
  role: string;
  streams: string[];
  consumption_stream: string | null;
  created: string;
}

const ROLES = (): [string, string][] => [
  ["member", t("role.member")],
  ["operator", t("role.operator")],
  ["admin", t("role.admin")],
];

export function render(main: HTMLElement): void {
  const list = h("div", { id: "accounts" });
  main.append(h("h1", {}, t("nav.accounts")), list, section(t("accounts.new"), accountForm(null, () => void load())));
  void load();
  async function load(): Promise<void> {
    let accounts: Account[];
    try {
      accounts = await get<Account[]>("/api/v1/accounts");
    } catch (e) {
      list.replaceChildren(h("p", { class: "form-error" }, (e as Error).message));
      showError(null, e);
      return;
    }
    list.replaceChildren(
      table(
        t("nav.accounts"),
        [t("accounts.account"), t("accounts.name"), t("accounts.role"), t("accounts.streams"), t("accounts.consumption")],
        accounts.map((a) => [a.account, a.display_name, t(`role.${a.role}`), a.streams.join(", "), a.consumption_stream ?? ""]),
      ),
      ...accounts.map((a) => h("details", { class: "card" }, h("summary", {}, `${a.display_name} (${a.account})`), accountForm(a, () => void load()))),
    );
  }
}

function accountForm(a: Account | null, done: () => void): HTMLFormElement {
  const account = input("account", { value: a?.account ?? "", pattern: "[a-z0-9._\\-]{1,64}", autocapitalize: "none", required: true, readonly: Boolean(a) });
  const name = input("display_name", { value: a?.display_name ?? "", required: true });
  const role = select("role", ROLES(), a?.role ?? "member");
  const password = input("password", { type: "password", autocomplete: "new-password", minlength: "10", required: !a });
  const streams = h("textarea", { name: "streams", rows: 2 }, (a?.streams ?? []).join("\n"));
  const consumption = input("consumption_stream", { value: a?.consumption_stream ?? "", autocapitalize: "none" });
  const form: HTMLFormElement = h(
    "form",
    {
      class: "grid",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        clearErrors(form);
        const body: Record<string, unknown> = {
          display_name: name.value.trim(),
          role: role.value,
          streams: streams.value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean),
          consumption_stream: consumption.value.trim() || null,
        };
        if (password.value) body.password = password.value;
        try {
          if (a) await json("PATCH", `/api/v1/accounts/${encodeURIComponent(a.account)}`, { body });
          else await json("POST", "/api/v1/accounts", { body: { account: account.value.trim(), ...body } });
          announce(t("saved"));
          done();
        } catch (err) {
          showError(form, err);
        }
      },
    },
    field(t("accounts.account"), account, t("accounts.account.hint")),
    field(t("accounts.name"), name),
    field(t("accounts.role"), role),
    field(a ? t("accounts.newpassword") : t("login.password"), password, t("accounts.password.hint")),
    field(t("accounts.streams"), streams, t("accounts.streams.hint")),
    field(t("accounts.consumption"), consumption),
    h("button", { type: "submit", class: "primary" }, a ? t("save") : t("accounts.create")),
    a
      ? deleteButton(t("accounts.delete"), a.account, `/api/v1/accounts/${encodeURIComponent(a.account)}`, done)
      : null,
  );
  return form;
}
