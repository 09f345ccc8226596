// The composer's model picker (templates/chat/_composer.html): remembers the last model chosen, in
// localStorage, for new conversations. A conversation's page already selects the model of its latest answer
// (server-side, so it works without JavaScript too); this only fills in a new chat's picker.
(function () {
  "use strict";
  var KEY = "medchat:model";

  function restore() {
    var select = document.getElementById("composer-model");
    if (!select || select.dataset.restored) return;
    select.dataset.restored = "1";
    if (select.dataset.conversation) return;
    var saved = null;
    try { saved = window.localStorage.getItem(KEY); } catch (error) { return; }
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === saved) { select.value = saved; return; }
    }
  }

  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target && target.id === "composer-model") {
      try { window.localStorage.setItem(KEY, target.value); } catch (error) { /* private mode: not remembered */ }
    }
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", restore);
  else restore();
  document.addEventListener("htmx:afterSettle", restore); // a boosted navigation brings a new composer
})();
