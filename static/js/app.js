// Small progressive enhancements; every page works without this file.
document.addEventListener("htmx:responseError", (event) => {
  const flash = document.getElementById("flash");
  if (flash && !event.detail.xhr.getResponseHeader("HX-Retarget")) {
    flash.innerHTML = '<div class="alert alert-error" role="alert">Something went wrong. Please try again.</div>';
  }
});
