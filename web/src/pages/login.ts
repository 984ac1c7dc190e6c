// Signing in: an account and its password (a session cookie), or an API
// token kept for this tab only.

import { Session, call, json, setBearer, setSession } from "../api";
import { clearErrors, field, h, input, showError } from "../dom";
import { t } from "../i18n";
import { go, tokenSession } from "../main";

export function render(main: HTMLElement): void {
  const account = input("account", { autocomplete: "username", required: true, autocapitalize: "none", spellcheck: "false" });
  const password = input("password", { type: "password", autocomplete: "current-password", required: true });
  const form = h(
    "form",
    {
      class: "card narrow",
      onsubmit: async (e: Event) => {
        e.preventDefault();
        clearErrors(form);
        try {
          const s = await json<Session>("POST", "/api/v1/session", { body: { account: account.value.trim(), password: password.value } });
          setBearer(null);
          setSession(s);
          go("explorer");
        } catch (err) {
          password.value = "";
          showError(form, err);
        }
      },
    },
    field(t("login.account"), account),
    field(t("login.password"), password),
    h("button", { type: "submit", class: "primary" }, t("login.submit")),
  );
  const token = input("token", { type: "password", autocomplete: "off", required: true });
  const tokenForm = h(
    "form",
    {
      onsubmit: async (e: Event) => {
        e.preventDefault();
        clearErrors(tokenForm);
        setBearer(token.value.trim());
        try {
          await call("GET", "/api/v1/streams?prefix=");
          setSession(tokenSession());
          go("explorer");
        } catch (err) {
          setBearer(null);
          showError(tokenForm, err);
        }
      },
    },
    field(t("login.token"), token, t("login.token.hint")),
    h("button", { type: "submit" }, t("login.token.submit")),
  );
  main.append(
    h("h1", {}, t("login.title")),
    form,
    h("details", { class: "card narrow" }, h("summary", {}, t("login.token.title")), tokenForm),
  );
  account.focus();
}
