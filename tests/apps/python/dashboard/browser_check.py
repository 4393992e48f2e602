"""Drives `kar dashboard` in a real browser (Debian's chromium, headless, through its
chromedriver and selenium) for tests/tests/dashboard.rs.

    browser_check.py --url URL --sidecar NODE --sidecar NODE --active N --reminders N
                     --subscriptions N --paused REQUEST_ID --state-actor T/ID
                     --state-text TEXT --screenshot PATH

Checks that the page shows each thing, opens an actor's state, saves a screenshot,
clicks Kill on the paused request (accepting the confirmation), waits until the page
no longer lists it and checks through the admin API that it is gone; then that the
browser logged no error. Prints `ok <check>` per check; `FAIL <check>: ...` and exit 1.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

PATIENCE = 60


def fail(check, why):
    print(f"FAIL {check}: {why}", flush=True)
    sys.exit(1)


def ok(check):
    print(f"ok {check}", flush=True)


def rows(driver, table, attribute):
    return driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr[{attribute}]")


def wait(driver, check, condition):
    try:
        WebDriverWait(driver, PATIENCE, poll_frequency=0.2).until(lambda d: condition(d))
    except TimeoutException:
        banner = driver.find_element(By.ID, "banner").text
        fail(check, f"not shown within {PATIENCE} s (banner: {banner!r})")
    ok(check)


def api(url, path):
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/kar/admin/v1/" + path) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--sidecar", action="append", default=[])
    parser.add_argument("--active", type=int, required=True)
    parser.add_argument("--reminders", type=int, required=True)
    parser.add_argument("--subscriptions", type=int, required=True)
    parser.add_argument("--paused", required=True)
    parser.add_argument("--state-actor", required=True)
    parser.add_argument("--state-text", required=True)
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1500,1100", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        driver.get(args.url)
        wait(driver, "page title", lambda d: d.title == "kar dashboard")

        def sidecars_shown(d):
            shown = {r.get_attribute("data-node") for r in rows(d, "sidecars", "data-node")}
            return all(node in shown for node in args.sidecar)
        wait(driver, f"sidecars {args.sidecar}", sidecars_shown)

        def active_actors(d):
            return [r for r in rows(d, "actors", "data-actor")
                    if r.find_elements(By.CSS_SELECTOR, "td.yes")]
        wait(driver, f"{args.active} active actors", lambda d: len(active_actors(d)) == args.active)
        wait(driver, f"{args.reminders} reminders",
             lambda d: len(rows(d, "reminders", "data-reminder")) == args.reminders)
        wait(driver, f"{args.subscriptions} subscription(s)",
             lambda d: len(rows(d, "subscriptions", "data-subscription")) == args.subscriptions)
        paused = f'#requests tbody tr[data-request="{args.paused}"][data-status="paused"]'
        wait(driver, "the paused request", lambda d: d.find_elements(By.CSS_SELECTOR, paused))
        wait(driver, "latency per method", lambda d: rows(d, "latency", "data-method"))

        actor = driver.find_element(By.CSS_SELECTOR, f'#actors tbody tr[data-actor="{args.state_actor}"]')
        actor.click()
        wait(driver, f"state of {args.state_actor}",
             lambda d: args.state_text in d.find_element(By.ID, "state").text)

        driver.save_screenshot(args.screenshot)
        ok(f"screenshot {args.screenshot}")

        kill = driver.find_element(By.CSS_SELECTOR, f'button.kill[data-id="{args.paused}"]')
        kill.click()
        WebDriverWait(driver, PATIENCE).until(lambda d: d.switch_to.alert).accept()
        wait(driver, "the killed request leaves the page",
             lambda d: not d.find_elements(By.CSS_SELECTOR, f'#requests tbody tr[data-request="{args.paused}"]'))
        status, body = api(args.url, "requests?status=paused")
        if status != 200 or any(r["id"] == args.paused for r in body["requests"]):
            fail("the API agrees", f"{status} {body}")
        status, body = api(args.url, "requests/" + args.paused)
        if status != 404 or body.get("error", {}).get("code") != "not_found":
            fail("the API agrees", f"GET requests/{args.paused}: {status} {body}")
        ok("the API agrees: the request is gone")

        errors = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
        if errors:
            fail("no console errors", errors)
        ok("no console errors")
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
