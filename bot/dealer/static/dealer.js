/* The dealer page's own script (no framework, nothing loaded from elsewhere): sign in by Telegram's
   initData from the URL fragment or through WeChat's OAuth; the what-if calculator; live updates
   by server-sent events, with a short celebration when a place or a tier is gained. */
(function () {
  "use strict";
  var body = document.body, root = body.getAttribute("data-root");
  if (body.hasAttribute("data-signin")) {
    var hash = new URLSearchParams(location.hash.slice(1)), init = hash.get("tgWebAppData");
    var ua = navigator.userAgent;
    if (init) {
      var form = document.getElementById("tg");
      form.elements.init_data.value = init;
      document.getElementById("working").hidden = false;
      document.getElementById("where").hidden = true;
      form.submit();
    } else if (/wxwork/i.test(ua) && body.hasAttribute("data-wecom")) {
      location.replace(root + "/wecom");
    } else if (/MicroMessenger/i.test(ua) && body.hasAttribute("data-wechat")) {
      location.replace(root + "/wechat");
    }
    return;
  }
  if (!body.hasAttribute("data-page")) return;
  try { if (window.TelegramWebviewProxy) window.TelegramWebviewProxy.postEvent("web_app_ready", "{}"); } catch (e) {}

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.classList || !form.classList.contains("calc")) return;
    ev.preventDefault();
    var raw = parseFloat(form.elements.amount.value || "0");
    if (!(raw >= 0)) return;
    var amount = form.getAttribute("data-unit") === "money" ? Math.round(raw * 100) : Math.round(raw);
    var out = form.querySelector("output");
    fetch(root + "/api/calc?contest=" + form.getAttribute("data-contest") + "&amount=" + amount,
          {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) { out.textContent = d ? d.text : ""; if (d) out.setAttribute("data-rank", d.rank); });
  });

  function marks() {
    var found = {};
    document.querySelectorAll(".contest[data-contest]").forEach(function (el) {
      found[el.getAttribute("data-contest")] = {rank: parseInt(el.getAttribute("data-rank"), 10) || null,
                                                tier: el.getAttribute("data-tier") || null};
    });
    return found;
  }
  function cheer(text, id) {
    var box = document.getElementById("cheer");
    box.textContent = text; box.hidden = false;
    box.style.animation = "none"; void box.offsetWidth; box.style.animation = "";
    var card = document.getElementById("contest-" + id);
    if (card) card.classList.add("won");
    clearTimeout(cheer.timer);
    cheer.timer = setTimeout(function () { box.hidden = true; }, 3400);
  }
  function refresh() {
    var before = marks();
    fetch(root + "/?part=main", {credentials: "same-origin"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) return;
        document.getElementById("main").innerHTML = html;
        var after = marks();
        Object.keys(after).forEach(function (id) {
          var a = after[id], b = before[id] || {};
          if (a.tier && a.tier !== b.tier) cheer(body.getAttribute("data-cheer-tier").replace("%TIER%", a.tier), id);
          else if (a.rank && b.rank && a.rank < b.rank) cheer(body.getAttribute("data-cheer-place").replace("%RANK%", a.rank), id);
        });
      });
  }
  if (window.EventSource) {
    var source = new EventSource(root + "/events");
    source.addEventListener("standing", refresh);
  }
})();
