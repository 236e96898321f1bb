/* The meeting-room board follows its server-sent events: each "board" event replaces the board (the
   server renders it, words included) and, when it carries something to celebrate, plays the cheer
   animation; "gone" (the link was revoked) shows why and stops. EventSource reconnects by itself. */
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !board.dataset.events || !window.EventSource) { return; }
  var source = new EventSource(board.dataset.events);
  var version = 0;
  source.addEventListener("board", function (event) {
    var data = JSON.parse(event.data);
    board.innerHTML = data.html;
    version += 1;
    board.dataset.version = String(version);
    if (data.celebrate) {
      document.body.classList.remove("cheer");
      void document.body.offsetWidth; // restart the animation
      document.body.classList.add("cheer");
      window.setTimeout(function () { document.body.classList.remove("cheer"); }, 6000);
    }
  });
  source.addEventListener("gone", function (event) {
    board.innerHTML = JSON.parse(event.data).html;
    board.dataset.version = "gone";
    source.close();
  });
})();
