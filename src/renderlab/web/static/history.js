// "My animations": my generations, newest first, a page at a time, each with every one of its
// renders (status, format, size, poster, download, delete).
//
// GET /v1/renders lists all my renders newest first; GET /v1/renders?generation_id= gives only
// the newest one. So the renders are paged through and grouped by generation, only as far as
// the oldest generation shown: a render is never older than its generation, so older pages
// cannot hold a render of a generation on screen.

import { ApiError, getJSON, request } from "./api.js";
import { confirmDelete } from "./confirm.js";
import { ago, bytes } from "./format.js";
import { CODECS, actionError, codecOf, downloadNow, fileName, statusKind, statusLabel } from "./outputs.js";

const $ = (id) => document.getElementById(id);
const PAGE_SIZE = 5;
const RENDER_PAGE = 100;

/** "5 seconds ago" of `iso`, as an element that refreshTimes says again. */
function since(iso) {
  const time = element("time", "ago", ago(iso));
  time.dateTime = iso;
  return time;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, ariaLabel, onClick, className = "button small") {
  const node = element("button", className, label);
  node.type = "button";
  node.setAttribute("aria-label", ariaLabel);
  node.addEventListener("click", onClick);
  return node;
}

const short = (text) => (text.length > 40 ? `${text.slice(0, 40)}…` : text);

export class History {
  /** onEdit(generation) loads it into the form; onWatch(render, generation) shows a running
   * render in the panel; onDeleted({renderId} or {generationId}) after a delete. */
  constructor({ onEdit, onWatch, onDeleted }) {
    Object.assign(this, { onEdit, onWatch, onDeleted });
    this.list = $("history-list");
    this.status = $("history-status");
    this.more = $("history-more");
    this.loading = false;
    this.again = false;
    this.renderPage = RENDER_PAGE;
    this.clear();
    this.more.addEventListener("click", () => this.load({ append: true }));
    $("history-refresh").addEventListener("click", () => this.load());
    // "5 seconds ago" is true when drawn: every shown time is said again as the list changes
    // and twice a minute, so a row drawn later never reads as newer than one above it.
    setInterval(() => this.refreshTimes(), 30_000);
  }

  refreshTimes() {
    for (const time of this.list.querySelectorAll("time.ago")) time.textContent = ago(time.dateTime);
  }

  clear() {
    this.list.replaceChildren();
    this.more.hidden = true;
    this.cursor = null;
    this.generations = new Map(); // id -> generation, in list order
    this.renders = new Map(); // generation id -> renders, newest first
    this.renderCursor = undefined; // undefined: not started; null: no more pages
    this.oldestRender = null;
  }

  async load({ append = false } = {}) {
    if (this.loading) {
      this.again ||= !append; // a render started meanwhile: load once more when this ends
      return;
    }
    this.loading = true;
    this.status.textContent = "Loading…";
    try {
      const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
      if (append && this.cursor) params.set("cursor", this.cursor);
      const page = await getJSON(`/v1/generations?${params}`);
      if (!append) this.clear();
      for (const generation of page.items) this.generations.set(generation.id, generation);
      const oldest = page.items.at(-1);
      if (oldest) await this.fetchRenders(Date.parse(oldest.created_at));
      const items = page.items.map((generation) => this.item(generation));
      if (append) this.list.append(...items);
      else this.list.replaceChildren(...items);
      this.cursor = page.next_cursor;
      this.more.hidden = !page.next_cursor;
      this.refreshTimes(); // the rows kept from before (an appended page) say theirs anew
      this.status.textContent = this.list.children.length ? "" : "Nothing yet: your renders appear here.";
    } catch (error) {
      if (error.name !== "AbortError") this.status.textContent = `Could not load your animations: ${error.message}`;
    } finally {
      this.loading = false;
      if (this.again) {
        this.again = false;
        this.load();
      }
    }
  }

  /** Page through my renders until one is older than `since` (ms) or none are left. */
  async fetchRenders(since) {
    while (this.renderCursor !== null && !(this.oldestRender !== null && this.oldestRender < since)) {
      const params = new URLSearchParams(this.renderPage ? { limit: String(this.renderPage) } : {});
      if (this.renderCursor) params.set("cursor", this.renderCursor);
      let page;
      try {
        page = await getJSON(`/v1/renders?${params}`);
      } catch (error) {
        // A server whose page size cap is below ours: use its default page size instead.
        if (!(error instanceof ApiError && error.status === 422) || this.renderPage === null) throw error;
        this.renderPage = null;
        continue;
      }
      for (const render of page.items) {
        const group = this.renders.get(render.generation_id) ?? [];
        if (!group.some((r) => r.id === render.id)) group.push(render);
        this.renders.set(render.generation_id, group);
      }
      const last = page.items.at(-1);
      if (last) this.oldestRender = Date.parse(last.created_at);
      this.renderCursor = page.next_cursor ?? null;
    }
  }

  /** A live update of a render: its row follows (a new render of a shown animation is added). */
  updateRender(render) {
    if (!this.generations.has(render.generation_id)) return;
    const group = this.renders.get(render.generation_id) ?? [];
    const at = group.findIndex((r) => r.id === render.id);
    if (at >= 0) group[at] = render;
    else group.unshift(render);
    this.renders.set(render.generation_id, group);
    const old = this.list.querySelector(`[data-render-id="${CSS.escape(render.id)}"]`);
    const generation = this.generations.get(render.generation_id);
    if (old) old.replaceWith(this.renderRow(render, generation));
    else this.list.querySelector(`[data-generation-id="${CSS.escape(render.generation_id)}"] .render-list`)
      ?.prepend(this.renderRow(render, generation));
    this.refreshTimes();
  }

  item(generation) {
    const props = generation.animation_props;
    const li = element("li", "history-item");
    li.dataset.generationId = generation.id;
    const head = element("div", "history-head-row");
    const main = element("div", "history-main");
    if (generation.prompt) main.append(element("p", "history-prompt", generation.prompt));
    main.append(element("p", "history-text", props.text));
    const seconds = (props.duration_in_frames / props.fps).toFixed(1);
    const shape = `${props.width ?? 1920} × ${props.height ?? 1080}`;
    const meta = element("p", "history-meta", `${[props.style, `${seconds} s`, shape, props.font_family].join(" · ")} · `);
    meta.append(since(generation.created_at));
    main.append(meta);
    const side = element("div", "history-side");
    side.append(
      button("Edit", `Edit “${short(props.text)}”`, () => this.onEdit(generation)),
      button("Delete animation", `Delete animation “${short(props.text)}”`, () => this.deleteGeneration(generation)),
    );
    head.append(main, side);
    const renders = element("ul", "render-list");
    renders.setAttribute("aria-label", `Renders of “${short(props.text)}”`);
    const group = this.renders.get(generation.id) ?? [];
    renders.append(...group.map((render) => this.renderRow(render, generation)));
    if (!group.length) renders.append(element("li", "hint render-none", "Not rendered yet."));
    li.append(head, renders);
    return li;
  }

  thumbnail(render, text) {
    const box = element("div", "thumb");
    box.style.setProperty("--aspect", `${render.width} / ${render.height}`);
    if (render.poster_url && !render.output_expired) {
      const img = element("img");
      img.src = render.poster_url;
      img.alt = `Poster of “${short(text)}”`;
      img.loading = "lazy";
      img.addEventListener("error", () => img.replaceWith(element("span", "thumb-empty", "▶")), { once: true });
      box.append(img);
    } else {
      box.classList.add("thumb-placeholder");
      box.append(element("span", "thumb-empty", "▶"));
    }
    return box;
  }

  renderRow(render, generation) {
    const text = generation.animation_props.text;
    const li = element("li", "render-row");
    li.dataset.renderId = render.id;
    li.dataset.status = render.status;
    const info = element("div", "render-info");
    const badge = element("span", `badge badge-${statusKind(render)}`, statusLabel(render));
    const format = `${CODECS[codecOf(render)].name} · ${render.width} × ${render.height}`;
    const size = render.status === "complete" && !render.output_expired ? bytes(render.output_size) : "";
    const facts = element("span", "render-format", `${[format, size].filter(Boolean).join(" · ")} · `);
    facts.append(since(render.created_at));
    info.append(badge, facts);
    const actions = element("div", "render-actions");
    const label = `${format}, ${ago(render.created_at)}`;
    if (render.status === "complete" && !render.output_expired) {
      const link = element("a", "button small", "Download");
      link.href = "#";
      link.setAttribute("download", "");
      link.setAttribute("aria-label", `Download ${label}`);
      link.addEventListener("click", (event) => this.download(event, render, text));
      actions.append(link);
    }
    if (render.status === "pending" || render.status === "rendering") {
      actions.append(button("Watch", `Watch ${label}`, () => this.onWatch(render, generation)));
    }
    actions.append(button("Delete", `Delete ${label}`, () => this.deleteRender(render, text)));
    li.append(this.thumbnail(render, text), info, actions);
    return li;
  }

  async download(event, render, text) {
    event.preventDefault();
    try {
      await downloadNow(render, fileName(text, render));
    } catch (error) {
      this.status.textContent = actionError(error, "download this video");
    }
  }

  async deleteRender(render, text) {
    const ok = await confirmDelete("Delete this render?", `The ${CODECS[codecOf(render)].name} of “${short(text)}” (${render.width} × ${render.height}) and its file are deleted for good.`);
    if (!ok) return;
    if (await this.send(`/v1/renders/${encodeURIComponent(render.id)}`, "delete this render")) {
      const group = this.renders.get(render.generation_id) ?? [];
      this.renders.set(render.generation_id, group.filter((r) => r.id !== render.id));
      this.list.querySelector(`[data-render-id="${CSS.escape(render.id)}"]`)?.remove();
      this.focusNear(this.list.querySelector(`[data-generation-id="${CSS.escape(render.generation_id)}"]`));
      this.onDeleted({ renderId: render.id });
    }
  }

  async deleteGeneration(generation) {
    const text = generation.animation_props.text;
    const count = (this.renders.get(generation.id) ?? []).length;
    const what = count === 1 ? "its render" : `its ${count} renders`;
    const ok = await confirmDelete("Delete this animation?", `“${short(text)}” and ${count ? what : "everything about it"} are deleted for good.`);
    if (!ok) return;
    if (await this.send(`/v1/generations/${encodeURIComponent(generation.id)}`, "delete this animation")) {
      this.generations.delete(generation.id);
      this.renders.delete(generation.id);
      const card = this.list.querySelector(`[data-generation-id="${CSS.escape(generation.id)}"]`);
      const near = card?.nextElementSibling ?? card?.previousElementSibling;
      card?.remove();
      this.focusNear(near);
      this.onDeleted({ generationId: generation.id });
    }
  }

  /** Focus once the Delete button that had it is gone: the nearest card's first button, else
   * the list's heading (the dialog gives focus back to that button, which no longer exists). */
  focusNear(card) {
    const target = card?.querySelector("button") ?? $("history-title");
    if (target.tagName === "H2") target.tabIndex = -1;
    target.focus();
  }

  /** DELETE `path`; true when done, else the reason in the status line. */
  async send(path, what) {
    try {
      await request(path, { method: "DELETE" });
      this.status.textContent = "Deleted.";
      return true;
    } catch (error) {
      if (error.name !== "AbortError") this.status.textContent = actionError(error, what);
      return false;
    }
  }
}
