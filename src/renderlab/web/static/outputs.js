// What a render is, in words: its status ("Cancelled", "Timed out", "Expired" from error_code
// and output_expired), its file type, and a download through a fresh signed URL.

import { ApiError, postJSON } from "./api.js";

// `preview`: how the page shows a finished render. Browsers play MP4 and WebM, show a GIF as
// an image, and cannot decode ProRes at all (a player would sit black with "0:00").
export const CODECS = {
  h264: { ext: "mp4", name: "MP4", preview: "video" },
  vp9: { ext: "webm", name: "WebM", preview: "video" },
  prores: { ext: "mov", name: "MOV", preview: "none" },
  gif: { ext: "gif", name: "GIF", preview: "image" },
};
const STATUS_LABELS = { pending: "Queued", rendering: "Rendering", complete: "Ready", failed: "Failed" };
const ERROR_LABELS = { cancelled: "Cancelled", timed_out: "Timed out" };

export function codecOf(render) {
  return CODECS[render.codec] ? render.codec : "h264";
}

/** "Ready", "Rendering 40%", "Cancelled", "Expired"; the error sentence when no error_code. */
export function statusLabel(render) {
  if (render.output_expired) return "Expired";
  if (render.status === "failed") {
    if (render.error_code) return ERROR_LABELS[render.error_code] ?? "Failed";
    return render.error || "Failed";
  }
  const label = STATUS_LABELS[render.status] ?? render.status;
  return render.status === "rendering" ? `${label} ${render.progress}%` : label;
}

/** The badge's colour class: cancelled and expired are not errors of the user's making. */
export function statusKind(render) {
  if (render.output_expired) return "muted";
  if (render.status === "failed" && render.error_code === "cancelled") return "muted";
  return render.status;
}

/** "hello-renderlab-1080x1920.webm". */
export function fileName(text, render) {
  const slug = text
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 40)
    .replace(/-+$/, "");
  return `${slug || "animation"}-${render.width}x${render.height}.${CODECS[codecOf(render)].ext}`;
}

/** A fresh signed URL for downloading (attachment, saved as `filename`) or playing (inline). */
export function signedUrl(renderId, disposition, filename) {
  const body = filename ? { disposition, filename } : { disposition };
  return postJSON(`/v1/renders/${encodeURIComponent(renderId)}/download-url`, body);
}

/** Download the render's file now, through an <a download> with a fresh URL. */
export async function downloadNow(render, name) {
  const { url } = await signedUrl(render.id, "attachment", name);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
}

/** A person's sentence for a failed download or delete. */
export function actionError(error, what) {
  if (error instanceof ApiError && error.status === 410) return "This video has expired: its file was deleted.";
  if (error instanceof ApiError && error.status === 405) return `This server cannot ${what} yet.`;
  if (error instanceof ApiError && error.status === 404) return "It is already gone (deleted elsewhere?).";
  return `Could not ${what}: ${error.message}`;
}
