"""Journey: an officer opens the Chinese login page, logs in and sees the Chinese menu."""


def test_officer_logs_in_and_sees_chinese_menu(page, live_server):
    page.goto(live_server + "/login/")
    assert "登录" in page.content()
    page.fill("input[name=username]", "kaifeng_officer")
    page.fill("input[name=password]", "Demo12345!")
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url
    page.get_by_text("区域监管").first.click()
    page.get_by_text("行政区划").first.click()
    page.wait_for_url("**/regions/list/**")
    assert "区划代码" in page.content() and "北京市" in page.content()
