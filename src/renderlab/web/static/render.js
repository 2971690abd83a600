// The progress panel of one render of one animation (it says which): a live bar with the
// percentage and the time left (from the render's event stream), then "Render complete!" with a
// download button and a player, or the error with a Retry button.

import { ApiError, postJSON } from "./api.js";
import { lostFocus } from "./focus.js";
import { bytes, roughDuration } from "./format.js";
import { plain } from "./messages.js";
import { CODECS, codecOf, signedUrl, statusLabel } from "./outputs.js";
import { watchRender } from "./sse.js";

const $ = (id) => document.getElementById(id);
const TITLES = {
  pending: "Waiting to start",
  rendering: "Rendering",
  complete: "Finished",
  failed: "Render failed",
};
const URL_MARGIN_MS = 60_000; // refresh a signed URL this long before it expires
const ENDED = new Set(["complete", "failed"]);

/** The panel's title: a failure says what ended it ("Cancelled", "Timed out"). */
function titleOf(render) {
  if (render.status === "failed" && render.error_code && render.error_code !== "render_failed") {
    const label = statusLabel(render);
    if (label !== "Failed") return label;
  }
  return TITLES[render.status] ?? render.status;
}

/** Whether `next` may replace `shown` (same render): once ended, only another ended snapshot
 * may (the cancel response and the stream's last event may arrive in either order). */
function replaces(shown, next) {
  return !shown || shown.id !== next.id || !ENDED.has(shown.status) || ENDED.has(next.status);
}

export class RenderPanel {
  constructor({ onFinished, onRetry, onUpdate = () => {} }) {
    this.onFinished = onFinished;
    this.onUpdate = onUpdate;
    this.onRetry = onRetry;
    this.section = $("progress");
    this.title = $("progress-title");
    this.bar = $("progress-bar");
    this.percent = $("progress-percent");
    this.eta = $("progress-eta");
    this.announce = $("progress-announce");
    this.cancelButton = $("cancel-button");
    this.completeBox = $("progress-complete");
    this.link = $("download-link");
    this.sizeText = $("download-size");
    this.player = $("player");
    this.gif = $("gif-preview");
    this.noPreview = $("no-preview");
    this.failedBox = $("progress-failed");
    this.failedMessage = $("failed-message");
    this.retryButton = $("retry-button");
    this.render = null;
    this.controller = null;
    this.ticker = null;
    this.download = null; // {url, expiresAt}
    this.cancelButton.addEventListener("click", () => this.cancel());
    this.retryButton.addEventListener("click", () => this.render && this.onRetry(this.render));
    this.link.addEventListener("click", (event) => this.downloadClicked(event));
  }

  /** Show `render` of the animation `text` and follow it until it ends; `fileName` names the
   * downloaded file. */
  watch(render, { fileName, text }) {
    this.stop();
    this.fileName = fileName;
    this.text = text;
    $("progress-for").textContent = `“${text.length > 60 ? `${text.slice(0, 60)}…` : text}” · ${render.width} × ${render.height}`;
    this.link.textContent = `Download ${CODECS[codecOf(render)].name}`;
    $("render-warnings").hidden = true;
    this.baseline = null;
    this.leftAt = null;
    this.lastAnnounced = -1;
    this.download = null;
    this.render = null;
    this.link.removeAttribute("href");
    this.link.setAttribute("aria-disabled", "true");
    this.resetPreview();
    this.section.hidden = false;
    this.update(render);
    if (render.status === "complete" || render.status === "failed") {
      this.finished(render);
      return;
    }
    const controller = new AbortController();
    this.controller = controller;
    watchRender(render.id, {
      signal: controller.signal,
      onUpdate: (next) => this.update(next),
      onReconnect: () => {
        this.eta.textContent = "Connection lost, reconnecting…";
      },
    })
      .then((final) => this.finished(final))
      .catch((error) => {
        if (error.name === "AbortError") return;
        this.showFailure(`Lost track of this render: ${error.message}`);
      });
  }

  /** Whether the panel follows a render that has not ended. */
  get active() {
    return Boolean(this.render && !ENDED.has(this.render.status));
  }

  /** Nothing shown: a new animation, or a refused render, must not show an older result. */
  clear() {
    this.stop();
    this.render = null;
    this.section.hidden = true;
    this.resetPreview();
  }

  /** No result shown: the player, the GIF and the ProRes line hidden, the player emptied. */
  resetPreview() {
    this.player.removeAttribute("src");
    this.player.removeAttribute("poster");
    this.player.load();
    this.player.hidden = true;
    this.gif.removeAttribute("src");
    this.gif.hidden = true;
    this.noPreview.hidden = true;
  }

  /** The result where a browser can show it (CODECS' `preview`): MP4 and WebM in the player, a
   * GIF as an image, and for ProRes, which no browser decodes, a line saying where it plays. */
  showPreview(render, url) {
    const preview = CODECS[codecOf(render)].preview;
    if (preview === "video" && !this.player.getAttribute("src")) {
      // A fade-in's first frame is empty: without its poster the player looked like a failure.
      if (render.poster_url) this.player.poster = render.poster_url;
      this.player.src = url;
      this.player.hidden = false;
    } else if (preview === "image" && !this.gif.getAttribute("src")) {
      this.gif.src = url;
      this.gif.alt = `The GIF of “${this.text}”`;
      this.gif.hidden = false;
    } else if (preview === "none") {
      this.noPreview.hidden = false;
    }
  }

  stop() {
    this.controller?.abort();
    this.controller = null;
    clearInterval(this.ticker);
  }

  update(render) {
    if (!replaces(this.render, render)) return; // an older snapshot arriving late
    if (this.render && this.render.id === render.id && render.progress < this.render.progress) {
      render = { ...render, progress: this.render.progress }; // never step back
    }
    this.render = render;
    const progress = Math.max(0, Math.min(100, render.progress ?? 0));
    this.bar.value = progress;
    this.bar.setAttribute("aria-valuetext", `${progress}%`);
    this.percent.textContent = `${progress}%`;
    this.title.textContent = titleOf(render);
    this.section.dataset.status = render.status;
    this.section.dataset.renderId = render.id;
    const active = render.status === "pending" || render.status === "rendering";
    this.cancelButton.hidden = !active;
    this.completeBox.hidden = render.status !== "complete";
    this.failedBox.hidden = render.status !== "failed";
    if (render.status === "pending") this.eta.textContent = "Waiting for a worker…";
    if (render.status === "rendering") this.estimate(progress);
    if (render.status === "failed") this.failedMessage.textContent = render.error || "The render failed.";
    this.onUpdate(render);
    const step = Math.floor(progress / 25) * 25;
    if (active && step > this.lastAnnounced) {
      this.lastAnnounced = step;
      this.announce.textContent = `${TITLES[render.status]}: ${progress}%`;
    }
  }

  /** Time left from the progress made since the first rendering event (a straight line). */
  estimate(progress) {
    const now = performance.now();
    if (!this.baseline) {
      this.baseline = { at: now, progress };
      this.eta.textContent = "Estimating time left…";
      return;
    }
    const done = progress - this.baseline.progress;
    const elapsed = now - this.baseline.at;
    if (done <= 0 || elapsed < 300) return;
    this.leftAt = now + ((100 - progress) * elapsed) / done;
    this.tick();
    if (!this.ticker) this.ticker = setInterval(() => this.tick(), 1000);
  }

  tick() {
    if (this.leftAt === null || this.render?.status !== "rendering") return;
    this.eta.textContent = `${roughDuration(this.leftAt - performance.now())} left`;
  }

  finished(render) {
    clearInterval(this.ticker);
    this.ticker = null;
    this.update(render);
    if (render.status === "complete") {
      // How long it took, beside "Render complete!" (a bare "Done" said that a second time).
      const took = Date.parse(render.completed_at) - Date.parse(render.created_at);
      this.eta.textContent = Number.isFinite(took) ? `Done in ${roughDuration(took)}` : "Done";
      this.announce.textContent = "Render complete!";
      this.sizeText.textContent = bytes(render.output_size);
      const warnings = render.warnings ?? [];
      $("render-warnings").textContent = warnings.map(plain).join(" "); // "background color"
      $("render-warnings").hidden = warnings.length === 0;
      this.showDownload(render);
    } else {
      this.eta.textContent = "Stopped";
      this.showFailure(render.error || "The render failed.", titleOf(render));
    }
    this.onFinished(render);
  }

  showFailure(message, title = TITLES.failed) {
    this.title.textContent = title;
    this.failedMessage.textContent = message;
    this.failedBox.hidden = false;
    this.completeBox.hidden = true;
    this.cancelButton.hidden = true;
  }

  async showDownload(render) {
    // The stream's output_url was signed when the render finished; ask for a fresh one so its
    // expiry is known and a page left open still downloads.
    try {
      await this.refreshUrl(render.id);
    } catch (error) {
      if (render.output_url) this.setUrl({ url: render.output_url, expires_at: null });
      else this.sizeText.textContent = `No download link: ${error.message}`;
    }
  }

  async refreshUrl(renderId) {
    const signed = await signedUrl(renderId, "attachment", this.fileName);
    if (this.render?.id === renderId) this.setUrl(signed);
  }

  setUrl({ url, expires_at: expiresAt }) {
    this.download = { url, expiresAt: expiresAt ? Date.parse(expiresAt) : null };
    this.link.href = url;
    this.link.download = this.fileName;
    this.link.removeAttribute("aria-disabled");
    if (this.render) this.showPreview(this.render, url);
  }

  async downloadClicked(event) {
    const download = this.download;
    if (!download) {
      event.preventDefault(); // the link is not ready yet
      return;
    }
    if (download.expiresAt === null || Date.now() < download.expiresAt - URL_MARGIN_MS) return;
    event.preventDefault();
    try {
      await this.refreshUrl(this.render.id);
      this.link.click();
    } catch (error) {
      this.sizeText.textContent = `The download link could not be renewed: ${error.message}`;
    }
  }

  async cancel() {
    if (!this.render) return;
    this.cancelButton.disabled = true;
    try {
      const render = await postJSON(`/v1/renders/${encodeURIComponent(this.render.id)}/cancel`);
      this.update(render); // the stream delivers the failed state too and ends
      // The button pressed is hidden now: focus stays in the panel, on what it says.
      if (lostFocus()) this.title.focus();
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 409)) this.eta.textContent = error.message;
    } finally {
      this.cancelButton.disabled = false;
    }
  }
}
