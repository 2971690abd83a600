// "My animations": my generations with their newest render, newest first, a page at a time.

import { getJSON } from "./api.js";
import { ago } from "./format.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 5;
const STATUS_LABELS = {
  pending: "Queued",
  rendering: "Rendering",
  complete: "Rendered",
  failed: "Failed",
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setBadge(badge, render) {
  const label = STATUS_LABELS[render.status] ?? render.status;
  const detail = render.status === "rendering" ? ` ${render.progress}%` : "";
  badge.className = `badge badge-${render.status}`;
  badge.textContent = `${label}${detail}`;
  badge.title = `${render.width} × ${render.height}, ${ago(render.created_at)}`;
}

export class History {
  /** onEdit(generation) loads its props into the form; onShow(generation) shows its render. */
  constructor({ onEdit, onShow }) {
    this.onEdit = onEdit;
    this.onShow = onShow;
    this.list = $("history-list");
    this.status = $("history-status");
    this.more = $("history-more");
    this.cursor = null;
    this.loading = false;
    this.more.addEventListener("click", () => this.load({ append: true }));
    $("history-refresh").addEventListener("click", () => this.load());
  }

  clear() {
    this.list.replaceChildren();
    this.more.hidden = true;
    this.cursor = null;
  }

  async load({ append = false } = {}) {
    if (this.loading) return;
    this.loading = true;
    this.status.textContent = "Loading…";
    try {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (append && this.cursor) params.set("cursor", this.cursor);
      const page = await getJSON(`/v1/generations?${params}`);
      const items = page.items.map((generation) => this.item(generation));
      if (append) this.list.append(...items);
      else this.list.replaceChildren(...items);
      this.cursor = page.next_cursor;
      this.more.hidden = !page.next_cursor;
      this.status.textContent = this.list.children.length ? "" : "Nothing yet: your renders appear here.";
      return page.items;
    } catch (error) {
      if (error.name !== "AbortError") this.status.textContent = `Could not load your animations: ${error.message}`;
    } finally {
      this.loading = false;
    }
  }

  /** A live update of a render the list shows: its badge follows without reloading. */
  updateRender(render) {
    for (const li of this.list.children) {
      if (li.dataset.renderId === render.id) setBadge(li.querySelector(".badge"), render);
    }
  }

  item(generation) {
    const props = generation.animation_props;
    const render = generation.latest_render;
    const li = element("li", "history-item");
    li.dataset.generationId = generation.id;

    const main = element("div", "history-main");
    main.append(element("p", "history-text", props.text));
    const seconds = (props.duration_in_frames / props.fps).toFixed(1);
    const meta = [props.style, `${seconds} s`, props.font_family, ago(generation.created_at)];
    if (generation.prompt) meta.unshift(`“${generation.prompt}”`);
    main.append(element("p", "history-meta", meta.join(" · ")));
    li.append(main);

    const side = element("div", "history-side");
    const badge = element("span", "badge", "Not rendered");
    side.append(badge);
    if (render) {
      li.dataset.renderId = render.id;
      setBadge(badge, render);
    }
    const edit = element("button", "button small", "Edit");
    edit.type = "button";
    edit.setAttribute("aria-label", `Edit “${props.text.slice(0, 40)}”`);
    edit.addEventListener("click", () => this.onEdit(generation));
    side.append(edit);
    if (render) {
      const verb = render.status === "complete" ? "Download" : render.status === "failed" ? "Details" : "Watch";
      const show = element("button", "button small", verb);
      show.type = "button";
      show.setAttribute("aria-label", `${verb}: “${props.text.slice(0, 40)}”`);
      show.addEventListener("click", () => this.onShow(generation));
      side.append(show);
    }
    li.append(side);
    return li;
  }
}
