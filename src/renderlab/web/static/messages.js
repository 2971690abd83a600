// The API's validation messages, said the way a person filling the form needs them: one short
// sentence per field, naming what to type, never an internal field name or a regex.

const COLOUR = "Type a colour like #FF8800 or a name like orange.";
const FRIENDLY = {
  text: (message) =>
    /empty|nothing|whitespace|invisible|at least/i.test(message)
      ? "Type the text to animate (spaces alone draw nothing)."
      : /at most|long|500/i.test(message)
        ? "The text can be at most 500 characters."
        : "This text has characters that cannot be used. Remove them and try again.",
  style: () => "Pick one of the styles.",
  font_family: () => "Type a font name or pick one from the list.",
  font_size: () => "Pick a font size from 12 to 200 px.",
  duration: () => "Pick a duration from 1 to 20 seconds.",
  color: () => COLOUR,
  background_color: () => COLOUR,
  prompt: () => "The prompt can be at most 2000 characters, in plain text.",
  format: () => "This server cannot make this format yet: pick 16:9.",
  codec: () => "This server cannot make this file type yet: pick MP4.",
  size: () => "This size is not available: pick another.",
};
// API field names -> the control that shows their message.
const CONTROLS = {
  duration_in_frames: "duration",
  fps: "duration",
  "animation_props.width": "format",
  "animation_props.height": "format",
  width: "size",
  height: "size",
};

/** The control id a field error belongs to: "animation_props.color" -> "color". */
export function controlFor(field) {
  if (CONTROLS[field]) return CONTROLS[field];
  const name = field.replace(/^animation_props\./, "");
  return CONTROLS[name] ?? name;
}

/** The sentence shown under control `name` for the API's `message`. */
export function friendly(name, message) {
  const say = FRIENDLY[name];
  return say ? say(message) : plain(message);
}

/** An API sentence without internal names ("animation_props.x" -> "x"). */
export function plain(message) {
  return message.replace(/animation_props\./g, "").replace(/_/g, " ");
}
