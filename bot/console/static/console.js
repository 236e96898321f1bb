/* The console's charts: each element with data-series gets an ECharts chart (vendored, no CDN).
   Words come from the page (data-* attributes written from messages/), never from here. */
(function () {
  "use strict";
  function salesChart(el) {
    var data = JSON.parse(el.dataset.series);
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 64, right: 48, top: 36, bottom: 28 },
      tooltip: { trigger: "axis" },
      legend: { data: [el.dataset.amount, el.dataset.units], top: 0 },
      xAxis: { type: "category", data: data.days },
      yAxis: [{ type: "value", name: "¥", splitLine: { lineStyle: { color: "#eef0f3" } } },
              { type: "value", splitLine: { show: false } }],
      series: [
        { name: el.dataset.amount, type: "bar", data: data.yuan, itemStyle: { color: "#b4232c" }, barMaxWidth: 22 },
        { name: el.dataset.units, type: "line", yAxisIndex: 1, data: data.units, smooth: true,
          itemStyle: { color: "#1f2430" }, symbolSize: 5 }
      ]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    el.dataset.drawn = "1";
  }
  /* A feedback survey's spread: how many gave 1 to 5 (data-counts), labelled by data-stars, named data-name. */
  function feedbackChart(el) {
    var counts = JSON.parse(el.dataset.counts);
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      animation: false,
      grid: { left: 36, right: 16, top: 16, bottom: 28 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: JSON.parse(el.dataset.stars) },
      yAxis: { type: "value", minInterval: 1, splitLine: { lineStyle: { color: "#eef0f3" } } },
      series: [{ name: el.dataset.name, type: "bar", data: counts, barMaxWidth: 36,
                 itemStyle: { color: function (p) { return ["#b91c1c", "#e0a46e", "#cfd6de", "#7fb77e", "#15803d"][p.dataIndex]; } },
                 label: { show: true, position: "top" } }]
    });
    window.addEventListener("resize", function () { chart.resize(); });
    el.dataset.drawn = "1";
  }
  document.addEventListener("DOMContentLoaded", function () {
    var el = document.getElementById("sales-chart");
    if (el && window.echarts) { salesChart(el); }
    if (window.echarts) { document.querySelectorAll(".feedback-chart").forEach(feedbackChart); }
  });
})();
