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
