// A stream picker: a search box and a list of checkboxes.

import { Stream, streams as listStreams } from "./api";
import { field, h, input, showError } from "./dom";
import { t } from "./i18n";
import { matchesQuery } from "./pages/explorer";

export interface Picker {
  element: HTMLElement;
  selected: Map<string, Stream>;
  /** Selects these streams once the list is loaded. */
  ready: Promise<Stream[]>;
}

export function picker(label: string, onChange: () => void, initial: string[] = [], single = false): Picker {
  const selected = new Map<string, Stream>();
  const q = input("q", { type: "search", autocomplete: "off" });
  const list = h("ul", { class: "results", "aria-label": label });
  let all: Stream[] = [];
  const name = `pick-${Math.random().toString(36).slice(2, 8)}`;
  const show = () => {
    const shown = all.filter((s) => matchesQuery(s, q.value)).slice(0, 100);
    list.replaceChildren(
      ...shown.map((s) => {
        const box = input(name, { type: single ? "radio" : "checkbox", value: s.name, checked: selected.has(s.name), id: `${name}-${s.name}` });
        box.addEventListener("change", () => {
          if (single) selected.clear();
          if (box.checked) selected.set(s.name, s);
          else selected.delete(s.name);
          onChange();
        });
        return h("li", {}, h("label", { for: box.id }, box, " ", h("span", { class: "name" }, s.name), h("span", { class: "meta" }, [s.unit, s.owner].filter(Boolean).join(" · "))));
      }),
    );
    if (!shown.length) list.append(h("li", {}, t("explorer.nothing")));
  };
  q.addEventListener("input", show);
  const fieldset = h("fieldset", { class: "picker" }, h("legend", {}, label), field(t("explorer.search"), q), list);
  const ready = listStreams()
    .then((s) => {
      all = s;
      for (const n of initial) {
        const found = all.find((x) => x.name === n);
        if (found) selected.set(n, found);
      }
      show();
      return all;
    })
    .catch((e) => {
      showError(fieldset, e);
      return [] as Stream[];
    });
  return { element: fieldset, selected, ready };
}
