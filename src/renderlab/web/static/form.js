// The TextAnimation form: reads the props (as typed: the API does the validating), fills them
// back in from a stored generation, and shows the API's messages beside the fields they name.

import { graphemeCount } from "./format.js";

const HEX = /^#[0-9A-Fa-f]{6}$/;
const MAX_TEXT = 500;
// API field names (after an "animation_props." prefix is dropped) -> the control showing them.
const FIELD_CONTROLS = { width: "size", height: "size" };

const $ = (id) => document.getElementById(id);

function numberOrNull(input) {
  return input.value.trim() === "" ? null : Number(input.value);
}

export class PropsForm {
  constructor({ onChange }) {
    this.form = $("props-form");
    this.onChange = onChange;
    this.formError = $("form-error");
    this.shown = new Set();
    this.pairColor($("color-picker"), $("color"));
    this.pairColor($("background-picker"), $("background_color"));
    $("transparent").addEventListener("change", () => this.syncTransparent());
    this.form.addEventListener("input", () => this.changed());
    this.form.addEventListener("change", () => this.changed());
    this.form.addEventListener("submit", (event) => event.preventDefault());
    this.updateHints();
  }

  pairColor(picker, text) {
    picker.addEventListener("input", () => {
      text.value = picker.value.toUpperCase();
    });
    text.addEventListener("input", () => {
      if (HEX.test(text.value.trim())) picker.value = text.value.trim().toLowerCase();
    });
  }

  syncTransparent() {
    const transparent = $("transparent").checked;
    $("background_color").disabled = transparent;
    $("background-picker").disabled = transparent;
  }

  changed() {
    this.updateHints();
    this.onChange();
  }

  updateHints() {
    const count = graphemeCount($("text").value);
    $("text-count").textContent = `${count} of ${MAX_TEXT} characters`;
    const frames = numberOrNull($("duration_in_frames"));
    $("duration-hint").textContent =
      frames === null || Number.isNaN(frames) ? "30 to 600 frames" : `${(frames / 30).toFixed(1)} s at 30 fps`;
  }

  /** The props exactly as typed; blanks become null so the API names them. */
  props() {
    const props = {
      text: $("text").value,
      style: $("style").value,
      font_family: $("font_family").value.trim(),
      font_size: numberOrNull($("font_size")),
      color: $("color").value.trim(),
      duration_in_frames: numberOrNull($("duration_in_frames")),
      fps: Number($("fps").value),
    };
    if (!$("transparent").checked) props.background_color = $("background_color").value.trim();
    return props;
  }

  prompt() {
    const value = $("prompt").value.trim();
    return value === "" ? null : value;
  }

  /** {width, height} of the chosen video size. */
  size() {
    const [width, height] = $("size").value.split("x").map(Number);
    return { width, height };
  }

  fill(props, prompt) {
    $("text").value = props.text ?? "";
    $("style").value = props.style ?? "fade-in";
    $("font_family").value = props.font_family ?? "Inter";
    $("font_size").value = props.font_size ?? 48;
    $("color").value = (props.color ?? "#FFFFFF").toUpperCase();
    $("color-picker").value = $("color").value.toLowerCase();
    const transparent = !props.background_color;
    $("transparent").checked = transparent;
    if (!transparent) {
      $("background_color").value = props.background_color.toUpperCase();
      $("background-picker").value = props.background_color.toLowerCase();
    }
    this.syncTransparent();
    $("duration_in_frames").value = props.duration_in_frames ?? 90;
    $("prompt").value = prompt ?? "";
    this.clearErrors();
    this.changed();
  }

  /**
   * Shows the API's field messages beside their controls; what names no control shows in the
   * form's alert. Returns true when at least one field message was placed.
   */
  showErrors(fields, fallbackMessage) {
    this.clearErrors();
    const loose = [];
    for (const { field = "", message = "" } of fields) {
      const name = FIELD_CONTROLS[field.replace(/^animation_props\./, "")] ?? field.replace(/^animation_props\./, "");
      const control = name && document.getElementById(name);
      const slot = name && document.getElementById(`${name}-error`);
      if (!control || !slot) {
        loose.push(message);
        continue;
      }
      slot.textContent = slot.hidden ? message : `${slot.textContent} ${message}`;
      slot.hidden = false;
      control.setAttribute("aria-invalid", "true");
      this.shown.add(name);
    }
    if (loose.length || (!this.shown.size && fallbackMessage)) {
      this.formError.textContent = loose.length ? loose.join(" ") : fallbackMessage;
      this.formError.hidden = false;
    }
    return this.shown.size > 0;
  }

  clearErrors() {
    for (const name of this.shown) {
      const slot = document.getElementById(`${name}-error`);
      slot.hidden = true;
      slot.textContent = "";
      document.getElementById(name).removeAttribute("aria-invalid");
    }
    this.shown.clear();
    this.formError.hidden = true;
    this.formError.textContent = "";
  }

  /** Focus the first control with a message (after a failed render request). */
  focusFirstError() {
    const first = [...this.shown][0];
    if (first) document.getElementById(first).focus();
  }
}
