// 统计分析: draw each figure with Plotly from the JSON beside it
// (<script type="application/json" class="figure-json" data-target="…">). A file loaded
// with the CSP nonce, not an inline script. A click on a bar that carries a link in its
// customdata (a child region) opens it: the drill-down.
(function () {
    "use strict";

    function isLocalPath(link) {
        // "/statistics/?region=…" only: never "//host" or "/\host" (another origin).
        return typeof link === "string" && /^\/[^\/\\]/.test(link);
    }

    function draw(node) {
        var target = document.getElementById(node.getAttribute("data-target"));
        if (!target || !window.Plotly) {
            return;
        }
        var figure = JSON.parse(node.textContent);
        window.Plotly.newPlot(target, figure.data, figure.layout || {}, {displaylogo: false, responsive: true})
            .then(function () {
                target.on("plotly_click", function (event) {
                    var point = event && event.points && event.points[0];
                    if (point && isLocalPath(point.customdata)) {
                        window.location.assign(point.customdata);
                    }
                });
            });
    }

    function drawAll() {
        var nodes = document.querySelectorAll("script.figure-json");
        for (var i = 0; i < nodes.length; i++) {
            draw(nodes[i]);
        }
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", drawAll);
    } else {
        drawAll();
    }
})();
