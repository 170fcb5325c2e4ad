"""The dashboard in a real headless browser (tests/integration/web.sh runs
this). Prints "ok - NAME" / "not ok - NAME" per check; exits 1 on a failure.

Environment: BASE (http://127.0.0.1:PORT), TOKEN, JOB (a pipeline job held
by the teacher simulator's gate), HOSTILE (the id of the item whose text and
replies carry markup), SIM (the teacher simulator's base URL), SOCK (the
daemon's socket), OUT (where the screenshots go), IMG (optional: also write
the docs' screenshots there).
"""
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wd  # noqa: E402

BASE, TOKEN, JOB = os.environ["BASE"], os.environ["TOKEN"], os.environ["JOB"]
HOSTILE, SIM, SOCK = os.environ["HOSTILE"], os.environ["SIM"], os.environ["SOCK"]
OUT, IMG = os.environ["OUT"], os.environ.get("IMG")
failed = False


def ok(name):
    print("ok - " + name, flush=True)


def nok(name, why):
    global failed
    failed = True
    print("not ok - " + name, flush=True)
    print("#   " + str(why)[:800].replace("\n", "\n#   "), flush=True)


def check(name, fn):
    try:
        r = fn()
    except Exception as e:  # a check that raises has failed, the rest still run
        nok(name, "%s: %s" % (type(e).__name__, e))
        return None
    if r is False:
        nok(name, "condition false")
    else:
        ok(name)
    return r


def sim_gate(n):
    req = urllib.request.Request(SIM + "/sim/config", data=json.dumps({"hold-after": n}).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def job_status():
    out = subprocess.check_output(["curl", "-s", "--unix-socket", SOCK, "http://x/v1/jobs/" + JOB])
    return json.loads(out)


def shot(b, name):
    b.screenshot(os.path.join(OUT, name + ".png"))
    if IMG:
        b.screenshot(os.path.join(IMG, "dashboard-" + name + ".png"))


b = wd.Browser(log=open(os.path.join(OUT, "chromedriver.log"), "wb"))
try:
    # Without the token: the login page, which holds no data.
    b.go(BASE + "/")
    check("without the token the browser gets the login page only",
          lambda: b.wait_js("return document.title.indexOf('token required') >= 0 && "
                            "!document.getElementById('main') && document.body.innerText.indexOf('job_') < 0"))
    b.go(BASE + "/v1/jobs")
    check("without the token an API route shows no data in the browser",
          lambda: b.wait_js("var t = document.body.innerText; return t.indexOf('unauthorized') >= 0 && "
                            "t.indexOf('" + JOB + "') < 0"))

    # With it: the jobs list, and the token gone from the address bar.
    b.go(BASE + "/?token=" + TOKEN)
    check("the jobs list loads with the token",
          lambda: b.wait_js("return document.querySelector('#jobs-table tr[data-job=\"" + JOB + "\"]') !== null"))
    check("the token leaves the address bar",
          lambda: b.js("return location.href.indexOf('token') < 0"))
    shot(b, "jobs")

    # A running job's progress moves: the page follows /events while the
    # simulator's gate lets a known number of replies through.
    b.go(BASE + "/#/job/" + JOB)
    fin = "return Array.from(document.querySelectorAll('#job-progress .steprow'))" \
          ".reduce((a, r) => a + Number(r.dataset.finished), 0)"
    check("the job view renders its progress rows",
          lambda: b.wait_js("return document.querySelectorAll('#job-progress .steprow').length > 0 && "
                            "document.getElementById('conn').textContent === 'live'"))
    before = b.js(fin)
    upd0 = int(b.js("return Number(document.body.dataset.updates || 0)"))
    check("the job is still running, held by the simulator",
          lambda: job_status()["state"] == "running")
    sim_gate(12)
    check("progress moves live: finished tasks grow without a reload",
          lambda: b.wait_js(fin.replace("return ", "return (") + ") > arguments[0]", before, timeout=90))
    check("the page was updated by events, not reloaded",
          lambda: int(b.js("return Number(document.body.dataset.updates || 0)")) > upd0 and
          b.js("return performance.getEntriesByType('navigation').length === 1"))
    check("the progress bars have width (styles set through the CSSOM pass the CSP)",
          lambda: b.wait_js("var s = document.querySelector('#job-progress .bar span.done');"
                            "return s && s.getBoundingClientRect().width > 0"))
    check("spend, funnel and rate charts are drawn",
          lambda: b.wait_js("return !!document.getElementById('spend-chart') && "
                            "!!document.getElementById('funnel-chart') && !!document.getElementById('rate-chart')"))
    shot(b, "job-running")

    # Let the job finish: the eval view renders.
    sim_gate(0)
    check("the job ends as done",
          lambda: b.wait_js("return document.querySelector('#job-head .state.done') !== null", timeout=180))
    check("the evaluation table has a row per checkpoint",
          lambda: b.wait_js("return document.querySelectorAll('#eval-table tr[data-checkpoint]').length >= 1"))
    check("the accuracy chart has bars overall and per topic",
          lambda: b.wait_js("var bars = document.querySelectorAll('#eval-chart rect[data-bar]');"
                            "return bars.length >= 2 && Array.from(bars).some(r => /overall$/.test(r.dataset.bar))"))
    check("the eval row shows an accuracy and an interval",
          lambda: b.wait_js("var r = document.querySelector('#eval-table tr[data-checkpoint]');"
                            "return r && /%/.test(r.cells[3].textContent) && / - /.test(r.cells[4].textContent)"))
    check("the funnel counts what the status says",
          lambda: b.wait_js("var t = document.querySelector('#funnel-chart [data-funnel=kept]');"
                            "return t && t.textContent === String(arguments[0])", job_status()["counts"]["screen"]["done"]))
    # The shapes of the evaluation checkpoints and the timeline route (a
    # daemon may or may not have them yet) render through the same code.
    check("evaluation checkpoints render side by side with the change from the baseline",
          lambda: b.js("""var d = document.createElement('div'); renderEval(d, {eval: {checkpoints: [
              {name: 'baseline', total: 20, correct: 8, accuracy: 0.4, ci95: [0.22, 0.61], by_topic: {liver: {total: 10, correct: 4, accuracy: 0.4}}},
              {name: 'stage1', total: 20, correct: 11, accuracy: 0.55, ci95: [0.34, 0.74], by_topic: {liver: {total: 10, correct: 6, accuracy: 0.6}}},
              {name: 'stage2', total: 20, correct: 13, accuracy: 0.65, ci95: [0.43, 0.82], by_topic: {liver: {total: 10, correct: 7, accuracy: 0.7}}}]}});
              var rows = d.querySelectorAll('tr[data-checkpoint]');
              return rows.length === 3 && rows[2].cells[5].textContent.indexOf('+25.0 pt') === 0 &&
                rows[1].cells[4].textContent === '34.0% - 74.0%' && d.querySelectorAll('rect[data-bar]').length === 6"""))
    check("a timeline reply draws calls/s and tokens over time",
          lambda: b.js("""var d = document.createElement('div'); renderTimeline(d, {bucket_s: 10, points: [
              {t: 100, calls: 20, tokens_in: 2000, tokens_out: 500, cost_usd: 0.01, items_done: 3},
              {t: 110, calls: 40, tokens_in: 4000, tokens_out: 900, cost_usd: 0.02, items_done: 9}]});
              return d.querySelectorAll('#rate-chart path').length === 1 && d.querySelectorAll('#tokens-chart path').length === 2"""))
    check("without a timeline route the rate chart is drawn from the live progress",
          lambda: b.js("return !!document.getElementById('rate-chart') && "
                       "(!!document.getElementById('rate-live-note') || document.querySelector('#job-rate .note') !== null)"))
    b.js("document.getElementById('job-eval').scrollIntoView()")
    shot(b, "job-done")
    b.js("window.scrollTo(0, 0)")

    # The item browser: search by text finds the hostile item.
    b.go(BASE + "/#/job/" + JOB + "/items?q=onerror")
    check("the item browser finds an item by text",
          lambda: b.wait_js("var r = document.querySelectorAll('#items-table tr[data-item]');"
                            "return r.length === 1 && r[0].dataset.item === arguments[0]", HOSTILE))
    b.go(BASE + "/#/job/" + JOB + "/items?q=gi-000")
    check("the item browser finds items by id prefix",
          lambda: b.wait_js("return document.querySelectorAll('#items-table tr[data-item]').length === 9"))
    shot(b, "items")

    # One item's story, its markup shown as text and never run.
    b.go(BASE + "/#/job/" + JOB + "/item/" + HOSTILE)
    check("the item's story renders its steps and calls",
          lambda: b.wait_js("return document.querySelectorAll('#story .step[data-step]').length >= 1 && "
                            "document.querySelectorAll('#story pre.reply').length >= 1 && "
                            "/tokens, \\$/.test(document.querySelector('#story .call p').textContent)"))
    check("the hostile question is shown as text",
          lambda: b.wait_js("return document.getElementById('story-question').textContent.indexOf('<img src=x onerror=') >= 0"))
    check("a hostile model reply is shown as text",
          lambda: b.wait_js("return Array.from(document.querySelectorAll('#story pre.reply'))"
                            ".some(p => p.textContent.indexOf('<img src=x onerror=') >= 0)"))
    check("no markup from the data ran or became an element",
          lambda: b.js("return window.__xss === undefined && document.querySelectorAll('#story img, #story script').length === 0"))
    check("the story shows the grade and the rule that decided it",
          lambda: b.js("return document.querySelector('#story .step dd[data-key=rule]') !== null && "
                       "document.querySelector('#story .step dd[data-key=verdict]') !== null"))
    shot(b, "item-story")
finally:
    b.close()
sys.exit(1 if failed else 0)
