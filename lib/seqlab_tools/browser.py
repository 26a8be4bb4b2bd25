"""The web page driven in headless Chromium (Debian's ``chromium`` + ``chromium-driver``, via Selenium):
each model of the page is tried the way a person would, and the page is photographed.

    python jobs/page_screenshot.py --models cfpb,writer,mols   # results/serving_page.png
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path

from seqlab.errors import SeqlabError


@contextmanager
def chromium(width: int = 1200, height: int = 1400):
    """A headless Chromium session (Selenium WebDriver)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if not binary or not driver_bin:
        raise SeqlabError("headless browser checks need Debian's chromium and chromium-driver "
                          "(apt-get install chromium chromium-driver; `make test` installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_bin), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def try_models(driver, url: str, *, api_key: str | None = None, shots: Path | None = None,
               timeout: float = 60) -> dict:
    """Open the page, and for each model it lists run its form once; returns what the page showed
    per model key: the label and probability bars, the generated text, or the drawn molecules.
    With ``shots``, a screenshot of each (``page-<key>.png``) goes there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(driver, timeout)
    driver.get(f"{url}/")
    if api_key:
        box = driver.find_element(By.ID, "api-key")
        box.send_keys(api_key)
        driver.execute_script("arguments[0].dispatchEvent(new Event('change'))", box)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#model option"))
    select = Select(driver.find_element(By.ID, "model"))
    keys = [o.get_attribute("value") for o in select.options]
    seen = {}
    for key in keys:
        select.select_by_value(key)
        task = driver.execute_script("return current().task")
        if task == "generate":  # each text the page showed while the answer streamed in, by its length
            driver.execute_script(WATCH_GENERATED)
        driver.find_element(By.ID, f"{task}-run").click()
        wait.until(ec.visibility_of_element_located((By.ID, "output")))
        wait.until(lambda d: d.find_element(By.ID, f"{task}-run").is_enabled())
        errors = driver.find_elements(By.CSS_SELECTOR, "[data-testid=error]")
        if errors:
            seen[key] = {"task": task, "error": errors[0].text}
            continue
        out = {"task": task}
        if task in ("classify", "entity"):
            out["label"] = driver.find_element(By.CSS_SELECTOR, "[data-testid=label]").text
            out["bars"] = len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=bar]"))
        elif task == "generate":
            out["text"] = driver.find_element(By.CSS_SELECTOR, "[data-testid=generated]").text
            out["shown"] = driver.execute_script("return window.seqlabShown")
            out["length"] = driver.execute_script(
                "return document.querySelector('[data-testid=generated]').textContent.length")
        else:
            out["drawn"] = len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=molecule] svg"))
            out["invalid"] = len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=molecule-invalid]"))
        if shots:
            out["screenshot"] = str(screenshot(driver, Path(shots) / f"page-{key.replace(':', '-v')}.png"))
        if task == "molecule" and driver.find_element(By.ID, "optimize-run").is_displayed():  # a VAE: search too
            driver.find_element(By.ID, "optimize-run").click()
            summary = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=optimize-summary]")
                                 or d.find_elements(By.CSS_SELECTOR, "[data-testid=error]"))[0]
            out["optimize"] = {"summary": summary.text,
                               "drawn": len(driver.find_elements(By.CSS_SELECTOR, "[data-testid=optimized] svg"))}
        seen[key] = out
    return seen


# a MutationObserver on the output: the length of every text the generated-text box was given, in order
# (a record keeps the text node added at that moment, so updates that land in one frame still count)
WATCH_GENERATED = """
window.seqlabShown = [];
new MutationObserver((records) => {
  for (const r of records) {
    if (r.target.dataset && r.target.dataset.testid === "generated")
      for (const n of r.addedNodes) if (n.nodeType === Node.TEXT_NODE) window.seqlabShown.push(n.data.length);
  }
}).observe(document.getElementById("output"), {childList: true, subtree: true});
"""


def screenshot(driver, path: Path) -> Path:
    """The whole page as a PNG."""
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1200, max(800, min(int(height) + 40, 4000)))
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    return path
