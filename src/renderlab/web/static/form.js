// The TextAnimation form: reads the props (colour names sent as hex, seconds sent as frames),
// fills them back in from a stored generation, and shows one friendly message per field,
// cleared as soon as that field is edited.

import { toHex } from "./colors.js";
import { graphemeCount } from "./format.js";
import { controlFor, friendly, plain } from "./messages.js";

const MAX_TEXT = 500;
const FPS = 30;
// The props' duration_in_frames bounds (1 to 20 s at 30 fps): outside them no frame count is
// shown and the preview keeps its slider (it scrubbed "750 frames" of a refused 25 s).
const MIN_FRAMES = 30;
const MAX_FRAMES = 600;
export const framesInRange = (frames) => Number.isInteger(frames) && frames >= MIN_FRAMES && frames <= MAX_FRAMES;
const DEFAULT_FORMAT = "1920x1080";
const SIZE_SCALES = { full: 1, medium: 2 / 3, small: 1 / 3 };
const SIZE_NAMES = { full: "Full", medium: "Medium", small: "Small" };
const DEFAULTS = {
  text: "Hello, renderlab",
  style: "fade-in",
  font_family: "Inter",
  font_size: 48,
  color: "#FFFFFF",
  background_color: "#101820",
  duration_in_frames: 90,
};
// What the renderer draws as Inter anyway: no warning for these.
const INTER_ALIASES = new Set(["sansserif", "systemui", "uisansserif"]);
// Inputs whose edits clear another control's message.
const ERROR_OWNERS = { "color-picker": "color", "background-picker": "background_color", transparent: "background_color" };

const $ = (id) => document.getElementById(id);
const fontKey = (name) => name.toLowerCase().replace(/[^0-9a-z]/g, "");

function numberOrNull(input) {
  return input.value.trim() === "" ? null : Number(input.value);
}

export class PropsForm {
  constructor({ onChange }) {
    this.form = $("props-form");
    this.onChange = onChange;
    this.formError = $("form-error");
    this.shown = new Set();
    this.fonts = null; // installed family keys, once the server listed them
    this.pairColor($("color-picker"), $("color"));
    this.pairColor($("background-picker"), $("background_color"));
    $("transparent").addEventListener("change", () => this.syncTransparent());
    this.form.addEventListener("input", (event) => this.edited(event));
    this.form.addEventListener("change", (event) => this.edited(event));
    this.form.addEventListener("submit", (event) => event.preventDefault());
    this.updateHints();
  }

  pairColor(picker, text) {
    picker.addEventListener("input", () => {
      text.value = picker.value.toUpperCase();
    });
    text.addEventListener("input", () => {
      const hex = toHex(text.value);
      if (hex) picker.value = hex.toLowerCase();
    });
  }

  syncTransparent() {
    const transparent = $("transparent").checked;
    $("background_color").disabled = transparent;
    $("background-picker").disabled = transparent;
  }

  edited(event) {
    // Only a new value clears a message: the "change" that follows on blur must not move the
    // layout under the pointer of a click that is on its way (e.g. on Render).
    const id = event.type === "input" ? event.target.id : null;
    if (id) {
      this.clearError(ERROR_OWNERS[id] ?? id);
      this.formError.hidden = true; // a sentence about the old values would go stale
    }
    this.updateHints();
    this.onChange();
  }

  updateHints() {
    const count = graphemeCount($("text").value);
    $("text-count").textContent = `${count} of ${MAX_TEXT} characters`;
    const frames = this.frames();
    $("duration-hint").textContent = framesInRange(frames) ? `1 to 20 s at 30 fps (${frames} frames)` : "1 to 20 s at 30 fps";
    for (const id of ["color", "background_color"]) {
      const hex = toHex($(id).value);
      const named = hex && hex !== $(id).value.trim().toUpperCase();
      $(`${id}-hint`).textContent = named ? `Sent as ${hex}` : "#RRGGBB or a colour name (orange, teal…)";
    }
    this.updateSizeLabels();
    this.checkFont();
  }

  /** The duration in frames at 30 fps, from the seconds typed. */
  frames() {
    const seconds = numberOrNull($("duration"));
    if (seconds === null || Number.isNaN(seconds)) return seconds;
    return Math.round(seconds * FPS);
  }

  /** The props to send: colours as hex when they parse (as typed otherwise, so the API names them). */
  props() {
    const props = {
      text: $("text").value,
      style: $("style").value,
      font_family: $("font_family").value.trim(),
      font_size: numberOrNull($("font_size")),
      color: toHex($("color").value) ?? $("color").value.trim(),
      duration_in_frames: this.frames(),
      fps: FPS,
    };
    if (!$("transparent").checked) {
      props.background_color = toHex($("background_color").value) ?? $("background_color").value.trim();
    }
    // 16:9 is the contract's default size: leaving it out keeps servers without sizes working.
    if ($("format").value !== DEFAULT_FORMAT) Object.assign(props, this.format());
    return props;
  }

  prompt() {
    const value = $("prompt").value.trim();
    return value === "" ? null : value;
  }

  /** {width, height} of the composition (the Format picker). */
  format() {
    const [width, height] = $("format").value.split("x").map(Number);
    return { width, height };
  }

  /** {width, height} of the video: the format scaled by the Video size, kept even. */
  size() {
    const { width, height } = this.format();
    const scale = SIZE_SCALES[$("size").value] ?? 1;
    const even = (n) => Math.max(2, Math.round((n * scale) / 2) * 2);
    return { width: even(width), height: even(height) };
  }

  updateSizeLabels() {
    const chosen = $("size").value;
    for (const option of $("size").options) {
      $("size").value = option.value;
      const { width, height } = this.size();
      option.textContent = `${SIZE_NAMES[option.value]} (${width} × ${height})`;
    }
    $("size").value = chosen;
  }

  codec() {
    return $("codec").value;
  }

  /** The server's installed families: fills the picker and enables the fallback warning. */
  setFonts(families) {
    $("font-list").replaceChildren(
      ...families.map((family) => Object.assign(document.createElement("option"), { value: family })),
    );
    this.fonts = new Set(families.map(fontKey));
    this.checkFont();
  }

  checkFont() {
    const warning = $("font_family-warning");
    const typed = $("font_family").value.trim();
    const names = typed.split(",").map((part) => fontKey(part.replace(/['"]/g, "")));
    const known = !this.fonts || !typed || names.some((n) => this.fonts.has(n) || INTER_ALIASES.has(n));
    warning.hidden = known;
    warning.textContent = known ? "" : `“${typed}” is not installed on this server: the video will use Inter.`;
  }

  fill(props, prompt) {
    $("text").value = props.text ?? "";
    $("style").value = props.style ?? DEFAULTS.style;
    $("font_family").value = props.font_family ?? DEFAULTS.font_family;
    $("font_size").value = props.font_size ?? DEFAULTS.font_size;
    $("color").value = (props.color ?? DEFAULTS.color).toUpperCase();
    $("color-picker").value = toHex($("color").value)?.toLowerCase() ?? "#ffffff";
    const transparent = !props.background_color;
    $("transparent").checked = transparent;
    if (!transparent) this.setBackground(props.background_color);
    this.syncTransparent();
    const frames = props.duration_in_frames ?? DEFAULTS.duration_in_frames;
    $("duration").value = String(Math.round((frames / (props.fps ?? FPS)) * 100) / 100);
    const format = `${props.width ?? 1920}x${props.height ?? 1080}`;
    if ([...$("format").options].some((o) => o.value === format)) $("format").value = format;
    $("prompt").value = prompt ?? "";
    this.clearErrors();
    this.changed();
  }

  /** The background field's value, kept while Transparent is ticked (and in the draft). */
  background() {
    return $("background_color").value;
  }

  setBackground(value) {
    $("background_color").value = value.toUpperCase();
    const hex = toHex(value);
    if (hex) $("background-picker").value = hex.toLowerCase();
  }

  /** Back to a fresh animation: default values, empty prompt. */
  reset() {
    this.fill({ ...DEFAULTS }, null);
    $("format").value = DEFAULT_FORMAT;
    this.changed();
  }

  changed() {
    this.updateHints();
    this.onChange();
  }

  /**
   * One friendly message under each control the API's fields name; the form's alert only for
   * what names no control. Returns true when at least one field message was placed.
   */
  showErrors(fields, fallbackMessage) {
    this.clearErrors();
    const loose = [];
    for (const { field = "", message = "" } of fields) {
      const name = controlFor(field);
      const slot = $(`${name}-error`);
      if (!$(name) || !slot) {
        loose.push(plain(message));
        continue;
      }
      slot.textContent = friendly(name, message); // one message per field, however many came
      slot.hidden = false;
      $(name).setAttribute("aria-invalid", "true");
      this.shown.add(name);
    }
    const box = loose.length ? [...new Set(loose)].join(" ") : this.shown.size ? "" : plain(fallbackMessage || "");
    this.formError.textContent = box;
    this.formError.hidden = !box;
    return this.shown.size > 0;
  }

  clearError(name) {
    if (!this.shown.has(name)) return;
    const slot = $(`${name}-error`);
    slot.hidden = true;
    slot.textContent = "";
    $(name).removeAttribute("aria-invalid");
    this.shown.delete(name);
  }

  clearErrors() {
    for (const name of [...this.shown]) this.clearError(name);
    this.formError.hidden = true;
    this.formError.textContent = "";
  }

  /** Focus the first control with a message (after a failed render request). */
  focusFirstError() {
    const first = [...this.shown][0];
    if (first) $(first).focus();
  }
}
