"""The API reference page (``GET /docs``) in Chromium: every operation of ``/openapi.json`` is
rendered, under the page's Content-Security-Policy, without a script error."""

from __future__ import annotations

from playwright.async_api import Browser

from .conftest import WAIT_MS, Services

METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


async def test_the_reference_renders_every_operation_of_the_document(browser: Browser, services: Services) -> None:
    async with services.api.http.get("/openapi.json") as resp:
        doc = await resp.json()
    operations = sum(1 for item in doc["paths"].values() for method in item if method in METHODS)
    context = await browser.new_context()
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(services.api.url("/docs"))
        await page.wait_for_selector("section.operation", timeout=WAIT_MS)
        assert await page.locator("section.operation").count() == operations
        text = await page.locator("#operations").inner_text()
        assert "/v1/search/nearby" in text and "latitude" in text and "X-Consistency-Token" in text
        assert await page.locator("#schema-SearchResult").count() == 1
        assert "operations, from /openapi.json" in await page.locator("#status").inner_text()
        assert errors == []
    finally:
        await context.close()
