// Colours as people type them ("orange", "#f80", "rgb(255 136 0)") turned into the #RRGGBB the
// API takes, by the browser's own CSS parser (a canvas context's fillStyle), so every CSS
// colour name works and nothing is listed here.

const HEX = /^#[0-9A-Fa-f]{6}$/;
const context = document.createElement("canvas").getContext("2d");

function parsed(value, sentinel) {
  context.fillStyle = sentinel;
  context.fillStyle = value;
  return context.fillStyle;
}

/** "#FFA500" for "orange"; null for what is not an opaque CSS colour. */
export function toHex(value) {
  const text = value.trim();
  if (HEX.test(text)) return text.toUpperCase();
  if (!text || !context) return null;
  // An invalid value leaves fillStyle as it was: two different sentinels tell it apart.
  const a = parsed(text, "#000000");
  const b = parsed(text, "#ffffff");
  if (a !== b || !HEX.test(a)) return null; // invalid, or with transparency (rgba(...))
  return a.toUpperCase();
}
