// The web UI's shell: the session, the navigation, the language, and a
// hash router that loads one module per page (src/pages/).

import "./style.css";
import { ApiError, Session, bearer, call, current, get, json, setBearer, setSession } from "./api";
import { alertMessage, fill, h } from "./dom";
import { Lang, lang, setLang, t } from "./i18n";

type Page = { render(main: HTMLElement, params: URLSearchParams): void | (() => void) };
type Role = Session["role"];

interface Route {
  path: string;
  label: string;
  roles: Role[];
  load: () => Promise<Page>;
}

const ALL: Role[] = ["admin", "operator", "member"];
const ROUTES: Route[] = [
  { path: "explorer", label: "nav.explorer", roles: ALL, load: () => import("./pages/explorer") },
  { path: "investment", label: "nav.investment", roles: ALL, load: () => import("./pages/investment") },
  { path: "projects", label: "nav.projects", roles: ["admin", "operator"], load: () => import("./pages/projects") },
  { path: "compare", label: "nav.compare", roles: ALL, load: () => import("./pages/compare") },
  { path: "selfconsumption", label: "nav.selfconsumption", roles: ALL, load: () => import("./pages/selfconsumption") },
  { path: "sharing", label: "nav.sharing", roles: ALL, load: () => import("./pages/sharing") },
  { path: "status", label: "nav.status", roles: ALL, load: () => import("./pages/status") },
  { path: "accounts", label: "nav.accounts", roles: ["admin"], load: () => import("./pages/accounts") },
];
const LOGIN: Route = { path: "login", label: "nav.login", roles: ALL, load: () => import("./pages/login") };

let cleanup: (() => void) | void;

/** Who is signed in: the session cookie's account, else the API token
 * kept for this tab, else nobody. */
async function restore(): Promise<void> {
  try {
    setSession(await get<Session>("/api/v1/session"));
    return;
  } catch (e) {
    if (!(e instanceof ApiError) || (e.status !== 401 && !e.missing)) alertMessage((e as Error).message);
  }
  if (bearer()) {
    try {
      await call("GET", "/api/v1/streams?prefix=");
      setSession(tokenSession());
    } catch {
      setBearer(null);
    }
  }
}

/** A session for a caller with an API token: the node applies the
 * token's scope; the UI shows every page. */
export function tokenSession(): Session {
  return { account: t("token.account"), display_name: t("token.account"), role: "admin", csrf: "", streams: [], consumption_stream: null, token: true };
}

export async function signOut(): Promise<void> {
  const s = current();
  if (s && !s.token) {
    try {
      await json("DELETE", "/api/v1/session");
    } catch (e) {
      alertMessage((e as Error).message);
    }
  }
  setBearer(null);
  setSession(null);
  go("login");
}

export function go(path: string): void {
  if (location.hash === `#/${path}`) void route();
  else location.hash = `#/${path}`;
}

function header(active: string): void {
  const s = current();
  const top = document.getElementById("top")!;
  const langSelect = h(
    "select",
    {
      id: "lang",
      onchange: (e: Event) => {
        setLang((e.target as HTMLSelectElement).value as Lang);
        void route();
      },
    },
    h("option", { value: "en", selected: lang() === "en" }, "English"),
    h("option", { value: "fr", selected: lang() === "fr" }, "Français"),
  );
  const nav = s
    ? h(
        "nav",
        { "aria-label": t("nav.main") },
        h(
          "ul",
          { id: "nav-list" },
          ROUTES.filter((r) => r.roles.includes(s.role)).map((r) =>
            h("li", {}, h("a", { href: `#/${r.path}`, "aria-current": r.path === active ? "page" : null }, t(r.label))),
          ),
        ),
      )
    : null;
  const menu = s
    ? h(
        "button",
        {
          type: "button",
          class: "menu",
          "aria-controls": "nav-list",
          "aria-expanded": "false",
          onclick: (e: Event) => {
            const b = e.currentTarget as HTMLButtonElement;
            const open = b.getAttribute("aria-expanded") !== "true";
            b.setAttribute("aria-expanded", String(open));
            top.classList.toggle("open", open);
          },
        },
        t("nav.menu"),
      )
    : null;
  fill(top, 
    h("a", { class: "brand", href: "#/explorer" }, "fedwatt"),
    menu,
    nav,
    h(
      "div",
      { class: "who" },
      h("label", { for: "lang", class: "visually-hidden" }, t("lang")),
      langSelect,
      s ? h("span", { class: "account" }, s.display_name) : null,
      s ? h("button", { type: "button", onclick: () => void signOut() }, t("signout")) : null,
    ),
  );
}

let generation = 0;

async function route(): Promise<void> {
  const mine = ++generation;
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const s = current();
  let r = ROUTES.find((x) => x.path === path) ?? (s ? ROUTES[0] : LOGIN);
  if (!s) r = LOGIN;
  else if (!r.roles.includes(s.role)) r = ROUTES[0];
  if (typeof cleanup === "function") cleanup();
  cleanup = undefined;
  document.documentElement.lang = lang();
  header(r.path);
  const main = document.getElementById("main")!;
  main.replaceChildren(h("p", { class: "loading" }, t("loading")));
  document.getElementById("alert")!.replaceChildren();
  const page = await r.load();
  // Another address was asked for while this page's module loaded.
  if (mine !== generation) return;
  main.replaceChildren();
  document.title = `${t(r.label)} · fedwatt`;
  cleanup = page.render(main, new URLSearchParams(search ?? ""));
  // A new page: the reader starts at its content, not at the menu.
  if (moved && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  moved = false;
}

let moved = false;
window.addEventListener("hashchange", () => {
  moved = true;
  void route();
});
void restore().then(route);
