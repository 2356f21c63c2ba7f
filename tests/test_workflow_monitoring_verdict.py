"""What the demo loop records in the registry after each monitoring window (read by lineage)."""

from pathlib import Path

from workflow.monitoring.demo_loop import verdict


def test_a_window_with_alerts_is_an_alert_naming_them_and_its_report():
    summary = {"alerts": [{"kind": "data_quality", "message": "4 violations"}], "records": 2999}
    got = verdict(summary, Path("runs/drifted"), "drifted traffic")
    assert got == {
        "verdict": "alert",
        "alerts": ["data_quality"],
        "window": "drifted traffic",
        "records": 2999,
        "report": str(Path("runs/drifted") / "report.html"),
    }


def test_a_quiet_window_is_ok():
    assert verdict({"alerts": [], "records": 3001}, Path("r"), "normal traffic")["verdict"] == "ok"
