// A few helpers to build the DOM without a framework.

import { ApiError, json } from "./api";
import { t } from "./i18n";

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

/** An element: `h("button", { onclick: f, class: "x" }, "text")`. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "value" && "value" in el) (el as HTMLInputElement).value = String(value);
    else if (key === "checked" && "checked" in el) (el as HTMLInputElement).checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

let ids = 0;
export const uid = (prefix: string) => `${prefix}-${++ids}`;

/** A labelled control with a slot for the API's error about it: the
 * control's `name` is the field the API names. */
export function field(label: string, control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement, hint?: string): HTMLElement {
  control.id ||= uid("f");
  const error = h("p", { class: "field-error", id: `${control.id}-error`, "aria-live": "polite" });
  const described = [error.id];
  let hintEl: HTMLElement | null = null;
  if (hint) {
    hintEl = h("p", { class: "hint", id: `${control.id}-hint` }, hint);
    described.push(hintEl.id);
  }
  control.setAttribute("aria-describedby", described.join(" "));
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintEl, error);
}

/** Clears a form's field errors and its general error. */
export function clearErrors(form: HTMLElement): void {
  form.querySelectorAll(".field-error, .form-error").forEach((e) => (e.textContent = ""));
  form.querySelectorAll("[aria-invalid]").forEach((e) => e.removeAttribute("aria-invalid"));
}

/** Shows an error: next to the field the API names when the form has it,
 * else in the form's general error line; and in the page's live region. */
export function showError(form: HTMLElement | null, e: unknown): void {
  const message = e instanceof ApiError ? e.detail : String((e as Error)?.message ?? e);
  if (form) {
    const field = e instanceof ApiError && e.field ? (form.querySelector(`[name="${CSS.escape(e.field)}"]`) as HTMLElement | null) : null;
    if (field) {
      field.setAttribute("aria-invalid", "true");
      const slot = document.getElementById(`${field.id}-error`);
      if (slot) slot.textContent = message;
      field.focus();
    } else {
      let general = form.querySelector(".form-error");
      if (!general) {
        general = h("p", { class: "form-error", role: "alert" });
        form.prepend(general);
      }
      general.textContent = message;
    }
  }
  alertMessage(message);
}

/** Says something to screen readers and shows it in the alert banner. */
export function alertMessage(message: string): void {
  const alert = document.getElementById("alert");
  if (!alert) return;
  alert.replaceChildren(h("span", {}, message), h("button", { type: "button", class: "link", onclick: () => alert.replaceChildren() }, t("dismiss")));
}

export function announce(message: string): void {
  const live = document.getElementById("live");
  if (live) live.textContent = message;
}

export function section(title: string, ...children: Child[]): HTMLElement {
  const id = uid("s");
  return h("section", { "aria-labelledby": id }, h("h2", { id }, title), ...children);
}

export function table(caption: string, head: string[], rows: Child[][], cls = ""): HTMLTableElement {
  return h(
    "table",
    { class: cls },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c)))))),
  );
}

export function select(name: string, options: [string, string][], value?: string): HTMLSelectElement {
  return h("select", { name }, options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

export function input(name: string, attrs: Attrs = {}): HTMLInputElement {
  return h("input", { name, ...attrs });
}

/** Starts a file download of `text`. */
export function download(filename: string, type: string, data: BlobPart): void {
  const url = URL.createObjectURL(new Blob([data], { type }));
  const a = h("a", { href: url, download: filename });
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Replaces an element's children, skipping the empty ones. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** A button that deletes `name` at `path` after the person confirms, then
 * calls `done`; a refusal is shown on the button's form. */
export function deleteButton(label: string, name: string, path: string, done: () => void): HTMLButtonElement {
  return h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async (e: Event) => {
        // Taken now: an event's currentTarget is gone once it has been handled.
        const form = (e.currentTarget as HTMLElement | null)?.closest("form") ?? null;
        if (!confirm(`${label} ${name}?`)) return;
        try {
          await json("DELETE", path);
          done();
        } catch (err) {
          showError(form, err);
        }
      },
    },
    label,
  );
}
