// The still preview: the current props' frame, drawn by the server as the props change
// (POST /v1/stills: nothing stored, no quota), with a slider to scrub through the frames.
// Requests are debounced and only the newest answer is shown; older ones are aborted.

import { ApiError, request } from "./api.js";
import { framesInRange } from "./form.js";

const $ = (id) => document.getElementById(id);
const TYPING_DELAY_MS = 250;
const SCRUB_DELAY_MS = 60;
const FPS = 30;

export class Preview {
  /** `storedStill(props)` may return the still URL of a stored generation with these props. */
  constructor({ form, storedStill }) {
    this.form = form;
    this.storedStill = storedStill;
    this.image = $("preview-image");
    this.placeholder = $("preview-placeholder");
    this.box = $("preview-frame");
    this.status = $("preview-status");
    this.slider = $("frame");
    this.output = $("frame-output");
    this.timer = null;
    this.controller = null;
    this.objectUrl = null;
    this.stillsMissing = false;
    this.smallOnly = false; // the server's size cap is below our larger preview sizes
    this.enabled = false;
    this.slider.addEventListener("input", () => {
      this.updateFrameLabel();
      this.schedule(SCRUB_DELAY_MS);
    });
  }

  start() {
    this.enabled = true;
    this.propsChanged();
  }

  stop() {
    this.enabled = false;
    clearTimeout(this.timer);
    this.controller?.abort();
  }

  /** The form changed: fit the slider to the duration, then redraw soon. */
  propsChanged() {
    this.reshape();
    const frames = this.form.props().duration_in_frames;
    if (framesInRange(frames)) {
      // The last frame shows the finished look: a slider left there stays at the end.
      const atEnd = this.slider.value === this.slider.max;
      this.slider.max = String(frames - 1);
      if (atEnd || Number(this.slider.value) > frames - 1) this.slider.value = String(frames - 1);
    }
    this.updateFrameLabel();
    this.schedule(TYPING_DELAY_MS);
  }

  updateFrameLabel() {
    const frame = Number(this.slider.value);
    const total = Number(this.slider.max) + 1;
    // Counted from 1 for people ("Frame 90 of 90" is the last; the API's frame is 89).
    this.output.textContent = `${frame + 1} of ${total} (${(frame / FPS).toFixed(2)} s)`;
    this.slider.setAttribute("aria-valuetext", `Frame ${frame + 1} of ${total}, ${(frame / FPS).toFixed(2)} seconds`);
  }

  schedule(delay) {
    if (!this.enabled) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.draw(), delay);
  }

  /** The preview size: enough pixels for the box on this screen, at the format's aspect
   * ratio (a third, half or two thirds of the composition, kept even). */
  size() {
    const { width, height } = this.form.format();
    const pixels = (this.box.clientWidth || 640) * (window.devicePixelRatio || 1);
    const even = (scale) => Number.isInteger((width * scale) / 2) && Number.isInteger((height * scale) / 2);
    const scales = [1 / 3, 1 / 2, 2 / 3].filter(even);
    const fits = scales.filter((scale) => width * scale >= pixels);
    const scale = this.smallOnly ? scales[0] : (fits[0] ?? scales[scales.length - 1]);
    return { width: Math.round(width * scale), height: Math.round(height * scale) };
  }

  /** The box takes the format's shape at once, before the new picture arrives. */
  reshape() {
    const { width, height } = this.form.format();
    this.box.style.setProperty("--ar", String(width / height));
    this.box.dataset.format = `${width}x${height}`;
  }

  async draw() {
    this.controller?.abort();
    const controller = new AbortController();
    this.controller = controller;
    const props = this.form.props();
    const frame = Number(this.slider.value);
    const { width, height } = this.size();
    this.box.setAttribute("aria-busy", "true");
    this.status.textContent = "Updating preview…";
    try {
      let response;
      const stored = this.stillsMissing ? this.storedStill(props) : null;
      if (this.stillsMissing && !stored) {
        this.status.textContent = "This server has no live preview (POST /v1/stills); the preview appears once you render.";
        return;
      }
      if (stored) {
        response = await request(`${stored}?frame=${frame}&width=${width}&height=${height}`, {
          signal: controller.signal,
          headers: { Accept: "image/png" },
        });
      } else {
        response = await request("/v1/stills", {
          method: "POST",
          json: { animation_props: props, frame, width, height },
          signal: controller.signal,
          headers: { Accept: "image/png" },
        });
      }
      const blob = await response.blob();
      if (controller.signal.aborted) return;
      this.form.clearErrors();
      this.show(blob, props, frame);
      this.status.textContent = "";
    } catch (error) {
      if (error.name === "AbortError") return;
      this.failed(error);
    } finally {
      if (this.controller === controller) this.box.setAttribute("aria-busy", "false");
    }
  }

  show(blob, props, frame) {
    const url = URL.createObjectURL(blob);
    this.image.src = url;
    this.image.alt = `Frame ${frame + 1} of "${props.text.slice(0, 80)}" (${props.style})`;
    this.image.hidden = false;
    this.placeholder.hidden = true;
    this.box.classList.toggle("checker", !props.background_color);
    this.box.classList.remove("stale");
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = url;
  }

  failed(error) {
    this.box.classList.add("stale");
    if (error instanceof ApiError && error.status === 404 && !this.stillsMissing) {
      this.stillsMissing = true;
      this.schedule(0);
      return;
    }
    if (error instanceof ApiError && error.code === "resolution_too_large" && !this.smallOnly) {
      this.smallOnly = true;
      this.schedule(0);
      return;
    }
    if (error instanceof ApiError && error.status === 422) {
      this.form.showErrors(error.fields, error.message);
      this.status.textContent = "Fix the marked fields to update the preview.";
      return;
    }
    this.status.textContent = `The preview could not be drawn: ${error.message}`;
  }
}
