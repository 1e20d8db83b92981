"""The viewer in a real browser: headless Chromium driven by selenium, started here.

Skipped only where no Chromium and chromedriver are installed (Debian: apt-get install chromium
chromium-driver). Screenshots of every view are saved under tests/artifacts/view/ (ignored by git).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest

from interp.view import serve, show

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no headless browser: install chromium and chromedriver (apt-get install chromium chromium-driver)",
)
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "view"


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1360,860",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(DRIVER))
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@contextlib.contextmanager
def viewing(folder: Path):
    server = serve(folder, port=0)
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()


def wait(browser, css: str, count: int = 1, timeout: float = 20):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, css)) >= count)
    return browser.find_elements(By.CSS_SELECTOR, css)


def tab(browser, kind: str, title: str | None = None):
    """Click the tab of the first view of `kind` (with `title`); returns its section."""
    from selenium.webdriver.common.by import By

    buttons = wait(browser, f"#iv-tabs button[data-kind='{kind}']")
    button = next(b for b in buttons if title is None or b.text.endswith(title))
    button.click()
    return browser.find_element(By.CSS_SELECTOR, f"section[data-view='{button.get_attribute('data-view')}']")


def screenshot(browser, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def errors(browser) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def visible_edges(section) -> int:
    from selenium.webdriver.common.by import By

    return len(section.find_elements(By.CSS_SELECTOR, ".iv-edge:not(.iv-pruned)"))


def check_graph(browser, section, circuit: dict) -> float:
    """Node and edge counts as in circuit.json; a click on the threshold slider prunes exactly the
    edges under the new threshold. Returns the threshold."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    nodes = wait(browser, ".iv-node", len(circuit["nodes"]))
    assert len(nodes) == len(circuit["nodes"])
    assert len(section.find_elements(By.CSS_SELECTOR, ".iv-edge")) == len(circuit["edges"])
    assert visible_edges(section) == len(circuit["edges"])
    slider = section.find_element(By.CSS_SELECTOR, "input.iv-threshold")
    width = slider.size["width"]
    ActionChains(browser).move_to_element_with_offset(slider, width // 6, 0).click().perform()
    threshold = float(slider.get_attribute("value"))
    expected = sum(1 for e in circuit["edges"] if abs(e["score"]) >= threshold)
    assert threshold > 0 and expected < len(circuit["edges"])
    assert visible_edges(section) == expected
    count = section.find_element(By.CSS_SELECTOR, ".iv-edge-count").text
    assert f"{expected} of {len(circuit['edges'])} edges" in count
    return threshold


def test_demo_report_graph(browser, demo_report):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
    from selenium.webdriver.common.by import By

    circuit = json.loads((demo_report / "circuit.json").read_text())
    attention = json.loads((demo_report / "attention.json").read_text())
    with viewing(demo_report) as url:
        browser.get(url)
        section = tab(browser, "graph")
        check_graph(browser, section, circuit)
        stage = section.find_element(By.CSS_SELECTOR, "g.iv-stage")
        before = stage.get_attribute("transform")
        graph = section.find_element(By.CSS_SELECTOR, "svg.iv-graph")
        ActionChains(browser).scroll_from_origin(ScrollOrigin.from_element(graph), 0, -300).perform()
        assert stage.get_attribute("transform") != before  # the wheel zooms
        section.find_element(By.CSS_SELECTOR, ".iv-toolbar button").click()  # fit again
        head = next(n["name"] for n in circuit["nodes"] if n["kind"] == "head")
        section.find_element(By.CSS_SELECTOR, f".iv-node[data-id='{head}']").click()
        pattern = wait(browser, ".iv-side svg.iv-heat")[0]
        assert int(pattern.get_attribute("data-rows")) == len(attention["tokens"])
        assert section.find_element(By.CSS_SELECTOR, ".iv-side h2").text == head
        screenshot(browser, "graph")
        assert not errors(browser)


def test_demo_report_features(browser, demo_report):
    from selenium.webdriver.common.by import By

    evaluation = json.loads((demo_report / "sae" / "eval.json").read_text())
    card = evaluation["features"][1]
    with viewing(demo_report) as url:
        browser.get(url)
        section = tab(browser, "features")
        rows = wait(browser, "tr.iv-feature", len(evaluation["features"]))
        assert len(rows) == len(evaluation["features"])
        section.find_element(By.CSS_SELECTOR, f"tr.iv-feature[data-index='{card['index']}']").click()
        contexts = wait(browser, ".iv-feature-card .iv-context", len(card["contexts"]))
        assert len(contexts) == len(card["contexts"])
        first = card["contexts"][0]
        assert contexts[0].text == "".join(first["tokens"]).strip()
        peak = contexts[0].find_element(By.CSS_SELECTOR, ".iv-peak")
        assert peak.text == first["tokens"][first["position"]].strip()
        bars = section.find_elements(By.CSS_SELECTOR, ".iv-hist rect")
        assert len(bars) == len(card["histogram"]["counts"])
        assert f"Feature {card['index']}" in section.find_element(By.CSS_SELECTOR, ".iv-feature-card h2").text
        screenshot(browser, "features")
        search = section.find_element(By.CSS_SELECTOR, "input[type=search]")
        search.send_keys(str(card["index"]))
        shown = [
            int(r.get_attribute("data-index"))
            for r in section.find_elements(By.CSS_SELECTOR, "tr.iv-feature")
        ]
        assert card["index"] in shown and len(shown) < len(evaluation["features"])
        assert not errors(browser)


def test_demo_report_heatmaps_attention_and_summary(browser, demo_report):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    array = json.loads((demo_report / "patching_resid_pre.json").read_text())
    attention = json.loads((demo_report / "attention.json").read_text())
    with viewing(demo_report) as url:
        browser.get(url)
        section = tab(browser, "heatmap", "patching_resid_pre")
        cells = wait(browser, "section:not([hidden]) rect.iv-cell", array["shape"][0] * array["shape"][1])
        assert len(cells) == array["shape"][0] * array["shape"][1]
        ticks = [t.text for t in section.find_elements(By.CSS_SELECTOR, "svg.iv-heat text")]
        assert set(array["labels"]["position"]) <= set(ticks)
        flat = [v for row in array["values"] for v in row]
        peak = max(range(len(flat)), key=lambda i: abs(flat[i]))
        ActionChains(browser).move_to_element(cells[peak]).perform()
        tooltip = browser.find_element(By.ID, "iv-tooltip")
        assert tooltip.is_displayed()
        assert array["labels"]["position"][peak % array["shape"][1]] in tooltip.text
        assert float(tooltip.text.rsplit(": ", 1)[1]) == pytest.approx(flat[peak], rel=1e-3)
        screenshot(browser, "heatmap")

        section = tab(browser, "attention")
        n_layers, n_heads = len(attention["patterns"]), len(attention["patterns"][0])
        thumbs = wait(browser, ".iv-thumb", n_layers * n_heads)
        assert len(thumbs) == n_layers * n_heads
        thumbs[-1].click()
        big = section.find_element(By.CSS_SELECTOR, ".iv-attn-big svg.iv-heat")
        assert big.find_element(By.CSS_SELECTOR, "text").text == f"L{n_layers - 1}.H{n_heads - 1}"
        labels = [t.text for t in big.find_elements(By.CSS_SELECTOR, "text")]
        assert "query" in labels and "key" in labels
        screenshot(browser, "attention")

        section = tab(browser, "summary")
        images = wait(browser, ".iv-figures img", 4)
        browser.execute_script("arguments[0].forEach(i => i.loading = 'eager')", images)
        for image in images:
            assert (
                browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) > 0
            )
        screenshot(browser, "summary")
        assert not errors(browser)


def test_circuit_folder(browser, circuit_folder):
    from selenium.webdriver.common.by import By

    circuit = json.loads((circuit_folder / "circuit.json").read_text())
    with viewing(circuit_folder) as url:
        browser.get(url)
        section = tab(browser, "graph")
        check_graph(browser, section, circuit)
        section.find_element(By.CSS_SELECTOR, ".iv-node[data-id='L1.H0']").click()
        assert wait(browser, ".iv-side svg.iv-heat")
        screenshot(browser, "circuit")
        assert not errors(browser)


def test_notebook_page_works_from_a_file(browser, circuit_folder, tmp_path):
    """`show()`'s standalone page: opened from disk, no server, nothing fetched."""
    from selenium.webdriver.common.by import By

    circuit = json.loads((circuit_folder / "circuit.json").read_text())
    page = show(circuit_folder).save(tmp_path / "page.html")
    browser.get(page.as_uri())
    section = tab(browser, "graph")
    check_graph(browser, section, circuit)
    section = tab(browser, "summary")
    image = section.find_element(By.CSS_SELECTOR, ".iv-figures img")
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    screenshot(browser, "notebook")
    assert not errors(browser)


def test_attribution_graph(browser, attribution_folder):
    from selenium.webdriver.common.by import By

    data = json.loads((attribution_folder / "graph.json").read_text())
    circuit = {"nodes": data["nodes"], "edges": [{"score": link["weight"]} for link in data["links"]]}
    with viewing(attribution_folder) as url:
        browser.get(url)
        section = tab(browser, "graph")
        check_graph(browser, section, circuit)
        labels = [t.text for t in section.find_elements(By.CSS_SELECTOR, ".iv-collabel")]
        assert labels == [t.strip() for t in data["metadata"]["prompt_tokens"]]
        section.find_element(By.CSS_SELECTOR, ".iv-node[data-id='3_42_2']").click()
        assert "sat" in section.find_element(By.CSS_SELECTOR, ".iv-side").text  # the logit's clerp
        screenshot(browser, "attribution")
        assert not errors(browser)


def test_feature_node_shows_its_dashboard(browser, feature_circuit_folder):
    from selenium.webdriver.common.by import By

    circuit = json.loads((feature_circuit_folder / "circuit.json").read_text())
    name = circuit["nodes"][1]["name"]
    with viewing(feature_circuit_folder) as url:
        browser.get(url)
        section = tab(browser, "graph")
        check_graph(browser, section, circuit)
        section.find_element(By.CSS_SELECTOR, f".iv-node[data-id='{name}']").click()
        card = wait(browser, ".iv-side .iv-feature-card")[0]
        index = int(name.rsplit(".F", 1)[1])
        assert card.get_attribute("data-index") == str(index)
        assert card.find_elements(By.CSS_SELECTOR, ".iv-context")
        screenshot(browser, "feature-node")
        assert not errors(browser)


def test_notebook_output_cell_runs_in_its_iframe(browser, demo_report, tmp_path):
    """What Jupyter shows: `_repr_html_()`, an iframe whose sandboxed page draws the views."""
    from selenium.webdriver.common.by import By

    evaluation = json.loads((demo_report / "sae" / "eval.json").read_text())
    cell = tmp_path / "cell.html"
    cell.write_text(f"<!doctype html><html><body>{show(demo_report)._repr_html_()}</body></html>")
    browser.get(cell.as_uri())
    browser.switch_to.frame(browser.find_element(By.TAG_NAME, "iframe"))
    try:
        tab(browser, "features")
        assert len(wait(browser, "tr.iv-feature", len(evaluation["features"]))) == len(evaluation["features"])
        browser.find_elements(By.CSS_SELECTOR, "tr.iv-feature")[0].click()
        assert wait(browser, ".iv-feature-card .iv-context")
    finally:
        browser.switch_to.default_content()
    assert not errors(browser)
