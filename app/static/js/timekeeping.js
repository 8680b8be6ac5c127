// 计时: "select all" ticks the boxes of its own table only (the page has two tick
// lists: volunteers to record, pending applications). A file, not an inline script (CSP).
$(function () {
    $('.tick-all').on('change', function () {
        $(this).closest('table').find('input.tick').prop('checked', this.checked);
    });
});
