"""The page the Serve application serves, driven end to end in headless Chromium: classify a text and
see the label with its probabilities, generate text for a category, sample molecules drawn by RDKit."""

import pytest
from conftest import free_port, tiny_checkpoint

from seqlab import registry

pytestmark = pytest.mark.ray


def test_every_model_can_be_tried_from_the_page(ray_local, tmp_path):
    from ray import serve

    from seqlab.serve.app import start
    from seqlab.serve.options import ServeOptions
    from seqlab_tools.browser import chromium, try_models

    root = str(tmp_path / "registry")
    registry.promote(str(tiny_checkpoint(tmp_path / "c", "lstm")), "cfpb", root)
    registry.promote(str(tiny_checkpoint(tmp_path / "g", "char-lstm")), "writer", root)
    registry.promote(str(tiny_checkpoint(tmp_path / "m", "smiles-vae")), "mols", root)
    keys = tmp_path / "keys"
    keys.write_text("page-key\n")

    url = start(["cfpb", "writer", "mols"], ServeOptions(port=free_port(), registry=root, cpus_per_replica=0.25,
                                                          api_keys_file=str(keys)))
    try:
        with chromium() as driver:
            seen = try_models(driver, url, api_key="page-key", shots=tmp_path / "shots")
            assert driver.execute_script("return localStorage.getItem('seqlab-api-key')") == "page-key"
        with chromium() as driver:  # without the key the page says why nothing loads
            driver.get(f"{url}/")
            from selenium.webdriver.common.by import By
            from selenium.webdriver.support.ui import WebDriverWait

            error = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid=error]"))
            assert "missing API key" in error[0].text
    finally:
        serve.shutdown()
    assert seen["cfpb"]["label"] in ("billing", "loans", "other") and seen["cfpb"]["bars"] == 3
    assert seen["writer"]["task"] == "generate" and seen["writer"]["text"].strip()
    # the text was shown as it streamed in: growing, one step at a time, up to the whole text
    shown = seen["writer"]["shown"]
    assert len(shown) > 2 and shown == sorted(shown) and shown[-1] == seen["writer"]["length"]
    assert seen["mols"]["drawn"] + seen["mols"]["invalid"] == 8
    # the VAE's latent-space search: what it found, each molecule drawn
    found = seen["mols"]["optimize"]
    assert found["summary"].startswith(f"{found['drawn']} best distinct molecules from 256 decoded points")
    for out in seen.values():
        png = (tmp_path / "shots" / out["screenshot"].rsplit("/", 1)[-1]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
