// 注册审核: FAB's AdminActions (ab_actions.js) binds "select all" (.action_check_all)
// and row highlighting (.action_check) when constructed. A file, not an inline script (CSP).
$(function () {
    new AdminActions();
});
