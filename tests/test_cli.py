"""The command line: errors are one clear line and exit code 2, before any model loads."""

from typer.testing import CliRunner

from seal.cli import app

runner = CliRunner()


def said(result) -> str:
    return " ".join(result.output.split())  # rich wraps long lines


def test_unknown_demo_names_the_choices():
    out = runner.invoke(app, ["demo", "arcade"])
    assert out.exit_code == 2 and "unknown demo 'arcade': choose one of knowledge, cpt, continual" in said(out)


def test_bad_config_key_is_reported_with_a_suggestion(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("experiment: cpt\ncpt:\n  sampels: 3\n")
    out = runner.invoke(app, ["run", str(cfg), "--run-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and "did you mean 'cpt.samples'" in said(out)
    assert not (tmp_path / "r").exists()  # nothing started


def test_report_of_a_run_without_summary(tmp_path):
    out = runner.invoke(app, ["report", str(tmp_path)])
    assert out.exit_code == 2 and "summary.json not found" in said(out)


def test_long_work_logs_progress_lines_with_eta_when_stderr_is_not_a_terminal(monkeypatch, caplog):
    import logging

    from seal import progress as p

    monkeypatch.delenv("SEAL_PROGRESS", raising=False)
    clock = iter(range(0, 10_000, 10))  # every call: 10 more seconds
    monkeypatch.setattr(p.time, "monotonic", lambda: next(clock))
    with caplog.at_level(logging.INFO, logger="seal"), p.progress("inner loops", 40) as advance:
        for _ in range(40):
            advance(1)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[0] == "inner loops: 4/40, 0:00:10 elapsed, eta 0:01:30"
    assert lines[-1].startswith("inner loops: 40/40") and lines[-1].endswith("eta 0:00:00")
    monkeypatch.setenv("SEAL_PROGRESS", "0")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="seal"), p.progress("quiet", 40) as advance:
        advance(40)
    assert not caplog.records
