"""Demo: runs the callconsent app against the lab Asterisk and places three real SIP calls.

Called by ``scripts/demo`` once the sandbox is up. One caller presses 1 after the consent
question, one presses 2, one stays silent. Prints, per call, the outcome from the ledger, the
recording (if any) and its sidecar.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.e2e.lab_app import LabApp, route_timing, wait_ledger  # noqa: E402
from tests.harness.asterisk import AsteriskLab  # noqa: E402
from tests.harness.sipp import Call, Digit, Pause, run_calls  # noqa: E402
from tests.support.lab import lab_config  # noqa: E402


def main() -> int:
    config = lab_config()
    lab = AsteriskLab.from_sandbox()
    log = Path(tempfile.mkdtemp(prefix="callconsent-demo-")) / "serve.log"
    app = LabApp(log)
    print(f"starting: callconsent serve --config config/demo.yaml   (log: {log})")
    app.start()
    timing = route_timing(config, "support")
    after_question = timing.question_end + 1.0
    calls = {
        "presses 1 after the question (consent)": Call(
            to="support",
            caller_number="+4511111111",
            timeline=[Pause(after_question), Digit("1"), Pause(8.0)],
        ),
        "presses 2 (refusal)": Call(
            to="support",
            caller_number="+4522222222",
            timeline=[Pause(after_question), Digit("2"), Pause(4.0)],
        ),
        "stays silent": Call(
            to="support",
            caller_number="+4533333333",
            timeline=[Pause(timing.question_end + timing.timeout + 3.0)],
        ),
    }
    print(
        f"placing {len(calls)} SIP calls with sipp to route 'support': notice {timing.notices_end:.0f} s, "
        f"question until {timing.question_end:.0f} s, timeout {timing.timeout:.0f} s..."
    )
    mark = lab.log_offset()
    try:
        results = run_calls(list(calls.values()), concurrency=len(calls))
        outcomes = []
        for result in results:
            end = lab.wait_labend(result.call_id, since=mark)
            outcomes.append(wait_ledger(config, end.uniqueid))
        time.sleep(1.0)  # the app finalises each sidecar right after hangup
    finally:
        app.stop()

    for (label, call), entry in zip(calls.items(), outcomes, strict=True):
        print(f"\n=== caller {call.caller_number}: {label}")
        print(
            f"  outcome: status={entry['status']} reason={entry['reason']}  (ledger seq {entry['seq']})"
        )
        if not entry["recording"]:
            print("  recording: none")
            continue
        audio = config.storage.recordings_dir / entry["recording"]
        sidecar_path = audio.with_suffix(".json")
        size = audio.stat().st_size if audio.exists() else 0
        print(f"  recording: {audio} ({size} bytes)")
        print(f"  sidecar: {sidecar_path}")
        text = json.dumps(json.loads(sidecar_path.read_text()), indent=2, ensure_ascii=False)
        print("    " + text.replace("\n", "\n    "))
    print(f"\nledger (one JSON line per call, hash-chained): {config.storage.ledger_path}")
    given = [e for e in outcomes if e["status"] == "given" and e["recording"]]
    others = [e for e in outcomes if e["status"] != "given" and e["recording"]]
    return 0 if len(given) == 1 and not others else 1


if __name__ == "__main__":
    raise SystemExit(main())
