// 我的团体: ask before 退出 (leave a group / withdraw a request). A file, not an inline script (CSP).
$(function () {
    $("form[data-confirm]").on("submit", function (event) {
        if (!window.confirm($(this).data("confirm"))) {
            event.preventDefault();
        }
    });
});
