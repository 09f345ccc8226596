// The composer's image and microphone buttons: text read from an image (OCR) or from a recording (speech)
// goes into the question at the cursor, for the user to check before sending.
// Both post to page routes (/documents/ocr, /documents/voice) with the session cookie and the CSRF token.
// Without this file the image control still works as a plain form; the microphone stays hidden.
(function () {
  "use strict";

  const MAX_RECORDING_SECONDS = 120;
  const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/ogg", "audio/mp4"];

  document.documentElement.classList.add("js-media");

  const byId = (id) => document.getElementById(id);
  const canRecord = () =>
    Boolean(window.MediaRecorder && navigator.mediaDevices && navigator.mediaDevices.getUserMedia);

  let busy = false;
  let recording = null; // {recorder, stream, chunks, started, timer, cancelled}

  function showMicIfSupported() {
    const mic = byId("composer-mic");
    if (mic && canRecord()) mic.hidden = false;
  }

  function setStatus(text) {
    const status = byId("composer-media-status");
    if (status) status.textContent = text;
  }

  function setError(text) {
    const error = byId("composer-media-error");
    if (error) error.textContent = text;
    if (text) setStatus("");
  }

  // ``kind`` ("image" or "recording") says which control shows the spinner; false ends the busy state.
  function setBusy(kind) {
    const value = Boolean(kind);
    busy = value;
    const group = document.querySelector(".composer-media");
    if (group) {
      group.setAttribute("aria-busy", value ? "true" : "false");
      if (value) group.dataset.busy = kind;
      else delete group.dataset.busy;
    }
    const image = byId("composer-image");
    if (image) image.disabled = value;
    const mic = byId("composer-mic");
    if (mic && !recording) mic.disabled = value;
  }

  function csrfToken() {
    const field = document.querySelector("#composer-media input[name='_csrf_token']");
    return field ? field.value : "";
  }

  // Insert at the cursor (replacing a selection), with a space or line break from the text around it.
  function insertIntoComposer(text) {
    const input = byId("composer-input");
    if (!input) return false;
    const start = input.selectionStart ?? input.value.length;
    const end = input.selectionEnd ?? start;
    const before = input.value.slice(0, start);
    const after = input.value.slice(end);
    let piece = text;
    if (before && !/\s$/.test(before)) piece = (text.includes("\n") ? "\n" : " ") + piece;
    if (after && !/^\s/.test(after)) piece += " ";
    const limit = input.maxLength > 0 ? input.maxLength : Infinity;
    const room = limit - before.length - after.length;
    let cut = false;
    if (piece.length > room) {
      piece = piece.slice(0, Math.max(0, room));
      cut = true;
    }
    input.setRangeText(piece, start, end, "end");
    input.dispatchEvent(new Event("input", { bubbles: true }));
    input.focus();
    return cut;
  }

  // A failed request answers with the error fragment (HTMX branch of the error handler): its alert has the words.
  function messageOf(html, fallback) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const alert = doc.querySelector(".alert");
    const text = alert ? alert.textContent.replace(/\s+/g, " ").trim() : "";
    return text || fallback;
  }

  async function extract(url, file, filename, what) {
    const body = new FormData();
    body.append("_csrf_token", csrfToken());
    body.append("file", file, filename);
    const response = await fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "HX-Request": "true", "X-CSRFToken": csrfToken() },
    });
    const html = await response.text();
    if (response.status === 204 && response.headers.get("HX-Redirect")) {
      throw new Error("Your session has ended. Sign in again, then retry.");
    }
    if (!response.ok) {
      const fallback =
        response.status === 413 ? `The ${what} is too large.` : `The ${what} could not be read. Please try again.`;
      throw new Error(messageOf(html, fallback));
    }
    const doc = new DOMParser().parseFromString(html, "text/html");
    const output = doc.querySelector(".extracted-text");
    return output ? output.textContent.trim() : "";
  }

  async function run(url, file, filename, kind) {
    const what = kind === "image" ? "image" : "recording";
    setBusy(kind);
    setError("");
    setStatus(kind === "image" ? "Reading the text in the image…" : "Transcribing your recording…");
    try {
      const text = await extract(url, file, filename, what);
      if (!text) {
        setError(
          kind === "image"
            ? "No text was found in the image. Try a sharper or larger picture."
            : "No speech was recognised. Try again, closer to the microphone."
        );
        return;
      }
      const cut = insertIntoComposer(text);
      setStatus(
        (kind === "image" ? "Text from the image added to your question." : "Your words were added to your question.") +
          (cut ? " It was shortened to fit the question's length limit." : " Check it before sending.")
      );
    } catch (error) {
      setError(error instanceof TypeError ? "The server could not be reached. Check your connection and retry." : error.message);
    } finally {
      setBusy(false);
    }
  }

  // --- image to text ------------------------------------------------------------------------------
  document.addEventListener("change", (event) => {
    const input = event.target;
    if (!(input instanceof HTMLInputElement) || input.id !== "composer-image") return;
    const file = input.files && input.files[0];
    if (!file || busy) return;
    if (file.type && !file.type.startsWith("image/")) {
      setError("Choose an image file (PNG, JPEG or TIFF).");
      input.value = "";
      return;
    }
    run("/documents/ocr", file, file.name, "image").finally(() => { input.value = ""; });
  });

  // --- microphone ---------------------------------------------------------------------------------
  function clock(seconds) {
    return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
  }

  function showRecording(on) {
    const mic = byId("composer-mic");
    const timer = byId("composer-mic-timer");
    if (mic) {
      mic.setAttribute("aria-pressed", on ? "true" : "false");
      mic.classList.toggle("recording", on);
    }
    if (timer) {
      timer.hidden = !on;
      timer.textContent = clock(0);
    }
  }

  function microphoneProblem(error) {
    switch (error && error.name) {
      case "NotAllowedError":
      case "SecurityError":
        return "Microphone access was refused. Allow the microphone for this site in your browser's settings, then try again.";
      case "NotFoundError":
      case "OverconstrainedError":
        return "No microphone was found. Connect one, or type your question.";
      case "NotReadableError":
      case "AbortError":
        return "The microphone could not be started; another application may be using it.";
      default:
        return "Recording could not start in this browser. Type your question instead.";
    }
  }

  async function startRecording() {
    setError("");
    if (!canRecord()) {
      setError("This browser cannot record audio here. Type your question instead.");
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      setError(microphoneProblem(error));
      return;
    }
    const type = RECORDING_TYPES.find((candidate) => MediaRecorder.isTypeSupported(candidate));
    let recorder;
    try {
      recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    } catch (error) {
      stream.getTracks().forEach((track) => track.stop());
      setError(microphoneProblem(error));
      return;
    }
    const current = { recorder, stream, chunks: [], started: Date.now(), timer: 0, cancelled: false };
    recording = current;
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data && event.data.size) current.chunks.push(event.data);
    });
    recorder.addEventListener("stop", () => {
      window.clearInterval(current.timer);
      current.stream.getTracks().forEach((track) => track.stop());
      recording = null;
      showRecording(false);
      if (current.cancelled) return;
      const mime = (recorder.mimeType || type || "audio/webm").split(";")[0];
      const blob = new Blob(current.chunks, { type: mime });
      if (!blob.size) {
        setError("Nothing was recorded. Check your microphone and try again.");
        setBusy(false);
        return;
      }
      const extension = mime.includes("ogg") ? "ogg" : mime.includes("mp4") ? "m4a" : "webm";
      run("/documents/voice", blob, `recording.${extension}`, "recording");
    });
    recorder.start(250);
    showRecording(true);
    setStatus("Recording… select Dictate again to stop.");
    current.timer = window.setInterval(() => {
      const seconds = Math.floor((Date.now() - current.started) / 1000);
      const timer = byId("composer-mic-timer");
      if (timer) timer.textContent = clock(seconds);
      if (seconds >= MAX_RECORDING_SECONDS) stopRecording();
    }, 250);
  }

  function stopRecording({ cancel = false } = {}) {
    if (!recording) return;
    recording.cancelled = cancel;
    if (!cancel) setBusy("recording");
    if (recording.recorder.state !== "inactive") recording.recorder.stop();
  }

  document.addEventListener("click", (event) => {
    const mic = event.target instanceof Element ? event.target.closest("#composer-mic") : null;
    if (!mic) return;
    event.preventDefault();
    if (recording) stopRecording();
    else if (!busy) startRecording();
  });

  // Leaving the chat (boosted navigation swaps the body) must not leave the microphone on.
  document.addEventListener("htmx:afterSwap", () => {
    if (recording && !byId("composer-mic")) stopRecording({ cancel: true });
    showMicIfSupported();
  });
  window.addEventListener("pagehide", () => stopRecording({ cancel: true }));

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showMicIfSupported);
  else showMicIfSupported();
})();
