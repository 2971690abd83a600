// "N of 5 renders left this hour" and a countdown to the next free slot (GET /v1/quota).

import { getJSON } from "./api.js";
import { clock } from "./format.js";

const $ = (id) => document.getElementById(id);

export class Quota {
  /** `onChange(state)` after every change (the Render button follows it). */
  constructor({ onChange = () => {} } = {}) {
    this.onChange = onChange;
    this.text = $("quota-text");
    this.countdown = $("quota-countdown");
    this.state = null; // {limit, remaining, nextAt (ms epoch) or null, kind}
    this.ticker = null;
    this.refreshing = false;
  }

  async refresh() {
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      const quota = await getJSON("/v1/quota");
      this.set(quota);
    } catch (error) {
      if (error.name !== "AbortError") this.text.textContent = `Quota unknown: ${error.message}`;
    } finally {
      this.refreshing = false;
    }
  }

  set({ limit, remaining, retry_after_ms: retryAfterMs, resets_at: resetsAt }) {
    let nextAt = null;
    let kind = null;
    if (remaining <= 0 && retryAfterMs != null) {
      nextAt = Date.now() + retryAfterMs;
      kind = "next";
    } else if (remaining < limit && resetsAt) {
      nextAt = Date.parse(resetsAt);
      kind = "reset";
    }
    this.state = { limit, remaining, nextAt, kind };
    const noun = limit === 1 ? "render" : "renders";
    this.text.textContent = `${remaining} of ${limit} ${noun} left this hour`;
    this.text.classList.toggle("quota-empty", remaining <= 0);
    this.tick();
    clearInterval(this.ticker);
    if (nextAt) this.ticker = setInterval(() => this.tick(), 1000);
    this.onChange(this.state);
  }

  /** A render was refused with 429: we know when the next slot frees up. */
  exhausted(retryAfterMs) {
    const limit = this.state?.limit ?? 5;
    this.set({ limit, remaining: 0, retry_after_ms: retryAfterMs, resets_at: null });
  }

  tick() {
    const state = this.state;
    if (!state || !state.nextAt) {
      this.countdown.textContent = "";
      return;
    }
    const left = state.nextAt - Date.now();
    if (left <= 0) {
      clearInterval(this.ticker);
      this.countdown.textContent = "";
      this.refresh();
      return;
    }
    this.countdown.textContent =
      state.kind === "next" ? `· next free slot in ${clock(left)}` : `· all ${state.limit} back in ${clock(left)}`;
  }

  stop() {
    clearInterval(this.ticker);
    this.state = null;
    this.onChange(this.state);
  }
}
